"""The Python client (grpcio from PyPI) against the real gateway binary.

The binary is $PAG_BINARY, else ../../target/debug/prom-aggregation-gateway
(scripts/test.sh builds it first)."""

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

from prom_aggregation_gateway_client import Client, metrics_pb2, push, push_stream, registry_to_families

ROOT = Path(__file__).resolve().parents[3]
BINARY = os.environ.get("PAG_BINARY", str(ROOT / "target/debug/prom-aggregation-gateway"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    def __init__(self, *args: str) -> None:
        assert os.path.exists(BINARY), f"gateway binary not found at {BINARY}: run cargo build"
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [BINARY, "--listen", self.target, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.target}/-/healthy", timeout=1).read()
                return
            except OSError:
                assert time.monotonic() < deadline, "gateway did not start"
                assert self.proc.poll() is None, "gateway exited"
                time.sleep(0.02)

    def scrape(self) -> str:
        return urllib.request.urlopen(f"http://{self.target}/metrics", timeout=5).read().decode()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def gateway():
    gw = Gateway()
    yield gw
    gw.stop()


def make_registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    Counter("jobs_processed", "Jobs processed", ["queue"], registry=reg).labels("a,b}\"x").inc(3)
    h = Histogram("job_seconds", "Job time", registry=reg, buckets=(0.1, 1.0))
    for v in (0.05, 0.5, 5):
        h.observe(v)
    Gauge("in_flight", "In flight", registry=reg).set(7)
    Summary("sizes", "Sizes", registry=reg).observe(2)
    return reg


def test_registry_push_twice_adds_up(gateway):
    reg = make_registry()
    assert push(gateway.target, reg, labels={"job": "py"}) == 4
    with Client(gateway.target, compression=grpc.Compression.Gzip) as client:
        assert client.push(reg, {"job": "py"}) == 4
    text = gateway.scrape()
    for want in [
        '# TYPE jobs_processed_total counter\njobs_processed_total{job="py",queue="a,b}\\"x"} 6\n',
        'job_seconds_bucket{job="py",le="0.1"} 2\n',
        'job_seconds_bucket{job="py",le="1"} 4\n',
        'job_seconds_bucket{job="py",le="+Inf"} 6\n',
        'job_seconds_count{job="py"} 6\n',
        'in_flight{job="py"} 14\n',
        'sizes_sum{job="py"} 4\nsizes_count{job="py"} 2\n',
    ]:
        assert want in text, f"{want!r} not in:\n{text}"


def test_created_timestamps_travel_in_the_messages():
    fams = {f.name: f for f in registry_to_families(make_registry())}
    assert fams["jobs_processed_total"].metric[0].counter.created_timestamp.seconds > 1_600_000_000
    assert fams["job_seconds"].type == metrics_pb2.HISTOGRAM
    assert [b.upper_bound for b in fams["job_seconds"].metric[0].histogram.bucket] == [0.1, 1.0, float("inf")]


def test_push_stream(gateway):
    reg = CollectorRegistry()
    Counter("streamed", "Streamed", registry=reg).inc(2)
    batches = [(reg, {"job": "s"}), (reg, {"job": "s"}), (reg, {"job": "t"})]
    assert push_stream(gateway.target, batches) == 3
    text = gateway.scrape()
    assert 'streamed_total{job="s"} 4\n' in text, text
    assert 'streamed_total{job="t"} 2\n' in text, text


def test_bad_batch_is_refused_whole(gateway):
    push(gateway.target, make_registry(), labels={"job": "py"})
    before = gateway.scrape()
    bad = metrics_pb2.MetricFamily(name="neg_total", type=metrics_pb2.COUNTER)
    bad.metric.add().counter.value = -1
    good = metrics_pb2.MetricFamily(name="ok_total", type=metrics_pb2.COUNTER)
    good.metric.add().counter.value = 1
    with pytest.raises(grpc.RpcError) as err:
        push(gateway.target, [good, bad])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "metric neg_total: counter value -1 is negative"
    assert gateway.scrape() == before


def test_auth():
    gw = Gateway("--auth-users", "svc=pw")
    try:
        reg = CollectorRegistry()
        Counter("authed", "Authed", registry=reg).inc()
        with pytest.raises(grpc.RpcError) as err:
            push(gw.target, reg)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            push(gw.target, reg, credentials=("svc", "wrong"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert push(gw.target, reg, credentials=("svc", "pw")) == 1
        assert "authed_total 1\n" in gw.scrape()
    finally:
        gw.stop()


def test_a_push_with_its_key_counts_once_even_concurrently(gateway):
    import threading

    fams = [metrics_pb2.MetricFamily(name="once_total", type=metrics_pb2.COUNTER)]
    for i in range(20_000):
        m = fams[0].metric.add(label=[metrics_pb2.LabelPair(name="i", value=str(i))])
        m.counter.value = 1
    results = []
    with Client(gateway.target, backoff=0.05, retries=20) as client:
        # Copies of one push, sent together: one is applied, the others are
        # told it is in flight (ABORTED), retry with the key and are
        # answered as it was.
        threads = [
            threading.Thread(target=lambda: results.append(client.push(fams, {"job": "k"}, idempotency_key="job-42")))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [20_000] * 4
        # A push without a key of its own gets a new one each time.
        client.push([fams[0]], {"job": "fresh"})
        client.push([fams[0]], {"job": "fresh"})
    text = gateway.scrape()
    assert 'once_total{i="7",job="k"} 1\n' in text
    assert 'once_total{i="7",job="fresh"} 2\n' in text
    metrics = urllib.request.urlopen(f"http://{gateway.target}/-/metrics", timeout=5).read().decode()
    assert "pag_idempotency_replays_total 3" in metrics, metrics
