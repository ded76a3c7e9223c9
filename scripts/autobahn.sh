#!/usr/bin/env bash
# The Autobahn|Testsuite against the echo example: every case of sections 1-7, 9, 10, 12 and 13,
# run by kosoku (a runner of Autobahn's own case files that needs no Python 2). Fails if any case
# is FAILED, UNIMPLEMENTED or ERROR, and prints the per-section table that docs/conformance.md
# shows.
#
#   scripts/autobahn.sh               # the whole catalogue, about 4 minutes on 2 cores
#   scripts/autobahn.sh -i '12.*'     # extra arguments go to kosoku (-i/-x CASE to select)
#
# Environment: AUTOBAHN_VENV (default target/autobahn-venv), AUTOBAHN_REPORT (default
# target/autobahn-report), ECHO_FLAGS (extra flags for the echo example).
set -euo pipefail
cd "$(dirname "$0")/.."

KOSOKU_VERSION=0.1.0
VENV=${AUTOBAHN_VENV:-target/autobahn-venv}
REPORT=${AUTOBAHN_REPORT:-target/autobahn-report}

# Idempotent: the virtualenv and kosoku are installed once and reused.
if ! "$VENV/bin/kosoku" --help >/dev/null 2>&1; then
    echo "== installing kosoku $KOSOKU_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "kosoku==$KOSOKU_VERSION"
fi

cargo build --release --quiet --example echo

log=$(mktemp)
# kosoku (0.1.0) fails every case of sections 12-13 in which the server sends a message
# uncompressed (RSV1 clear) on a connection that agreed on compression, although RFC 7692 §6
# lets each message choose; with threshold 0 the echo compresses every message.
# shellcheck disable=SC2086
target/release/examples/echo --addr 127.0.0.1:0 --compression-threshold 0 ${ECHO_FLAGS:-} \
    >"$log" 2>&1 &
echo_pid=$!
trap 'kill "$echo_pid" 2>/dev/null || true; rm -f "$log"' EXIT

# The echo prints its address once it listens; wait for it (15 s at most), never a fixed sleep.
url=""
for _ in $(seq 150); do
    url=$(grep -o 'ws://127\.0\.0\.1:[0-9]*/ws' "$log" | head -n 1 || true)
    [ -n "$url" ] && break
    kill -0 "$echo_pid" 2>/dev/null || { cat "$log"; echo "echo example exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { cat "$log"; echo "echo example did not start" >&2; exit 1; }

rm -rf "$REPORT"
echo "== kosoku $url -> $REPORT"
start=$(date +%s)
"$VENV/bin/kosoku" "$url" -o "$REPORT" "$@" >"$REPORT.log" 2>&1 || true
echo "   $(($(date +%s) - start)) s"

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
