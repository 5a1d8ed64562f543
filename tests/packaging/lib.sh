# shellcheck shell=bash
# Helpers shared by the packaging tests (sourced, bash).

PASS=0
FAIL=0

ok() {
	PASS=$((PASS + 1))
	echo "ok   $*"
}

bad() {
	FAIL=$((FAIL + 1))
	echo "FAIL $*"
}

# check "description" command...: runs the command, counts the result
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

# summary: the closing line; exit status 1 when anything failed
summary() {
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}

# need_root: these tests install packages and run containers or services
need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$0: must run as root" >&2
		exit 2
	fi
}

# apt_want PKG...: installs the packages that are missing (Debian)
apt_want() {
	local p missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "${_APT_UPDATED:-}" ]; then
		apt-get update -qq || return 1
		_APT_UPDATED=1
	fi
	# shellcheck disable=SC2086
	apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends $missing >/dev/null
}

# free_port: prints a TCP port free on 127.0.0.1 right now
free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# new_token: prints a random token
new_token() {
	/usr/bin/python3 -c 'import secrets; print("t-" + secrets.token_hex(16))'
}

# wait_for SECONDS command...: retries the command every 0.2 s until it
# succeeds (0) or the time is up (1)
wait_for() {
	local limit=$1 t0
	shift
	t0=$(date +%s)
	while ! "$@" >/dev/null 2>&1; do
		[ $(($(date +%s) - t0)) -lt "$limit" ] || return 1
		sleep 0.2
	done
}

# http_status PORT PATH: prints the HTTP status code of GET PATH on 127.0.0.1
http_status() {
	local code
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3
	IFS=' ' read -r -t 3 _ code _ <&3 || true
	exec 3<&- 3>&-
	echo "$code"
}

# http_ok PORT: GET /healthz answers 200, or GET / does on builds without it
http_ok() {
	local code
	code=$(http_status "$1" /healthz 2>/dev/null)
	[ "$code" = 200 ] && return 0
	[ "$code" = 404 ] && [ "$(http_status "$1" / 2>/dev/null)" = 200 ]
}
