"""One OpenTelemetry producer: records into a counter, a histogram, an
exponential histogram and an UpDownCounter (a level: connections open) with
the Python SDK, exports them (delta temporality,
or the SDK's default cumulative with `cumulative`) over OTLP/HTTP protobuf or
OTLP/gRPC to the gateway three times (three collection cycles), and prints
what it recorded as JSON.

Usage: otlp_metrics.py <gateway host:port> <instance id> <seed> [http|grpc] [delta|cumulative]
"""

import json
import sys

from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

addr, instance, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
transport = sys.argv[4] if len(sys.argv) > 4 else "http"
temporality = sys.argv[5] if len(sys.argv) > 5 else "delta"
delta = {
    Counter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
    # Changes of the level, added by the gateway.
    UpDownCounter: AggregationTemporality.DELTA,
}
if temporality == "cumulative":
    # The SDK's default.
    delta = None
if transport == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    exporter = OTLPMetricExporter(endpoint=addr, insecure=True, preferred_temporality=delta)
else:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    exporter = OTLPMetricExporter(
        endpoint=f"http://{addr}/v1/metrics", preferred_temporality=delta
    )
# Exports only when flushed.
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
provider = MeterProvider(
    metric_readers=[reader],
    resource=Resource.create({"service.name": "checkout", "service.instance.id": instance}),
    views=[
        View(
            instrument_name="payload.size",
            aggregation=ExponentialBucketHistogramAggregation(max_size=40),
        )
    ],
)
meter = provider.get_meter("otlp-interop")
orders = meter.create_counter("orders", unit="{order}", description="Orders placed.")
latency = meter.create_histogram("checkout.latency", unit="s", description="Checkout time.")
payload = meter.create_histogram("payload.size", unit="By", description="Payload sizes.")
connections = meter.create_up_down_counter(
    "connections.open", unit="{connection}", description="Connections open now."
)

recorded = {
    "orders_get": 0,
    "orders_post": 0,
    "latency_count": 0,
    "latency_sum": 0.0,
    "payload_count": 0,
    "connections_level": 0,
}
for cycle in range(3):
    # The level goes up, up, down: each cumulative export holds the level
    # then (3 + seed, 5 + seed, 4 + seed); the producers' levels add up.
    change = [3 + seed, 2, -1][cycle]
    connections.add(change)
    recorded["connections_level"] += change
    for i in range(5 + seed + cycle):
        method = "GET" if (i + seed) % 3 else "POST"
        orders.add(2, {"method": method})
        recorded["orders_" + method.lower()] += 2
        value = 0.01 * (1 + (i * 7 + seed) % 50)
        latency.record(value)
        recorded["latency_count"] += 1
        recorded["latency_sum"] += value
        # The range grows each cycle: the exponential histogram's scale
        # goes down as it does.
        payload.record(100 * (1 + i + seed) * 10**cycle)
        recorded["payload_count"] += 1
    if not provider.force_flush(timeout_millis=10_000):
        sys.exit("export failed")
provider.shutdown()
print(json.dumps(recorded))
