#!/usr/bin/env bash
# What hostile inputs cost the gateway, with default flags: for each class
# (compression bombs, bucket bombs, empty metrics, tiny families, path
# labels copied into every series, the densest accepted push, trickling
# bodies, unread scrapes, OTLP nested and huge attribute arrays, OTLP/JSON
# packed arrays, unread and flooded status API pages, hostile rules files
# reloaded by SIGHUP, request heads that never end, idle connections)
# the bytes sent, peak and retained RSS growth, gateway CPU time, and the
# worst /-/healthy latency while it ran. Targets: peak growth within 10x the decompressed size plus
# 1 MiB, under 50 µs of CPU per KiB decompressed, health within 1 s.
#
# Usage: bench/resources.sh [extra gateway flags...]   (Linux; run as the
# same user as the gateway, which it starts itself)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p prom-aggregation-gateway -p pag-load
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ulimit -n 16384 2>/dev/null || true
rules=$(mktemp)
echo 'rules: []' >"$rules"
target/release/prom-aggregation-gateway --listen "127.0.0.1:$port" --rules "$rules" "$@" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$rules"' EXIT
for _ in $(seq 200); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/-/healthy" && break
  sleep 0.05
done
target/release/pag-load --target "http://127.0.0.1:$port" attack --pid "$pid" --rules-file "$rules"
echo
echo "gateway after the run: $(grep -E 'VmRSS|VmHWM' /proc/$pid/status | tr -s ' ' | tr '\n' ' ')"
curl -s "http://127.0.0.1:$port/-/metrics" | grep -E '^pag_memory(_limit)?_bytes '
