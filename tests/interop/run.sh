#!/usr/bin/env bash
# tests/interop/run.sh - interoperability test: ech3 against a Go client built on
# gorilla/websocket, the library of the real tunnel clients (tests/interop/goclient).
#
#   tests/interop/run.sh                  against build/ech3
#   ECH3_BIN=/path/to/ech3 tests/interop/run.sh
#
# Needs Debian's golang-go and golang-github-gorilla-websocket-dev; installs them with apt-get
# when missing (as root). The client is built offline (GO111MODULE=off, GOPATH=/usr/share/gocode,
# GOPROXY=off) into build/interop/. ech3 runs with -c /dev/null on 127.0.0.1:0, two workers, a
# random TOKEN and ECH3_EGRESS_ALLOW=127.0.0.0/8 (the client's TCP targets live on 127.0.0.1).
#
# Cases (each a goclient run; see the comment at the top of goclient/main.go):
#   auth          wrong or missing token: 401, no upgrade
#   echo-1MiB     one 1 MiB binary message in one WriteMessage (fragmented into 4 KiB frames),
#                 echoed back and compared (sha256), pings every 200 ms, then CLOSE + TCP drop
#   multi         3 MB as messages of assorted sizes, paced over several pings; CLOSE is
#                 answered with a close frame 1000
#   target-closes the target echoes 256 KiB and closes: all bytes, then text CLOSE, then close 1000
#   close-flush   3 MB then CLOSE and an immediate TCP drop: the target still gets every byte
#   concurrent-*  20 concurrent tunnels of echo (1 MiB each), target-closes and close-flush
#   server-health the master is still running and no worker died ("respawning")
# Every mode also checks that ech3 closed each target connection once the tunnel ended.
# Prints "N passed, M failed"; exits 1 if anything failed.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/build/interop"
ECH3="${ECH3_BIN:-$ROOT/build/ech3}"
T0=$(date +%s.%N)
mkdir -p "$OUT"

die() { echo "interop: $*" >&2; exit 1; }

# --- Go toolchain and gorilla/websocket (Debian packages) -----------------------------------
need=()
for p in golang-go golang-github-gorilla-websocket-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing packages ${need[*]} (apt-get install them, or run as root)"
	echo "interop: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >"$OUT/apt.log" 2>&1; then
		apt-get update -qq >>"$OUT/apt.log" 2>&1
		apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$OUT/apt.log" 2>&1 ||
			{ tail -20 "$OUT/apt.log" >&2; die "apt-get install ${need[*]} failed"; }
	fi
fi
GO=$(command -v go || echo /usr/lib/go/bin/go)
[ -x "$GO" ] || die "no go binary after installing golang-go"

# --- build the client -------------------------------------------------------------------------
CLIENT="$OUT/goclient"
mkdir -p "$OUT/gocache"
(cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$OUT/gocache" GOPROXY=off \
	GOFLAGS= "$GO" build -o "$CLIENT" ./tests/interop/goclient) || die "go build of tests/interop/goclient failed"

# --- start ech3 -------------------------------------------------------------------------------
[ -x "$ECH3" ] || die "$ECH3 not found or not executable (run make, or set ECH3_BIN)"
TOKEN=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
LOG="$OUT/ech3.stderr"
: >"$LOG"
env -u PORT -u PRIP TOKEN="$TOKEN" ECH3_EGRESS_ALLOW=127.0.0.0/8 \
	"$ECH3" -c /dev/null --listen 127.0.0.1:0 --workers 2 2>"$LOG" >/dev/null &
PID=$!

stop_server() {
	[ -n "${PID:-}" ] || return 0
	if kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$PID" 2>/dev/null; then
			kill -INT "$PID" 2>/dev/null
			for _ in $(seq 20); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		fi
		if kill -0 "$PID" 2>/dev/null; then
			echo "interop: ech3 (pid $PID) ignored SIGTERM and SIGINT; SIGKILL" >&2
			kill -KILL "$PID" 2>/dev/null
		fi
	fi
	wait "$PID" 2>/dev/null
	PID=
}
trap stop_server EXIT
trap 'exit 130' INT TERM

PORT=
for _ in $(seq 100); do
	PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$LOG" | head -1)
	[ -n "$PORT" ] && break
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.05
done
[ -n "$PORT" ] || { cat "$LOG" >&2; die "ech3 did not report 'listening on 127.0.0.1:PORT' within 5 s"; }
URL="ws://127.0.0.1:$PORT/"
echo "interop: ech3 pid $PID on $URL"

# --- cases ------------------------------------------------------------------------------------
pass=0
fail=0
failed=()
run() { # name, goclient args...
	local name=$1 t s rc
	shift
	t=$(date +%s%N)
	timeout 40 "$CLIENT" -url "$URL" -token "$TOKEN" "$@" >"$OUT/$name.out" 2>&1
	rc=$?
	s=$(( ($(date +%s%N) - t) / 1000000 ))
	if [ $rc = 0 ]; then
		pass=$((pass + 1))
		printf 'ok   %-24s %6d ms\n' "$name" "$s"
	else
		fail=$((fail + 1))
		failed+=("$name")
		[ $rc = 124 ] && echo "goclient timed out after 40 s" >>"$OUT/$name.out"
		printf 'FAIL %-24s %6d ms  (goclient %s)\n' "$name" "$s" "$*"
		sed 's/^/     /' "$OUT/$name.out" | head -20
	fi
}

run auth                  -mode auth
run echo-1MiB-fragmented  -mode echo  -bytes 1048576
run multi-messages        -mode multi -bytes 3000000
run target-closes-first   -mode close -bytes 262144
run close-flush           -mode sink  -bytes 3000000
run concurrent-20-echo    -mode echo  -bytes 1048576 -clients 20
run concurrent-20-closes  -mode close -bytes 262144  -clients 20
run concurrent-20-flush   -mode sink  -bytes 1048576 -clients 20

# The server survived all of it.
if kill -0 "$PID" 2>/dev/null && ! grep -q 'respawning' "$LOG"; then
	pass=$((pass + 1))
	printf 'ok   %-24s\n' server-health
else
	fail=$((fail + 1))
	failed+=(server-health)
	printf 'FAIL %-24s master alive: %s; worker deaths:\n' server-health \
		"$(kill -0 "$PID" 2>/dev/null && echo yes || echo no)"
	grep 'respawning' "$LOG" | head -5 | sed 's/^/     /'
fi

stop_server
if [ $fail -gt 0 ]; then
	echo "interop: ech3 log: $LOG; client output: $OUT/<case>.out"
	echo "interop: failed: ${failed[*]}"
fi
printf '%d passed, %d failed (%s s)\n' "$pass" "$fail" "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
[ $fail -eq 0 ]
