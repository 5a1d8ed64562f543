#!/usr/bin/env bash
# tests/netns/run.sh - end-to-end test of ech3's egress policy inside a
# private network namespace that has only `lo` (so no packet can leave the
# machine): internal addresses live on that lo, a TCP echo server listens
# on them, ech3 and a python websockets client run in the namespace, and
# each CONNECT is checked for its reply, the log's reason and whether the
# echo server saw a connection. Needs root (ip netns, mount).
#
#   tests/netns/run.sh            uses build/ech3 (from the repo root)
#   ECH3_BIN=/path/ech3 tests/netns/run.sh
#
# Ends with "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ECH3_BIN="${ECH3_BIN:-$root/build/ech3}"
PY=/usr/bin/python3
HELPER="$here/egress_helper.py"
NS="ech3t$$"
TOKEN="netns-egress-token"
P=7007			# echo port
Q=7008			# second echo port, for port-matched entries
START_TIMEOUT=10	# s, ech3 or the echo server to come up
STOP_TIMEOUT=5		# s, ech3 to exit after SIGTERM
CLIENT_TIMEOUT=30	# s, one client run

passed=0
failed=0
ns_created=0
tmp=""
ech3_pid=""
ws_port=""
log=""

# ---- plumbing ----

pass() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }

summary() { echo "$passed passed, $failed failed"; }

die() {
	echo "netns: $*" >&2
	fail "setup: $*"
	summary
	exit 1
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s. Returns 0 when it
# succeeded in time.
wait_until() {
	local end=$((SECONDS + $1)); shift
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.1
	done
}

alive() { kill -0 "$1" 2>/dev/null; }

all_dead() {
	local p
	for p in "$@"; do alive "$p" && return 1; done
	return 0
}

# kill_pids SECONDS PID...: SIGTERM, wait, then SIGKILL what is left.
kill_pids() {
	local t=$1 p; shift
	[ $# -eq 0 ] && return 0
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	wait_until "$t" all_dead "$@" && return 0
	for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
	wait_until 2 all_dead "$@"
}

cleanup() {
	local pids
	trap - EXIT INT TERM
	if [ "$ns_created" = 1 ]; then
		# every process still in the namespace, by PID
		pids=$(ip netns pids "$NS" 2>/dev/null)
		# shellcheck disable=SC2086
		kill_pids 3 $pids
		timeout 5 ip netns del "$NS" 2>/dev/null ||
			echo "netns: could not delete namespace $NS" >&2
	fi
	[ -n "$tmp" ] && rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

nsx() { ip netns exec "$NS" "$@"; }

# ---- setup ----

[ "$(id -u)" = 0 ] || die "must run as root (ip netns, mount)"
[ -x "$ECH3_BIN" ] || die "ech3 binary not found at $ECH3_BIN (make, or set ECH3_BIN)"
[ -x "$PY" ] || die "$PY not found"
"$PY" -c 'import websockets' 2>/dev/null || die "python3-websockets is not installed"

tmp="$(mktemp -d /tmp/ech3-netns.XXXXXX)" || die "mktemp failed"
ip netns add "$NS" || die "cannot create network namespace $NS"
ns_created=1
nsx ip link set lo up || die "cannot bring up lo"
nsx sysctl -qw net.ipv6.conf.all.disable_ipv6=0 >/dev/null 2>&1
nsx sysctl -qw net.ipv6.conf.lo.disable_ipv6=0 || die "cannot enable IPv6 on lo"
for a in 10.1.2.3/32 10.9.9.9/32 172.16.5.5/32 192.168.7.7/32 \
	 169.254.169.254/32 100.64.1.1/32; do
	nsx ip addr add "$a" dev lo || die "cannot add $a to lo"
done
nsx ip -6 addr add fd00::1/128 dev lo nodad || die "cannot add fd00::1 to lo"

# ech3 sees this as /etc/hosts (bind-mounted in its own mount namespace):
# names resolving to internal addresses, without any DNS traffic.
cat >"$tmp/hosts" <<'EOF'
127.0.0.1	localhost
::1		localhost ip6-localhost
10.1.2.3	internal.test
10.9.9.9	x.blocked.test
fd00::1		internal6.test
169.254.169.254	metadata.test
EOF

: >"$tmp/accept.log"
nsx "$PY" "$HELPER" echo "$P,$Q" "$tmp/accept.log" "$tmp/echo.ready" \
	</dev/null >"$tmp/echo.out" 2>&1 &
echo_pid=$!
wait_until "$START_TIMEOUT" test -e "$tmp/echo.ready" ||
	die "echo server did not start: $(cat "$tmp/echo.out")"

# ---- ech3 ----

read_port() {
	ws_port=$(grep -Eo 'listening on 127\.0\.0\.1:[0-9]+' "$log" 2>/dev/null |
		  head -n1 | sed 's/.*://')
	[ -n "$ws_port" ] || ! alive "$ech3_pid"
}

# start_ech3 NAME [VAR=value...]: ech3 in the namespace, with a clean
# environment plus TOKEN and the given variables, and the test hosts file.
start_ech3() {
	local name=$1; shift
	log="$tmp/ech3-$name.log"
	ws_port=""
	: >"$log"
	# shellcheck disable=SC2016 # $0 and $@ belong to the inner sh
	nsx unshare -m --propagation private \
		sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$tmp/hosts" \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TOKEN="$TOKEN" "$@" \
		"$ECH3_BIN" --listen 127.0.0.1:0 --workers 1 \
		</dev/null >/dev/null 2>"$log" &
	ech3_pid=$!
	if ! wait_until "$START_TIMEOUT" read_port || [ -z "$ws_port" ]; then
		echo "--- ech3 log ($name) ---"; cat "$log"
		die "ech3 ($name) did not report 'listening on 127.0.0.1:PORT'"
	fi
	echo "# scenario $name: ech3 pid $ech3_pid on 127.0.0.1:$ws_port $*"
}

stop_ech3() {
	local pids
	[ -n "$ech3_pid" ] || return 0
	# the master and its workers, by PID
	pids="$ech3_pid $(ps -o pid= --ppid "$ech3_pid" 2>/dev/null | tr -d ' ')"
	# shellcheck disable=SC2086
	kill_pids "$STOP_TIMEOUT" $pids
	wait "$ech3_pid" 2>/dev/null
	ech3_pid=""
}

# ---- one CONNECT ----

# run_client TARGET: sets reply, echo_st, newlog (ech3 log lines written
# meanwhile) and newacc (connections the echo server accepted meanwhile).
run_client() {
	local out nlog nacc
	nlog=$(wc -l <"$log")
	nacc=$(wc -l <"$tmp/accept.log")
	out=$(timeout "$CLIENT_TIMEOUT" ip netns exec "$NS" "$PY" "$HELPER" \
		client "$ws_port" "$TOKEN" "$1" 2>"$tmp/client.err")
	[ -n "$out" ] || out="EXC:no output ($(tr '\n' ' ' <"$tmp/client.err" | cut -c1-200))	-"
	sleep 0.2	# let late log and accept lines land
	reply=${out%%$'\t'*}
	echo_st=${out##*$'\t'}
	newlog=$(tail -n +"$((nlog + 1))" "$log")
	newacc=$(tail -n +"$((nacc + 1))" "$tmp/accept.log")
}

# The host part of TARGET ("a.b:1", "[fd00::1]:1") without brackets.
host_of() {
	local h=${1%:*}
	h=${h#[}
	echo "${h%]}"
}

# TEXT as a basic/extended regular expression matching it literally.
re_escape() { printf '%s' "$1" | sed 's/[].[*^$\\]/\\&/g'; }

# Log lines naming host (not as a part of a longer address or name).
lines_naming() {
	local re
	re=$(re_escape "$1")
	grep -E "(^|[^0-9A-Za-z:.-])$re([^0-9A-Za-z:.-]|:[0-9]|\]|\$)" <<<"$2"
}

# expect_refused TARGET REASON-WORD
expect_refused() {
	local t=$1 why=$2 host
	host=$(host_of "$t")
	run_client "$t"
	case "$reply" in
	ERROR:*) pass "$scenario: $t refused ($reply)" ;;
	*) fail "$scenario: $t should be refused, got '$reply' (echo $echo_st)" ;;
	esac
	# the reason must be in a line naming the host, outside the host name
	# itself (metadata.test names "metadata" on its own)
	if lines_naming "$host" "$newlog" | sed "s|$(re_escape "$host")||g" |
		grep -qi -- "$why"; then
		pass "$scenario: $t log says why ($why)"
	else
		fail "$scenario: $t log has no line naming $host with '$why':" \
		     "$(tr '\n' '|' <<<"$newlog" | cut -c1-400)"
	fi
	if [ -z "$newacc" ]; then
		pass "$scenario: $t never reached the echo server"
	else
		fail "$scenario: $t reached the echo server: $(tr '\n' ' ' <<<"$newacc")"
	fi
}

# expect_connected TARGET ADDRESS PORT: tunnel opened, payload echoed, and
# the echo server saw the connection on ADDRESS:PORT.
expect_connected() {
	local t=$1 addr=$2 port=$3
	run_client "$t"
	if [ "$reply" = CONNECTED ] && [ "$echo_st" = ok ]; then
		pass "$scenario: $t connected and echoed"
	else
		fail "$scenario: $t should connect and echo, got '$reply' (echo $echo_st):" \
		     "$(tr '\n' '|' <<<"$newlog" | cut -c1-300)"
	fi
	if grep -qxF "accept $addr $port" <<<"$newacc"; then
		pass "$scenario: $t reached $addr:$port"
	else
		fail "$scenario: $t did not reach $addr:$port (accepted: $(tr '\n' ' ' <<<"$newacc"))"
	fi
}

# ---- scenarios ----

scenario=default
start_ech3 "$scenario"
expect_refused "10.1.2.3:$P" private
expect_refused "172.16.5.5:$P" private
expect_refused "192.168.7.7:$P" private
expect_refused "169.254.169.254:$P" metadata
expect_refused "100.64.1.1:$P" cgnat
expect_refused "[fd00::1]:$P" ula
expect_refused "127.0.0.1:$P" loopback
expect_refused "[::1]:$P" loopback
expect_refused "[::ffff:127.0.0.1]:$P" loopback
expect_refused "[::ffff:10.1.2.3]:$P" private
expect_refused "[::ffff:169.254.169.254]:$P" metadata
expect_refused "[::127.0.0.1]:$P" loopback
expect_refused "[64:ff9b::a9fe:a9fe]:$P" metadata
expect_refused "localhost:$P" loopback
expect_refused "internal.test:$P" private
expect_refused "internal6.test:$P" ula
expect_refused "metadata.test:$P" metadata
stop_ech3

scenario=allow
start_ech3 "$scenario" "ECH3_EGRESS_ALLOW=10.0.0.0/8,[fd00::/8]:$P,172.16.5.5:$Q"
expect_connected "10.1.2.3:$P" 10.1.2.3 "$P"
expect_connected "10.9.9.9:$P" 10.9.9.9 "$P"
expect_connected "internal.test:$P" 10.1.2.3 "$P"
expect_connected "[::ffff:10.1.2.3]:$P" 10.1.2.3 "$P"
expect_connected "[fd00::1]:$P" fd00::1 "$P"
expect_connected "internal6.test:$P" fd00::1 "$P"
expect_connected "172.16.5.5:$Q" 172.16.5.5 "$Q"
expect_refused "172.16.5.5:$P" private
expect_refused "192.168.7.7:$P" private
expect_refused "169.254.169.254:$P" metadata
expect_refused "100.64.1.1:$P" cgnat
expect_refused "[fd00::1]:$Q" ula
expect_refused "127.0.0.1:$P" loopback
expect_refused "[::ffff:127.0.0.1]:$P" loopback
expect_refused "localhost:$P" loopback
expect_refused "metadata.test:$P" metadata
stop_ech3

scenario=deny
start_ech3 "$scenario" "ECH3_EGRESS_ALLOW=10.0.0.0/8,[fd00::/8]" \
	"ECH3_EGRESS_DENY=10.1.2.3,*.blocked.test,[fd00::1]:$Q"
expect_refused "10.1.2.3:$P" deny
expect_refused "internal.test:$P" deny
expect_refused "[::ffff:10.1.2.3]:$P" deny
expect_refused "x.blocked.test:$P" deny
expect_refused "[fd00::1]:$Q" deny
expect_refused "192.168.7.7:$P" private
expect_connected "10.9.9.9:$P" 10.9.9.9 "$P"
expect_connected "[fd00::1]:$P" fd00::1 "$P"
stop_ech3

scenario=hostallow
start_ech3 "$scenario" "ECH3_EGRESS_ALLOW=internal.test,*.blocked.test:$Q"
expect_connected "internal.test:$P" 10.1.2.3 "$P"
expect_connected "x.blocked.test:$Q" 10.9.9.9 "$Q"
expect_refused "10.1.2.3:$P" private
expect_refused "x.blocked.test:$P" private
expect_refused "localhost:$P" loopback
expect_refused "metadata.test:$P" metadata
stop_ech3

kill_pids 3 "$echo_pid"
summary
[ "$failed" -eq 0 ]
