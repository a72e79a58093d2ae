#!/usr/bin/env bash
# Fuzzes the text parser, the protobuf, gRPC PushRequest and OTLP decoders, the path-label parser,
# the rules file and sequences of pushes (scrapes checked by the validity oracle) with
# cargo-fuzz (libFuzzer) for PAG_FUZZ_SECONDS each (default 60), starting from
# the corpus in fuzz/corpus. Fails if any target finds a crash (the input is
# left in fuzz/artifacts/<target>/). Runs on the stable toolchain without a
# sanitizer (-s none); set RUSTC_BOOTSTRAP=1 and drop -s none for ASan.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${PAG_FUZZ_SECONDS:-60}
# Amplification is a finding, not only a crash: no single allocation may
# pass this (inputs are a few KiB: an allocation of 256 MiB is a request
# costing tens of thousands of times what it sent), nor the process 2 GiB.
malloc_mb=${PAG_FUZZ_MALLOC_MB:-256}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz@0.13.2
cd fuzz
for target in text_parser protobuf_decoder grpc_request otlp_decoder path_labels push_sequence rules_file; do
  echo "== fuzz $target for ${seconds}s"
  # A scratch copy of the corpus keeps the committed one small.
  work=$(mktemp -d)
  cp -r "corpus/$target/." "$work/"
  log="$work.log"
  status=0
  cargo fuzz run -s none "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 \
    -malloc_limit_mb="$malloc_mb" -rss_limit_mb=2048 >"$log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log" || true
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    echo "fuzz $target failed (exit $status):" >&2
    tail -40 "$log" >&2
    ls "artifacts/$target" 2>/dev/null >&2 || true
    exit 1
  fi
  rm -f "$log"
done
