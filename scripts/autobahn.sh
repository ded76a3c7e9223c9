#!/usr/bin/env bash
# The Autobahn|Testsuite against the echo example: every case of sections 1-7, 9, 10, 12 and 13,
# run by kosoku (a runner of Autobahn's own case files that needs no Python 2). Fails if any case
# is FAILED, UNIMPLEMENTED or ERROR, and prints the per-section table that docs/conformance.md
# shows.
#
#   scripts/autobahn.sh               # the whole catalogue, about 4 minutes on 2 cores
#   scripts/autobahn.sh -i '12.*'     # extra arguments go to kosoku (-i/-x CASE to select)
#   scripts/autobahn.sh --tls         # the same over wss:// (the echo built with --features tls),
#                                     # about 1.4 times as long; -i/-x after --tls as well
#
# With --tls the echo serves TLS with a certificate of its own (--tls-self-signed), and since
# kosoku has no TLS compiled in, scripts/tls_bridge.py sits between them: a plaintext port whose
# every connection it relays byte for byte into a TLS connection to the echo, verifying the
# echo's certificate. The cases and the pass criteria are the same as without.
#
# Environment: AUTOBAHN_VENV (default target/autobahn-venv), AUTOBAHN_REPORT (default
# target/autobahn-report, or target/autobahn-report-tls with --tls), ECHO_FLAGS (extra flags for
# the echo example).
set -euo pipefail
cd "$(dirname "$0")/.."

TLS=0
if [ "${1:-}" = "--tls" ]; then
    TLS=1
    shift
fi

KOSOKU_VERSION=0.1.0
VENV=${AUTOBAHN_VENV:-target/autobahn-venv}
if [ "$TLS" = 1 ]; then
    REPORT=${AUTOBAHN_REPORT:-target/autobahn-report-tls}
else
    REPORT=${AUTOBAHN_REPORT:-target/autobahn-report}
fi

# Idempotent: the virtualenv and kosoku are installed once and reused.
if ! "$VENV/bin/kosoku" --help >/dev/null 2>&1; then
    echo "== installing kosoku $KOSOKU_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "kosoku==$KOSOKU_VERSION"
fi

if [ "$TLS" = 1 ]; then
    cargo build --release --quiet --features tls --example echo
else
    cargo build --release --quiet --example echo
fi

tmp=$(mktemp -d)
log="$tmp/echo.log"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# Waits (15 s at most, never a fixed sleep) until `pattern` shows in `file`, written by `pid`;
# prints the first match.
wait_for() {
    local pattern=$1 file=$2 pid=$3 what=$4 found=""
    for _ in $(seq 150); do
        found=$(grep -o "$pattern" "$file" | head -n 1 || true)
        [ -n "$found" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; echo "$what exited" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$found" ] || { cat "$file" >&2; echo "$what did not start" >&2; exit 1; }
    echo "$found"
}

# kosoku (0.1.0) fails every case of sections 12-13 in which the server sends a message
# uncompressed (RSV1 clear) on a connection that agreed on compression, although RFC 7692 §6
# lets each message choose; with threshold 0 the echo compresses every message.
tls_flags=()
[ "$TLS" = 1 ] && tls_flags=(--tls-self-signed)
# The self-signed certificate's PEM goes to $TMPDIR, here our own $tmp.
# shellcheck disable=SC2086 # ECHO_FLAGS is split into flags on purpose
TMPDIR="$tmp" target/release/examples/echo --addr 127.0.0.1:0 --compression-threshold 0 \
    "${tls_flags[@]}" ${ECHO_FLAGS:-} >"$log" 2>&1 &
echo_pid=$!
pids+=("$echo_pid")

# The echo prints its address once it listens.
if [ "$TLS" = 1 ]; then
    echo_url=$(wait_for 'wss://127\.0\.0\.1:[0-9]*/ws' "$log" "$echo_pid" "echo example")
    pem=$(wait_for "$tmp/wsreactor-echo-[0-9]*\.pem" "$log" "$echo_pid" "echo example")
    echo_addr=${echo_url#wss://}
    echo_addr=${echo_addr%/ws}
    python3 scripts/tls_bridge.py --connect "$echo_addr" --cafile "$pem" \
        --server-name localhost >"$tmp/bridge.log" 2>&1 &
    pids+=("$!")
    bridge=$(wait_for 'listening on 127\.0\.0\.1:[0-9]*' "$tmp/bridge.log" "$!" "TLS bridge")
    url="ws://${bridge#listening on }/ws"
    echo "== TLS: $echo_url through scripts/tls_bridge.py at $url (verifying $pem)"
else
    url=$(wait_for 'ws://127\.0\.0\.1:[0-9]*/ws' "$log" "$echo_pid" "echo example")
fi

rm -rf "$REPORT"
echo "== kosoku $url -> $REPORT"
start=$(date +%s)
"$VENV/bin/kosoku" "$url" -o "$REPORT" "$@" >"$REPORT.log" 2>&1 || true
echo "   $(($(date +%s) - start)) s"

if [ "$TLS" = 1 ]; then
    # What went over TLS, from the echo's own metrics (over https, verifying its certificate).
    python3 - "$pem" "https://$echo_addr/metrics" <<'EOF'
import ssl, sys, urllib.request

context = ssl.create_default_context(cafile=sys.argv[1])
text = urllib.request.urlopen(sys.argv[2], context=context, timeout=10).read().decode()
values = dict(line.split()[:2] for line in text.splitlines() if line and line[0] != "#")
print("   TLS handshakes %s, TLS errors %s" % (
    values.get("wsreactor_tls_handshakes_total"), values.get("wsreactor_tls_errors_total")))
EOF
    if [ "$(wc -l <"$tmp/bridge.log")" -gt 1 ]; then
        echo "   the bridge said:"
        tail -n +2 "$tmp/bridge.log" | head -n 20 | sed 's/^/   /'
    fi
fi

python3 - "$REPORT/index.json" <<'EOF'
import collections, json, sys

index = json.load(open(sys.argv[1]))
cases = next(iter(index.values()))
ok = {"OK", "NON-STRICT", "INFORMATIONAL"}
ok_close = {"OK", "INFORMATIONAL"}
sections = collections.defaultdict(collections.Counter)
bad = []
for case, result in cases.items():
    section = int(case.split(".")[0])
    sections[section][result["behavior"]] += 1
    if result["behavior"] not in ok or result["behaviorClose"] not in ok_close:
        bad.append((case, result["behavior"], result["behaviorClose"]))

columns = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "ERROR"]
print("| section | cases | " + " | ".join(columns) + " |")
print("| --- " * (len(columns) + 2) + "|")
total = collections.Counter()
for section in sorted(sections):
    counts = sections[section]
    total.update(counts)
    row = [str(counts[c]) for c in columns]
    print(f"| {section} | {sum(counts.values())} | " + " | ".join(row) + " |")
row = [str(total[c]) for c in columns]
print(f"| all | {sum(total.values())} | " + " | ".join(row) + " |")
if not cases:
    sys.exit("no cases ran")
for case, behavior, close in sorted(bad):
    print(f"FAILED {case}: behavior={behavior} behaviorClose={close}")
sys.exit(1 if bad else 0)
EOF
