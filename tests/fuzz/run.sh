#!/usr/bin/env bash
# tests/fuzz/run.sh - run libFuzzer harnesses built by tests/fuzz/fuzz.mk.
#
#   tests/fuzz/run.sh [-j] [-d DIR] SECONDS NAME...
#
# Each harness build/fuzz/fuzz_NAME runs for SECONDS on its working corpus
# DIR/corpus/NAME (seeded from tests/fuzz/corpus/NAME, grown by the run), with
# the options of tests/fuzz/options/NAME (one libFuzzer flag per line, if the
# file exists). A crash or sanitizer report leaves its input in
# DIR/artifacts/NAME/ and fails the run; the log is DIR/fuzz_NAME.log.
# -j runs the harnesses side by side (for the short smoke run) instead of one
# after the other.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

parallel=0
dir=build/fuzz
while [ $# -gt 0 ]; do
  case "$1" in
    -j) parallel=1; shift ;;
    -d) dir="$2"; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [-j] [-d DIR] SECONDS NAME..." >&2; exit 2; }
secs="$1"; shift

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0}"

run_one() {
  local n="$1" opts=()
  mkdir -p "$dir/corpus/$n" "$dir/artifacts/$n"
  cp -n tests/fuzz/corpus/"$n"/* "$dir/corpus/$n/" 2>/dev/null || true
  if [ -f "tests/fuzz/options/$n" ]; then
    mapfile -t opts < <(grep -v '^\s*\(#\|$\)' "tests/fuzz/options/$n")
  fi
  "$dir/fuzz_$n" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 "${opts[@]}" \
    -max_total_time="$secs" -artifact_prefix="$dir/artifacts/$n/" \
    "$dir/corpus/$n" >"$dir/fuzz_$n.log" 2>&1
}

report() {
  local n="$1" rc="$2" execs cov
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz_$n.log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$dir/fuzz_$n.log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz_$n: ok, ${execs:-?} runs in ${secs} s ($cov)"
  else
    echo "fuzz_$n: FAILED (rc=$rc) - input in $dir/artifacts/$n/, log $dir/fuzz_$n.log"
    # the first sanitizer report (or libFuzzer's own), shortly
    grep -m1 -E -A14 '(==[0-9]+==ERROR|runtime error:|ERROR: libFuzzer)' "$dir/fuzz_$n.log"
  fi
}

fail=0
if [ "$parallel" = 1 ]; then
  declare -A pid_of
  for n in "$@"; do
    echo "== fuzz_$n: $secs s (in parallel)"
    run_one "$n" & pid_of[$n]=$!
  done
  for n in "$@"; do
    wait "${pid_of[$n]}"; rc=$?
    report "$n" "$rc"
    [ "$rc" -eq 0 ] || fail=1
  done
else
  for n in "$@"; do
    echo "== fuzz_$n: $secs s"
    run_one "$n"; rc=$?
    report "$n" "$rc"
    [ "$rc" -eq 0 ] || fail=1
  done
fi
exit "$fail"
