#!/usr/bin/env bash
# Runs every packaging test, one after the other, and closes with the sum:
#   tests/packaging/run.sh [workflows k8s deb image]
# (make test-packaging). Each suite prints its own `N passed, M failed`.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(workflows k8s deb image)

pass=0 fail=0 report=""
t_all=$(date +%s)
for s in "${suites[@]}"; do
	echo "==== tests/packaging/$s.sh"
	t0=$(date +%s)
	out=$(mktemp /tmp/ech3-packaging-$s.XXXXXX)
	"$here/$s.sh" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
	rm -f "$out"
	p=$(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<<"$last")
	f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$last")
	p=${p:-0} f=${f:-0}
	# a suite that failed without saying so counts one failure
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	pass=$((pass + p)) fail=$((fail + f))
	report="$report$(printf '  %-10s %3d passed, %d failed, %4d s' "$s" "$p" "$f" $(($(date +%s) - t0)))"$'\n'
done
echo "==== packaging tests ($(($(date +%s) - t_all)) s)"
printf '%s' "$report"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
