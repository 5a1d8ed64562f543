#!/usr/bin/env bash
# Checks .github/workflows/*.yml offline.
#
#   tests/packaging/workflows.sh
#
# yamllint (Debian) for YAML itself; check_workflows.py (python3-yaml) for
# the structure GitHub needs and what ech3's workflows must do; shellcheck
# (Debian) on every `run` script; and, when npm can install it (cached in
# $ECH3_TEST_CACHE/npm), @action-validator/cli for the workflow JSON schema.
# Debian ships no actionlint. Prints `N passed, M failed`.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/packaging/lib.sh
. "$here/lib.sh"

CACHE=${ECH3_TEST_CACHE:-/var/cache/ech3-test}
files=("$root"/.github/workflows/*.yml)
work=$(mktemp -d /tmp/ech3-workflows-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ "$(id -u)" -eq 0 ]; then
	apt_want python3 python3-yaml yamllint shellcheck >/dev/null ||
		echo "note: could not install python3-yaml, yamllint, shellcheck"
fi

# structure (counts its own ok / FAIL lines)
/usr/bin/python3 "$here/check_workflows.py" "${files[@]}" >"$work/struct.out" 2>&1
cat "$work/struct.out"
PASS=$((PASS + $(grep -c '^ok ' "$work/struct.out")))
FAIL=$((FAIL + $(grep -c '^FAIL ' "$work/struct.out")))
grep -q '^ok ' "$work/struct.out" || bad "check_workflows.py ran"

# YAML
if command -v yamllint >/dev/null; then
	conf='{extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: {check-keys: false}, comments: {min-spaces-from-content: 1}}}'
	for f in "${files[@]}"; do
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

# every run script through shellcheck (expressions replaced by a word)
if command -v shellcheck >/dev/null; then
	/usr/bin/python3 - "$work" "${files[@]}" <<'EOF'
import os, re, sys, yaml
out = sys.argv[1]
for path in sys.argv[2:]:
    doc = yaml.safe_load(open(path))
    for jid, job in (doc.get("jobs") or {}).items():
        for i, st in enumerate(job.get("steps") or []):
            if isinstance(st, dict) and "run" in st:
                s = re.sub(r"\$\{\{.*?\}\}", "EXPR", st["run"], flags=re.S)
                name = "%s.%s.%d.sh" % (os.path.basename(path), jid, i + 1)
                with open(os.path.join(out, name), "w") as f:
                    f.write("#!/bin/bash\n" + s)
EOF
	bad_scripts=""
	for s in "$work"/*.sh; do
		[ -e "$s" ] || continue
		if ! shellcheck -s bash -S warning -e SC2086 "$s" >"$s.sc" 2>&1; then
			sed 's/^/    /' "$s.sc"
			bad_scripts="$bad_scripts $(basename "$s" .sh)"
		fi
	done
	check "shellcheck on every run script${bad_scripts:+ (failed:$bad_scripts)}" test -z "$bad_scripts"
else
	echo "note: shellcheck not installed, skipped"
fi

# the workflow schema, with @action-validator/cli from npm when available
av=$CACHE/npm/node_modules/.bin/action-validator
if [ ! -x "$av" ] && command -v npm >/dev/null && [ -z "${ECH3_TEST_NO_NPM:-}" ]; then
	mkdir -p "$CACHE/npm" 2>/dev/null &&
		timeout 120 npm install --prefix "$CACHE/npm" --no-audit --no-fund --silent \
			@action-validator/cli@0.6.0 @action-validator/core@0.6.0 >/dev/null 2>&1
fi
if [ -x "$av" ]; then
	for f in "${files[@]}"; do
		if timeout 60 "$av" "$f" >"$work/av.out" 2>&1; then
			ok "action-validator (workflow schema) $(basename "$f")"
		else
			sed 's/^/    /' "$work/av.out" | head -40
			bad "action-validator (workflow schema) $(basename "$f")"
		fi
	done
else
	echo "note: @action-validator/cli not available (npm), schema check skipped"
fi

summary
