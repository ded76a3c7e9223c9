#!/usr/bin/env bash
# The wsreactor benchmark: every scenario against every server in one run, servers alternating
# (the order rotates each repetition), the server pinned to CPU 0 and the load generator to CPU 1
# (PIN=0: neither pinned, both sharing every CPU). Each run's line has the server's peak RSS
# (VmHWM, read just before it is stopped).
# Results: bench/results/<timestamp>.jsonl (one JSON line per run) and <timestamp>.md (the table
# of medians and ratios, also printed). See bench/README.md.
#
#   bench/run.sh [--quick]
#
# Environment (all optional):
#   SERVERS    servers to run, space-separated [wsreactor wsreactor-default wsreactor-inline
#              tokio-tungstenite fastwebsockets ws-rs gorilla ceiling]
#              (wsreactor-default: the echo with its default threads, a loop and a worker
#              per CPU, instead of --workers 1 --loops 1; wsreactor-hop: the same with
#              --handlers-may-block, every call through a worker)
#              (go-http and hyper are added automatically for the http scenario, node-ws for
#              the compression scenarios deflate and idle-deflate; name node-ws here to run it
#              in the other scenarios too)
#   SCENARIOS  [latency throughput fanin large idle many churn http samecore
#              scale10 scale100 scale1k scale10k json deflate idle-deflate]
#              (fanout1k, fanout10k: one publisher, 1,000 / 10,000 subscribers; not in the
#              default list, name them here)
#              (tls-latency tls-throughput tls-large tls-churn tls-idle: those five over TLS,
#              wss://, against the wsreactor modes, tokio-tungstenite, fastwebsockets and
#              gorilla; not in the default list; "tls" names all five)
#   TLS_GROUPS loadgen --tls-groups in the tls-* scenarios, e.g. X25519 [unset: the provider's
#              default, X25519MLKEM768 first; gorilla on Debian's Go 1.19 has only X25519]
#   REPS       repetitions [3; --quick: 1]
#   WARMUP, DURATION   seconds of warm-up / measurement per run [2, 5; --quick: 0.5, 1.5]
#   IDLE_HOLD  seconds the idle connections are held [4; --quick: 2]
#   WRK_DURATION       seconds of each wrk run [8; --quick: 2]
#   SERVER_CPU, LOADGEN_CPU   CPUs to pin to [0, 1]
#   PIN        1: server on SERVER_CPU, load generator (and wrk) on LOADGEN_CPU; 0: neither is
#              pinned, they share every CPU, as on a user's small box (samecore still puts
#              both on SERVER_CPU: that is the scenario) [1]
#   NO_BUILD=1 skip the builds (use bench/bin/ and bench/target/release/loadgen as they are)
#   BASELINE   path of an echo example binary built from another commit: adds the servers
#              wsreactor-baseline and wsreactor-baseline-inline (name them in SERVERS), so a
#              change is measured against its parent in the same run (and
#              wsreactor-baseline-default, its default threads)
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
BIN="$BENCH/bin"
LOADGEN="$BENCH/target/release/loadgen"

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h | --help)
            # The comment block at the top, up to the first line that is not a comment.
            sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
            exit 0
            ;;
        *)
            echo "run.sh: unknown argument $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    REPS="${REPS:-1}" WARMUP="${WARMUP:-0.5}" DURATION="${DURATION:-1.5}"
    IDLE_HOLD="${IDLE_HOLD:-2}" WRK_DURATION="${WRK_DURATION:-2}"
else
    REPS="${REPS:-3}" WARMUP="${WARMUP:-2}" DURATION="${DURATION:-5}"
    IDLE_HOLD="${IDLE_HOLD:-4}" WRK_DURATION="${WRK_DURATION:-8}"
fi
SERVERS="${SERVERS:-wsreactor wsreactor-default wsreactor-inline tokio-tungstenite fastwebsockets ws-rs gorilla ceiling}"
SCENARIOS="${SCENARIOS:-latency throughput fanin large idle many churn http samecore scale10 scale100 scale1k scale10k json deflate idle-deflate}"
# "tls" in SCENARIOS: every TLS scenario.
TLS_ALL="tls-latency tls-throughput tls-large tls-churn tls-idle"
SCENARIOS="$(for s in $SCENARIOS; do if [ "$s" = tls ]; then echo "$TLS_ALL"; else echo "$s"; fi; done | xargs)"
SERVER_CPU="${SERVER_CPU:-0}"
LOADGEN_CPU="${LOADGEN_CPU:-1}"
PIN="${PIN:-1}"
case "$PIN" in
    0 | 1) ;;
    *)
        echo "run.sh: PIN must be 0 or 1, not $PIN" >&2
        exit 2
        ;;
esac

log() { printf '%s\n' "run.sh: $*" >&2; }

# --- Limits and tools -------------------------------------------------------------------------

# 15,000 client sockets in the load generator and as many in the server: each process needs
# well over 15,000 descriptors (20,000 is the hard limit here).
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
log "open files limit: $(ulimit -n)"

# taskset pins the processes (PIN=1, and the samecore scenario either way).
if { [ "$PIN" = 1 ] || [[ " $SCENARIOS " == *" samecore "* ]]; } && ! command -v taskset >/dev/null; then
    log "taskset is missing (util-linux): apt-get install -y util-linux"
    exit 1
fi
if [ "$PIN" = 0 ]; then
    log "PIN=0: server and load generator not pinned, sharing $(nproc) CPUs (samecore still on CPU $SERVER_CPU)"
fi
if [ "$(nproc)" -lt 2 ]; then
    log "only $(nproc) CPU: server and load generator share CPU 0"
    LOADGEN_CPU=0
fi

# Ephemeral ports for 15,000 client connections (plus churn's TIME_WAITs, which loopback may reuse
# when net.ipv4.tcp_tw_reuse is 1 or 2).
read -r PORT_LO PORT_HI < /proc/sys/net/ipv4/ip_local_port_range
TW_REUSE="$(cat /proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null || echo '?')"
log "ephemeral ports $PORT_LO-$PORT_HI ($((PORT_HI - PORT_LO + 1))), tcp_tw_reuse=$TW_REUSE"
if [ $((PORT_HI - PORT_LO + 1)) -lt 16000 ]; then
    log "WARNING: fewer than 16,000 ephemeral ports: the 'many' scenario may fail" \
        "(sysctl -w net.ipv4.ip_local_port_range='15000 65000')"
fi

# --- Build ------------------------------------------------------------------------------------

mkdir -p "$BIN" "$BENCH/results"
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "building loadgen"
    (cd "$BENCH" && cargo build --release --quiet -p loadgen)
    # With the library's `tls` feature when it has one (wss:// for the tls-* scenarios; the plain
    # scenarios run the same binary without TLS flags).
    ECHO_FEATURES=()
    if awk '/^\[/ { f = ($0 == "[features]") } f && /^tls *=/ { found = 1 } END { exit !found }' "$ROOT/Cargo.toml"; then
        ECHO_FEATURES=(--features tls)
    fi
    log "building the wsreactor echo example${ECHO_FEATURES[*]:+ (${ECHO_FEATURES[*]})}"
    (cd "$ROOT" && cargo build --release --quiet "${ECHO_FEATURES[@]}" --example echo)
    # A copy, so that a rebuild in the repo during the run does not change the binary under test.
    cp -f "$ROOT/target/release/examples/echo" "$BIN/wsreactor-echo"
    if [ -x "$BENCH/peers/build.sh" ] || [ -f "$BENCH/peers/build.sh" ]; then
        log "building the peers (bench/peers/build.sh)"
        bash "$BENCH/peers/build.sh" || log "WARNING: bench/peers/build.sh failed; peers without a binary are skipped"
    else
        log "WARNING: bench/peers/build.sh not found; peers without a binary in bench/bin are skipped"
    fi
fi
[ -x "$LOADGEN" ] || { log "no $LOADGEN"; exit 1; }
[ -x "$BIN/wsreactor-echo" ] || { log "no $BIN/wsreactor-echo"; exit 1; }
if [ -n "${BASELINE:-}" ]; then
    [ -x "$BASELINE" ] || { log "BASELINE=$BASELINE is not an executable"; exit 1; }
    cp -f "$BASELINE" "$BIN/wsreactor-baseline-echo"
    log "baseline: $BASELINE"
fi

# wrk for the plain HTTP scenario.
WRK=1
case " $SCENARIOS " in
    *" http "*)
        if ! command -v wrk >/dev/null; then
            log "installing wrk"
            { apt-get install -y wrk >/dev/null 2>&1 ||
                { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; }; } || true
        fi
        command -v wrk >/dev/null || { WRK=0; log "WARNING: no wrk: the http scenario is skipped"; }
        ;;
esac

# The echo example's --loops / --inline / --compression flags may not exist yet: probe its --help.
# (Compression is on by default in the echo example, so no flag is passed for it; without it the
# load generator fails the deflate scenarios loudly.)
ECHO_HELP="$("$BIN/wsreactor-echo" --help 2>&1 || true)"
HAS_LOOPS=0 HAS_INLINE=0 HAS_COMPRESSION=0 HAS_TLS=0
grep -q -- '--loops' <<<"$ECHO_HELP" && HAS_LOOPS=1
grep -q -- '--inline' <<<"$ECHO_HELP" && HAS_INLINE=1
grep -q -- '--compression' <<<"$ECHO_HELP" && HAS_COMPRESSION=1
grep -q -- '--tls-cert' <<<"$ECHO_HELP" && HAS_TLS=1
log "wsreactor echo: --loops $([ $HAS_LOOPS = 1 ] && echo yes || echo 'not yet')," \
    "--inline $([ $HAS_INLINE = 1 ] && echo yes || echo 'not yet')," \
    "--compression $([ $HAS_COMPRESSION = 1 ] && echo yes || echo 'not yet')," \
    "--tls-cert $([ $HAS_TLS = 1 ] && echo yes || echo 'no (not built with --features tls?)')"
# The baseline binary may predate TLS: then it sits out the tls-* scenarios.
BASELINE_HAS_TLS=0
if [ -n "${BASELINE:-}" ] && "$BIN/wsreactor-baseline-echo" --help 2>&1 | grep -q -- '--tls-cert'; then
    BASELINE_HAS_TLS=1
fi
LOOPS_FLAG=()
[ "$HAS_LOOPS" = 1 ] && LOOPS_FLAG=(--loops 1)

# --- Servers ----------------------------------------------------------------------------------

# Scenarios with permessage-deflate, and the servers that implement it.
DEFLATE_SCENARIOS=" deflate idle-deflate "
COMPRESSING=" wsreactor wsreactor-inline wsreactor-default wsreactor-hop wsreactor-baseline wsreactor-baseline-inline wsreactor-baseline-default gorilla node-ws "
NODE_WS="$BENCH/peers/node-ws"
# Fan-out scenarios, and the servers with the /sub/TOPIC and /pub/TOPIC paths.
FANOUT_SCENARIOS=" fanout1k fanout10k "
FANOUT_SERVERS=" wsreactor wsreactor-inline wsreactor-default wsreactor-hop wsreactor-baseline wsreactor-baseline-inline wsreactor-baseline-default gorilla node-ws "
# TLS scenarios (wss://), and the servers with a TLS mode: the echo example's --tls-cert/--tls-key
# (rustls), tokio-echo's (tokio-rustls), gorilla-echo's -tls-cert/-tls-key (crypto/tls).
TLS_SCENARIOS=" $TLS_ALL "
TLS_SERVERS=" wsreactor wsreactor-inline wsreactor-default wsreactor-hop wsreactor-baseline wsreactor-baseline-inline wsreactor-baseline-default tokio-tungstenite fastwebsockets gorilla "
# The http scenario: the echo example's modes and the plain HTTP peers (go-http and hyper join it
# whatever SERVERS says); the HTTP peers run in no WebSocket scenario.
HTTP_SERVERS=" wsreactor wsreactor-inline wsreactor-default wsreactor-hop wsreactor-baseline wsreactor-baseline-inline wsreactor-baseline-default go-http hyper "
HTTP_PEERS=" go-http hyper "
# The page every server of the http scenario sends on GET /: the echo example's own (hyper-http
# has it built in; go-http reads it).
PAGE="$ROOT/examples/echo/page.html"
# The certificate and key of the run (made below when a TLS scenario is named).
TLS_CERT="" TLS_KEY=""

# Sets CMD to the command line of server $1 on port $2 for scenario $3.
server_cmd() {
    local addr="127.0.0.1:$2"
    # Generous limits so that no scenario hits a configured cap: 15,000 connections.
    local ws=("$BIN/wsreactor-echo" --addr "$addr" --workers 1 --max-connections 20000 "${LOOPS_FLAG[@]}")
    # wss:// in the TLS scenarios: the same flags for the echo example and tokio-echo.
    local tls=()
    case "$TLS_SCENARIOS" in *" ${3:-} "*) tls=(--tls-cert "$TLS_CERT" --tls-key "$TLS_KEY") ;; esac
    ws+=("${tls[@]}")
    case "$1" in
        wsreactor) CMD=("${ws[@]}") ;;
        wsreactor-inline) CMD=("${ws[@]}" --inline) ;;
        # The echo as a user runs it: its default threads (a loop and a worker per CPU).
        wsreactor-default) CMD=("$BIN/wsreactor-echo" --addr "$addr" --max-connections 20000 "${tls[@]}") ;;
        # The same, declaring none of its calls non-blocking: every message and page goes to a
        # worker and back (what a handler that may block costs).
        wsreactor-hop) CMD=("$BIN/wsreactor-echo" --addr "$addr" --max-connections 20000 --handlers-may-block "${tls[@]}") ;;
        wsreactor-baseline | wsreactor-baseline-inline)
            [ -n "${BASELINE:-}" ] || return 1
            CMD=("$BIN/wsreactor-baseline-echo" "${ws[@]:1}")
            if [ "$1" = wsreactor-baseline-inline ]; then CMD+=(--inline); fi
            ;;
        wsreactor-baseline-default)
            [ -n "${BASELINE:-}" ] || return 1
            CMD=("$BIN/wsreactor-baseline-echo" --addr "$addr" --max-connections 20000 "${tls[@]}")
            ;;
        tokio-tungstenite) CMD=("$BIN/tokio-echo" --addr "$addr" "${tls[@]}") ;;
        fastwebsockets) CMD=("$BIN/fastwebsockets-echo" --addr "$addr" "${tls[@]}") ;;
        ws-rs) CMD=("$BIN/ws-rs-echo" --addr "$addr") ;;
        gorilla)
            CMD=("$BIN/gorilla-echo" -addr "$addr")
            case "$DEFLATE_SCENARIOS" in *" ${3:-} "*) CMD+=(-compress) ;; esac
            [ ${#tls[@]} -eq 0 ] || CMD+=(-tls-cert "$TLS_CERT" -tls-key "$TLS_KEY")
            ;;
        # Compression stays enabled: it is used only when the client offers it.
        node-ws) CMD=("$(command -v node || echo node)" "$NODE_WS/server.js" --addr "$addr") ;;
        go-http) CMD=("$BIN/go-http" -addr "$addr" -page "$PAGE") ;;
        hyper) CMD=("$BIN/hyper-http" --addr "$addr") ;;
        ceiling) CMD=("$BIN/ceiling" --addr "$addr") ;;
        *) return 1 ;;
    esac
}

# Whether server $1 can run here.
available() {
    case "$1" in
        wsreactor-inline) [ "$HAS_INLINE" = 1 ] ;;
        node-ws) command -v node >/dev/null && [ -f "$NODE_WS/node_modules/ws/package.json" ] ;;
        *) server_cmd "$1" 1 && [ -x "${CMD[0]}" ] ;;
    esac
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

SPID=""
SERVER_LOG="$BENCH/results/server.log"
: >"$SERVER_LOG"

# Sets PINNED to the command prefix that pins to CPU $1: taskset, or nothing when $1 is empty.
pinned() {
    PINNED=()
    [ -z "$1" ] || PINNED=(taskset -c "$1")
}

# Starts server $1 pinned to CPU $2 (unpinned if $2 is empty) for scenario $3; sets SPID and PORT.
# Returns 1 if it does not accept in 15 s.
start_server() {
    PORT="$(free_port)"
    server_cmd "$1" "$PORT" "$3"
    pinned "$2"
    echo "=== $1 ${PINNED[*]} ${CMD[*]}" >>"$SERVER_LOG"
    # taskset execs the server (and bash execs a lone background command), so $! is the
    # server's own PID (for /proc/PID/stat and /proc/PID/status).
    RUST_LOG=warn "${PINNED[@]}" "${CMD[@]}" >>"$SERVER_LOG" 2>&1 &
    SPID=$!
    local deadline=$((SECONDS + 15))
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
        if ! kill -0 "$SPID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            log "$1 did not start (see $SERVER_LOG)"
            stop_server
            return 1
        fi
        sleep 0.05
    done
}

# Stops the server this script started (by its PID only): SIGTERM, then SIGKILL after 6 s.
stop_server() {
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2>/dev/null || true
    local i
    for i in $(seq 120); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
}
# The run's own temporary directory (the TLS certificate and key), removed at exit.
RUN_TMP=""
trap 'stop_server; [ -z "$RUN_TMP" ] || rm -rf "$RUN_TMP"' EXIT
trap 'exit 130' INT TERM

# --- Scenarios --------------------------------------------------------------------------------

# Loadgen flags of scenario $1 (empty for http).
scenario_args() {
    local timing=(--warmup "$WARMUP" --duration "$DURATION")
    case "$1" in
        latency | samecore) ARGS=(--connections 1 --inflight 1 --size 32 "${timing[@]}") ;;
        throughput) ARGS=(--connections 100 --inflight 8 --size 32 "${timing[@]}") ;;
        fanin) ARGS=(--connections 1000 --inflight 1 --size 1024 "${timing[@]}") ;;
        large) ARGS=(--connections 10 --inflight 1 --size 65536 "${timing[@]}") ;;
        idle) ARGS=(--mode idle --connections 10000 --duration "$IDLE_HOLD") ;;
        many) ARGS=(--connections 15000 --inflight 1 --size 32 "${timing[@]}") ;;
        churn) ARGS=(--mode churn --connections 50 --size 32 "${timing[@]}") ;;
        scale10) ARGS=(--connections 10 --inflight 1 --size 32 "${timing[@]}") ;;
        scale100) ARGS=(--connections 100 --inflight 1 --size 32 "${timing[@]}") ;;
        scale1k) ARGS=(--connections 1000 --inflight 1 --size 32 "${timing[@]}") ;;
        scale10k) ARGS=(--connections 10000 --inflight 1 --size 32 "${timing[@]}") ;;
        # 1 KiB JSON-like text messages: plain, then compressed (permessage-deflate).
        json) ARGS=(--json --connections 100 --inflight 8 --size 1024 "${timing[@]}") ;;
        deflate) ARGS=(--deflate --connections 100 --inflight 8 --size 1024 "${timing[@]}") ;;
        idle-deflate) ARGS=(--mode idle --deflate --connections 10000 --duration "$IDLE_HOLD") ;;
        # One publisher (/pub/bench), N subscribers (/sub/bench), 32 B messages; at most 32
        # (1k) or 4 (10k) of them not yet received by every subscriber: about 32,000-40,000
        # deliveries in flight either way (latency ~ deliveries in flight / deliveries per s).
        fanout1k) ARGS=(--mode fanout --connections 1000 --inflight 32 --size 32 "${timing[@]}") ;;
        fanout10k) ARGS=(--mode fanout --connections 10000 --inflight 4 --size 32 "${timing[@]}") ;;
        http) ARGS=() ;;
        # The same over TLS: loadgen --tls, trusting the run's certificate. tls-churn's cycles
        # include the TLS handshake (a full one: loadgen resumes no session).
        tls-latency | tls-throughput | tls-large | tls-churn | tls-idle)
            scenario_args "${1#tls-}"
            ARGS+=(--tls --tls-ca "$TLS_CERT")
            [ -z "${TLS_GROUPS:-}" ] || ARGS+=(--tls-groups "$TLS_GROUPS")
            ;;
        *) return 1 ;;
    esac
}

# Servers of scenario $1.
scenario_servers() {
    local s out=()
    if [ "$1" = http ]; then
        for s in $SERVERS; do
            case "$HTTP_SERVERS" in *" $s "*) out+=("$s") ;; esac
        done
    elif [[ "$DEFLATE_SCENARIOS" == *" $1 "* ]]; then
        # Only the servers that implement permessage-deflate; node-ws is always one of them.
        for s in $SERVERS $NODE_WS_EXTRA; do
            case "$COMPRESSING" in *" $s "*) out+=("$s") ;; esac
        done
    elif [[ "$FANOUT_SCENARIOS" == *" $1 "* ]]; then
        for s in $SERVERS; do
            case "$FANOUT_SERVERS" in *" $s "*) out+=("$s") ;; esac
        done
    elif [[ "$TLS_SCENARIOS" == *" $1 "* ]]; then
        for s in $SERVERS; do
            case "$s" in
                wsreactor | wsreactor-inline) [ "$HAS_TLS" = 1 ] || continue ;;
                wsreactor-baseline*) [ "$BASELINE_HAS_TLS" = 1 ] || continue ;;
            esac
            case "$TLS_SERVERS" in *" $s "*) out+=("$s") ;; esac
        done
    else
        for s in $SERVERS; do
            case "$HTTP_PEERS" in *" $s "*) ;; *) out+=("$s") ;; esac
        done
    fi
    echo "${out[@]}"
}

STAMP="$(date +%Y%m%d-%H%M%S)"
JSONL="$BENCH/results/$STAMP.jsonl"
MD="$BENCH/results/$STAMP.md"

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Converts wrk's "123.45us" / "1.23ms" / "2.00s" to microseconds.
wrk_us() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); print v + 0 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 }
        else print "null" }'
}

# The peak resident set of process $1 in KiB (VmHWM of /proc/PID/status: all its threads share
# one), or null if it is gone.
peak_rss_kib() {
    local kib
    kib="$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)"
    echo "${kib:-null}"
}

# Runs one scenario against one server; appends one JSON line to $JSONL, with the server's peak
# RSS (server_peak_rss_kib) read after the load and before the server is stopped.
run_one() {
    local scen="$1" server="$2" rep="$3"
    local scpu="$SERVER_CPU" lcpu="$LOADGEN_CPU"
    # PIN=0: neither is pinned; samecore puts both on SERVER_CPU whatever PIN says.
    [ "$PIN" = 1 ] || scpu="" lcpu=""
    [ "$scen" = samecore ] && scpu="$SERVER_CPU" lcpu="$SERVER_CPU"
    local tag="\"scenario\":\"$scen\",\"server\":\"$server\",\"rep\":$rep"
    if ! start_server "$server" "$scpu" "$scen"; then
        echo "{$tag,\"failed\":\"server did not start\"}" >>"$JSONL"
        return 0
    fi
    local line
    pinned "$lcpu"
    if [ "$scen" = http ]; then
        local tck t0 t1 out rps p50 p99 p999 errs
        tck="$(getconf CLK_TCK)"
        t0="$(cpu_ticks "$SPID")"
        # wrk_latency.lua adds the p99.9 that --latency leaves out.
        out="$("${PINNED[@]}" wrk -t1 -c100 -d"${WRK_DURATION}s" --latency -s "$BENCH/wrk_latency.lua" \
            "http://127.0.0.1:$PORT/" 2>&1 || true)"
        t1="$(cpu_ticks "$SPID")"
        rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
        p50="$(wrk_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
        p99="$(wrk_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
        p999="$(awk '$1 == "p99.9_us" { v = $2 } END { print (v == "") ? "null" : v }' <<<"$out")"
        errs="$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' <<<"$out")"
        if [ -n "$rps" ]; then
            local reqs
            reqs="$(awk '/requests in/ { print $1 }' <<<"$out")"
            line="$(awk -v t="$tag" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v p999="$p999" -v e="$errs" \
                -v d="$WRK_DURATION" -v t0="$t0" -v t1="$t1" -v tck="$tck" -v n="$reqs" 'BEGIN {
                cpu = (n > 0) ? sprintf("%.3f", (t1 - t0) / tck * 1e6 / n) : "null"
                printf "{\"mode\":\"http\",%s,\"connections\":100,\"seconds\":%s,\"requests\":%d,\"requests_per_sec\":%s,\"p50_us\":%s,\"p99_us\":%s,\"p999_us\":%s,\"errors\":%d,\"server_cpu_us_per_req\":%s}\n", t, d, n, rps, p50, p99, p999, e, cpu }')"
        else
            line="{$tag,\"failed\":\"wrk: $(head -c 200 <<<"$out" | tr -d '"\\\n')\"}"
        fi
    else
        scenario_args "$scen"
        line="$("${PINNED[@]}" "$LOADGEN" --addr "127.0.0.1:$PORT" --server-pid "$SPID" \
            --label "scenario=$scen" --label "server=$server" --label "rep=$rep" "${ARGS[@]}")" || true
        case "$line" in
            "{"*) ;;
            *) line="{$tag,\"failed\":\"loadgen failed\"}" ;;
        esac
    fi
    local rss
    rss="$(peak_rss_kib "$SPID")"
    case "$line" in *"}") line="${line%\}},\"server_peak_rss_kib\":$rss}" ;; esac
    stop_server
    echo "$line" >>"$JSONL"
    printf '  %-10s %-18s %s\n' "$scen" "$server" "$line" >&2
}

# --- The run ----------------------------------------------------------------------------------

# The HTTP peers join the http scenario whatever SERVERS says (each server once).
WANTED=" "
for s in $SERVERS; do [[ "$WANTED" == *" $s "* ]] || WANTED+="$s "; done
if [[ " $SCENARIOS " == *" http "* ]]; then
    for s in $HTTP_PEERS; do [[ "$WANTED" == *" $s "* ]] || WANTED+="$s "; done
fi
RUN_SERVERS=()
for s in $WANTED; do
    if available "$s"; then RUN_SERVERS+=("$s"); else log "skipping $s: not available"; fi
done
SERVERS="${RUN_SERVERS[*]}"

# TLS scenarios: a self-signed ECDSA P-256 certificate for localhost and 127.0.0.1, made once per
# run in its temporary directory. CA:FALSE (openssl's default for -x509 is CA:TRUE) makes it a
# server certificate that webpki accepts as it is, with itself as the CA (loadgen --tls-ca).
RUN_TLS=0
for scen in $SCENARIOS; do [[ "$TLS_SCENARIOS" == *" $scen "* ]] && RUN_TLS=1; done
if [ "$RUN_TLS" = 1 ]; then
    if ! command -v openssl >/dev/null; then
        log "installing openssl"
        { apt-get install -y openssl >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 && apt-get install -y openssl >/dev/null 2>&1; }; } || true
    fi
    command -v openssl >/dev/null || { log "no openssl: cannot make the TLS certificate"; exit 1; }
    RUN_TMP="$(mktemp -d)"
    TLS_CERT="$RUN_TMP/cert.pem" TLS_KEY="$RUN_TMP/key.pem"
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
        -days 2 -keyout "$TLS_KEY" -out "$TLS_CERT" >"$RUN_TMP/openssl.log" 2>&1; then
        cat "$RUN_TMP/openssl.log" >&2
        log "openssl could not make the TLS certificate"
        exit 1
    fi
    log "TLS certificate: $TLS_CERT (ECDSA P-256, self-signed, localhost)"
    if [ "$HAS_TLS" != 1 ]; then
        for s in $SERVERS; do
            case "$s" in wsreactor | wsreactor-inline)
                log "$s has no --tls-cert: not run in the TLS scenarios" ;;
            esac
        done
    fi
    if [ -n "${BASELINE:-}" ] && [ "$BASELINE_HAS_TLS" != 1 ]; then
        log "the baseline echo has no --tls-cert: wsreactor-baseline* not run in the TLS scenarios"
    fi
fi
# node-ws joins the compression scenarios even when SERVERS does not name it (as go-http does http).
NODE_WS_EXTRA=""
if [[ " $SCENARIOS " == *" deflate "* || " $SCENARIOS " == *" idle-deflate "* ]] &&
    [[ " $SERVERS " != *" node-ws "* ]]; then
    if available node-ws; then NODE_WS_EXTRA=node-ws; else log "skipping node-ws: not available"; fi
fi
for s in $SERVERS; do
    if [[ "$COMPRESSING" != *" $s "* && "$HTTP_PEERS" != *" $s "* ]] &&
        [[ " $SCENARIOS " == *" deflate "* || " $SCENARIOS " == *" idle-deflate "* ]]; then
        log "$s has no permessage-deflate: not run in deflate, idle-deflate"
    fi
done

printf '{"mode":"meta","date":"%s","quick":%d,"reps":%d,"warmup":%s,"duration":%s,"idle_hold":%s,"wrk_duration":%s,"servers":"%s","scenarios":"%s","pin":%d,"cpus":%d,"server_cpu":%s,"loadgen_cpu":%s,"loops_flag":%d,"inline_flag":%d,"compression_flag":%d,"tls_flag":%d,"tls_groups":"%s","port_range":"%s-%s","kernel":"%s","cpu_model":"%s"}\n' \
    "$(date -Iseconds)" "$QUICK" "$REPS" "$WARMUP" "$DURATION" "$IDLE_HOLD" "$WRK_DURATION" \
    "$SERVERS${NODE_WS_EXTRA:+ $NODE_WS_EXTRA}" "$SCENARIOS" "$PIN" "$(nproc)" "$SERVER_CPU" "$LOADGEN_CPU" "$HAS_LOOPS" "$HAS_INLINE" "$HAS_COMPRESSION" "$HAS_TLS" "${TLS_GROUPS:-default}" \
    "$PORT_LO" "$PORT_HI" "$(uname -r)" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo | tr -d '"\\')" >"$JSONL"

log "results: $JSONL"
START=$SECONDS
for rep in $(seq "$REPS"); do
    log "repetition $rep/$REPS"
    si=0
    for scen in $SCENARIOS; do
        if [ "$scen" = http ] && [ "$WRK" = 0 ]; then continue; fi
        scenario_args "$scen" || { log "unknown scenario $scen"; exit 2; }
        read -r -a list <<<"$(scenario_servers "$scen")"
        n=${#list[@]}
        [ "$n" -gt 0 ] || continue
        # Round-robin: each repetition (and scenario) starts with a different server.
        for k in $(seq 0 $((n - 1))); do
            run_one "$scen" "${list[$(((k + rep + si) % n))]}" "$rep"
        done
        si=$((si + 1))
    done
done
log "done in $((SECONDS - START)) s"

python3 "$BENCH/report.py" "$JSONL" --markdown "$MD"
log "table: $MD"
