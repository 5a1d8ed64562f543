#!/usr/bin/env bash
# Builds the ech3 container image for real and runs it.
#
#   tests/packaging/image.sh        (as root, on Debian 12)
#
# No registry is contacted: the debian:bookworm-slim base is made locally
# with mmdebstrap (--variant=minbase, trimmed like the official slim image),
# cached as $ECH3_TEST_CACHE/bookworm-minbase.tar (default
# /var/cache/ech3-test; delete it to refresh), imported into
# containers-storage as localhost/debian:bookworm-slim and given to the
# Dockerfile as --build-arg BASE=. buildah builds with chroot isolation and
# --layers (warm runs only redo `make`); podman runs the image with runc and
# host networking. Checks: the image's metadata, a non-root ech3 as PID 1,
# the HEALTHCHECK command, a tunnel end to end that stays up across SIGHUP
# (the log says "reloaded"), and a SIGTERM stop that exits 0 within the
# grace time. Prints the image size and `N passed, M failed`.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/packaging/lib.sh
. "$here/lib.sh"
need_root

CACHE=${ECH3_TEST_CACHE:-/var/cache/ech3-test}
BASE_TAR=$CACHE/bookworm-minbase.tar
BASE_IMG=localhost/debian:bookworm-slim
IMG=localhost/ech3:test
BUILD_IMG=localhost/ech3-build:test
NAME=ech3-image-test-$$
GRACE=30 # shutdown_timeout (25 s) + margin: what docker stop / k8s would give
MIRROR=${ECH3_TEST_MIRROR:-http://deb.debian.org/debian}
SECURITY=${ECH3_TEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

PODMAN=(podman --runtime runc --cgroup-manager cgroupfs --events-backend file)
# Explicit limits, as high as this machine's hard limits allow (a sandbox may
# cap them below podman's defaults, and runc can't raise them).
cap_limit() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
nofile=$(cap_limit "$(ulimit -Hn)" 65536)
nproc=$(cap_limit "$(ulimit -Hu)" 4096)
ULIMITS=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
work=$(mktemp -d /tmp/ech3-image-test.XXXXXX)
client_pid=

cleanup() {
	[ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null
	"${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_start=$(date +%s)
apt_want buildah podman runc mmdebstrap python3 python3-websockets ||
	{ bad "install buildah, podman, runc, mmdebstrap, python3-websockets"; summary; exit 1; }

# ---- the base image ----
mkdir -p "$CACHE"
if [ ! -s "$BASE_TAR" ]; then
	echo "making $BASE_TAR with mmdebstrap (once; cached afterwards)"
	# The official slim image's dpkg excludes, kept in the image too.
	slim=()
	for p in '/usr/share/doc/*' '/usr/share/groff/*' '/usr/share/info/*' \
		'/usr/share/linda/*' '/usr/share/lintian/overrides/*' \
		'/usr/share/locale/*' '/usr/share/man/*'; do
		slim+=(--dpkgopt="path-exclude=$p")
	done
	slim+=(--dpkgopt='path-include=/usr/share/doc/*/copyright')
	# merged-usr hook: /usr merged without installing usrmerge (and perl).
	hooks=()
	[ -d /usr/share/mmdebstrap/hooks/merged-usr ] &&
		hooks=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
	if timeout 600 mmdebstrap --mode=root --variant=minbase --format=tar \
		"${hooks[@]}" "${slim[@]}" --aptopt='Acquire::Retries "3"' \
		bookworm "$BASE_TAR.tmp" \
		"deb $MIRROR bookworm main" \
		"deb $MIRROR bookworm-updates main" \
		"deb $SECURITY bookworm-security main" >"$work/mmdebstrap.log" 2>&1; then
		mv "$BASE_TAR.tmp" "$BASE_TAR"
		"${PODMAN[@]}" rmi -f "$BASE_IMG" >/dev/null 2>&1
	else
		tail -20 "$work/mmdebstrap.log"
		rm -f "$BASE_TAR.tmp"
	fi
fi
if [ -s "$BASE_TAR" ] && ! "${PODMAN[@]}" image exists "$BASE_IMG"; then
	"${PODMAN[@]}" import --quiet \
		--change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		"$BASE_TAR" "$BASE_IMG" >/dev/null
fi
if "${PODMAN[@]}" image exists "$BASE_IMG"; then
	ok "base image $BASE_IMG (from $BASE_TAR)"
else
	bad "base image $BASE_IMG"
	summary
	exit 1
fi

# ---- build ----
old_id=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMG" 2>/dev/null)
t0=$(date +%s)
bud=(buildah bud --isolation chroot --layers --pull=never --format docker
	--build-arg BASE="$BASE_IMG" -f "$root/Dockerfile")
# The build stage is tagged too, so that pruning keeps its cached layers.
if timeout 900 "${bud[@]}" --target build -t "$BUILD_IMG" "$root" >"$work/build.log" 2>&1 &&
	timeout 900 "${bud[@]}" -t "$IMG" "$root" >>"$work/build.log" 2>&1; then
	ok "image builds ($(($(date +%s) - t0)) s)"
else
	tail -30 "$work/build.log"
	bad "image builds"
	summary
	exit 1
fi
# Drop what earlier runs left: untagged images (the cache of the tagged
# images is kept, as their parents).
new_id=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMG")
[ -n "$old_id" ] && [ "$old_id" != "$new_id" ] && "${PODMAN[@]}" rmi "$old_id" >/dev/null 2>&1
"${PODMAN[@]}" image prune -f >/dev/null 2>&1

# ---- metadata ----
meta() { "${PODMAN[@]}" image inspect --format "$1" "$IMG" 2>/dev/null; }
check "runs as uid 10001" test "$(meta '{{.Config.User}}')" = "10001:10001"
check "exposes 8080/tcp" grep -q '8080/tcp' <<<"$(meta '{{json .Config.ExposedPorts}}')"
check "stop signal SIGTERM" test "$(meta '{{.Config.StopSignal}}')" = SIGTERM
check "entrypoint /usr/sbin/ech3" test "$(meta '{{json .Config.Entrypoint}}')" = '["/usr/sbin/ech3"]'
check "has a HEALTHCHECK" grep -q healthz <<<"$(meta '{{json .Config.Healthcheck}}')"
check "no compiler or curl in the runtime image" \
	"${PODMAN[@]}" run --rm --network none --no-healthcheck "${ULIMITS[@]}" --entrypoint /bin/sh "$IMG" -c \
	'! command -v gcc && ! command -v cc && ! command -v curl && test -x /usr/sbin/ech3' 

ver=$("${PODMAN[@]}" run --rm --network none --no-healthcheck "${ULIMITS[@]}" "$IMG" --version 2>&1)
check "ech3 --version in the image: '$ver'" grep -qE '^ech3 [0-9]+\.[0-9]+' <<<"$ver"

size=$(meta '{{.Size}}')
echo "image size: $size bytes ($((size / 1024 / 1024)) MiB)"

# ---- run ----
port=$(free_port)
token=$(new_token)
if "${PODMAN[@]}" run -d --name "$NAME" --network host \
	"${ULIMITS[@]}" --health-interval disable \
	-e PORT="$port" -e TOKEN="$token" -e ECH3_WORKERS=2 \
	-e ECH3_EGRESS_ALLOW=127.0.0.0/8 \
	"$IMG" >"$work/cid" 2>"$work/run.err"; then
	ok "container starts"
else
	cat "$work/run.err"
	bad "container starts"
	summary
	exit 1
fi
logs() { "${PODMAN[@]}" logs "$NAME" 2>&1; }
# Each try reads the log anew (a process substitution would be read once).
logs_have() { logs | grep -q "$1"; }
if wait_for 15 logs_have "listening on 0.0.0.0:$port"; then
	ok "log says: listening on 0.0.0.0:$port"
else
	logs | tail -20
	bad "log says: listening on 0.0.0.0:$port"
fi
check "ech3 is PID 1" test "$("${PODMAN[@]}" exec "$NAME" cat /proc/1/comm 2>/dev/null)" = ech3
check "ech3 runs as uid 10001" test "$("${PODMAN[@]}" exec "$NAME" sh -c 'id -u' 2>/dev/null)" = 10001
check "nofile limit inside is $nofile" \
	grep -qE "^Max open files +$nofile +$nofile " <("${PODMAN[@]}" exec "$NAME" cat /proc/1/limits 2>/dev/null)
check "HEALTHCHECK command reports healthy" \
	wait_for 10 "${PODMAN[@]}" healthcheck run "$NAME"
check "HTTP probe from the host" http_ok "$port"

# A tunnel that is held open while the container gets SIGHUP.
/usr/bin/python3 "$here/tunnel_check.py" --url "ws://127.0.0.1:$port/" \
	--token "$token" --hold "$work/hup-sent" >"$work/client.out" 2>&1 &
client_pid=$!
wait_for 20 grep -q HOLDING "$work/client.out"
"${PODMAN[@]}" kill --signal HUP "$NAME" >/dev/null
if wait_for 10 logs_have reloaded; then
	ok "SIGHUP: the log says reloaded"
else
	logs | tail -20
	bad "SIGHUP: the log says reloaded"
fi
touch "$work/hup-sent"
if timeout 60 tail --pid="$client_pid" -f /dev/null; then
	wait "$client_pid"
	rc=$?
else
	kill "$client_pid" 2>/dev/null
	rc=124
fi
client_pid=
sed 's/^/    /' "$work/client.out"
check "tunnel end to end, held across the reload (client exit $rc)" test "$rc" = 0

# Graceful stop: SIGTERM, exit 0 within the grace time.
t0=$(date +%s)
"${PODMAN[@]}" kill --signal TERM "$NAME" >/dev/null
code=$(timeout "$GRACE" "${PODMAN[@]}" wait "$NAME" 2>/dev/null)
took=$(($(date +%s) - t0))
if [ "$code" = 0 ]; then
	ok "SIGTERM: exit 0 in ${took} s (grace ${GRACE} s)"
else
	logs | tail -20
	bad "SIGTERM: exit 0 within ${GRACE} s (got '${code:-still running}' after ${took} s)"
fi
check "log says: stopped" grep -q stopped <(logs)
if logs | grep -qiE 'segmentation|sanitizer|killed by signal'; then
	logs | grep -iE 'segmentation|sanitizer|killed by signal' | head -5
	bad "no crashed workers in the log"
else
	ok "no crashed workers in the log"
fi

echo "image: $IMG, $((size / 1024 / 1024)) MiB; test took $(($(date +%s) - t_start)) s"
summary
