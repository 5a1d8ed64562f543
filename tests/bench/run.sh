#!/usr/bin/env bash
# tests/bench/run.sh — side-by-side benchmark driver (what `make bench` runs).
# Builds the Node and Go reference servers, starts them next to build/ech3 on
# free 127.0.0.1 ports, runs every ech3-bench scenario against each server with
# repetitions, measures memory with idle tunnels and server CPU per GB relayed,
# and prints a markdown table (median and min-max per server, ratios of ech3
# to each reference). Every server and client is stopped by PID at exit.
#
# usage: tests/bench/run.sh [--quick] [--reps N] [--servers node,go,ech3]
#                           [--seconds S] [--idle N] [--large N] [--out FILE]
#   --quick      1 repetition, shorter windows, no large idle run
#   --reps N     repetitions of every measurement (default 3)
#   --servers L  comma list, subset of node,go,ech3, in column order
#   --seconds S  measurement window of bulk and setup scenarios (default 3, quick 2)
#   --idle N     idle tunnels of the memory measurement (default 1000)
#   --large N    idle tunnels of the large memory run (default 9000, 0 = skip)
#   --out FILE   also write the table to FILE
#   --report DIR only print the table again from the work dir DIR of an earlier run
# env: ECH3_BIN (build/ech3), ECH3_BENCH_BIN (build/ech3-bench),
#      ECH3_REFERENCE_SRC (<repo>/../shared/reference), ECH3_REFERENCE_OUT (/tmp/ech3-reference)
set -uo pipefail

QUICK=0 REPS=3 SERVERS="node,go,ech3" SECONDS_BULK="" IDLE_N=1000 LARGE_N=9000 OUT="" REPORT_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; shift ;;
    --servers) SERVERS=$2; shift ;;
    --seconds) SECONDS_BULK=$2; shift ;;
    --idle) IDLE_N=$2; shift ;;
    --large) LARGE_N=$2; shift ;;
    --out) OUT=$2; shift ;;
    --report) REPORT_DIR=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  REPS=1; LARGE_N=0; : "${SECONDS_BULK:=2}"
fi
: "${SECONDS_BULK:=3}"
SETUP_SECONDS=2

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))
cd "$ROOT" || exit 2
ECH3=${ECH3_BIN:-build/ech3}
BENCH=${ECH3_BENCH_BIN:-build/ech3-bench}
REFSRC=${ECH3_REFERENCE_SRC:-$ROOT/../shared/reference}
[ -x "$REFSRC/build.sh" ] || REFSRC=/work/shared/reference
REFOUT=${ECH3_REFERENCE_OUT:-/tmp/ech3-reference}
HZ=$(getconf CLK_TCK)
RUN_DATE=$(date -u +%Y-%m-%dT%H:%MZ)
if [ -n "$REPORT_DIR" ]; then
  W=$REPORT_DIR
else
  W=$(mktemp -d /tmp/ech3-bench.XXXXXX)
  : > "$W/data.tsv"
fi
DATA=$W/data.tsv
TOKEN="bench-$$-$RANDOM"
T_START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '[bench %4ss] %s\n' "$(( $(date +%s) - T_START ))" "$*" >&2; }

if [ -z "$REPORT_DIR" ] && [ ! -x "$BENCH" ]; then
  echo "run.sh: $BENCH not found (make build/ech3-bench)" >&2
  exit 2
fi

# ---------------------------------------------------------------- process helpers
declare -A SPID SPORT
BENCH_PID=""

# pid and all its descendants (ech3: master and workers)
tree_pids() {
  local root=$1
  [ -n "$root" ] && [ -d "/proc/$root" ] || return 0
  ps -e -o pid=,ppid= | awk -v r="$root" '
    { kids[$2] = kids[$2] " " $1 }
    END { n = 1; q[1] = r; out = r
          for (i = 1; i <= n && i < 100000; i++) {
            m = split(kids[q[i]], k, " ")
            for (j = 1; j <= m; j++) { q[++n] = k[j]; out = out " " k[j] } }
          print out }'
}
# sum of utime+stime ticks over the pids (field 14/15 counted after the ")" of comm)
cpu_ticks() {
  local t=0 p line f
  for p in "$@"; do
    line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    read -r -a f <<< "${line##*) }" # f[0] is field 3 (state): utime = f[11], stime = f[12]
    t=$(( t + f[11] + f[12] ))
  done
  echo "$t"
}
rss_kib() {
  local s=0 p v
  for p in "$@"; do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
    s=$(( s + ${v:-0} ))
  done
  echo "$s"
}
pss_kib() {
  local s=0 p v
  for p in "$@"; do
    v=$(awk '/^Pss:/ {print $2; exit}' "/proc/$p/smaps_rollup" 2>/dev/null)
    s=$(( s + ${v:-0} ))
  done
  echo "$s"
}
# MemAvailable plus the pages on the page allocator's per-CPU free lists (the "count:" lines of
# /proc/zoneinfo), which MemAvailable leaves out although they are free. Since kernel 6.7 those
# lists tune themselves and held from 30 to 385 MB here, so without them the drop per tunnel moves
# by +-40 KiB at 9000 tunnels from run to run.
memavail_kib() {
  local a p
  a=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
  p=$(awk '/^ +count:/ {s += $2} END {print s + 0}' /proc/zoneinfo 2>/dev/null)
  echo $(( a + ${p:-0} * $(getconf PAGESIZE) / 1024 ))
}
# user and kernel memory the system counts by kind: anonymous pages, slab, kernel stacks, page
# tables. Steady from run to run, but blind to memory the kernel does not count by kind, such as
# the TCP page-fragment cache every thread that sent on a socket keeps (32 KiB by default): the
# MemAvailable (+ per-CPU free pages) row sees that, this one does not.
memused_kib() { awk '/^(AnonPages|Slab|KernelStack|PageTables):/ {s += $2} END {print s}' /proc/meminfo; }

port_busy() { [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]; }
declare -A USED_PORTS
FREE_PORT=""
free_port() { # sets FREE_PORT (below the ephemeral range, never handed out twice)
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    [ -n "${USED_PORTS[$p]:-}" ] && continue
    port_busy "$p" && continue
    USED_PORTS[$p]=1
    FREE_PORT=$p; return 0
  done
  return 1
}

# waits until the server's CPU use drops below ~10% of a core (bounded: 10 s)
settle() {
  local s=$1 a b pids
  for _ in $(seq 1 50); do
    pids=$(tree_pids "${SPID[$s]:-}")
    [ -n "$pids" ] || return 0
    a=$(cpu_ticks $pids); sleep 0.2; b=$(cpu_ticks $pids)
    [ $(( b - a )) -le $(( HZ / 50 )) ] && return 0
  done
  log "warning: $s still busy after 10 s"
}

kill_pids() { # TERM, wait up to 3 s, then KILL
  local p alive
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null
  for _ in $(seq 1 30); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null
}

stop_server() {
  local s=$1 pids
  [ -n "${SPID[$s]:-}" ] || return 0
  pids=$(tree_pids "${SPID[$s]}")
  # shellcheck disable=SC2086
  kill_pids ${pids:-${SPID[$s]}}
  wait "${SPID[$s]}" 2>/dev/null
  SPID[$s]=""
}

cleanup() {
  trap - EXIT INT TERM
  [ -n "$BENCH_PID" ] && kill_pids "$BENCH_PID"
  local s
  for s in node go ech3; do stop_server "$s"; done
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- table
# report: writes $W/table.md from $DATA (also: run.sh --report DIR)
report() {
# metric|label|decimals|direction (h = higher is better, l = lower is better, i = information, no ratio)
SPEC="c2t|1 tunnel client-to-target, MB/s|0|h
t2c|1 tunnel target-to-client, MB/s|0|h
c2t64|64 tunnels client-to-target, MB/s|0|h
t2c64|64 tunnels target-to-client, MB/s|0|h
setup-seq|setup sequential, tunnels/s|0|h
setup-seq_p99|setup sequential p99, ms|2|l
setup-32|setup 32 concurrent, tunnels/s|0|h
setup-32_p99|setup 32 concurrent p99, ms|2|l
echo_p50|echo 64 B p50, µs|0|l
echo_p99|echo 64 B p99, µs|0|l
cpugb_c2t|server CPU s per GB, client-to-target (1+64)|2|l
cpugb_t2c|server CPU s per GB, target-to-client (1+64)|2|l
cpugb_all|server CPU s per GB, all bulk|2|l
idle_rss|idle RSS before any tunnel, MiB|1|l
idle_pss|idle PSS before any tunnel, MiB|1|l
rss_small|RSS with $IDLE_N idle tunnels, MiB|1|l
rsspt_small|RSS per idle tunnel at $IDLE_N, KiB|1|l
psspt_small|PSS per idle tunnel at $IDLE_N, KiB|1|l
availpt_small|MemAvailable (+ per-CPU free pages) drop per tunnel at $IDLE_N, KiB|1|l
usedpt_small|counted memory per tunnel at $IDLE_N (AnonPages+Slab+KernelStack+PageTables), KiB|1|l
rss_large|RSS with $LARGE_N idle tunnels, MiB|1|l
rsspt_large|RSS per idle tunnel at $LARGE_N, KiB|1|l
psspt_large|PSS per idle tunnel at $LARGE_N, KiB|1|l
availpt_large|MemAvailable (+ per-CPU free pages) drop per tunnel at $LARGE_N, KiB|1|l
usedpt_large|counted memory per tunnel at $LARGE_N (AnonPages+Slab+KernelStack+PageTables), KiB|1|l
rssafter_large|RSS after the $LARGE_N tunnels closed, MiB|1|l
procs|server processes (master + workers)|0|i"

TABLE=$(printf '%s\n' "$SPEC" | awk -F'|' -v data="$DATA" -v servers="${ACTIVE[*]}" \
  -v labels="$(for s in "${ACTIVE[@]}"; do printf '%s|' "${LABEL[$s]}"; done)" '
  function fmt(v, d) { return sprintf("%." d "f", v) }
  function median(arr, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j+1] = arr[j]; arr[j+1] = t }
    return (n % 2) ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
  }
  BEGIN {
    ns = split(servers, S, " "); split(labels, L, "|")
    while ((getline line < data) > 0) {
      split(line, f, "\t"); k = f[1] SUBSEP f[2]; cnt[k]++; val[k, cnt[k]] = f[3]
    }
    hdr = "| metric |"; sep = "|---|"
    for (i = 1; i <= ns; i++) { hdr = hdr " " L[i] " |"; sep = sep "---|" }
    has_e = 0; for (i = 1; i <= ns; i++) if (S[i] == "ech3") has_e = 1
    if (has_e) for (i = 1; i <= ns; i++) if (S[i] != "ech3") { hdr = hdr " ech3/" L[i] " |"; sep = sep "---|" }
    print hdr; print sep
  }
  {
    m = $1; if (m == "procs") { dec = 0 } else dec = $3
    row = "| " $2 ($4 == "h" ? " (higher is better)" : $4 == "l" ? " (lower is better)" : "") " |"; any = 0
    delete med
    for (i = 1; i <= ns; i++) {
      k = S[i] SUBSEP m; n = cnt[k] + 0
      if (n == 0) { row = row " n/a |"; continue }
      any = 1
      delete a; for (j = 1; j <= n; j++) a[j] = val[k, j] + 0
      mn = a[1]; mx = a[1]; for (j = 1; j <= n; j++) { if (a[j] < mn) mn = a[j]; if (a[j] > mx) mx = a[j] }
      md = median(a, n); med[S[i]] = md
      flag = (cnt[S[i] SUBSEP "err_" m] > 0) ? " ⚠" : ""
      if (m == "procs") cell = fmt(md, 0)
      else if (n == 1 || fmt(mn, dec) == fmt(mx, dec)) cell = fmt(md, dec)
      else cell = fmt(md, dec) " (" fmt(mn, dec) "–" fmt(mx, dec) ")"
      row = row " " cell flag " |"
    }
    if (has_e) for (i = 1; i <= ns; i++) if (S[i] != "ech3") {
      if ($4 == "i") row = row " |"
      else if (("ech3" in med) && (S[i] in med) && med[S[i]] != 0) row = row " " sprintf("%.2f×", med["ech3"] / med[S[i]]) " |"
      else row = row " n/a |"
    }
    if (any) print row
  }')

{
  echo
  echo "## ech3 benchmark ($RUN_DATE, $(nproc) cores, $REPS rep(s), cells: median (min–max))"
  echo
  echo "$TABLE"
  echo
  echo "MB = 10^6 bytes. Bulk: ${SECONDS_BULK} s window after warm-up, 256 KiB frames; c2t measured at the target"
  echo "sink, t2c at the client. Setup: upgrade + CONNECT + CONNECTED + CLOSE, ${SETUP_SECONDS} s or 15000 tunnels."
  echo "Memory: fresh servers per repetition; per-tunnel RSS/PSS = (with tunnels - idle before) / tunnels,"
  echo "summed over the server's processes. MemAvailable drop and counted memory are system-wide (they include"
  echo "the kernel memory of all four loopback sockets per tunnel and the load generator, the same for every"
  echo "server). MemAvailable is taken with the pages on the per-CPU free lists (/proc/zoneinfo) added back, which"
  echo "it leaves out although they are free; it is the total a tunnel costs the machine. Counted memory = growth"
  echo "of AnonPages+Slab+KernelStack+PageTables: steady, but blind to a thread's TCP page-fragment cache."
  for s in "${ACTIVE[@]}"; do
    c=$(awk -F'\t' -v s="$s" '$1 == s && $2 ~ /^clientcpu_/ && $3 > m { m = $3 } END { if (m != "") printf "%.0f", m }' "$DATA")
    [ -n "$c" ] && echo "Load generator CPU during bulk runs against ${LABEL[$s]}: at most ${c}% of one core."
  done
  echo "Load average at start: $LOAD0; at end: $LOAD1 (other work on the machine skews results)."
  [ "$FAILS" -gt 0 ] && echo "WARNING: $FAILS run(s) reported errors (cells marked ⚠, failed runs left out); see $W/bench.log"
  echo "Raw results: $W/results.jsonl, $W/data.tsv"
} > "$W/table.md"
}

# ---------------------------------------------------------------- servers
declare -A LABEL=([node]="Node ref" [go]="Go ref" [ech3]="ech3")
if [ -n "$REPORT_DIR" ]; then
  [ -f "$W/meta.sh" ] && [ -f "$DATA" ] || { echo "run.sh: $W has no finished run" >&2; exit 2; }
  # shellcheck disable=SC1091
  . "$W/meta.sh"
  report
  cat "$W/table.md"
  exit 0
fi
IFS=, read -r -a WANT <<< "$SERVERS"
ACTIVE=()

build_refs() {
  local need=0
  if [ ! -x "$REFOUT/ref-go" ] || [ ! -d "$REFOUT/js/node_modules/ws" ] ||
     ! cmp -s "$REFSRC/js/server.js" "$REFOUT/js/server.js" ||
     ! cmp -s "$REFSRC/go/main.go" "$REFOUT/go-src/main.go"; then
    need=1
  fi
  if [ $need = 1 ]; then
    log "building reference servers from $REFSRC into $REFOUT"
    if ! "$REFSRC/build.sh" "$REFOUT" > "$W/ref-build.log" 2>&1; then
      log "reference build failed (see $W/ref-build.log)"
      return 1
    fi
  fi
  return 0
}

start_server() {
  local s=$1 port
  free_port || { log "no free port"; return 1; }
  port=$FREE_PORT
  case $s in
    node) PORT=$port TOKEN=$TOKEN HOST=127.0.0.1 node "$REFOUT/js/server.js" >> "$W/$s.log" 2>&1 & ;;
    go)   PORT=$port TOKEN=$TOKEN HOST=127.0.0.1 "$REFOUT/ref-go" >> "$W/$s.log" 2>&1 & ;;
    ech3) TOKEN=$TOKEN ECH3_EGRESS_ALLOW=127.0.0.0/8 ECH3_LOG_LEVEL=warn \
            "$ECH3" --listen "127.0.0.1:$port" >> "$W/$s.log" 2>&1 & ;;
  esac
  SPID[$s]=$!
  SPORT[$s]=$port
  for _ in $(seq 1 100); do
    if ! kill -0 "${SPID[$s]}" 2>/dev/null; then
      log "$s exited at startup (see $W/$s.log)"; SPID[$s]=""; return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$s did not listen on $port within 10 s"
  stop_server "$s"
  return 1
}

start_all() {
  local s
  for s in "${ACTIVE[@]}"; do
    start_server "$s" || { log "$s unavailable for this phase"; }
  done
  sleep 1 # let runtimes finish starting before idle measurements
}
stop_all() { local s; for s in "${ACTIVE[@]}"; do stop_server "$s"; done; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
if [ "$LARGE_N" -gt 0 ] && [ $(( LARGE_N * 2 + 200 )) -gt "$NOFILE" ]; then
  LARGE_N=$(( (NOFILE - 200) / 2 ))
  log "fd limit $NOFILE: large idle run reduced to $LARGE_N tunnels"
fi

REFS_OK=1
for s in "${WANT[@]}"; do
  case $s in node|go) ;; ech3) ;; *) echo "run.sh: unknown server $s" >&2; exit 2 ;; esac
done
if printf '%s\n' "${WANT[@]}" | grep -qE '^(node|go)$'; then
  build_refs || REFS_OK=0
fi
for s in "${WANT[@]}"; do
  case $s in
    node|go) [ $REFS_OK = 1 ] && ACTIVE+=("$s") ;;
    ech3) if [ -x "$ECH3" ]; then ACTIVE+=("$s"); else log "$ECH3 not built: ech3 column skipped"; fi ;;
  esac
done
[ ${#ACTIVE[@]} -gt 0 ] || { log "no server to benchmark"; exit 2; }
log "servers: ${ACTIVE[*]}; reps $REPS; windows ${SECONDS_BULK}s bulk, ${SETUP_SECONDS}s setup; work dir $W"

put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$DATA"; }
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<< "$2" | head -1; }
FAILS=0

# runs one bench scenario against server $1; sets LINE (the result) and LAST_RC
LINE="" LAST_RC=0
bench() {
  local s=$1; shift
  echo "### $s $*" >> "$W/bench.log"
  "$BENCH" --url "ws://127.0.0.1:${SPORT[$s]}/" --token "$TOKEN" --json "$@" > "$W/last.out" 2>> "$W/bench.log"
  LAST_RC=$?
  LINE=$(cat "$W/last.out")
  echo "$LINE" >> "$W/results.jsonl"
  if [ $LAST_RC -ne 0 ]; then
    FAILS=$((FAILS + 1))
    log "warning: $s $* exited $LAST_RC (see $W/bench.log)"
  fi
}
# record SERVER METRIC JSONKEY [SCALE]: stores a value of LINE; flags it when the run had errors
record() {
  local v
  [ "$LAST_RC" -eq 2 ] && return 0 # nothing measured
  v=$(jget "$3" "$LINE")
  [ -n "$v" ] || return 0
  put "$1" "$2" "$v"
  [ "$LAST_RC" -ne 0 ] && put "$1" "err_$2" 1
  return 0
}

# ---------------------------------------------------------------- memory
# idle_run SERVER N TAG: opens N idle tunnels, measures server RSS/PSS and MemAvailable
idle_run() {
  local s=$1 n=$2 tag=$3 pids base_avail avail base_used used rss pss ready tunnels
  [ -n "${SPID[$s]:-}" ] || return 0
  settle "$s"
  base_avail=$(memavail_kib); base_used=$(memused_kib)
  echo "### $s idle $n" >> "$W/bench.log"
  "$BENCH" --url "ws://127.0.0.1:${SPORT[$s]}/" --token "$TOKEN" --json --scenario idle --count "$n" \
    --hold 300 > "$W/idle.out" 2>> "$W/bench.log" &
  BENCH_PID=$!
  ready=""
  for _ in $(seq 1 1200); do # up to 120 s
    ready=$(grep '"event":"ready"' "$W/idle.out" 2>/dev/null)
    [ -n "$ready" ] && break
    kill -0 "$BENCH_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    log "warning: $s idle $n never became ready"; FAILS=$((FAILS + 1))
    kill_pids "$BENCH_PID"; wait "$BENCH_PID" 2>/dev/null; BENCH_PID=""
    return 0
  fi
  sleep 1 # let lazily allocated buffers and runtimes settle
  pids=$(tree_pids "${SPID[$s]}")
  rss=$(rss_kib $pids); pss=$(pss_kib $pids); avail=$(memavail_kib); used=$(memused_kib)
  tunnels=$(jget tunnels "$ready")
  kill -TERM "$BENCH_PID" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$BENCH_PID" 2>/dev/null || break; sleep 0.1; done
  kill_pids "$BENCH_PID"; wait "$BENCH_PID" 2>/dev/null; BENCH_PID=""
  settle "$s"; sleep 1 # the tunnels have closed: what does the server give back?
  local after
  after=$(rss_kib $(tree_pids "${SPID[$s]}"))
  cat "$W/idle.out" >> "$W/results.jsonl"
  local bad=0 dropped
  dropped=$(jget dropped "$(grep '"event":"done"' "$W/idle.out")")
  if [ "${tunnels:-0}" -lt "$n" ]; then
    log "warning: $s opened only ${tunnels:-0} of $n idle tunnels"; FAILS=$((FAILS + 1)); bad=1
  fi
  if [ "${dropped:-0}" -gt 0 ]; then
    log "warning: $s dropped $dropped idle tunnels while they were held"; FAILS=$((FAILS + 1)); bad=1
  fi
  [ "${tunnels:-0}" -gt 0 ] || return 0
  if [ $bad = 1 ]; then
    for m in rss rsspt psspt availpt usedpt; do put "$s" "err_${m}_$tag" 1; done
  fi
  put "$s" "rss_$tag" "$(awk -v r="$rss" 'BEGIN{printf "%.2f", r/1024}')"
  [ -n "$after" ] && put "$s" "rssafter_$tag" "$(awk -v r="$after" 'BEGIN{printf "%.2f", r/1024}')"
  put "$s" "rsspt_$tag" "$(awk -v r="$rss" -v b="${IDLE_RSS0[$s]}" -v n="$tunnels" 'BEGIN{printf "%.2f", (r-b)/n}')"
  put "$s" "psspt_$tag" "$(awk -v r="$pss" -v b="${IDLE_PSS0[$s]}" -v n="$tunnels" 'BEGIN{printf "%.2f", (r-b)/n}')"
  put "$s" "availpt_$tag" "$(awk -v a="$avail" -v b="$base_avail" -v n="$tunnels" 'BEGIN{printf "%.2f", (b-a)/n}')"
  put "$s" "usedpt_$tag" "$(awk -v u="$used" -v b="$base_used" -v n="$tunnels" 'BEGIN{printf "%.2f", (u-b)/n}')"
  put "$s" "procs" "$(echo $pids | wc -w)"
}

declare -A IDLE_RSS0 IDLE_PSS0
measure_idle_rss() { # $1 = 1: record as the "idle RSS" rows
  local s pids
  for s in "${ACTIVE[@]}"; do
    [ -n "${SPID[$s]:-}" ] || continue
    settle "$s"
    pids=$(tree_pids "${SPID[$s]}")
    IDLE_RSS0[$s]=$(rss_kib $pids)
    IDLE_PSS0[$s]=$(pss_kib $pids)
    [ "$1" = 1 ] || continue
    put "$s" idle_rss "$(awk -v r="${IDLE_RSS0[$s]}" 'BEGIN{printf "%.2f", r/1024}')"
    put "$s" idle_pss "$(awk -v r="${IDLE_PSS0[$s]}" 'BEGIN{printf "%.2f", r/1024}')"
  done
}

# fresh servers for every memory repetition, so retained heaps do not hide per-tunnel cost
for rep in $(seq 1 "$REPS"); do
  log "memory rep $rep/$REPS: idle RSS and $IDLE_N idle tunnels"
  start_all
  measure_idle_rss 1
  for s in "${ACTIVE[@]}"; do idle_run "$s" "$IDLE_N" small; done
  stop_all
done
if [ "$LARGE_N" -gt 0 ]; then
  log "memory: $LARGE_N idle tunnels"
  start_all
  measure_idle_rss 0
  for s in "${ACTIVE[@]}"; do idle_run "$s" "$LARGE_N" large; done
  stop_all
fi

# ---------------------------------------------------------------- throughput, setup, echo
log "throughput / setup / echo: ${REPS} rep(s)"
start_all
declare -A CPU BYTES
SCENARIOS=(c2t t2c c2t64 t2c64 setup-seq setup-32 echo)
for rep in $(seq 1 "$REPS"); do
  for s in "${ACTIVE[@]}"; do for d in c2t t2c; do CPU[$s,$d]=0; BYTES[$s,$d]=0; done; done
  for sc in "${SCENARIOS[@]}"; do
    for s in "${ACTIVE[@]}"; do
      [ -n "${SPID[$s]:-}" ] && kill -0 "${SPID[$s]}" 2>/dev/null || continue
      settle "$s"
      case $sc in
        c2t|t2c|c2t64|t2c64)
          pids=$(tree_pids "${SPID[$s]}"); c0=$(cpu_ticks $pids)
          bench "$s" --scenario "$sc" --seconds "$SECONDS_BULK"
          settle "$s"
          pids=$(tree_pids "${SPID[$s]}"); c1=$(cpu_ticks $pids)
          record "$s" "$sc" mbps
          bt=$(jget bytes_total "$LINE"); d=${sc:0:3}
          if [ "$LAST_RC" -ne 2 ] && [ -n "$bt" ] && [ "$bt" -gt 0 ]; then
            CPU[$s,$d]=$(( ${CPU[$s,$d]} + c1 - c0 )); BYTES[$s,$d]=$(( ${BYTES[$s,$d]} + bt ))
          fi
          c=$(jget client_cpu_s "$LINE"); t=$(jget elapsed "$LINE")
          [ -n "$c" ] && [ -n "$t" ] && put "$s" "clientcpu_$sc" "$(awk -v c="$c" -v t="$t" 'BEGIN{ if (t > 0) printf "%.1f", 100*c/t }')"
          ;;
        setup-seq|setup-32)
          bench "$s" --scenario "$sc" --seconds "$SETUP_SECONDS" --count 15000
          record "$s" "$sc" rate
          record "$s" "${sc}_p99" p99_ms
          ;;
        echo)
          bench "$s" --scenario echo --count 10000
          record "$s" echo_p50 p50_us
          record "$s" echo_p99 p99_us
          ;;
      esac
    done
  done
  for s in "${ACTIVE[@]}"; do
    for d in c2t t2c; do
      [ "${BYTES[$s,$d]}" -gt 0 ] && put "$s" "cpugb_$d" \
        "$(awk -v c="${CPU[$s,$d]}" -v h="$HZ" -v b="${BYTES[$s,$d]}" 'BEGIN{printf "%.3f", (c/h)/(b/1e9)}')"
    done
    b=$(( ${BYTES[$s,c2t]} + ${BYTES[$s,t2c]} ))
    [ "$b" -gt 0 ] && put "$s" cpugb_all \
      "$(awk -v c="$(( ${CPU[$s,c2t]} + ${CPU[$s,t2c]} ))" -v h="$HZ" -v b="$b" 'BEGIN{printf "%.3f", (c/h)/(b/1e9)}')"
  done
  log "rep $rep/$REPS done"
done
for s in "${ACTIVE[@]}"; do
  if [ -n "${SPID[$s]:-}" ] && ! kill -0 "${SPID[$s]}" 2>/dev/null; then
    log "warning: $s died during the run (see $W/$s.log)"; FAILS=$((FAILS + 1))
  fi
done
stop_all

LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
declare -p REPS SECONDS_BULK SETUP_SECONDS IDLE_N LARGE_N FAILS LOAD0 LOAD1 RUN_DATE ACTIVE > "$W/meta.sh"
report
cat "$W/table.md"
[ -n "$OUT" ] && cp "$W/table.md" "$OUT"
log "total $(( $(date +%s) - T_START )) s"
exit 0
