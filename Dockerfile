# ech3 container image: a WebSocket-to-TCP tunnel server.
#
#   docker build -t ech3 .
#   docker run -p 8080:8080 -e TOKEN=my-secret ech3
#
# Settings come from the environment: PORT, TOKEN, PRIP (compat with the
# Node.js server) and any ECH3_<KEY> (ECH3_WORKERS, ECH3_LOG_FORMAT,
# ECH3_MAX_CONN, ...); see docs/configuration.md. Arguments after the image
# name go to ech3 (e.g. `-c /config/ech3.cfg` with a mounted file).
#
# BASE lets a build use a local copy of the base image instead of a registry
# (tests/packaging/image.sh builds one with mmdebstrap). RELEASE_VERSION, when
# set, is the version ech3 reports (the release workflow passes the tag).
ARG BASE=debian:bookworm-slim

# ---- build ----
FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc make libc6-dev pkg-config \
        libssl-dev libjwt-dev libwslay-dev libconfig-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG RELEASE_VERSION=
RUN make -j"$(nproc)" ${RELEASE_VERSION:+VERSION="$RELEASE_VERSION"} build/ech3 \
 && strip --strip-unneeded build/ech3 \
 && build/ech3 --version

# ---- runtime ----
# ca-certificates: for wss:// target_url backends (verified against the
# system store unless target_ca_file is set).
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libssl3 libjwt0 libwslay1 libconfig9 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt \
        /var/log/dpkg.log /var/log/alternatives.log \
 && groupadd --system --gid 10001 ech3 \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin ech3
COPY --from=build /src/build/ech3 /usr/sbin/ech3

# ech3 listens on 0.0.0.0:8080 unless PORT or ECH3_LISTEN say otherwise.
# (PORT is deliberately not set here: it would override ECH3_LISTEN's port.)
EXPOSE 8080
USER 10001:10001

# ech3 is PID 1: it takes its signals with sigtimedwait() and reaps its own
# workers, so no init is needed. SIGTERM drains tunnels for up to
# shutdown_timeout (25 s by default): give `docker stop -t` / Kubernetes'
# terminationGracePeriodSeconds at least 30 s.
STOPSIGNAL SIGTERM

# Health: HTTP GET /healthz over bash's /dev/tcp (the image has no curl),
# falling back to GET / on builds that answer /healthz with 404. The port is
# HEALTHCHECK_PORT, else PORT, else that of the first ECH3_LISTEN address,
# else 8080. The probe speaks plain HTTP: with only TLS listeners, add a
# plain one (e.g. "127.0.0.1:8081 plain") and set HEALTHCHECK_PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/bin/bash", "-c", "l=${ECH3_LISTEN:-:8080}; l=${l%%,*}; l=${l%% *}; p=${HEALTHCHECK_PORT:-${PORT:-${l##*:}}}; st() { exec 3<>/dev/tcp/127.0.0.1/$p || return; printf 'GET %s HTTP/1.0\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' \"$1\" >&3; read -r -t 3 _ c _ <&3; echo \"$c\"; }; c=$(st /healthz); [ \"$c\" = 404 ] && c=$(st /); [ \"$c\" = 200 ] || { echo \"health: port $p answered '$c'\" >&2; exit 1; }"]

ENTRYPOINT ["/usr/sbin/ech3"]
