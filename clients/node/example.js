// Pushes a counter and a histogram to a gateway over gRPC.
// Usage: node example.js [host:port]   (default localhost:8080)
'use strict';

const { Client, counter, histogram } = require('./index');

async function main() {
	const client = new Client(process.argv[2] || 'localhost:8080');
	try {
		const { series } = await client.push(
			[
				counter('checkout_orders_total', 'Orders placed.', [{ labels: { region: 'eu' }, value: 3 }]),
				histogram('checkout_seconds', 'Checkout time.', [
					{ labels: {}, buckets: [[0.5, 2], [1, 3]], count: 4, sum: 2.6 },
				]),
			],
			{ job: 'checkout' },
		);
		console.log(`pushed: ${series} series touched`);
	} finally {
		client.close();
	}
}

main().catch(err => {
	console.error(`push failed: ${err.details || err.message}`);
	process.exit(1);
});
