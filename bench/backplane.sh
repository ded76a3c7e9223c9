#!/usr/bin/env bash
# Topics across nodes: wsreactor's Redis backplane against Socket.IO 4 with
# @socket.io/redis-adapter, on one Redis, in one run (docs/benchmarks.md, "Across nodes").
#
#   bench/backplane.sh            # REPS=3 repetitions of every run, ~6 minutes
#
# Each repetition runs, in turn: two wsreactor nodes (the echo example with --redis, one loop and
# one worker each) and two Socket.IO nodes sharing a fresh redis-server, SUBS subscribers on
# each node (the load generator spreads them: --sub-addr), one publisher on the first node;
# then each server alone (no Redis) with the same number of subscribers. The load generator's
# fanout mode measures deliveries per second, publish-to-receive latency per delivery, and the
# CPU time of every server process (both nodes and Redis) per delivery.
#
# Each run is made twice: with WINDOWS' first value of messages in flight (32: throughput, where
# latency is mostly the wait behind the window) and its second (1: latency, one message at a
# time). Knobs: SUBS (per node, 1000), REPS (3), WINDOWS ("32 1"), SIZE (32), WARMUP (2),
# DURATION (5), NO_BUILD=1. Writes results/backplane-<timestamp>.jsonl and prints the medians and ratios.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
SUBS="${SUBS:-1000}"
REPS="${REPS:-3}"
WINDOWS="${WINDOWS:-32 1}"
SIZE="${SIZE:-32}"
WARMUP="${WARMUP:-2}"
DURATION="${DURATION:-5}"
RESULTS="$BENCH/results"
mkdir -p "$RESULTS"
OUT="$RESULTS/backplane-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
LOG="$RESULTS/backplane-server.log"
: >"$LOG"
ulimit -n 20000 2>/dev/null || true

die() { echo "bench/backplane.sh: $*" >&2; exit 1; }
command -v redis-server >/dev/null || die "needs redis-server (apt-get install redis-server)"
command -v node >/dev/null || die "needs node (apt-get install nodejs npm)"

if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --quiet --release --features redis --example echo)
    (cd "$BENCH" && CARGO_TARGET_DIR="$ROOT/target/bench" cargo build --quiet --release -p loadgen)
    if ! node -e 'require(process.argv[1] + "/node_modules/socket.io")' "$BENCH/peers/socketio" 2>/dev/null; then
        (cd "$BENCH/peers/socketio" && npm install --silent --no-audit --no-fund)
    fi
fi
ECHO="$ROOT/target/release/examples/echo"
LOADGEN="$ROOT/target/bench/release/loadgen"
[ -x "$ECHO" ] && [ -x "$LOADGEN" ] || die "build first (without NO_BUILD)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    die "nothing listens on $1"
}
PIDS=()
stop_all() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap stop_all EXIT

# start_node KIND PORT [REDIS_URL]: a wsreactor or socketio node; its pid in $NODE_PID.
start_node() {
    local kind=$1 port=$2 redis=${3:-}
    local extra=()
    [ -n "$redis" ] && extra=(--redis "$redis")
    case $kind in
        wsreactor)
            RUST_LOG=warn "$ECHO" --addr "127.0.0.1:$port" --workers 1 --loops 1 \
                --max-connections 20000 "${extra[@]}" >>"$LOG" 2>&1 &
            ;;
        socketio)
            node "$BENCH/peers/socketio/server.js" --addr "127.0.0.1:$port" "${extra[@]}" >>"$LOG" 2>&1 &
            ;;
    esac
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    wait_port "$port"
}

# run KIND NODES: one measurement, appended to $OUT.
run() {
    local kind=$1 nodes=$2 rep=$3 inflight=$4
    local sio=()
    [ "$kind" = socketio ] && sio=(--socketio)
    local a b pa pb redis_port redis_pid url
    a=$(free_port)
    if [ "$nodes" = 2 ]; then
        redis_port=$(free_port)
        redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
            --daemonize no --loglevel warning >>"$LOG" 2>&1 &
        redis_pid=$!
        PIDS+=("$redis_pid")
        wait_port "$redis_port"
        url="redis://127.0.0.1:$redis_port"
        start_node "$kind" "$a" "$url"; pa=$NODE_PID
        b=$(free_port)
        start_node "$kind" "$b" "$url"; pb=$NODE_PID
        "$LOADGEN" --mode fanout --addr "127.0.0.1:$a" --sub-addr "127.0.0.1:$a" \
            --sub-addr "127.0.0.1:$b" --connections $((2 * SUBS)) --server-pid "$pa" \
            --also-pid "$pb" --also-pid "$redis_pid" --inflight "$inflight" --size "$SIZE" \
            --warmup "$WARMUP" --duration "$DURATION" "${sio[@]}" \
            --label server="$kind" --label nodes=2 --label rep="$rep" --label window="$inflight" >>"$OUT"
    else
        start_node "$kind" "$a"; pa=$NODE_PID
        "$LOADGEN" --mode fanout --addr "127.0.0.1:$a" --connections "$SUBS" --server-pid "$pa" \
            --inflight "$inflight" --size "$SIZE" --warmup "$WARMUP" --duration "$DURATION" \
            "${sio[@]}" --label server="$kind" --label nodes=1 --label rep="$rep" --label window="$inflight" >>"$OUT"
    fi
    stop_all
}

echo "{\"mode\":\"meta\",\"subs_per_node\":$SUBS,\"windows\":\"$WINDOWS\",\"size\":$SIZE,\"warmup\":$WARMUP,\"duration\":$DURATION,\"reps\":$REPS,\"redis\":\"$(redis-server --version | cut -d' ' -f3)\",\"node\":\"$(node --version)\",\"kernel\":\"$(uname -r)\",\"cpus\":$(nproc)}" >"$OUT"
for rep in $(seq 1 "$REPS"); do
    for inflight in $WINDOWS; do
        for kind in wsreactor socketio; do
            run "$kind" 2 "$rep" "$inflight"
            run "$kind" 1 "$rep" "$inflight"
        done
    done
done
echo "results: $OUT"
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta, runs = rows[0], [r for r in rows[1:] if r.get("mode") == "fanout"]
def med(kind, nodes, window, key):
    vals = [r[key] for r in runs if r["server"] == kind and r["nodes"] == nodes
            and r["window"] == window and r.get(key) is not None]
    return statistics.median(vals) if vals else None
keys = [("deliveries_per_sec", "deliveries/s", "higher"), ("p50_us", "p50 µs", "lower"),
        ("p99_us", "p99 µs", "lower"), ("server_cpu_us_per_delivery", "server CPU µs/delivery", "lower"),
        ("errors", "errors", "lower"), ("missed", "missed", "lower")]
print(f"subscribers per node {meta['subs_per_node']}, messages of {meta['size']} B, "
      f"{meta['reps']} repetitions (medians); Redis {meta['redis']}, Node {meta['node']}")
print()
print("| nodes | in flight | metric | wsreactor | Socket.IO | wsreactor / Socket.IO |")
print("|---|---|---|---|---|---|")
for window in meta["windows"].split():
    for nodes in ["2", "1"]:
        for key, name, _ in keys:
            w, s = med("wsreactor", nodes, window, key), med("socketio", nodes, window, key)
            ratio = f"{w / s:.2f}" if w is not None and s else "-"
            fmt = lambda v: "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.2f}")
            print(f"| {nodes} | {window} | {name} | {fmt(w)} | {fmt(s)} | {ratio} |")
PY
