#!/usr/bin/env bash
# System calls, context switches and page faults of an echo server under load, counted by
# `perf stat` (tracepoints: exact counts, whatever else the machine is doing; wall-clock ratios
# on a shared machine wobble), and its CPU time, each per message echoed. For each server binary,
# the echo (its default threads unless ECHO_FLAGS says otherwise) runs pinned to CPU 0 while the
# load generator, on CPU 1, echoes 100 connections x 8 in flight x 32 B (LOAD); perf counts over
# the load generator's measured window (it starts after the warm-up).
#
#   bench/syscalls.sh NAME=PATH [NAME=PATH ...]
#
# Environment (all optional):
#   ECHO_FLAGS  flags for the echo [none: its defaults]
#   LOAD        loadgen flags [--connections 100 --inflight 8 --size 32]
#   WARMUP, DURATION   seconds [1, 3]
#   REPS        runs per server, alternating [2]
#   CLIENT      1: count the load generator's too, on a row of its own ("NAME client"): its work
#               per message should not depend on the server; when it is at 100 % of its CPU, the
#               server's msgs/s is the load generator's limit [0]
# Needs perf (linux-perf) with tracepoints readable (run as root, or perf_event_paranoid <= 1).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOADGEN="$BENCH/target/release/loadgen"
LOAD="${LOAD:---connections 100 --inflight 8 --size 32}"
WARMUP="${WARMUP:-1}"
DURATION="${DURATION:-3}"
REPS="${REPS:-2}"
[ $# -gt 0 ] || { sed -n '2,/^set/{/^#/s/^# \{0,1\}//p}' "$0"; exit 2; }
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
[ -x "$LOADGEN" ] || (cd "$BENCH" && cargo build --quiet --release -p loadgen)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

printf '%-24s %10s %9s %9s %9s %9s %9s %9s %10s\n' server messages "read/msg" "write/msg" \
    "epoll/msg" "ctxsw/msg" "fault/msg" "CPU us" "msgs/s"
for rep in $(seq 1 "$REPS"); do
    for spec in "$@"; do
        name=${spec%%=*}
        bin=${spec#*=}
        port=$(free_port)
        # shellcheck disable=SC2086
        taskset -c 0 "$bin" --addr "127.0.0.1:$port" ${ECHO_FLAGS:-} >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 1 200); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            sleep 0.05
        done
        # shellcheck disable=SC2086
        taskset -c 1 "$LOADGEN" --addr "127.0.0.1:$port" --warmup "$WARMUP" \
            --duration "$DURATION" $LOAD >"$work/line" &
        load_pid=$!
        # perf counts over the load generator's measured window (after its warm-up).
        sleep "$WARMUP"
        events=(-e syscalls:sys_enter_recvfrom,syscalls:sys_enter_readv,syscalls:sys_enter_read
            -e syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendto
            -e syscalls:sys_enter_epoll_wait,context-switches,page-faults,task-clock)
        client_perf=""
        if [ "${CLIENT:-0}" = 1 ]; then
            perf stat -x, "${events[@]}" -p "$load_pid" -o "$work/perf-client" -- sleep "$DURATION" &
            client_perf=$!
        fi
        perf stat -x, "${events[@]}" -p "$pid" -o "$work/perf" -- sleep "$DURATION"
        [ -z "$client_perf" ] || wait "$client_perf"
        wait "$load_pid"
        line=$(tail -1 "$work/line")
        kill -TERM "$pid"
        wait "$pid" || true
        rows=("$name" "$work/perf")
        [ -z "$client_perf" ] || rows+=("$name client" "$work/perf-client")
        python3 - "$line" "${rows[@]}" <<'PY'
import json, sys
line = json.loads(sys.argv[1])
messages = line["messages"]
# Reads: recv (std's read on a socket), readv (a payload's rest and what follows it), read
# (tokio's, Go's, the waker's eventfd); writes: write (also the waker's), writev, sendto (std's write).
reads = ("syscalls:sys_enter_recvfrom", "syscalls:sys_enter_readv", "syscalls:sys_enter_read")
writes = ("syscalls:sys_enter_write", "syscalls:sys_enter_writev", "syscalls:sys_enter_sendto")
def per(counts, *events, scale=1.0):
    try:
        return "%9.3f" % (sum(float(counts[e]) for e in events) * scale / messages)
    except (KeyError, ValueError):
        return "%9s" % "?"
# One row per process counted: the server, then (CLIENT=1) the load generator.
for name, perf in zip(sys.argv[2::2], sys.argv[3::2]):
    counts = {}
    for row in open(perf):
        fields = row.strip().split(",")
        if len(fields) > 2 and not row.startswith("#"):
            counts[fields[2]] = fields[0]
    print("%-24s %10d %s %s %s %s %s %s %10.0f" % (name, messages,
          per(counts, *reads), per(counts, *writes),
          per(counts, "syscalls:sys_enter_epoll_wait"), per(counts, "context-switches"),
          per(counts, "page-faults"), per(counts, "task-clock", scale=1000.0),
          line["msgs_per_sec"]))
PY
    done
done
