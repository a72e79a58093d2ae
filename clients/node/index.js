// Client for prom-aggregation-gateway's gRPC push service
// (aggregation_gateway.v1.AggregationGateway), on @grpc/grpc-js.
//
// The gateway adds up what every sender pushes; each batch is applied all
// or nothing. Families are plain objects shaped like Prometheus'
// io.prometheus.client.MetricFamily with proto field names (snake_case),
// built with counter()/gauge()/histogram() or from a prom-client registry
// with fromRegistry().
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// The .proto files: packed beside this file by `npm pack` (prepack), else
// the repository's own proto/ when used from a checkout.
const PROTO_DIR = [path.join(__dirname, 'proto'), path.join(__dirname, '..', '..', 'proto')].find(
	dir => fs.existsSync(path.join(dir, 'aggregation_gateway', 'v1', 'gateway.proto')),
);
if (!PROTO_DIR) {
	throw new Error('prom-aggregation-gateway-client: gateway.proto not found');
}

const definition = protoLoader.loadSync('aggregation_gateway/v1/gateway.proto', {
	includeDirs: [PROTO_DIR],
	keepCase: true,
	longs: Number,
	enums: String,
	defaults: false,
});
const { AggregationGateway } = grpc.loadPackageDefinition(definition).aggregation_gateway.v1;

/** Metric types as the proto names them. */
const TYPES = { counter: 'COUNTER', gauge: 'GAUGE', histogram: 'HISTOGRAM', summary: 'SUMMARY', untyped: 'UNTYPED' };

function labelPairs(labels = {}) {
	return Object.entries(labels).map(([name, value]) => ({ name, value: String(value) }));
}

/**
 * A counter family: one series per entry of `series` ({labels, value}), or
 * one unlabelled series when `series` is a number.
 */
function counter(name, help, series) {
	return scalarFamily(name, help, 'COUNTER', 'counter', series);
}

/** A gauge family, as counter(). */
function gauge(name, help, series) {
	return scalarFamily(name, help, 'GAUGE', 'gauge', series);
}

function scalarFamily(name, help, type, field, series) {
	const list = typeof series === 'number' ? [{ labels: {}, value: series }] : series;
	return {
		name,
		help,
		type,
		metric: list.map(s => ({ label: labelPairs(s.labels), [field]: { value: s.value } })),
	};
}

/**
 * A classic histogram family. Each entry of `series`: {labels, buckets:
 * [[upperBound, cumulativeCount], ...], count, sum}; +Inf may be left out.
 */
function histogram(name, help, series) {
	return {
		name,
		help,
		type: 'HISTOGRAM',
		metric: series.map(s => ({
			label: labelPairs(s.labels),
			histogram: {
				sample_count: s.count,
				sample_sum: s.sum,
				bucket: s.buckets
					.filter(([le]) => le !== Infinity)
					.map(([upper_bound, cumulative_count]) => ({ upper_bound, cumulative_count })),
			},
		})),
	};
}

/**
 * The MetricFamily objects of a prom-client Registry (any object with
 * getMetricsAsJSON()). Histograms keep their buckets; summaries keep
 * _sum and _count only (the gateway cannot add quantiles).
 */
async function fromRegistry(registry) {
	const metrics = await registry.getMetricsAsJSON();
	return metrics.map(m => {
		const type = TYPES[m.type] || 'UNTYPED';
		if (type === 'COUNTER' || type === 'GAUGE' || type === 'UNTYPED') {
			const field = type.toLowerCase();
			return {
				name: m.name,
				help: m.help,
				type,
				metric: m.values.map(v => ({ label: labelPairs(v.labels), [field]: { value: v.value } })),
			};
		}
		// Histogram and summary values come as _bucket/_sum/_count (and
		// quantile) samples: group them by their labels without le/quantile.
		const groups = new Map();
		for (const v of m.values) {
			const { le, quantile, ...labels } = v.labels;
			const key = JSON.stringify(Object.entries(labels).sort());
			if (!groups.has(key)) groups.set(key, { labels, buckets: [], count: 0, sum: 0 });
			const g = groups.get(key);
			const suffix = (v.metricName || '').slice(m.name.length);
			if (suffix === '_bucket' && le !== '+Inf') g.buckets.push([Number(le), v.value]);
			else if (suffix === '_sum') g.sum = v.value;
			else if (suffix === '_count') g.count = v.value;
		}
		const series = [...groups.values()];
		if (type === 'HISTOGRAM') return histogram(m.name, m.help, series);
		return {
			name: m.name,
			help: m.help,
			type: 'SUMMARY',
			metric: series.map(s => ({
				label: labelPairs(s.labels),
				summary: { sample_count: s.count, sample_sum: s.sum },
			})),
		};
	});
}

// Answers after which a push may not have been applied, or was applied and
// its answer lost: retried with the same key, which the gateway answers as
// the first without applying it again.
const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.ABORTED, grpc.status.DEADLINE_EXCEEDED]);

/** A connection to one gateway. */
class Client {
	/**
	 * @param {string} address host:port of the gateway (its HTTP port serves
	 *   gRPC too, or --grpc-listen)
	 * @param {object} [options]
	 * @param {{user: string, password: string}} [options.basicAuth] for --auth-users
	 * @param {grpc.ChannelCredentials} [options.credentials] e.g.
	 *   grpc.credentials.createSsl() for a TLS gateway; insecure by default
	 * @param {boolean} [options.gzip] compress requests
	 * @param {number} [options.deadlineMs] per call, default 10000
	 * @param {number} [options.retries] more attempts of a push answered
	 *   UNAVAILABLE, ABORTED or DEADLINE_EXCEEDED, default 3
	 * @param {number} [options.backoffMs] wait before the first retry,
	 *   doubled each time, default 100
	 */
	constructor(address, options = {}) {
		const channelOptions = {};
		if (options.gzip) channelOptions['grpc.default_compression_algorithm'] = 2;
		this.stub = new AggregationGateway(
			address,
			options.credentials || grpc.credentials.createInsecure(),
			channelOptions,
		);
		this.metadata = new grpc.Metadata();
		if (options.basicAuth) {
			const { user, password } = options.basicAuth;
			this.metadata.set('authorization', `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
		}
		this.deadlineMs = options.deadlineMs || 10000;
		this.retries = options.retries ?? 3;
		this.backoffMs = options.backoffMs ?? 100;
	}

	callOptions() {
		return { deadline: Date.now() + this.deadlineMs };
	}

	/**
	 * Pushes one batch, all or nothing. `labels` are added to every series
	 * (like a Pushgateway grouping key). Resolves to {series} (series
	 * touched); rejects with a grpc ServiceError whose `details` is the
	 * gateway's one-line reason.
	 *
	 * The push carries an idempotency key (`options.idempotencyKey`, else a
	 * new random one) and is retried with it: within the gateway's window a
	 * push with a key it applied already is answered as then and not
	 * applied again.
	 */
	async push(families, labels = {}, options = {}) {
		const request = { metric_families: families, labels };
		const metadata = this.metadata.clone();
		metadata.set('idempotency-key', options.idempotencyKey || crypto.randomUUID());
		for (let attempt = 0; ; attempt++) {
			try {
				return await new Promise((resolve, reject) => {
					this.stub.Push(request, metadata, this.callOptions(), (err, res) =>
						err ? reject(err) : resolve({ series: Number(res.series || 0) }),
					);
				});
			} catch (err) {
				if (!RETRYABLE.has(err.code) || attempt >= this.retries) throw err;
				await new Promise(r => setTimeout(r, this.backoffMs * 2 ** attempt));
			}
		}
	}

	/**
	 * Pushes several batches on one stream, each all or nothing:
	 * `batches` is a list of [families, labels]. A stream is neither keyed
	 * nor retried: a retry could not tell which batches were applied.
	 */
	pushStream(batches) {
		return new Promise((resolve, reject) => {
			const call = this.stub.PushStream(this.metadata, this.callOptions(), (err, res) =>
				err ? reject(err) : resolve({ series: Number(res.series || 0) }),
			);
			for (const [families, labels = {}] of batches) {
				call.write({ metric_families: families, labels });
			}
			call.end();
		});
	}

	/** Closes the channel. */
	close() {
		this.stub.close();
	}
}

module.exports = { Client, counter, gauge, histogram, fromRegistry, grpc };
