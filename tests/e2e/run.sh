#!/usr/bin/env bash
# Run the ech3 end-to-end suite (node --test, ws client) against build/ech3 or $ECH3_BIN.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if [ ! -d tests/e2e/node_modules ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi
# extra arguments (e.g. --test-reporter=spec, --test-name-pattern=...) go before the path
exec node --test --test-concurrency=2 "$@" tests/e2e/
