#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ (or the ones named) for a bounded time each.
#
#   scripts/fuzz.sh [-t SECONDS] [TARGET...]     default: 30 s per target, every target
#
# Environment: FUZZ_SECONDS (same as -t), FUZZ_SANITIZER (address | none, default address),
# FUZZ_TOOLCHAIN (default nightly), FUZZ_NO_INSTALL=1 (never `cargo install cargo-fuzz`).
# Seeds come from the `seeds` generator (valid encodings built with seeded randomness) and
# go to fuzz/corpus/<target>, which the fuzzer grows; crashes land in fuzz/artifacts/<target>.
# Logs go to fuzz/logs/<target>.log. Exit status: 0 when no target crashed, 1 when one did,
# 2 when fuzzing is impossible here (no nightly toolchain, no cargo-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
if [[ "${1:-}" == "-t" ]]; then
  seconds="$2"
  shift 2
fi
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "fuzz: no '$toolchain' Rust toolchain (cargo-fuzz needs nightly); not fuzzing" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  if [[ "${FUZZ_NO_INSTALL:-0}" == 1 ]]; then
    echo "fuzz: cargo-fuzz is not installed and FUZZ_NO_INSTALL=1; not fuzzing" >&2
    exit 2
  fi
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked || {
    echo "fuzz: cargo-fuzz could not be installed; not fuzzing" >&2
    exit 2
  }
fi

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "fuzz: writing seed corpora"
cargo run -q --manifest-path fuzz/Cargo.toml -p warifu-fuzz-fixtures --bin seeds -- fuzz/corpus
echo "fuzz: building the fuzz targets (sanitizer: $sanitizer)"
if ! cargo "+$toolchain" fuzz build -s "$sanitizer"; then
  echo "fuzz: the fuzz targets do not build" >&2
  exit 1
fi
# Run the binaries just built (not `cargo fuzz run`, which would rebuild each target from
# whatever the sources are by then).
triple=$(rustup run "$toolchain" rustc -vV | sed -n 's/^host: //p')
bin_dir="fuzz/target/$triple/release"
export ASAN_OPTIONS="detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

mkdir -p fuzz/logs
failed=()
printf '%-24s %8s %12s %10s  %s\n' target seconds execs exec/s result
for t in "${targets[@]}"; do
  log="fuzz/logs/$t.log"
  status=0
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  "$bin_dir/$t" "fuzz/corpus/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  took=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [[ $status -eq 0 ]]; then
    result=ok
  else
    result="CRASH (see $log and fuzz/artifacts/$t)"
    failed+=("$t")
  fi
  printf '%-24s %8s %12s %10s  %s\n' "$t" "${took:-?}" "${runs:-?}" "${rate:-?}" "$result"
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: ${#failed[@]} target(s) crashed: ${failed[*]}" >&2
  grep -h -A3 -E "panicked at|ERROR: libFuzzer" $(printf 'fuzz/logs/%s.log ' "${failed[@]}") >&2 || true
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds} s each; no crash"
