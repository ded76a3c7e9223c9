#!/usr/bin/env bash
# Hostile-mix load run (issue 9; not part of `cargo test`): build the echo example, start it on a
# free loopback port, run scripts/hostile.py against it (legit echo clients alongside non-readers,
# tricklers, slowloris, ping flooders, RST churn and idle connections), sampling the server's
# RSS and fds from /proc and its /metrics, then stop it with SIGTERM by PID and print the report.
#
#   bash scripts/hostile.sh                                  # 60 s attack, 60 s after
#   bash scripts/hostile.sh --duration 30 --after 30 --json /tmp/hostile.json
#   bash scripts/hostile.sh --non-readers 500 -- --max-outbound-bytes 1048576
#
# hostile.py's own flags (`python3 scripts/hostile.py --help`) go to it; every other argument,
# and everything after `--`, goes to the echo server (`target/release/examples/echo --help`).
# Everything ends by itself: the Python side has a watchdog, and this script kills what it
# started, by PID, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# Split the arguments: ours (hostile.py) and the echo's.
read -r -a OURS <<<"$(python3 scripts/hostile.py --list-flags)"
PY_ARGS=()
ECHO_ARGS=()
while [ $# -gt 0 ]; do
  arg=$1
  shift
  if [ "$arg" = "--" ]; then
    ECHO_ARGS+=("$@")
    break
  fi
  name=${arg%%=*}
  mine=0
  for f in "${OURS[@]}"; do [ "$f" = "$name" ] && mine=1 && break; done
  if [ $mine = 1 ]; then
    PY_ARGS+=("$arg")
    if [ "$name" = "$arg" ] && [ $# -gt 0 ]; then PY_ARGS+=("$1"); shift; fi
  else
    ECHO_ARGS+=("$arg")
  fi
done

cargo build --release --example echo

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
LOG=$(mktemp -t wsreactor-hostile-echo.XXXXXX.log)

SERVER=
stop_server() {
  [ -n "$SERVER" ] || return 0
  if kill -0 "$SERVER" 2>/dev/null; then
    kill -TERM "$SERVER" 2>/dev/null || true
    for _ in $(seq 1 100); do # graceful shutdown is bounded (5 s by default); wait up to 10 s
      kill -0 "$SERVER" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER" 2>/dev/null; then
      echo "echo (pid $SERVER) still running 10 s after SIGTERM: SIGKILL" >&2
      kill -KILL "$SERVER" 2>/dev/null || true
    fi
  fi
  wait "$SERVER" 2>/dev/null || true
  SERVER=
}
trap stop_server EXIT
trap 'exit 130' INT TERM

./target/release/examples/echo --addr "$ADDR" ${ECHO_ARGS[@]+"${ECHO_ARGS[@]}"} >"$LOG" 2>&1 &
SERVER=$!

# Wait for it to listen: poll (up to 10 s), giving up early if it died.
ready=0
for _ in $(seq 1 200); do
  if ! kill -0 "$SERVER" 2>/dev/null; then break; fi
  if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', $PORT), 0.2).close()" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.05
done
if [ $ready = 0 ]; then
  echo "echo did not start listening on $ADDR; its log ($LOG):" >&2
  cat "$LOG" >&2
  exit 1
fi
echo "echo pid $SERVER on $ADDR, args: ${ECHO_ARGS[*]:-(defaults)}; log: $LOG" >&2

status=0
python3 scripts/hostile.py --addr "$ADDR" --pid "$SERVER" ${PY_ARGS[@]+"${PY_ARGS[@]}"} || status=$?

stop_server
echo
echo "echo log: $(wc -l <"$LOG") lines in $LOG; last lines:"
tail -n 5 "$LOG"
exit $status
