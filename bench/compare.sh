#!/usr/bin/env bash
# Runs this gateway and each installed peer on loopback with the same
# workloads and load tool (pag-load), and prints one table with ratios.
#
# Peers: gravel-gateway (`cargo install gravel-gateway`) and Debian's
# prometheus-pushgateway (`apt-get install prometheus-pushgateway`); a peer
# that is not installed is left out with a note. The Go prom-aggregation-
# gateway is not installable from any registry here.
#
# Workloads: small pushes (10 counter series, ~1 KB) at 64 connections;
# large pushes (10k series, ~0.9 MB) at 8 connections; gRPC large pushes
# (ours); a scrape of 100k series (text, and gzip for ours), each preceded by
# a one-series push so a cache cannot answer it; memory (peak and current
# RSS) holding those 100k series.
#
# Usage: bench/compare.sh [seconds per load run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cargo build --release --quiet -p prom-aggregation-gateway -p pag-load
load=target/release/pag-load
ours=target/release/prom-aggregation-gateway
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # name port -> pid
  local name=$1 port=$2
  case $name in
    ours) "$ours" --listen "127.0.0.1:$port" --max-series 10000000 >/dev/null 2>&1 & ;;
    gravel) gravel-gateway -l "127.0.0.1:$port" >/dev/null 2>&1 & ;;
    pushgateway) prometheus-pushgateway --web.listen-address="127.0.0.1:$port" >/dev/null 2>&1 & ;;
  esac
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && { echo "$pid"; return; }
    sleep 0.05
  done
  echo "$name did not start" >&2; exit 1
}

field() { grep -o "$1=[0-9.]*" | head -1 | cut -d= -f2; }
kib() { awk -v k="$1" '/^'"$1"':/ {print $2}' "/proc/$2/status"; }

peers=(ours)
command -v gravel-gateway >/dev/null && peers+=(gravel) || echo "note: gravel-gateway not installed (cargo install gravel-gateway)"
command -v prometheus-pushgateway >/dev/null && peers+=(pushgateway) || echo "note: prometheus-pushgateway not installed"

declare -A small large grpc scrape scrape_gz peak rss
for peer in "${peers[@]}"; do
  port=$(free_port); pid=$(start "$peer" "$port"); url="http://127.0.0.1:$port"
  small[$peer]=$($load --target "$url" push --protocol text --series 10 --concurrency 64 --seconds "$secs" --prefix small | field 'req/s')
  large[$peer]=$($load --target "$url" push --protocol text --series 10000 --concurrency 8 --seconds "$secs" --prefix large | field 'samples/s')
  if [ "$peer" = ours ]; then
    grpc[$peer]=$($load --target "$url" push --protocol grpc --series 10000 --concurrency 8 --seconds "$secs" --prefix grpc | field 'samples/s')
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # A fresh process for the 100k-series scrape and memory figures.
  port=$(free_port); pid=$(start "$peer" "$port"); url="http://127.0.0.1:$port"
  scrape[$peer]=$($load --target "$url" scrape --preload 100000 --times 10 --touch | field 'p50_ms')
  if [ "$peer" = ours ]; then
    scrape_gz[$peer]=$($load --target "$url" scrape --times 10 --touch --gzip | field 'p50_ms')
  fi
  peak[$peer]=$(( $(kib VmHWM "$pid") / 1024 ))
  rss[$peer]=$(( $(kib VmRSS "$pid") / 1024 ))
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
echo
printf '%-34s' "workload"; for p in "${peers[@]}"; do printf '%16s' "$p"; done
for p in "${peers[@]}"; do [ "$p" = ours ] || printf '%14s' "ours/$p"; done; echo
row() { # label array-name higher-is-better(1|0)
  local label=$1 name=$2 better=$3; local -n arr=$name
  printf '%-34s' "$label"; for p in "${peers[@]}"; do printf '%16s' "${arr[$p]:--}"; done
  for p in "${peers[@]}"; do
    [ "$p" = ours ] && continue
    if [ "$better" = 1 ]; then printf '%14s' "$(ratio "${arr[ours]:-0}" "${arr[$p]:-0}")"
    else printf '%14s' "$(ratio "${arr[$p]:-0}" "${arr[ours]:-0}")"; fi
  done; echo
}
row "small push (req/s, 64 conns)" small 1
row "large push (samples/s, 8 conns)" large 1
row "gRPC large push (samples/s)" grpc 1
row "scrape 100k series (ms, p50)" scrape 0
row "scrape 100k gzip (ms, p50)" scrape_gz 0
row "peak RSS with 100k series (MiB)" peak 0
row "RSS after 100k series (MiB)" rss 0
echo "(ratios: how many times better ours is; for times and memory, peer / ours)"
