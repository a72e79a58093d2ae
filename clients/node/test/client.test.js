// The client against a real gateway binary ($PAG_BINARY, else the repo's
// target/debug build): pushes, streams, prom-client registries, refusals.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');
const promClient = require('prom-client');
const { Client, counter, gauge, histogram, fromRegistry, grpc } = require('..');

const BINARY = process.env.PAG_BINARY || path.join(__dirname, '..', '..', '..', 'target', 'debug', 'prom-aggregation-gateway');

let gateway;
let base;
let address;

function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.on('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

before(async () => {
	assert.ok(fs.existsSync(BINARY), `no gateway binary at ${BINARY}: cargo build, or set PAG_BINARY`);
	const port = await freePort();
	address = `127.0.0.1:${port}`;
	base = `http://${address}`;
	gateway = spawn(BINARY, ['--listen', address], { stdio: ['ignore', 'ignore', 'inherit'] });
	const deadline = Date.now() + 20000;
	for (;;) {
		try {
			if ((await fetch(`${base}/-/healthy`)).ok) break;
		} catch {
			// not listening yet
		}
		assert.ok(Date.now() < deadline, 'gateway did not become healthy');
		await new Promise(r => setTimeout(r, 50));
	}
});

after(() => gateway && gateway.kill());

async function scrape() {
	return (await fetch(`${base}/metrics`)).text();
}

async function wipe() {
	assert.equal((await fetch(`${base}/api/v1/admin/wipe`, { method: 'PUT' })).status, 202);
}

test('push sums counters, gauges and histograms', async () => {
	await wipe();
	const client = new Client(address, { gzip: true });
	try {
		const families = [
			counter('orders_total', 'Orders.', [{ labels: { region: 'eu' }, value: 3 }]),
			gauge('queue_depth', 'Depth.', 2),
			histogram('checkout_seconds', 'Checkout time.', [{ labels: {}, buckets: [[0.5, 2], [1, 3]], count: 4, sum: 2.5 }]),
		];
		assert.deepEqual(await client.push(families, { job: 'node' }), { series: 3 });
		await client.push(families, { job: 'node' });
	} finally {
		client.close();
	}
	assert.equal(
		await scrape(),
		[
			'# HELP checkout_seconds Checkout time.',
			'# TYPE checkout_seconds histogram',
			'checkout_seconds_bucket{job="node",le="0.5"} 4',
			'checkout_seconds_bucket{job="node",le="1"} 6',
			'checkout_seconds_bucket{job="node",le="+Inf"} 8',
			'checkout_seconds_sum{job="node"} 5',
			'checkout_seconds_count{job="node"} 8',
			'# HELP orders_total Orders.',
			'# TYPE orders_total counter',
			'orders_total{job="node",region="eu"} 6',
			'# HELP queue_depth Depth.',
			'# TYPE queue_depth gauge',
			'queue_depth{job="node"} 4',
			'',
		].join('\n'),
	);
});

test('a prom-client registry, streamed in two batches', async () => {
	await wipe();
	const registry = new promClient.Registry();
	new promClient.Counter({ name: 'jobs_total', help: 'Jobs.', labelNames: ['queue'], registers: [registry] }).inc({ queue: 'q' }, 2);
	const h = new promClient.Histogram({ name: 'job_seconds', help: 'Job time.', buckets: [1], registers: [registry] });
	h.observe(0.5);
	h.observe(3);
	new promClient.Summary({ name: 'job_bytes', help: 'Sizes.', registers: [registry] }).observe(10);
	const families = await fromRegistry(registry);
	const client = new Client(address);
	try {
		const res = await client.pushStream([
			[families, { job: 'a' }],
			[families, { job: 'a' }],
		]);
		assert.equal(res.series, 6);
	} finally {
		client.close();
	}
	assert.equal(
		await scrape(),
		[
			'# HELP job_bytes Sizes.',
			'# TYPE job_bytes summary',
			'job_bytes_sum{job="a"} 20',
			'job_bytes_count{job="a"} 2',
			'# HELP job_seconds Job time.',
			'# TYPE job_seconds histogram',
			'job_seconds_bucket{job="a",le="1"} 2',
			'job_seconds_bucket{job="a",le="+Inf"} 4',
			'job_seconds_sum{job="a"} 7',
			'job_seconds_count{job="a"} 4',
			'# HELP jobs_total Jobs.',
			'# TYPE jobs_total counter',
			'jobs_total{job="a",queue="q"} 4',
			'',
		].join('\n'),
	);
});

test('a refused batch fails with the reason and changes nothing', async () => {
	await wipe();
	const client = new Client(address);
	try {
		await client.push([counter('c_total', 'C.', 1)], { job: 'x' });
		const before = await scrape();
		await assert.rejects(
			client.push([counter('ok_total', 'Fine.', 1), gauge('c_total', 'Now a gauge.', 1)], { job: 'x' }),
			err => {
				assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
				assert.match(err.details, /c_total/);
				return true;
			},
		);
		assert.equal(await scrape(), before);
	} finally {
		client.close();
	}
});

test('a push with its key counts once, even sent concurrently', async () => {
	await wipe();
	const client = new Client(address, { retries: 20, backoffMs: 50 });
	try {
		const series = [];
		for (let i = 0; i < 20000; i++) series.push({ labels: { i }, value: 1 });
		const families = [counter('once_total', 'Once.', series)];
		// Copies of one push, sent together: one is applied, the others are
		// told it is in flight (ABORTED), retry with the key and are
		// answered as it was.
		const results = await Promise.all(
			[1, 2, 3, 4].map(() => client.push(families, { job: 'k' }, { idempotencyKey: 'job-42' })),
		);
		assert.deepEqual(results, Array(4).fill({ series: 20000 }));
		// Without a key of its own, each push gets a new one.
		await client.push([counter('fresh_total', 'Fresh.', 1)], { job: 'f' });
		await client.push([counter('fresh_total', 'Fresh.', 1)], { job: 'f' });
		const text = await scrape();
		assert.match(text, /^once_total\{i="7",job="k"\} 1$/m);
		assert.match(text, /^fresh_total\{job="f"\} 2$/m);
		const own = await (await fetch(`${base}/-/metrics`)).text();
		assert.match(own, /^pag_idempotency_replays_total 3$/m);
	} finally {
		client.close();
	}
});

test('example.js pushes', async () => {
	await wipe();
	const { execFileSync } = require('child_process');
	const out = execFileSync(process.execPath, [path.join(__dirname, '..', 'example.js'), address], { encoding: 'utf8' });
	assert.equal(out, 'pushed: 2 series touched\n');
	assert.match(await scrape(), /^checkout_orders_total\{job="checkout",region="eu"\} 3$/m);
});
