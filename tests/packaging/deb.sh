#!/usr/bin/env bash
# Builds the Debian package and checks it the way an admin would meet it.
#
#   tests/packaging/deb.sh        (as root, on Debian 12; installs and then
#                                  purges the package ech3 on this machine)
#
# make deb; lintian (no errors, no warnings); dpkg -i; the files, owners and
# the ech3 user; systemd-analyze verify of the unit (silent); the installed
# binary run as the ech3 user with the installed configuration (systemd is
# not PID 1 here, so it is started by hand the way the unit would) serving a
# tunnel end to end; `ech3 -s reload` through the packaged pid_file; a
# reinstall of the package while a tunnel is open (the postinst's binary
# upgrade must keep it); `ech3 -s stop`; dpkg -P leaves nothing behind.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/packaging/lib.sh
. "$here/lib.sh"
need_root

# Isolation. ech3 reads /etc/ech3/ech3.cfg by default, so while the package
# is installed any other ech3 started on this machine (a concurrent test run)
# would take its pid_file, and its `-s` commands would signal our master.
# So the test runs in a mount namespace of its own with a throw-away overlay
# over /etc: the configuration, the ech3 user and the unit's enablement exist
# only in here. (The files under /usr and dpkg's database are shared; the
# package is purged at the end either way.) ECH3_DEB_TEST_SHARED=1 skips it.
if [ -z "${ECH3_DEB_TEST_NS:-}" ] && [ -z "${ECH3_DEB_TEST_SHARED:-}" ] &&
	unshare --mount --propagation private true 2>/dev/null; then
	ECH3_DEB_TEST_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
if [ -n "${ECH3_DEB_TEST_NS:-}" ]; then
	ov=$(mktemp -d /tmp/ech3-deb-etc.XXXXXX)
	# upper and work on a tmpfs: overlayfs can't stack on an overlay root
	if mount -t tmpfs -o mode=0700 ech3-test "$ov" && mkdir "$ov/up" "$ov/work" &&
		mount -t overlay ech3-test-etc -o "lowerdir=/etc,upperdir=$ov/up,workdir=$ov/work" /etc; then
		echo "note: /etc is a private overlay for this test"
	else
		echo "note: could not overlay /etc; it is shared with the rest of the machine"
	fi
else
	echo "note: no mount namespace; /etc is shared with the rest of the machine"
fi

CFG=/etc/ech3/ech3.cfg
UNIT=/lib/systemd/system/ech3.service
work=$(mktemp -d /tmp/ech3-deb-test.XXXXXX)
master=
client_pid=

# kill_ours: SIGKILL to each process running the packaged binary that this
# test started (same mount namespace, and /usr/sbin/ech3), by pid
kill_ours() {
	local d me n=0
	me=$(readlink /proc/$$/ns/mnt)
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$me" ] || continue
		readlink "$d/exe" 2>/dev/null | grep -q '^/usr/sbin/ech3' || continue
		kill -9 "${d#/proc/}" 2>/dev/null && n=$((n + 1))
	done
	[ "$n" -eq 0 ]
}

cleanup() {
	[ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null
	if [ -n "$master" ] && kill -0 "$master" 2>/dev/null; then
		kill -INT "$master" 2>/dev/null
		sleep 0.5
	fi
	kill_ours
	if dpkg-query -W -f='${Status}' ech3 2>/dev/null | grep -q 'ok installed\|config-files'; then
		[ -n "${KEEP_INSTALLED:-}" ] || dpkg -P ech3 >/dev/null 2>&1
	fi
	rm -rf "$work"
	if [ -n "${ov:-}" ]; then
		umount /etc 2>/dev/null
		umount "$ov" 2>/dev/null
		rmdir "$ov" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_start=$(date +%s)
apt_want dpkg-dev debhelper fakeroot lintian systemd adduser util-linux \
	gcc make libc6-dev libssl-dev libjwt-dev libwslay-dev libconfig-dev \
	python3 python3-websockets ||
	{ bad "install the build and test tools"; summary; exit 1; }

if dpkg-query -W -f='${Status}' ech3 2>/dev/null | grep -q 'ok installed\|config-files'; then
	echo "ech3 is installed on this machine already; purging it first"
	dpkg -P ech3 >/dev/null
fi

# ---- build ----
t0=$(date +%s)
if make -C "$root" -s -f packaging/packaging.mk deb >"$work/make.log" 2>&1; then
	ok "make deb ($(($(date +%s) - t0)) s)"
else
	tail -40 "$work/make.log"
	bad "make deb"
	summary
	exit 1
fi
deb=$(ls "$root"/build/deb/ech3_*.deb 2>/dev/null | head -1)
echo "package: $deb ($(stat -c %s "$deb") bytes)"

# ---- lintian ----
lintian --fail-on error,warning --display-info "$deb" >"$work/lintian.out" 2>&1
lrc=$?
sed 's/^/    /' "$work/lintian.out"
check "lintian: no errors or warnings" test "$lrc" = 0

# ---- install ----
if dpkg -i "$deb" >"$work/dpkg-i.out" 2>&1; then
	ok "dpkg -i"
else
	cat "$work/dpkg-i.out"
	bad "dpkg -i"
	summary
	exit 1
fi
files_before=$(dpkg -L ech3)
check "/usr/sbin/ech3 runs: $(/usr/sbin/ech3 --version 2>&1)" bash -c "/usr/sbin/ech3 --version >/dev/null"
check "ech3 is a system user with no login" \
	bash -c 'u=$(getent passwd ech3) && [ "$(cut -d: -f3 <<<"$u")" -lt 1000 ] &&
		case $(cut -d: -f7 <<<"$u") in */nologin | */false) ;; *) false ;; esac'
check "ech3 is a group" bash -c "getent group ech3 >/dev/null"
check "$CFG is root:ech3 0640" test "$(stat -c '%U:%G %a' "$CFG")" = "root:ech3 640"
check "$CFG is a conffile" grep -q "^$CFG" /var/lib/dpkg/info/ech3.conffiles
check "$CFG is valid as shipped" bash -c "/usr/sbin/ech3 -t -c $CFG >/dev/null"
check "man pages ech3(8) and ech3.cfg(5)" \
	test -s /usr/share/man/man8/ech3.8.gz -a -s /usr/share/man/man5/ech3.cfg.5.gz
check "man pages render without warnings" bash -c \
	'for p in /usr/share/man/man8/ech3.8.gz /usr/share/man/man5/ech3.cfg.5.gz; do
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null) || exit 1
		[ -z "$out" ] || { echo "$out"; exit 1; }
	done'
# Every setting the binary knows is documented (the file and ech3.cfg(5)),
# with its real default: uncommented, the file gives what no file gives.
keys=$(/usr/sbin/ech3 -t -c "$CFG" 2>/dev/null | sed -n 's/^\([a-z_][a-z0-9_.]*\) *=.*/\1/p')
man5=$(zcat /usr/share/man/man5/ech3.cfg.5.gz)
undoc=""
for k in $keys; do
	case $k in
	*.*)
		grp=${k%%.*} sub=${k#*.}
		grep -q "^#\?${grp} = {" "$CFG" && grep -q "^#\?[[:space:]]*${sub} = " "$CFG" ||
			undoc="$undoc $k(ech3.cfg)"
		grep -q "^\.B[R]* .*\b${grp}\b" <<<"$man5" && grep -q "^\.B[R]* .*\b${sub}\b" <<<"$man5" ||
			undoc="$undoc $k(ech3.cfg.5)"
		;;
	*)
		grep -q "^#\?${k} = " "$CFG" || undoc="$undoc $k(ech3.cfg)"
		grep -q "^\.B[R]* .*\b${k}\b" <<<"$man5" || undoc="$undoc $k(ech3.cfg.5)"
		;;
	esac
done
check "every setting of ech3 -t is in ech3.cfg and ech3.cfg(5)${undoc:+ (missing:$undoc)}" test -z "$undoc"
sed -E 's/^#([[:space:]]*[a-z_0-9]+ = .*;)$/\1/; s/^#([a-z_]+ = \{)$/\1/; s/^#(\};)$/\1/' "$CFG" >"$work/uncommented.cfg"
/usr/sbin/ech3 -t -c "$work/uncommented.cfg" 2>&1 | grep -v '^#' | grep -v '^pid_file' >"$work/documented.out"
/usr/sbin/ech3 -t -c /dev/null 2>&1 | grep -v '^#' | grep -v '^pid_file' >"$work/defaults.out"
if diff "$work/documented.out" "$work/defaults.out" >"$work/defaults.diff"; then
	ok "the commented values in $CFG are the real defaults"
else
	sed 's/^/    /' "$work/defaults.diff"
	bad "the commented values in $CFG are the real defaults"
fi

# ---- the unit ----
check "unit installed" test -f "$UNIT"
systemd-analyze verify "$UNIT" >"$work/verify.out" 2>&1
vrc=$?
sed 's/^/    /' "$work/verify.out"
check "systemd-analyze verify: exit 0, prints nothing" test "$vrc" = 0 -a ! -s "$work/verify.out"
unit_has() { grep -qx "$1" "$UNIT"; }
for line in Type=notify NotifyAccess=all 'ExecReload=/bin/kill -HUP $MAINPID' \
	'ExecStart=/usr/sbin/ech3 -c /etc/ech3/ech3.cfg' KillSignal=SIGTERM TimeoutStopSec=30 \
	User=ech3 RuntimeDirectory=ech3 NoNewPrivileges=yes ProtectSystem=strict \
	CapabilityBoundingSet=CAP_NET_BIND_SERVICE; do
	check "unit: $line" unit_has "$line"
done
# dh_installsystemd --no-stop-on-upgrade: prerm stops the unit only on
# remove, postinst only starts it (a no-op when running), never restarts.
no_stop_on_upgrade() {
	local prerm=/var/lib/dpkg/info/ech3.prerm postinst=/var/lib/dpkg/info/ech3.postinst
	! grep -q "deb-systemd-invoke.*restart" "$postinst" &&
		! awk '/deb-systemd-invoke stop/ && prev !~ /"\$1" = remove/ { bad = 1 }
			{ prev = $0 } END { exit !bad }' "$prerm"
}
check "upgrades neither stop nor restart the service" no_stop_on_upgrade

# ---- run it as the unit would ----
port=$(free_port)
token=$(new_token)
install -d -o ech3 -g ech3 -m 0755 /run/ech3 # RuntimeDirectory=ech3
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin PORT="$port" TOKEN="$token" \
	ECH3_WORKERS=2 ECH3_EGRESS_ALLOW=127.0.0.0/8 \
	setpriv --reuid=ech3 --regid=ech3 --init-groups --inh-caps=-all -- \
	/usr/sbin/ech3 -c "$CFG" </dev/null >"$work/ech3.out" 2>"$work/ech3.log" &
master=$!
if wait_for 10 grep -q "listening on 0.0.0.0:$port" "$work/ech3.log"; then
	ok "runs as ech3 with $CFG: listening on 0.0.0.0:$port"
else
	cat "$work/ech3.log"
	bad "runs as ech3 with $CFG"
fi
check "the master runs as user ech3" test "$(ps -o user= -p "$master" | tr -d ' ')" = ech3
check "pid_file /run/ech3/ech3.pid names the master" \
	wait_for 5 test "$(cat /run/ech3/ech3.pid 2>/dev/null)" = "$master"
check "HTTP probe" http_ok "$port"

run_client() { # hold-file output-file
	/usr/bin/python3 "$here/tunnel_check.py" --url "ws://127.0.0.1:$port/" \
		--token "$token" ${1:+--hold "$1"} >"$2" 2>&1 &
	client_pid=$!
}
wait_client() { # output-file; prints the client's output, returns its status
	local rc
	if timeout 60 tail --pid="$client_pid" -f /dev/null; then
		wait "$client_pid"
		rc=$?
	else
		kill "$client_pid" 2>/dev/null
		rc=124
	fi
	client_pid=
	sed 's/^/    /' "$1"
	return "$rc"
}

# The packaged configuration is /etc/ech3/ech3.cfg, which ech3 reads by
# default: any other ech3 started as root on this machine while the package
# is installed (a concurrent test run) writes /run/ech3/ech3.pid too. Say so
# rather than fail obscurely, and put our master back.
own_pidfile() {
	local p
	p=$(cat /run/ech3/ech3.pid 2>/dev/null)
	[ "$p" = "$master" ] && return 0
	echo "note: /run/ech3/ech3.pid holds '${p}' ($(ps -o args= -p "${p:-0}" 2>/dev/null || echo gone)), not our master $master: another ech3 on this machine read $CFG; restoring it"
	echo "$master" >/run/ech3/ech3.pid
	chown ech3:ech3 /run/ech3/ech3.pid
}

# reload through the pid_file, with a tunnel open
run_client "$work/reloaded" "$work/client1.out"
wait_for 20 grep -q HOLDING "$work/client1.out"
own_pidfile
check "ech3 -s reload (through pid_file)" /usr/sbin/ech3 -c "$CFG" -s reload
check "log says reloaded" wait_for 10 grep -q reloaded "$work/ech3.log"
touch "$work/reloaded"
check "tunnel end to end, held across the reload" wait_client "$work/client1.out"

# a package upgrade (here: reinstall) with a tunnel open
run_client "$work/upgraded" "$work/client2.out"
wait_for 20 grep -q HOLDING "$work/client2.out"
own_pidfile
if dpkg -i "$deb" >"$work/dpkg-up.out" 2>&1; then
	ok "dpkg -i again (upgrade) while serving"
else
	cat "$work/dpkg-up.out"
	bad "dpkg -i again (upgrade) while serving"
fi
sed 's/^/    /' "$work/dpkg-up.out" | grep -i ech3: || true
# The new master is the old one's child, runs the new binary as ech3 and
# logs "serving" under its own pid.
new_master=
is_new_master() {
	local p
	p=$(cat /run/ech3/ech3.pid 2>/dev/null)
	[ -n "$p" ] && [ "$p" != "$master" ] &&
		[ "$(ps -o ppid= -p "$p" | tr -d ' ')" = "$master" ] &&
		grep -q "ech3\[$p\]: .*serving" "$work/ech3.log"
}
if wait_for 15 is_new_master; then
	new_master=$(cat /run/ech3/ech3.pid)
	ok "upgrade: a new master ($new_master) took over from $master"
else
	tail -20 "$work/ech3.log"
	bad "upgrade: a new master took over"
fi
touch "$work/upgraded"
check "tunnel end to end, held across the package upgrade" wait_client "$work/client2.out"
if [ -n "$new_master" ]; then
	# its tunnels closed, the old master has nothing left to drain
	check "the old master exits once drained" wait_for 30 \
		bash -c "! kill -0 $master 2>/dev/null || ps -o stat= -p $master | grep -q Z"
	kill -0 "$master" 2>/dev/null || wait "$master" 2>/dev/null
	master=$new_master
fi

# stop through the pid_file
t0=$(date +%s)
own_pidfile
check "ech3 -s stop" /usr/sbin/ech3 -c "$CFG" -s stop
if wait_for 30 bash -c "! kill -0 $master 2>/dev/null"; then
	ok "stopped in $(($(date +%s) - t0)) s"
else
	bad "stopped within 30 s"
fi
check "log says stopped" grep -q stopped "$work/ech3.log"
if grep -qiE 'segmentation|sanitizer|killed by signal' "$work/ech3.log"; then
	grep -iE 'segmentation|sanitizer|killed by signal' "$work/ech3.log" | head -5
	bad "no crashed workers in the log"
else
	ok "no crashed workers in the log"
fi
# processes of the ech3 user would keep deluser from removing it
kill_ours || echo "note: killed leftover ech3 processes"
master=

# ---- purge ----
if dpkg -P ech3 >"$work/purge.out" 2>&1; then
	ok "dpkg -P ech3"
else
	cat "$work/purge.out"
	bad "dpkg -P ech3"
fi
left=""
while IFS= read -r f; do
	[ -e "$f" ] || continue
	[ -d "$f" ] && [ "$(dpkg -S "$f" 2>/dev/null | grep -vc '^ech3:')" -gt 0 ] && continue
	[ -d "$f" ] && case $f in /. | /etc | /lib | /lib/systemd | /lib/systemd/system | /usr | /usr/sbin | /usr/share | /usr/share/doc | /usr/share/man | /usr/share/man/man[58]) continue ;; esac
	left="$left $f"
done <<<"$files_before"
check "no file of the package left${left:+ (left:$left)}" test -z "$left"
check "no /etc/ech3" test ! -e /etc/ech3
check "no /run/ech3, /var/log/ech3" test ! -e /run/ech3 -a ! -e /var/log/ech3
check "no user ech3" bash -c '! getent passwd ech3'
check "no group ech3" bash -c '! getent group ech3'
check "no statoverride left" bash -c '! dpkg-statoverride --list | grep -q ech3'
check "no systemd enablement left" bash -c \
	'! ls /etc/systemd/system/*/ech3.service /var/lib/systemd/deb-systemd-helper-enabled/*ech3* 2>/dev/null | grep -q .'
check "dpkg knows no ech3" bash -c '! dpkg-query -W ech3 2>/dev/null'

echo "deb test took $(($(date +%s) - t_start)) s"
summary
