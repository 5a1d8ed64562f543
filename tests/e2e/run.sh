#!/usr/bin/env bash
# Run the ech3 end-to-end suite (node --test, ws client) against build/ech3 or $ECH3_BIN.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if [ ! -d tests/e2e/node_modules ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi
# Every server's output and the secrets the tests used are kept here (tests/e2e/lib/server.mjs)
# for tests/check-logs.mjs, which runs after this suite: start from an empty directory.
rm -rf "${ECH3_TEST_LOG_DIR:-$root/build/test-logs}" 2>/dev/null || true
# extra arguments (e.g. --test-reporter=spec, --test-name-pattern=...) go before the path
# Every test is bounded (a hung test fails instead of hanging CI).
exec node --test --test-concurrency=2 --test-timeout=180000 --test-force-exit "$@" tests/e2e/
