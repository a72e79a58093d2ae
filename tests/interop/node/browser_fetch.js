// A web page in headless Chromium (Debian's chromium, driven by
// playwright-core) pushing with fetch() to the gateway from another origin.
// Usage: node browser_fetch.js <open gateway url> <restricted gateway url>
// The page is served by this script on its own loopback port, so every
// request to a gateway is cross-origin. Prints one JSON object:
//   origin      the page's origin
//   open        statuses and scrapes against the gateway with --cors '*':
//               a simple POST (no preflight), a PUT and a DELETE (both
//               preflighted; the DELETE, an admin route, refused), scrapes
//               before and after the DELETE, then an
//               OTLP/HTTP JSON export (preflighted: application/json), as
//               the OpenTelemetry browser SDK sends one
//   restricted  what the browser reported against a gateway whose --cors
//               lists another origin: a simple POST and a PUT
'use strict';

const http = require('http');
const { launch } = require('./chromium');

async function main() {
	const [open, restricted] = process.argv.slice(2);
	const server = http.createServer((_req, res) => {
		res.writeHead(200, { 'content-type': 'text/html' });
		res.end('<!doctype html><title>app</title><p>app');
	});
	await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
	const origin = `http://127.0.0.1:${server.address().port}`;
	const browser = await launch();
	try {
		const page = await browser.newPage();
		await page.goto(origin);
		const result = await page.evaluate(
			async ({ open, restricted }) => {
				const path = '/metrics/job/web/page/checkout';
				const body = '# TYPE web_clicks_total counter\nweb_clicks_total{button="buy"} 1\n';
				const attempt = async (url, init) => {
					try {
						const r = await fetch(url, init);
						return { status: r.status, text: await r.text() };
					} catch (e) {
						return { blocked: String(e) };
					}
				};
				const post = { method: 'POST', headers: { 'Content-Type': 'text/plain; version=0.0.4' }, body };
				const put = { method: 'PUT', headers: { 'Content-Type': 'text/plain; version=0.0.4' }, body };
				return {
					open: {
						post: await attempt(open + path, post),
						put: await attempt(open + path, put),
						scrape: await attempt(open + '/metrics', {}),
						delete: await attempt(open + path, { method: 'DELETE' }),
						after: await attempt(open + '/metrics', {}),
						otlp: await attempt(open + '/v1/metrics', {
							method: 'POST',
							headers: { 'Content-Type': 'application/json' },
							body: JSON.stringify({
								resourceMetrics: [{
									resource: { attributes: [{ key: 'service.name', value: { stringValue: 'web' } }] },
									scopeMetrics: [{
										metrics: [{
											name: 'web.orders',
											sum: {
												aggregationTemporality: 1,
												isMonotonic: true,
												dataPoints: [{ asInt: '3', attributes: [{ key: 'page', value: { stringValue: 'checkout' } }] }],
											},
										}],
									}],
								}],
							}),
						}),
					},
					restricted: {
						post: await attempt(restricted + path, post),
						put: await attempt(restricted + path, put),
					},
				};
			},
			{ open, restricted },
		);
		console.log(JSON.stringify({ origin, ...result, chromium: browser.version() }));
	} finally {
		await browser.close();
		server.close();
	}
}

main().catch(err => {
	console.error(err.stack || String(err));
	process.exit(1);
});
