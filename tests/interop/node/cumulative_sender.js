// A long-running service instrumented with prom-client (from npm) that
// pushes its whole registry (cumulative values) every interval, as such
// services do. Usage:
//   node cumulative_sender.js <gateway url> <instance> <rounds> <seed> <hold seconds>
// Pushes the registry once with every counter at 0, waits <hold> seconds,
// then <rounds> times counts some work and pushes; prints what it counted
// as JSON: the ground truth of this run.
'use strict';

const client = require('prom-client');

async function main() {
	const [gateway, instance, rounds, seed, hold] = process.argv.slice(2);
	let state = Number(seed);
	// A small deterministic generator: runs are repeatable.
	const next = (n) => {
		state = (state * 1103515245 + 12345) % 2147483648;
		return state % n;
	};
	const registry = new client.Registry();
	const work = new client.Counter({
		name: 'work_done_total',
		help: 'Work done',
		labelNames: ['kind'],
		registers: [registry],
	});
	const seconds = new client.Histogram({
		name: 'work_seconds',
		help: 'Work time',
		buckets: [0.1, 1],
		registers: [registry],
	});
	work.inc({ kind: 'a' }, 0);
	work.inc({ kind: 'b' }, 0);
	const gw = new client.Pushgateway(gateway, { timeout: 5000 }, registry);
	const groupings = { instance };
	await gw.push({ jobName: 'svc', groupings });
	await new Promise((r) => setTimeout(r, Number(hold) * 1000));
	const counted = { a: 0, b: 0, observations: 0 };
	for (let i = 0; i < Number(rounds); i++) {
		const a = 1 + next(5);
		const b = next(4);
		work.inc({ kind: 'a' }, a);
		work.inc({ kind: 'b' }, b);
		seconds.observe(next(2000) / 1000);
		counted.a += a;
		counted.b += b;
		counted.observations += 1;
		await gw.push({ jobName: 'svc', groupings });
		await new Promise((r) => setTimeout(r, 100));
	}
	console.log(JSON.stringify(counted));
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
