#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS_PER_TARGET seconds (default 20), one after
# the other, each on a temporary copy of its committed seed corpus (fuzz/corpus/<target>/ is
# never modified). Prints each target's executions, and exits non-zero if any target crashed,
# timed out or ran out of memory; the failing input is kept in fuzz/artifacts/<target>/.
#
# The targets need nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

cd fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mapfile -t targets < <(cargo fuzz list)
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "scripts/fuzz.sh: no fuzz targets found" >&2
  exit 1
fi
cargo fuzz build

failed=()
for target in "${targets[@]}"; do
  corpus="$work/corpus-$target"
  mkdir -p "$corpus"
  if [[ -d "corpus/$target" ]]; then
    cp -R "corpus/$target/." "$corpus/"
  fi
  dict=()
  if [[ -f "dict/$target.dict" ]]; then
    dict=(-dict="dict/$target.dict")
  fi
  log="$work/$target.log"
  status=0
  # -timeout: one input running longer than this is a hang, reported as a failure.
  cargo fuzz run "$target" "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 "${dict[@]}" \
    >"$log" 2>&1 || status=$?
  executions=$(awk '/^stat::number_of_executed_units:/ { print $NF }' "$log" | tail -n 1)
  if [[ $status -eq 0 ]]; then
    echo "fuzz: $target: ok, ${executions:-?} executions in ${seconds}s"
  else
    failed+=("$target")
    echo "fuzz: $target: FAILED (exit $status) after ${executions:-?} executions:" >&2
    # The panic message or sanitizer report first (a long stack follows it), then the log's end.
    { grep -E -A 4 "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$log" || true; } | head -n 30 >&2
    echo "--- end of the log (the log is removed on exit):" >&2
    tail -n 30 "$log" >&2
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: failing targets: ${failed[*]}; reproduce with" >&2
  echo "  cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET artifacts/TARGET/<file>" >&2
  exit 1
fi
