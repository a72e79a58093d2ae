#!/usr/bin/env bash
# Peak RSS while a snapshot is written, against the steady RSS, with N
# series stored (default 1,000,000): preloads the series with pag-load,
# resets the kernel's peak-RSS mark (/proc/PID/clear_refs), waits for the
# periodic snapshot, and prints steady RSS, peak RSS during the snapshot,
# their ratio and the snapshot's size.
# Usage: bench/snapshot_memory.sh [series] [gateway binary]
set -euo pipefail
cd "$(dirname "$0")/.."
series=${1:-1000000}
bin=${2:-target/release/prom-aggregation-gateway}
cargo build --release --quiet -p pag-load
[ -x "$bin" ] || cargo build --release --quiet -p prom-aggregation-gateway
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --listen "127.0.0.1:$port" --max-series $((series * 2)) \
  --persistence-file "$dir/snap" --persistence-interval 1s >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$port/-/healthy" && break; sleep 0.05; done
target/release/pag-load --target "http://127.0.0.1:$port" scrape --preload "$series" --times 1 >/dev/null
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
# Let the snapshot of the preload finish, then measure a fresh one.
size() { stat -c %Y.%s "$dir/snap" 2>/dev/null || echo none; }
for _ in $(seq 600); do [ "$(size)" != none ] && break; sleep 0.1; done
sleep 2
steady=$(kib VmRSS)
echo 5 > "/proc/$pid/clear_refs"
before=$(size)
# One more series, so the next tick writes a snapshot.
curl -sf -o /dev/null --data-binary 'snapshot_trigger 1' "http://127.0.0.1:$port/metrics"
for _ in $(seq 600); do [ "$(size)" != "$before" ] && break; sleep 0.1; done
sleep 0.5
peak=$(kib VmHWM)
bytes=$(stat -c %s "$dir/snap")
awk -v s="$steady" -v p="$peak" -v b="$bytes" -v n="$series" 'BEGIN {
  printf "series=%d steady_rss_mib=%.1f snapshot_peak_rss_mib=%.1f ratio=%.2f snapshot_mib=%.1f\n", n, s/1024, p/1024, p/s, b/1048576 }'
