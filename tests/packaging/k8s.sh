#!/usr/bin/env bash
# Checks packaging/kubernetes/*.yaml offline.
#
#   tests/packaging/k8s.sh
#
# yamllint (Debian) and check_k8s.py (python3-yaml): required fields of each
# kind, how the objects fit together, and what ech3 needs from them (probes,
# drain timing, non-root, read-only root, resources, TOKEN from a Secret).
# No cluster: Debian's kubectl (1.20) cannot validate without one, and
# kubeconform is not packaged. Prints `N passed, M failed`.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/packaging/lib.sh
. "$here/lib.sh"

dir=$root/packaging/kubernetes
work=$(mktemp -d /tmp/ech3-k8s-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ "$(id -u)" -eq 0 ]; then
	apt_want python3 python3-yaml yamllint >/dev/null ||
		echo "note: could not install python3-yaml, yamllint"
fi

/usr/bin/python3 "$here/check_k8s.py" "$dir" "$root/Dockerfile" >"$work/k8s.out" 2>&1
cat "$work/k8s.out"
PASS=$((PASS + $(grep -c '^ok ' "$work/k8s.out")))
FAIL=$((FAIL + $(grep -c '^FAIL ' "$work/k8s.out")))
grep -q '^ok ' "$work/k8s.out" || bad "check_k8s.py ran"

if command -v yamllint >/dev/null; then
	conf='{extends: default, rules: {line-length: {max: 120}, document-start: disable, comments: {min-spaces-from-content: 1}}}'
	for f in "$dir"/*.yaml; do
		if yamllint -s -d "$conf" "$f" >"$work/yamllint.out" 2>&1; then
			ok "yamllint $(basename "$f")"
		else
			sed 's/^/    /' "$work/yamllint.out"
			bad "yamllint $(basename "$f")"
		fi
	done
else
	echo "note: yamllint not installed, skipped"
fi

summary
