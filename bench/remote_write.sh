#!/usr/bin/env bash
# What remote-writing N stored series (default 1,000,000) costs the gateway
# per interval: CPU time per send (process CPU over several intervals, the
# gateway otherwise idle), time to take and encode the snapshot, compressed
# bytes, requests and samples per send, and RSS. The receiver is a minimal
# sink (Python's http.server answering 204), so only the gateway's side is
# measured.
# Usage: bench/remote_write.sh [series] [intervals] [protocol 1.0|2.0]
set -euo pipefail
cd "$(dirname "$0")/.."
series=${1:-1000000}
intervals=${2:-6}
protocol=${3:-1.0}
interval=5
cargo build --release --quiet -p prom-aggregation-gateway -p pag-load
bin=target/release/prom-aggregation-gateway
dir=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sink_port=$(free_port)
port=$(free_port)
cat > "$dir/sink.py" <<'PY'
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("X-Prometheus-Remote-Write-Samples-Written", "1")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
python3 "$dir/sink.py" "$sink_port" &
sink=$!
printf 'targets:\n  - url: http://127.0.0.1:%s/api/v1/write\n    name: sink\n    protocol: "%s"\n' \
  "$sink_port" "$protocol" > "$dir/rw.yml"
"$bin" --listen "127.0.0.1:$port" --max-series $((series * 2)) \
  --remote-write-config "$dir/rw.yml" --remote-write-interval ${interval}s >/dev/null 2>&1 &
pid=$!
trap 'kill $pid $sink 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$port/-/healthy" && break; sleep 0.05; done
target/release/pag-load --target "http://127.0.0.1:$port" scrape --preload "$series" --times 1 >/dev/null
metric() { curl -sf "http://127.0.0.1:$port/-/metrics" | awk -v m="$1" 'index($0, m" ") == 1 {print $2}'; }
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# Let the preload's sends pass, then measure whole intervals.
sleep $((interval * 2 + 1))
c0=$(cpu); s0=$(metric 'pag_remote_write_samples_sent_total{target="sink"}')
e0=$(metric pag_remote_write_snapshot_duration_seconds_sum); n0=$(metric pag_remote_write_snapshot_duration_seconds_count)
b0=$(metric 'pag_remote_write_bytes_sent_total{target="sink"}')
sleep $((interval * intervals))
c1=$(cpu); s1=$(metric 'pag_remote_write_samples_sent_total{target="sink"}')
e1=$(metric pag_remote_write_snapshot_duration_seconds_sum); n1=$(metric pag_remote_write_snapshot_duration_seconds_count)
b1=$(metric 'pag_remote_write_bytes_sent_total{target="sink"}')
rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status")
hz=$(getconf CLK_TCK)
awk -v c="$((c1 - c0))" -v hz="$hz" -v s0="$s0" -v s1="$s1" -v e0="$e0" -v e1="$e1" -v n0="$n0" -v n1="$n1" \
    -v b0="$b0" -v b1="$b1" -v rss="$rss" -v n="$series" -v p="$protocol" 'BEGIN {
  sends = n1 - n0
  printf "series=%d protocol=%s sends=%d cpu_s_per_send=%.3f encode_s_per_send=%.3f samples_per_send=%d mib_per_send=%.1f bytes_per_sample=%.2f rss_mib=%.0f\n",
    n, p, sends, c / hz / sends, (e1 - e0) / sends, (s1 - s0) / sends, (b1 - b0) / sends / 1048576, (b1 - b0) / (s1 - s0), rss / 1024 }'
