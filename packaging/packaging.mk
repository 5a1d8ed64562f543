# packaging.mk - Debian package, container image and deployment tests.
# Included from the root Makefile; also works on its own:
#   make -f packaging/packaging.mk deb
#
#   make deb             build the .deb into build/deb/ (dpkg-buildpackage -b)
#   make deb-deps        install what `make deb` needs (Debian, as root)
#   make test-image      build the container image with buildah, run it with podman
#   make test-deb        build, lintian, install, run as the service, purge
#   make test-workflows  check .github/workflows/*.yml offline
#   make test-k8s        check packaging/kubernetes/*.yaml offline
#   make test-packaging  all four, one `N passed, M failed` line at the end
#
# DEB_VERSION=1.2.3 makes `make deb` build that version (the release
# workflow passes the tag); by default the version is debian/changelog's.

DEB_OUT       ?= build/deb
DEB_STAGE     ?= build/deb-stage
DEB_VERSION   ?=
DEB_BUILD_DEPS = dpkg-dev debhelper fakeroot gcc make libc6-dev libssl-dev \
                 libjwt-dev libwslay-dev libconfig-dev

.PHONY: deb deb-deps test-image test-deb test-workflows test-k8s test-packaging

deb-deps:
	@missing=""; for p in $(DEB_BUILD_DEPS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || \
			missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			-o DPkg::Lock::Timeout=300 --no-install-recommends $$missing >/dev/null; \
	fi

# A clean copy of the tree (no build/, .git, node_modules) with
# packaging/debian as ./debian, built with dpkg-buildpackage; the .debs end
# up in $(DEB_OUT).
deb:
	@set -e; \
	stage=$(DEB_STAGE); src=$$stage/ech3; \
	rm -rf $$stage; mkdir -p $$src $(DEB_OUT); \
	tar -C . --exclude=./build --exclude=./.git --exclude=./debian \
		--exclude=node_modules --exclude=__pycache__ -cf - . | tar -C $$src -xf -; \
	cp -a packaging/debian $$src/debian; \
	if [ -n "$(DEB_VERSION)" ] && \
	   [ "$$(dpkg-parsechangelog -l $$src/debian/changelog -S Version)" != "$(DEB_VERSION)" ]; then \
		{ printf 'ech3 (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n\n' \
			"$(DEB_VERSION)" "$(DEB_VERSION)" \
			"$$(dpkg-parsechangelog -l $$src/debian/changelog -S Maintainer)" \
			"$$(date -R)"; cat $$src/debian/changelog; } > $$src/debian/changelog.new; \
		mv $$src/debian/changelog.new $$src/debian/changelog; \
	fi; \
	echo "dpkg-buildpackage -us -uc -b in $$src"; \
	( cd $$src && DEB_BUILD_OPTIONS="parallel=$$(nproc) $$DEB_BUILD_OPTIONS" \
		dpkg-buildpackage -us -uc -b ) > $$stage/build.log 2>&1 || \
		{ tail -40 $$stage/build.log; echo "make deb: failed, see $$stage/build.log"; exit 1; }; \
	rm -f $(DEB_OUT)/ech3_*.deb $(DEB_OUT)/ech3-dbgsym_*.deb; \
	cp $$stage/ech3_*.deb $(DEB_OUT)/; \
	cp $$stage/ech3-dbgsym_*.deb $(DEB_OUT)/ 2>/dev/null || true; \
	ls -l $(DEB_OUT)

test-image:
	tests/packaging/image.sh

test-deb:
	tests/packaging/deb.sh

test-workflows:
	tests/packaging/workflows.sh

test-k8s:
	tests/packaging/k8s.sh

test-packaging:
	tests/packaging/run.sh
