// prom-client's Pushgateway (from npm) against a running gateway.
// Usage: node prom_client_push.js <gateway url> push|delete
// "push": push (PUT) then pushAdd (POST, gzip-compressed) of the same
// registry, grouped by a key whose value needs percent-encoding.
'use strict';

const client = require('prom-client');

async function main() {
	const [gateway, step] = process.argv.slice(2);
	const groupings = { path: '/var/tmp', instance: 'node one' };
	const registry = new client.Registry();
	const plain = new client.Pushgateway(gateway, { timeout: 5000 }, registry);
	if (step === 'delete') {
		await plain.delete({ jobName: 'node-batch', groupings });
		return;
	}
	const requests = new client.Counter({
		name: 'node_requests_total',
		help: 'Requests "handled"\nby the node job',
		labelNames: ['code'],
		registers: [registry],
	});
	requests.inc({ code: '200' }, 5);
	requests.inc({ code: '5"0\\0' }, 1);
	const latency = new client.Histogram({
		name: 'node_latency_seconds',
		help: 'Latency',
		buckets: [0.1, 1],
		registers: [registry],
	});
	for (const v of [0.05, 0.5, 5]) latency.observe(v);
	new client.Gauge({ name: 'node_queue_depth', help: 'Queue depth', registers: [registry] }).set(4);
	new client.Summary({ name: 'node_payload_bytes', help: 'Payload sizes', registers: [registry] }).observe(100);

	await plain.push({ jobName: 'node-batch', groupings });
	const gzip = new client.Pushgateway(
		gateway,
		{ timeout: 5000, headers: { 'Content-Encoding': 'gzip' } },
		registry,
	);
	await gzip.pushAdd({ jobName: 'node-batch', groupings });
}

main().catch(err => {
	console.error(err.stack || String(err));
	process.exit(1);
});
