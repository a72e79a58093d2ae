#!/usr/bin/env bash
# Two builds of the gateway side by side in one run, with the server's own
# CPU time from /proc (what a user pays, not throughput on a shared
# machine): small pushes (CPU per request), large OTLP pushes (CPU per
# sample), and 100k-counter scrapes in each format (p50 and bytes).
#
# Usage: bench/side_by_side.sh BEFORE-BINARY AFTER-BINARY [rounds, default 2]
# e.g. git worktree add /tmp/before <commit> && (cd /tmp/before && cargo build --release)
#      bench/side_by_side.sh /tmp/before/target/release/prom-aggregation-gateway target/release/prom-aggregation-gateway
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,10p "$0"; exit 2; }
declare -A bin=([before]=$1 [after]=$2)
rounds=${3:-2}
cargo build --release --quiet -p pag-load
load=target/release/pag-load
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
field() { grep -o "\b$1=[0-9.]*" | head -1 | cut -d= -f2; }
per() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$hz" -v unit="$4" 'BEGIN{printf "%.1f", (b-a)/hz*unit/n}'; }
for round in $(seq "$rounds"); do
  for v in before after; do
    port=$(free_port)
    "${bin[$v]}" --listen "127.0.0.1:$port" --max-series 10000000 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/-/healthy" && break; sleep 0.05; done
    t=http://127.0.0.1:$port
    $load --target "$t" push --series 10 --concurrency 64 --seconds 2 >/dev/null
    c0=$(cpu $pid); n=$($load --target "$t" push --series 10 --concurrency 64 --seconds 6 | field requests); c1=$(cpu $pid)
    small=$(per "$c0" "$c1" "$n" 1e6)
    c0=$(cpu $pid); n=$($load --target "$t" push --protocol otlp --series 10000 --concurrency 8 --seconds 6 | field requests); c1=$(cpu $pid)
    otlp=$(per "$c0" "$c1" "$((n * 10000))" 1e9)
    $load --target "$t" scrape --preload 100000 --times 0 >/dev/null
    line="$v round=$round small_push_us_cpu_per_request=$small otlp_10k_ns_cpu_per_sample=$otlp"
    for a in text openmetrics protobuf; do
      ms=$($load --target "$t" scrape --times 10 --touch --accept "$a" | field p50_ms)
      line+=" scrape_100k_${a}_p50_ms=$ms"
    done
    line+=" openmetrics_bytes=$(curl -s -H 'accept: application/openmetrics-text;version=1.0.0' "$t/metrics" | wc -c)"
    line+=" protobuf_bytes=$(curl -s -H 'accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited' "$t/metrics" | wc -c)"
    echo "$line"
    kill $pid; wait $pid 2>/dev/null || true
  done
done
