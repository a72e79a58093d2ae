// Type declarations for prom-aggregation-gateway-client (index.js).
import * as grpc from '@grpc/grpc-js';

export { grpc };

/** Label names to values. */
export type Labels = Record<string, string>;

/** A label pair as the proto names it. */
export interface LabelPair {
	name: string;
	value: string;
}

/** One series of a counter or gauge family. */
export interface ScalarSeries {
	labels?: Labels;
	value: number;
}

/** One series of a classic histogram family. */
export interface HistogramSeries {
	labels?: Labels;
	/** [upperBound, cumulativeCount] pairs; +Inf may be left out. */
	buckets: Array<[number, number]>;
	count: number;
	sum: number;
}

/** A Metric message, proto field names (snake_case). */
export interface Metric {
	label?: LabelPair[];
	counter?: { value: number };
	gauge?: { value: number };
	untyped?: { value: number };
	summary?: { sample_count: number; sample_sum: number };
	histogram?: {
		sample_count: number;
		sample_sum: number;
		bucket: Array<{ upper_bound: number; cumulative_count: number }>;
	};
	timestamp_ms?: number;
}

/** An io.prometheus.client.MetricFamily, proto field names (snake_case). */
export interface MetricFamily {
	name: string;
	help?: string;
	type: 'COUNTER' | 'GAUGE' | 'SUMMARY' | 'UNTYPED' | 'HISTOGRAM' | 'GAUGE_HISTOGRAM';
	metric: Metric[];
}

/** A counter family: one series per entry, or one unlabelled series for a number. */
export function counter(name: string, help: string, series: number | ScalarSeries[]): MetricFamily;
/** A gauge family: one series per entry, or one unlabelled series for a number. */
export function gauge(name: string, help: string, series: number | ScalarSeries[]): MetricFamily;
/** A classic histogram family. */
export function histogram(name: string, help: string, series: HistogramSeries[]): MetricFamily;
/**
 * The MetricFamily objects of a prom-client Registry (any object with
 * getMetricsAsJSON()). Summaries keep _sum and _count only.
 */
export function fromRegistry(registry: { getMetricsAsJSON(): unknown }): Promise<MetricFamily[]>;

/** Options of a Client. */
export interface ClientOptions {
	/** Credentials for --auth-users. */
	basicAuth?: { user: string; password: string };
	/** e.g. grpc.credentials.createSsl() for a TLS gateway; insecure by default. */
	credentials?: grpc.ChannelCredentials;
	/** Compress requests. */
	gzip?: boolean;
	/** Per call, default 10000. */
	deadlineMs?: number;
	/** More attempts of a push answered UNAVAILABLE, ABORTED or DEADLINE_EXCEEDED, default 3. */
	retries?: number;
	/** Wait before the first retry, doubled each time, default 100. */
	backoffMs?: number;
}

/** Options of one push. */
export interface PushOptions {
	/** The push's idempotency key; a new random one when not given. */
	idempotencyKey?: string;
}

/** What a push did. */
export interface PushResult {
	/** Series touched. */
	series: number;
}

/** A connection to one gateway. */
export class Client {
	/** `address`: host:port of the gateway (its HTTP port serves gRPC too, or --grpc-listen). */
	constructor(address: string, options?: ClientOptions);
	/**
	 * Pushes one batch, all or nothing; `labels` are added to every series.
	 * Rejects with a grpc.ServiceError whose `details` is the gateway's reason.
	 * Sent with an idempotency key and retried with it, so a retry counts once.
	 */
	push(families: MetricFamily[], labels?: Labels, options?: PushOptions): Promise<PushResult>;
	/** Pushes several [families, labels] batches on one stream, each all or nothing. */
	pushStream(batches: Array<[MetricFamily[], Labels?]>): Promise<PushResult>;
	/** Closes the channel. */
	close(): void;
}
