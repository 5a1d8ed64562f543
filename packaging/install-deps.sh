#!/bin/sh
# Installs what ech3 needs on Debian 12, only the packages that are missing.
#   packaging/install-deps.sh build   compiler and -dev libraries
#   packaging/install-deps.sh test    the above plus test tools and clients
set -eu

BUILD_PKGS="gcc make libc6-dev pkg-config libssl-dev libjwt-dev libwslay-dev libconfig-dev"
TEST_PKGS="libcmocka-dev python3 python3-websockets clang valgrind curl openssl iproute2 procps prometheus"

want=$BUILD_PKGS
case "${1:-build}" in
build) ;;
test) want="$want $TEST_PKGS" ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
# node and npm: any install will do (Debian's nodejs or another one on PATH).
if [ "${1:-build}" = test ]; then
	command -v node >/dev/null 2>&1 || missing="$missing nodejs"
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages:$missing (run as root, or install them)" >&2
		exit 1
	fi
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends $missing >/dev/null
fi
