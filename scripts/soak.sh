#!/usr/bin/env bash
# Soak run (not part of `cargo test`): start the echo server, hold thousands of WebSocket
# connections with churn and traffic for a while (examples/soak.rs), then show that connections,
# slab, buffered bytes and RSS came back to their baseline, from the server's /metrics and /proc.
#
#   scripts/soak.sh                       # 4,000 connections, 120 s
#   CONNS=8000 SECONDS_=300 scripts/soak.sh
#
# Every loop ends by itself; the server is stopped by its PID (SIGTERM → graceful shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-4000}
DURATION=${SECONDS_:-120}
PORT=${PORT:-19101}
ADDR=127.0.0.1:$PORT

cargo build --release --quiet --example echo --example soak

./target/release/examples/echo --addr "$ADDR" --max-connections 20000 >/tmp/wsreactor-soak-server.log 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT

metrics() { # metrics NAME → value from /metrics (0 if absent)
  python3 - "$ADDR" "$1" <<'PY'
import sys, urllib.request
addr, name = sys.argv[1], sys.argv[2]
body = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
total = sum(int(l.rsplit(" ", 1)[1]) for l in body.splitlines()
            if l.split("{")[0].split(" ")[0] == name)
print(total)
PY
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status"; }
snapshot() { # snapshot LABEL
  printf '%-9s connections_open=%-6s websocket_open=%-6s slab_capacity=%-6s pending_outbound_bytes=%-8s pooled_buffers=%-4s rss_kib=%s\n' \
    "$1" "$(metrics wsreactor_connections_open)" "$(metrics wsreactor_websocket_connections_open)" \
    "$(metrics wsreactor_slab_capacity)" "$(metrics wsreactor_pending_outbound_bytes)" \
    "$(metrics wsreactor_pooled_buffers)" "$(rss_kib)"
}

for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null && break
  sleep 0.1
done

snapshot baseline
( sleep $((DURATION / 2)); snapshot during ) &
SAMPLER=$!
./target/release/examples/soak --addr "$ADDR" --connections "$CONNS" --threads 4 --seconds "$DURATION" --churn-percent 5
wait "$SAMPLER" || true

# Let the server finish closing (bounded wait), then compare.
for _ in $(seq 1 100); do
  [ "$(metrics wsreactor_connections_open)" = "1" ] && break   # 1 = this /metrics request
  sleep 0.1
done
snapshot after
echo "closed:   $(python3 - "$ADDR" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
print(" ".join(l.split("{")[1].replace('"', "").replace("} ", "=") for l in body.splitlines()
               if l.startswith("wsreactor_connections_closed_total{") or l.startswith("wsreactor_timeouts_total{")))
PY
)"
echo "stats:    accepted=$(metrics wsreactor_connections_accepted_total) upgrades=$(metrics wsreactor_websocket_upgrades_total) messages_in=$(metrics wsreactor_messages_received_total) panics=$(metrics wsreactor_handler_panics_total) stale=$(metrics wsreactor_stale_replies_dropped_total)"
kill -TERM "$SERVER"
wait "$SERVER" || true
trap - EXIT
