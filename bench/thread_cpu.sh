#!/usr/bin/env bash
# Where a server's CPU goes, thread by thread: runs the load generator against the echo example
# (one loop, one worker) and prints each thread's CPU time over the load generator's window,
# per message. Used to check that in worker mode the event loop does not pay for
# permessage-deflate (docs/benchmarks.md, "Where the CPU goes with compression").
#
#   bench/thread_cpu.sh                      # --deflate, then plain JSON, worker mode
#   ECHO_FLAGS=--inline bench/thread_cpu.sh  # the same with the handler on the loop thread
#
# Needs bench/target/release/loadgen (bench/run.sh builds it) and the echo example in release.
set -euo pipefail
cd "$(dirname "$0")/.."

LOADGEN=bench/target/release/loadgen
ECHO=target/release/examples/echo
DURATION=${DURATION:-5}
[ -x "$LOADGEN" ] || (cd bench && cargo build --release --quiet -p loadgen)
cargo build --release --quiet --example echo

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
taskset -c 0 "$ECHO" --addr "127.0.0.1:$port" --workers 1 --loops 1 ${ECHO_FLAGS:-} \
    >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

# Every thread's name and utime+stime (clock ticks), one per line.
threads() {
    for task in /proc/"$pid"/task/*; do
        printf '%s %s\n' "$(cat "$task/comm")" \
            "$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$task/stat")"
    done | sort
}

for mode in --deflate --json; do
    before=$(threads)
    result=$(taskset -c 1 "$LOADGEN" --addr "127.0.0.1:$port" "$mode" --connections 100 \
        --inflight 8 --size 1024 --warmup 0 --duration "$DURATION")
    after=$(threads)
    messages=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["messages"])' "$result")
    echo "== $mode: $messages messages in $DURATION s"
    join <(echo "$before") <(echo "$after") | awk -v n="$messages" -v hz="$(getconf CLK_TCK)" '
        { us = ($3 - $2) / hz * 1e6; printf "   %-22s %8.0f ms  %6.2f us/msg\n", $1, us / 1000, us / n }'
done
