#!/usr/bin/env bash
# Instructions per message of echo servers, counted by valgrind's callgrind: repeatable whatever
# else the machine is doing (a shared, noisy machine makes wall-clock ratios wobble; instruction
# counts do not). For each server binary and mode, the echo runs under callgrind while the load
# generator echoes for a short and a long window; the difference of the two totals over the
# difference of the message counts is the cost of one message, start-up and shutdown excluded.
#
#   bench/instructions.sh NAME=PATH [NAME=PATH ...]
#
# Environment (all optional):
#   SCENARIOS  latency (1 conn x 1 in flight x 32 B) and/or throughput (100 conns x 8 x 32 B)
#              [latency throughput]; large (10 conns x 1 x 64 KiB); tls-latency and tls-throughput: the same over TLS (the
#              echo built with --features tls; a self-signed certificate made by openssl;
#              the connections' handshakes fall in both windows, so they cancel out)
#   MODES      worker (--workers 1 --loops 1) and/or inline (--inline --loops 1) [worker inline];
#              plain: no flags (a peer's binary, or the echo's defaults)
#   SHORT, LONG   seconds of the two windows [2, 6]
# Prints one line per (server, mode, scenario): user-space instructions per message, every
# thread of the server together (the event loop, the workers, the idle main and signal threads).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOADGEN="$BENCH/target/release/loadgen"
SCENARIOS="${SCENARIOS:-latency throughput}"
MODES="${MODES:-worker inline}"
SHORT="${SHORT:-2}"
LONG="${LONG:-6}"
[ $# -gt 0 ] || { sed -n '2,/^set/{/^#/s/^# \{0,1\}//p}' "$0"; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
[ -x "$LOADGEN" ] || (cd "$BENCH" && cargo build --quiet --release -p loadgen)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# For the tls-* scenarios: a self-signed ECDSA P-256 certificate for 127.0.0.1 (as bench/run.sh).
if [[ " $SCENARIOS " == *" tls-"* ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
        -days 2 -keyout "$work/key.pem" -out "$work/cert.pem" >"$work/openssl.log" 2>&1 ||
        { cat "$work/openssl.log" >&2; exit 1; }
fi

# A free loopback port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Runs echo binary $1 with flags $2 under callgrind while loadgen echoes for $3 seconds with
# flags $4; prints "<messages> <instructions>".
measure() {
    local bin=$1 flags=$2 seconds=$3 load=$4 port out
    port=$(free_port)
    out="$work/cg.$RANDOM"
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out.%p" \
        "$bin" --addr "127.0.0.1:$port" $flags >/dev/null 2>"$out.log" &
    local pid=$!
    for _ in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    local messages
    messages=$("$LOADGEN" --addr "127.0.0.1:$port" --warmup 0 --duration "$seconds" $load |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"])')
    # SIGINT stops the echo examples; a peer that ignores it gets SIGTERM (callgrind still
    # writes its totals).
    kill -INT "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    python3 - "$out.$pid" "$messages" <<'PY'
import glob, re, sys
prefix, messages = sys.argv[1], sys.argv[2]
total = 0
for path in glob.glob(prefix + "*"):
    found = re.search(r"^(?:summary|totals): (\d+)", open(path, errors="replace").read(), re.M)
    total += int(found.group(1)) if found else 0
print(messages, total)
PY
}

printf '%-28s %-7s %-10s %12s\n' server mode scenario "instr/msg"
for spec in "$@"; do
    name=${spec%%=*}
    bin=${spec#*=}
    for mode in $MODES; do
        case $mode in
            worker) flags="--workers 1 --loops 1" ;;
            inline) flags="--inline --loops 1" ;;
            plain) flags="" ;;
        esac
        for scenario in $SCENARIOS; do
            local_flags=$flags
            case $scenario in
                latency) load="--connections 1 --inflight 1 --size 32" ;;
                throughput) load="--connections 100 --inflight 8 --size 32" ;;
                large) load="--connections 10 --inflight 1 --size 65536" ;;
                tls-latency | tls-throughput)
                    load="--connections 1 --inflight 1 --size 32"
                    [ "$scenario" = tls-latency ] || load="--connections 100 --inflight 8 --size 32"
                    load+=" --tls --tls-ca $work/cert.pem"
                    local_flags+=" --tls-cert $work/cert.pem --tls-key $work/key.pem"
                    ;;
                *) echo "unknown scenario $scenario" >&2; exit 2 ;;
            esac
            read -r m1 i1 <<<"$(measure "$bin" "$local_flags" "$SHORT" "$load")"
            read -r m2 i2 <<<"$(measure "$bin" "$local_flags" "$LONG" "$load")"
            per=$(( (i2 - i1) / ( m2 > m1 ? m2 - m1 : 1 ) ))
            printf '%-28s %-7s %-10s %12s   (%s and %s messages)\n' \
                "$name" "$mode" "$scenario" "$per" "$m1" "$m2"
        done
    done
done
