#!/usr/bin/env bash
# Runs this gateway and each peer found on loopback with the same workloads
# and the same load tool (pag-load), and prints one table with ratios.
#
# Peers, each looked for in $PAG_PEERS (a folder) first, then on PATH; a
# peer not found is left out, with a note saying so:
#   zapier-pag       the Go prom-aggregation-gateway this project re-implements
#   gravel-gateway   the Rust gravel-gateway (`cargo install gravel-gateway`)
#   pushgateway      the Prometheus Pushgateway (Debian: prometheus-pushgateway)
# bench/README.md says which versions were measured and how each was built.
#
# Workloads (every peer): small pushes (10 series, ~1 KB) at 64 connections;
# large pushes (10k series, ~0.9 MB) at 8 connections; a scrape of 100k
# series after a one-series push (so no cache answers it), and that push
# and scrape together; small-push latency at 8 connections with and without
# a 100k-series scrape every second; memory holding those 100k series.
# Ours only: gRPC and HTTP protobuf large pushes, gzip scrapes, and with
# MILLION=1 (the default) the million-series scenario: memory steady and
# after a scrape in every format, scrapes per format, large pushes into the
# full store, push latency under a full scrape every second.
# Error responses of the load tool are counted for every run.
#
# Usage: bench/compare.sh [seconds per load run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
million=${MILLION:-1}
cargo build --release --quiet -p prom-aggregation-gateway -p pag-load
load=target/release/pag-load
ours=target/release/prom-aggregation-gateway
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# find NAME [OTHER-NAME...] -> the first executable found in $PAG_PEERS or on PATH
find_peer() {
  local n
  for n in "$@"; do
    if [ -n "${PAG_PEERS:-}" ] && [ -x "$PAG_PEERS/$n" ]; then echo "$PAG_PEERS/$n"; return; fi
  done
  for n in "$@"; do command -v "$n" 2>/dev/null && return; done
  return 1
}

declare -A bin
bin[ours]=$ours
peers=(ours)
for spec in "zapier-pag zapier-pag" "gravel gravel-gateway" "pushgateway pushgateway prometheus-pushgateway"; do
  read -r name names <<<"$spec"
  # shellcheck disable=SC2086
  if found=$(find_peer $names); then bin[$name]=$found; peers+=("$name")
  else echo "note: $name not found (looked for: $names in \$PAG_PEERS and on PATH); left out"; fi
done

start() { # name port -> pid
  local name=$1 port=$2 exe=${bin[$1]}
  case $name in
    ours) "$exe" --listen "127.0.0.1:$port" --max-series 10000000 >/dev/null 2>&1 & ;;
    zapier-pag) GIN_MODE=release "$exe" --apiListen="127.0.0.1:$port" --lifecycleListen="127.0.0.1:$(free_port)" >/dev/null 2>&1 & ;;
    gravel) "$exe" -l "127.0.0.1:$port" >/dev/null 2>&1 & ;;
    pushgateway) "$exe" --web.listen-address="127.0.0.1:$port" >/dev/null 2>&1 & ;;
  esac
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && { echo "$pid"; return; }
    sleep 0.05
  done
  echo "$name did not start" >&2; exit 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

field() { grep -o "\b$1=[0-9.]*" | head -1 | cut -d= -f2; }
mib() { awk -v k="$1:" '$1 == k {printf "%d", $2 / 1024}' "/proc/$2/status"; }
# gravel takes pushes on /metrics only
push_path() { [ "$1" = gravel ] && echo /metrics || echo /metrics/job/load; }

declare -A small small_err large large_err grpc proto otlp scrape scrape_gz touch lat50 lat99 slat50 slat99 peak rss
for peer in "${peers[@]}"; do
  echo "measuring $peer" >&2
  port=$(free_port); pid=$(start "$peer" "$port"); url="http://127.0.0.1:$port"; p=$(push_path "$peer")
  out=$($load --target "$url" --path "$p" push --protocol text --series 10 --concurrency 64 --seconds "$secs" --prefix small)
  small[$peer]=$(field 'req/s' <<<"$out"); small_err[$peer]=$(field errors <<<"$out")
  out=$($load --target "$url" --path "$p" push --protocol text --series 10000 --concurrency 8 --seconds "$secs" --prefix large)
  large[$peer]=$(field 'samples/s' <<<"$out"); large_err[$peer]=$(field errors <<<"$out")
  if [ "$peer" = ours ]; then
    grpc[$peer]=$($load --target "$url" push --protocol grpc --series 10000 --concurrency 8 --seconds "$secs" --prefix grpc | field 'samples/s')
    proto[$peer]=$($load --target "$url" push --protocol protobuf --series 10000 --concurrency 8 --seconds "$secs" --prefix proto | field 'samples/s')
    otlp[$peer]=$($load --target "$url" push --protocol otlp --series 10000 --concurrency 8 --seconds "$secs" --prefix otlp | field 'samples/s')
  fi
  stop "$pid"
  # A fresh process for the 100k-series figures.
  port=$(free_port); pid=$(start "$peer" "$port"); url="http://127.0.0.1:$port"
  out=$($load --target "$url" --path "$p" scrape --preload 100000 --times 10 --touch)
  scrape[$peer]=$(field p50_ms <<<"$out"); touch[$peer]=$(field push_and_scrape_p50_ms <<<"$out")
  if [ "$peer" = ours ]; then
    scrape_gz[$peer]=$($load --target "$url" scrape --times 10 --touch --gzip | field p50_ms)
  fi
  peak[$peer]=$(mib VmHWM "$pid"); rss[$peer]=$(mib VmRSS "$pid")
  out=$($load --target "$url" --path "$p" push --series 10 --concurrency 8 --seconds "$secs" --prefix quiet)
  lat50[$peer]=$(field p50_ms <<<"$out"); lat99[$peer]=$(field p99_ms <<<"$out")
  out=$($load --target "$url" --path "$p" push --series 10 --concurrency 8 --seconds "$secs" --prefix busy --scrape-every-ms 1000)
  slat50[$peer]=$(field p50_ms <<<"$out"); slat99[$peer]=$(field p99_ms <<<"$out")
  stop "$pid"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b; else print "-" }'; }
w=38
echo
printf "%-${w}s" "workload"; for p in "${peers[@]}"; do printf '%14s' "$p"; done
for p in "${peers[@]}"; do [ "$p" = ours ] || printf '%20s' "ours vs $p"; done; echo
row() { # label array-name higher-is-better(1|0|-)
  local label=$1 name=$2 better=$3; local -n arr=$name
  printf "%-${w}s" "$label"; for p in "${peers[@]}"; do printf '%14s' "${arr[$p]:--}"; done
  for p in "${peers[@]}"; do
    [ "$p" = ours ] && continue
    case $better in
      1) printf '%20s' "$(ratio "${arr[ours]:-0}" "${arr[$p]:-0}")" ;;
      0) printf '%20s' "$(ratio "${arr[$p]:-0}" "${arr[ours]:-0}")" ;;
      *) printf '%20s' "" ;;
    esac
  done; echo
}
row "small push (req/s, 64 conns)" small 1
row "  error responses" small_err -
row "large push (samples/s, 8 conns)" large 1
row "  error responses" large_err -
row "gRPC large push (samples/s)" grpc 1
row "HTTP protobuf large push (samples/s)" proto 1
row "OTLP/HTTP large push (samples/s)" otlp 1
row "scrape 100k series (ms, p50)" scrape 0
row "scrape 100k gzip (ms, p50)" scrape_gz 0
row "tiny push + scrape at 100k (ms, p50)" touch 0
row "small push p50 (ms, 8 conns)" lat50 0
row "small push p99 (ms, 8 conns)" lat99 0
row "  p50 with a 100k scrape every 1 s" slat50 0
row "  p99 with a 100k scrape every 1 s" slat99 0
row "peak RSS with 100k series (MiB)" peak 0
row "RSS after 100k series (MiB)" rss 0
echo "(ratios: how many times better ours is; for times and memory, peer / ours; - where a figure is missing)"

[ "$million" = 1 ] || exit 0
# The million-series scenario, ours only (a peer takes minutes to load it).
echo; echo "million series (ours):" >&2
m() { printf '  %-50s %s\n' "$1" "$2"; }
for shape in short wide; do
  port=$(free_port); pid=$(start ours "$port"); url="http://127.0.0.1:$port"
  base=$(mib VmRSS "$pid")
  out=$($load --target "$url" scrape --preload 1000000 --times 0 --shape "$shape")
  sleep 1
  steady=$(mib VmRSS "$pid")
  echo "1M series, $shape labels$([ $shape = short ] && echo ' (family name, job and two short labels)' || echo ' (job and four labels, as the push workloads)'):"
  m "load time (s, pushes of 10k new series)" "$(field preload_s <<<"$out")"
  m "RSS steady (MiB; empty process: $base)" "$steady"
  m "bytes per series (RSS growth / 1M)" "$(( (steady - base) * 1048576 / 1000000 ))"
  if [ "$shape" = wide ]; then
    m "first text scrape (ms; sorts 1M series)" "$($load --target "$url" scrape --times 1 | field p50_ms)"
    for a in text openmetrics protobuf; do
      m "$a scrape after a tiny push (ms, p50)" "$($load --target "$url" scrape --times 5 --touch --accept "$a" | field p50_ms)"
    done
    m "gzip text scrape after a tiny push (ms, p50)" "$($load --target "$url" scrape --times 5 --touch --gzip | field p50_ms)"
    after=$(mib VmRSS "$pid"); hwm=$(mib VmHWM "$pid")
    m "RSS after scrapes in every format (MiB)" "$after"
    m "peak RSS (MiB; peak / steady)" "$hwm ($(ratio "$hwm" "$steady"))"
    out=$($load --target "$url" push --series 10000 --concurrency 8 --seconds "$secs" --prefix large)
    m "large push into the full store (samples/s)" "$(field 'samples/s' <<<"$out") (empty store: ${large[ours]})"
    out=$($load --target "$url" push --series 10 --concurrency 8 --seconds "$secs" --prefix quiet)
    m "small push p50 / p99 (ms, 8 conns)" "$(field p50_ms <<<"$out") / $(field p99_ms <<<"$out")"
    out=$($load --target "$url" push --series 10 --concurrency 8 --seconds "$secs" --prefix busy --scrape-every-ms 1000)
    m "  with a full 1M scrape every second" "$(field p50_ms <<<"$out") / $(field p99_ms <<<"$out") ($(field scrapes <<<"$out") scrapes)"
  fi
  stop "$pid"
done
