#!/usr/bin/env bash
# Run the ech3 Python client tests (websockets 10.4 from Debian, stdlib unittest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
exec /usr/bin/python3 -m unittest discover -s tests/python -v "$@"
