// One OpenTelemetry producer with the Node SDK: records into a counter, a
// histogram, an exponential histogram and an UpDownCounter (a level), exports them (delta temporality, or
// cumulative with `cumulative`) over OTLP/HTTP (protobuf, or JSON with `json`)
// to the gateway three times (three collection cycles), and prints what it
// recorded as JSON.
//
// Usage: node otlp_metrics.js <gateway host:port> <instance id> <seed> [proto|json] [delta|cumulative]
'use strict';
const {
  MeterProvider,
  PeriodicExportingMetricReader,
  AggregationTemporality,
  AggregationType,
} = require('@opentelemetry/sdk-metrics');
const { resourceFromAttributes } = require('@opentelemetry/resources');

async function main() {
  const [addr, instance, seedArg, encoding, temporality] = process.argv.slice(2);
  const seed = Number(seedArg);
  const { OTLPMetricExporter } = require(
    encoding === 'json'
      ? '@opentelemetry/exporter-metrics-otlp-http'
      : '@opentelemetry/exporter-metrics-otlp-proto',
  );
  const exporter = new OTLPMetricExporter({
    url: `http://${addr}/v1/metrics`,
    temporalityPreference:
      temporality === 'cumulative' ? AggregationTemporality.CUMULATIVE : AggregationTemporality.DELTA,
  });
  // Exports only when flushed.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600000 });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'checkout', 'service.instance.id': instance }),
    readers: [reader],
    views: [
      {
        instrumentName: 'payload.size',
        aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM },
      },
    ],
  });
  const meter = provider.getMeter('otlp-interop');
  const orders = meter.createCounter('orders', { unit: '{order}', description: 'Orders placed.' });
  const latency = meter.createHistogram('checkout.latency', { unit: 's', description: 'Checkout time.' });
  const payload = meter.createHistogram('payload.size', { unit: 'By', description: 'Payload sizes.' });
  const connections = meter.createUpDownCounter('connections.open', {
    unit: '{connection}',
    description: 'Connections open now.',
  });
  const recorded = {
    orders_get: 0,
    orders_post: 0,
    latency_count: 0,
    latency_sum: 0,
    payload_count: 0,
    connections_level: 0,
  };
  for (let cycle = 0; cycle < 3; cycle++) {
    // The level goes up, up, down: each export holds the level then (or,
    // in delta, the change); the producers' levels add up.
    const change = [3 + seed, 2, -1][cycle];
    connections.add(change);
    recorded.connections_level += change;
    for (let i = 0; i < 5 + seed + cycle; i++) {
      const method = (i + seed) % 3 ? 'GET' : 'POST';
      orders.add(2, { method });
      recorded[`orders_${method.toLowerCase()}`] += 2;
      const value = 0.01 * (1 + ((i * 7 + seed) % 50));
      latency.record(value);
      recorded.latency_count += 1;
      recorded.latency_sum += value;
      // The range grows each cycle: the exponential histogram's scale
      // goes down as it does.
      payload.record(100 * (1 + i + seed) * 10 ** cycle);
      recorded.payload_count += 1;
    }
    await provider.forceFlush();
  }
  await provider.shutdown();
  console.log(JSON.stringify(recorded));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
