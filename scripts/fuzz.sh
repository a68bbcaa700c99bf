#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/, clang with ASan + UBSan) into build-fuzz/ and
# runs each for SECONDS (default 60) from its seed corpus in tests/fuzz/corpus/. New inputs
# go to build-fuzz/corpus/<fuzzer>/ (the committed seeds are only read); a crash, a sanitizer
# report, a leak or a timeout stops that fuzzer, leaves its input in build-fuzz/findings/ and
# makes the script exit non-zero (after the other fuzzers ran). Every input found that way
# belongs in tests/fuzz/regressions/<fuzzer>/, which each run replays first.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "scripts/fuzz.sh: SECONDS must be a positive whole number, got '$seconds'" >&2
  exit 2
fi
build_dir="${KEYVAL_FUZZ_BUILD_DIR:-build-fuzz}"
if ! command -v clang++ >/dev/null; then
  echo "scripts/fuzz.sh: clang++ not found (scripts/install-deps.sh installs clang)" >&2
  exit 2
fi
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEYVAL_FUZZ=ON >/dev/null
cmake --build "$build_dir" -j "${KEYVAL_JOBS:-2}" --target fuzzers

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fuzzers=(wal_segment wal_record storage_codec wire snapshot_file text_parsers resp)
failed=()
for fuzzer in "${fuzzers[@]}"; do
  work="$build_dir/corpus/$fuzzer"
  findings="$build_dir/findings/$fuzzer"
  mkdir -p "$work" "$findings"
  regressions="tests/fuzz/regressions/$fuzzer"
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    echo "== $fuzzer: replaying $(ls "$regressions" | wc -l) regression inputs"
    if ! "$build_dir/fuzz_$fuzzer" "$regressions"/* >"$findings/regressions.log" 2>&1; then
      echo "   FAILED: a regression input crashes again (see $findings/regressions.log)"
      failed+=("$fuzzer (regression)")
      continue
    fi
  fi
  echo "== $fuzzer: ${seconds}s"
  if "$build_dir/fuzz_$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -artifact_prefix="$findings/" -print_final_stats=1 "$work" "tests/fuzz/corpus/$fuzzer" \
       >"$findings/run.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$findings/run.log" | tr '\n' ' ' || true
    echo
  else
    echo "   FAILED: see $findings/run.log; the input is in $findings/"
    tail -n 30 "$findings/run.log"
    failed+=("$fuzzer")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "scripts/fuzz.sh: ${#failed[@]} fuzzer(s) found a problem: ${failed[*]}" >&2
  exit 1
fi
echo "scripts/fuzz.sh: ${#fuzzers[@]} fuzzers ran ${seconds}s each; nothing found"
