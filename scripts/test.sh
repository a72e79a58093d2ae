#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with a Rust toolchain:
# installs what the tests need (Python and prometheus_client in a venv), then
# format and lint checks, unit, property and integration tests, then a short
# fuzz run of each parser (PAG_FUZZ_SECONDS, default 60).
# Usage: scripts/test.sh            (CI runs this same script via .ci/run)
# Python tools: prometheus_client (pushes from Python), grpcio (the Python gRPC
# client in clients/python), pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_ready=
apt_install() {
  if [ -z "$apt_ready" ]; then as_root apt-get update -qq; apt_ready=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

log "test dependencies"
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
command -v python3 >/dev/null || apt_install python3 python3-venv
# kill(1): the tests signal the gateway binary (SIGTERM, SIGKILL).
[ -x /bin/kill ] || [ -x /usr/bin/kill ] || apt_install procps
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; python3 -m venv .venv; }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
export PAG_PYTHON="$PWD/.venv/bin/python"
"$PAG_PYTHON" -m pip list --disable-pip-version-check 2>/dev/null | grep -iE '^(prometheus.client|grpcio|protobuf|pytest) '

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

log "Python client tests (clients/python, against the built binary)"
cargo build --locked --bin prom-aggregation-gateway
PAG_BINARY="$PWD/target/debug/prom-aggregation-gateway" "$PAG_PYTHON" -m pytest -q clients/python/tests \
  | tee "$log_dir/pytest.log"

log "cargo test"
cargo test --workspace --all-targets --locked 2>&1 | tee "$log_dir/cargo.log"

log "fuzzing (${PAG_FUZZ_SECONDS:-60}s per target)"
scripts/fuzz.sh

# One closing line over every runner: cargo prints a result line per test
# binary (many with 0 tests), pytest its own.
passed=$(awk '/^test result:/ {p += $4} END {print p + 0}' "$log_dir/cargo.log")
failed=$(awk '/^test result:/ {f += $6} END {print f + 0}' "$log_dir/cargo.log")
py_passed=$(grep -oE '[0-9]+ passed' "$log_dir/pytest.log" | awk '{s += $1} END {print s + 0}')
echo
echo "total: $((passed + py_passed)) passed, $failed failed"
