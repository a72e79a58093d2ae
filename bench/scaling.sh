#!/usr/bin/env bash
# How push latency and scrape time grow with the number of series stored:
# for each size, a fresh gateway is filled (pushes of 10k series), then
# 10k-series pushes are timed at one connection and scrapes (text, and gzip)
# are timed with a one-series push before each so no cache answers.
#
# Usage: bench/scaling.sh [sizes...]   (default: 10000 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000 1000000)
cargo build --release --quiet -p prom-aggregation-gateway -p pag-load
load=target/release/pag-load
field() { grep -o "$1=[0-9.]*" | head -1 | cut -d= -f2; }
printf '%-10s %16s %16s %16s %14s\n' series "push 10k p50 ms" "scrape p50 ms" "gzip scrape ms" "RSS MiB"
for n in "${sizes[@]}"; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  target/release/prom-aggregation-gateway --listen "127.0.0.1:$port" --max-series 100000000 >/dev/null 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/-/healthy"; do sleep 0.05; done
  url="http://127.0.0.1:$port"
  scrape=$($load --target "$url" scrape --preload "$n" --times 5 --touch | field p50_ms)
  gz=$($load --target "$url" scrape --times 5 --touch --gzip | field p50_ms)
  push=$($load --target "$url" push --protocol text --series 10000 --concurrency 1 --seconds 5 --prefix preload | field p50_ms)
  rss=$(( $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status") / 1024 ))
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-10s %16s %16s %16s %14s\n' "$n" "$push" "$scrape" "$gz" "$rss"
done
