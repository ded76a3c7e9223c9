#!/usr/bin/env bash
# The gateway's numbers for docs/benchmarks.md (not part of `cargo test`): one redis-server on a
# free loopback port, then the gateway example (release) against it: echo alone (the baseline),
# healthy, slow (the gateway's own delay relay, --backend-delay) with the bulkhead and without
# it (--blocking-workers: Redis called on the WebSocket workers), healthy and slow again with the
# bulkhead answering through deferred completions (--deferred: Context::defer on the worker,
# Deferred::complete on the backend thread, instead of ServerHandle::send), and down (Redis
# killed). Each
# phase is measured by examples/gateway_bench.rs: requests answered per second and their
# latency by outcome, the latency of echoes on unrelated /echo connections, the busiest
# WebSocket workers and backend threads, the server's thread count. One JSON line per phase.
#
#   scripts/gateway_bench.sh
#   DURATION=20s CONNECTIONS=128 INFLIGHT=4 DELAY=20ms scripts/gateway_bench.sh
#
# Every process is stopped by its PID; each phase ends by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
INFLIGHT=${INFLIGHT:-4}
DELAY=${DELAY:-20ms}
GATEWAY_FLAGS=${GATEWAY_FLAGS:-}

cargo build --release --quiet --example gateway --example gateway_bench

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --loglevel warning >/dev/null 2>&1 &
REDIS=$!
GATEWAY=
cleanup() {
    [ -n "$GATEWAY" ] && kill "$GATEWAY" 2>/dev/null || true
    kill "$REDIS" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $REDIS_PORT), 0.1)" 2>/dev/null && break
    sleep 0.1
done

# phase NAME CONNECTIONS [gateway flags...]: start the gateway, measure, stop it (SIGTERM).
phase() {
    local name=$1 connections=$2 out
    shift 2
    out=$(mktemp)
    # shellcheck disable=SC2086
    ./target/release/examples/gateway --addr 127.0.0.1:0 --redis "redis://127.0.0.1:$REDIS_PORT" \
        $GATEWAY_FLAGS "$@" >"$out" 2>/dev/null &
    GATEWAY=$!
    for _ in $(seq 100); do grep -q '^gateway on ' "$out" && break; sleep 0.1; done
    local addr
    addr=$(sed -n 's|^gateway on http://\([^/]*\)/.*|\1|p' "$out")
    printf '%s: ' "$name"
    ./target/release/examples/gateway_bench --addr "$addr" --connections "$connections" \
        --inflight "$INFLIGHT" --duration "$DURATION" --server-pid "$GATEWAY"
    kill "$GATEWAY"
    wait "$GATEWAY" 2>/dev/null || true
    GATEWAY=
    rm -f "$out"
}

phase "echo alone" 0
phase healthy "$CONNECTIONS"
phase "healthy, deferred (--deferred)" "$CONNECTIONS" --deferred true
phase "slow (+$DELAY per command)" "$CONNECTIONS" --backend-delay "$DELAY"
phase "slow, deferred (--deferred)" "$CONNECTIONS" --backend-delay "$DELAY" --deferred true
phase "slow, no bulkhead (--blocking-workers)" "$CONNECTIONS" --backend-delay "$DELAY" --blocking-workers true
kill "$REDIS"
wait "$REDIS" 2>/dev/null || true
phase down "$CONNECTIONS"
