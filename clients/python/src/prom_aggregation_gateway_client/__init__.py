"""gRPC client for prom-aggregation-gateway.

Push the metrics of a ``prometheus_client`` registry (or ready-made
``MetricFamily`` messages) to the gateway, which adds them into its aggregate.
Each batch is applied all or nothing; errors raise ``grpc.RpcError`` with the
gateway's one-line reason as ``details()``. Every push carries an
``idempotency-key`` and is retried with it when the answer is lost or the
gateway is briefly unavailable, so a retried push is counted once.

    from prometheus_client import CollectorRegistry, Counter
    from prom_aggregation_gateway_client import push

    registry = CollectorRegistry()
    Counter("jobs", "Jobs done", registry=registry).inc()
    push("localhost:8080", registry, labels={"job": "batch"})
"""

from __future__ import annotations

import base64
import math
import time
import uuid
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from .pb import gateway_pb2, gateway_pb2_grpc, metrics_pb2

__all__ = [
    "Client",
    "push",
    "push_stream",
    "registry_to_families",
    "gateway_pb2",
    "metrics_pb2",
]

Families = Union[CollectorRegistry, Collector, Sequence[metrics_pb2.MetricFamily]]
Labels = Optional[Mapping[str, str]]

_T = metrics_pb2.MetricType


def _label_pairs(labels: Mapping[str, str]) -> List[metrics_pb2.LabelPair]:
    return [metrics_pb2.LabelPair(name=k, value=v) for k, v in sorted(labels.items())]


def _key(labels: Mapping[str, str], drop: str = "") -> Tuple[Tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != drop))


def _set_created(msg, value: float) -> None:
    seconds = math.floor(value)
    msg.created_timestamp.seconds = int(seconds)
    msg.created_timestamp.nanos = int(round((value - seconds) * 1e9)) % 1_000_000_000


def _count_fields(msg, field: str, value: float) -> None:
    """Sets an integer count field, or its ``_float`` twin for non-integers."""
    if value == int(value) and value >= 0:
        setattr(msg, field, int(value))
    else:
        setattr(msg, field + "_float", value)


def _scalar_family(metric, kind: int, sample_name: str) -> metrics_pb2.MetricFamily:
    fam = metrics_pb2.MetricFamily(name=sample_name, help=metric.documentation, type=kind)
    for s in metric.samples:
        if s.name != sample_name:
            continue
        m = fam.metric.add(label=_label_pairs(s.labels))
        if kind == _T.GAUGE:
            m.gauge.value = s.value
        else:
            m.untyped.value = s.value
    return fam


def _grouped(metric, suffixes: Sequence[str], drop: str = "") -> Dict[tuple, Dict[str, list]]:
    groups: Dict[tuple, Dict[str, list]] = {}
    for s in metric.samples:
        for suffix in suffixes:
            if s.name == metric.name + suffix:
                groups.setdefault(_key(s.labels, drop), {}).setdefault(suffix, []).append(s)
                break
    return groups


def _counter(metric) -> metrics_pb2.MetricFamily:
    fam = metrics_pb2.MetricFamily(name=metric.name + "_total", help=metric.documentation, type=_T.COUNTER)
    for key, parts in _grouped(metric, ["_total", "_created"]).items():
        if "_total" not in parts:
            continue
        m = fam.metric.add(label=_label_pairs(dict(key)))
        m.counter.value = parts["_total"][0].value
        if "_created" in parts:
            _set_created(m.counter, parts["_created"][0].value)
    return fam


def _histogram(metric) -> metrics_pb2.MetricFamily:
    fam = metrics_pb2.MetricFamily(name=metric.name, help=metric.documentation, type=_T.HISTOGRAM)
    for key, parts in _grouped(metric, ["_bucket", "_count", "_sum", "_created"], drop="le").items():
        m = fam.metric.add(label=_label_pairs(dict(key)))
        h = m.histogram
        for b in sorted(parts.get("_bucket", []), key=lambda s: float(s.labels["le"])):
            bucket = h.bucket.add(upper_bound=float(b.labels["le"]))
            _count_fields(bucket, "cumulative_count", b.value)
        if "_count" in parts:
            _count_fields(h, "sample_count", parts["_count"][0].value)
        if "_sum" in parts:
            h.sample_sum = parts["_sum"][0].value
        if "_created" in parts:
            _set_created(h, parts["_created"][0].value)
    return fam


def _summary(metric) -> metrics_pb2.MetricFamily:
    # Quantiles are left out: the gateway cannot add them up.
    fam = metrics_pb2.MetricFamily(name=metric.name, help=metric.documentation, type=_T.SUMMARY)
    for key, parts in _grouped(metric, ["_count", "_sum", "_created"]).items():
        m = fam.metric.add(label=_label_pairs(dict(key)))
        if "_count" in parts:
            m.summary.sample_count = int(parts["_count"][0].value)
        if "_sum" in parts:
            m.summary.sample_sum = parts["_sum"][0].value
        if "_created" in parts:
            _set_created(m.summary, parts["_created"][0].value)
    return fam


def registry_to_families(registry: Union[CollectorRegistry, Collector] = REGISTRY) -> List[metrics_pb2.MetricFamily]:
    """Converts what a registry (or any collector) collects into ``MetricFamily``
    messages, named as Prometheus stores them (``foo_total`` for a counter)."""
    out: List[metrics_pb2.MetricFamily] = []
    for metric in registry.collect():
        t = metric.type
        if t == "counter":
            fam = _counter(metric)
        elif t == "gauge":
            fam = _scalar_family(metric, _T.GAUGE, metric.name)
        elif t == "info":
            fam = _scalar_family(metric, _T.GAUGE, metric.name + "_info")
        elif t == "stateset":
            fam = _scalar_family(metric, _T.GAUGE, metric.name)
        elif t == "unknown":
            fam = _scalar_family(metric, _T.UNTYPED, metric.name)
        elif t == "histogram":
            fam = _histogram(metric)
        elif t == "summary":
            fam = _summary(metric)
        else:
            raise ValueError(f"metric {metric.name}: type {t} cannot be pushed to an aggregating gateway")
        if fam.metric:
            out.append(fam)
    return out


def _families(families: Families) -> List[metrics_pb2.MetricFamily]:
    # Anything with collect() (a registry or a collector); Collector is a
    # typing Protocol in recent prometheus_client, not usable with isinstance.
    if hasattr(families, "collect"):
        return registry_to_families(families)  # type: ignore[arg-type]
    return list(families)


# Answers after which a push may not have been applied, or was applied and
# its answer lost: retried with the same key, which the gateway answers as
# the first without applying it again.
_RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
)


class Client:
    """A connection to a gateway's gRPC port (``host:port``).

    ``retries`` more attempts (default 3, waiting ``backoff`` seconds, then
    twice as long each time) are made of a push answered UNAVAILABLE,
    ABORTED or DEADLINE_EXCEEDED, with the push's idempotency key."""

    def __init__(
        self,
        target: str,
        *,
        credentials: Optional[Tuple[str, str]] = None,
        channel: Optional[grpc.Channel] = None,
        timeout: Optional[float] = 30.0,
        compression: Optional[grpc.Compression] = None,
        retries: int = 3,
        backoff: float = 0.1,
    ) -> None:
        self._channel = channel or grpc.insecure_channel(target, compression=compression)
        self._stub = gateway_pb2_grpc.AggregationGatewayStub(self._channel)
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._metadata: List[Tuple[str, str]] = []
        if credentials is not None:
            token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
            self._metadata.append(("authorization", f"Basic {token}"))

    def push(self, families: Families, labels: Labels = None, *, idempotency_key: Optional[str] = None) -> int:
        """Pushes one batch; ``labels`` are added to every series, like a
        Pushgateway grouping key. Returns the number of series touched.

        The push is sent with ``idempotency_key`` (a new random one when not
        given) and retried with it: within the gateway's window a push with
        a key it applied already is answered as then and not applied again.
        Give your own key to make a push exactly-once across restarts of
        your program."""
        req = gateway_pb2.PushRequest(metric_families=_families(families), labels=dict(labels or {}))
        metadata = self._metadata + [("idempotency-key", idempotency_key or str(uuid.uuid4()))]
        attempt = 0
        while True:
            try:
                return self._stub.Push(req, metadata=metadata, timeout=self._timeout).series
            except grpc.RpcError as e:
                if e.code() not in _RETRYABLE or attempt >= self._retries:
                    raise
                time.sleep(self._backoff * 2**attempt)
                attempt += 1

    def push_stream(self, batches: Iterable[Tuple[Families, Labels]]) -> int:
        """Pushes a stream of ``(families, labels)`` batches, each all or
        nothing. Returns the series touched over all batches. A stream is
        neither keyed nor retried: a retry could not tell which batches
        were applied."""
        requests = (
            gateway_pb2.PushRequest(metric_families=_families(f), labels=dict(lbl or {})) for f, lbl in batches
        )
        return self._stub.PushStream(requests, metadata=self._metadata, timeout=self._timeout).series

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def push(target: str, families: Families = REGISTRY, labels: Labels = None, **client_args) -> int:
    """Pushes one batch to ``target`` (``host:port``); see :class:`Client`."""
    with Client(target, **client_args) as client:
        return client.push(families, labels)


def push_stream(target: str, batches: Iterable[Tuple[Families, Labels]], **client_args) -> int:
    """Pushes a stream of batches to ``target``; see :meth:`Client.push_stream`."""
    with Client(target, **client_args) as client:
        return client.push_stream(batches)
