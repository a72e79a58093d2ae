#!/usr/bin/env bash
# Push throughput with 100 rules (regex selectors) against none, and what a
# `total` source costs in memory. One gateway per configuration, run one
# after another with the same load tool (pag-load), three times each,
# interleaved; prints one line per run and a table of medians.
#
#   bench/rules.sh [seconds per run]      (default 10)
#
# Configurations:
#   none       no --rules
#   unmatched  100 rules `{__name__=~"app<i>_.*"}`, none matching the pushes
#   matched    99 of those, then `{job="load"}` mode sum: every series goes
#              through a label matcher, keys unchanged
#   without    the last rule also `without: [instance]`: every key
#              rewritten and the push's series regrouped under the locks
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cargo build --release --quiet -p prom-aggregation-gateway -p pag-load
load=target/release/pag-load
ours=target/release/prom-aggregation-gateway
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
field() { tr ' ' '\n' | sed -n "s|^$1=||p"; }

rules_file() { # config -> path ("" for none)
  local f="$dir/$1.yml" i
  [ "$1" = none ] && { echo ""; return; }
  { echo "rules:"
    for i in $(seq 1 99); do printf "  - match: '{__name__=~\"app%d_.*\"}'\n    mode: total\n" "$i"; done
    case $1 in
      unmatched) printf "  - match: '{__name__=~\"app100_.*\"}'\n" ;;
      matched) printf "  - match: '{job=\"load\"}'\n" ;;
      without) printf "  - match: '{job=\"load\"}'\n    without: [instance]\n" ;;
    esac
  } > "$f"
  echo "$f"
}

start() { # config -> sets pid, url
  local port f
  port=$(free_port)
  f=$(rules_file "$1")
  if [ -n "$f" ]; then "$ours" --listen "127.0.0.1:$port" --max-series 10000000 --rules "$f" >/dev/null 2>&1 &
  else "$ours" --listen "127.0.0.1:$port" --max-series 10000000 >/dev/null 2>&1 & fi
  pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$url/-/ready" >/dev/null && return; sleep 0.1; done
  echo "gateway ($1) did not start" >&2; exit 1
}

declare -A small large
configs=(none unmatched matched without)
for round in 1 2 3; do
  for c in "${configs[@]}"; do
    start "$c"
    s=$($load --target "$url" push --protocol text --series 10 --concurrency 64 --seconds "$secs" --prefix small | field 'req/s')
    l=$($load --target "$url" push --protocol text --series 10000 --concurrency 8 --seconds "$secs" --prefix large | field 'samples/s')
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    echo "round $round $c: small pushes $s req/s, large pushes $l samples/s"
    small[$c]+="$s "; large[$c]+="$l "
  done
done

median() { tr ' ' '\n' | grep . | sort -n | sed -n 2p; }
printf '\n%-10s %14s %8s %18s %8s\n' config "small req/s" "vs none" "large samples/s" "vs none"
s0=$(echo "${small[none]}" | median); l0=$(echo "${large[none]}" | median)
for c in "${configs[@]}"; do
  s=$(echo "${small[$c]}" | median); l=$(echo "${large[$c]}" | median)
  printf '%-10s %14.0f %8.3f %18.0f %8.3f\n' "$c" "$s" "$(echo "$s / $s0" | bc -l)" "$l" "$(echo "$l / $l0" | bc -l)"
done

# What a `total` source costs: 100k sources of one output series, RSS and
# the budget's count before and after.
f="$dir/total.yml"
printf "rules:\n  - match: '{job=\"load\"}'\n    mode: total\n    source_labels: [instance]\n    without: [instance]\n" > "$f"
port=$(free_port)
"$ours" --listen "127.0.0.1:$port" --rules "$f" >/dev/null 2>&1 &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$url/-/ready" >/dev/null && break; sleep 0.1; done
mem() { curl -s "$url/-/metrics" | sed -n 's/^pag_memory_bytes //p'; }
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$pid/status"; }
curl -sf --data-binary $'# TYPE work_total counter\nwork_total 1\n' "$url/metrics/job/load/instance/first" >/dev/null
m0=$(mem); r0=$(rss)
python3 - "$url" <<'PY'
import sys, urllib.request
url = sys.argv[1]
body = b"# TYPE work_total counter\nwork_total 5\n"
for i in range(20000):
    urllib.request.urlopen(urllib.request.Request(f"{url}/metrics/job/load/instance/host-{i:06d}", data=body, method="POST")).read()
PY
m1=$(mem); r1=$(rss)
echo
python3 -c "import sys; m0, m1, r0, r1 = map(float, sys.argv[1:]); print(f'total mode: 20000 sources of one output series: charged {(m1 - m0) / 20000:.0f} bytes/source, RSS +{(r1 - r0) / 20000:.0f} bytes/source')" "$m0" "$m1" "$r0" "$r1"
