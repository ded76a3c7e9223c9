#!/usr/bin/env python3
"""Summarises a bench/run.sh results file: medians per scenario and server, and ratios.

    python3 bench/report.py bench/results/<timestamp>.jsonl [--markdown OUT.md]

Prints Markdown (readable as plain text too); with --markdown also writes it to OUT.md.
"""

import json
import statistics
import sys

SCENARIOS = {
    # name: (description, primary metric, higher is better)
    "latency": ("1 conn x 1 in flight x 32 B", "p50_us", False),
    "throughput": ("100 conns x 8 in flight x 32 B", "msgs_per_sec", True),
    "fanin": ("1,000 conns x 1 in flight x 1 KiB", "msgs_per_sec", True),
    "large": ("10 conns x 1 in flight x 64 KiB", "mb_per_sec", True),
    "idle": ("10,000 idle upgraded conns: server RSS growth", "kib_per_conn", False),
    "many": ("15,000 conns x 1 in flight x 32 B", "msgs_per_sec", True),
    "churn": ("50 loops of connect, upgrade, 1 echo, close", "handshakes_per_sec", True),
    "http": ("wrk -t1 -c100 keep-alive GET /", "requests_per_sec", True),
    "samecore": ("server and loadgen on one CPU: 1 conn x 1 x 32 B", "p50_us", False),
    # Cost per message from 10 to 10,000 busy connections (flat is the goal), and fairness
    # (p99 against p50) at 10,000.
    "scale10": ("10 conns x 1 in flight x 32 B", "server_cpu_us_per_msg", False),
    "scale100": ("100 conns x 1 in flight x 32 B", "server_cpu_us_per_msg", False),
    "scale1k": ("1,000 conns x 1 in flight x 32 B", "server_cpu_us_per_msg", False),
    "scale10k": ("10,000 conns x 1 in flight x 32 B", "server_cpu_us_per_msg", False),
    # 1 KiB JSON-like text: plain, and with permessage-deflate (bytes on the wire per message).
    "json": ("100 conns x 8 in flight x 1 KiB JSON text, no compression", "msgs_per_sec", True),
    "deflate": ("100 conns x 8 in flight x 1 KiB JSON text, permessage-deflate", "msgs_per_sec", True),
    "idle-deflate": ("10,000 idle conns with permessage-deflate negotiated: server RSS growth",
                     "kib_per_conn", False),
    # One publisher, N subscribers of one topic, 32 B (loadgen --mode fanout).
    "fanout1k": ("1 publisher -> 1,000 subscribers, 32 in flight x 32 B", "deliveries_per_sec", True),
    "fanout10k": ("1 publisher -> 10,000 subscribers, 4 in flight x 32 B", "deliveries_per_sec", True),
    # The same over TLS (wss://, loadgen --tls); churn's cycles include a full TLS handshake.
    "tls-latency": ("TLS: 1 conn x 1 in flight x 32 B", "p50_us", False),
    "tls-throughput": ("TLS: 100 conns x 8 in flight x 32 B", "msgs_per_sec", True),
    "tls-large": ("TLS: 10 conns x 1 in flight x 64 KiB", "mb_per_sec", True),
    "tls-churn": ("TLS: 50 loops of connect, TLS handshake, upgrade, 1 echo, close",
                  "handshakes_per_sec", True),
    "tls-idle": ("TLS: 10,000 idle upgraded conns: server RSS growth", "kib_per_conn", False),
}
ORDER = list(SCENARIOS)
WSREACTOR = ["wsreactor", "wsreactor-inline", "wsreactor-default"]
PEERS = ["tokio-tungstenite", "fastwebsockets", "ws-rs", "gorilla", "node-ws", "ceiling", "go-http",
         "hyper", "wsreactor-baseline", "wsreactor-baseline-inline", "wsreactor-baseline-default"]
SERVER_ORDER = WSREACTOR + PEERS

# (column title, JSON key, decimals)
COLUMNS = [
    ("msgs/s", "msgs_per_sec", 0),
    ("deliveries/s", "deliveries_per_sec", 0),
    ("publishes/s", "publishes_per_sec", 0),
    ("MB/s", "mb_per_sec", 1),
    ("p50 µs", "p50_us", 1),
    ("p99 µs", "p99_us", 1),
    ("p99.9 µs", "p999_us", 1),
    # The server's peak resident set over the whole run (VmHWM, read by run.sh before the stop).
    ("peak RSS MiB", "server_peak_rss_mib", 1),
    ("srv CPU µs/msg", "server_cpu_us_per_msg", 2),
    ("srv CPU µs/delivery", "server_cpu_us_per_delivery", 2),
    ("srv CPU %", "server_cpu_pct", 0),
    ("loadgen CPU %", "client_cpu_pct", 0),
    # Bytes through the load generator's sockets per echoed message, both directions (frames
    # included, TCP/IP headers not), and payload bytes per wire byte: shown for the text scenarios.
    ("wire B/msg", "wire_bytes_per_msg", 0),
    ("wire ratio", "wire_ratio", 2),
    ("KiB/conn", "kib_per_conn", 2),
    ("KiB/sub", "kib_per_sub", 2),
    ("handshakes/s", "handshakes_per_sec", 0),
    ("srv CPU µs/hs", "server_cpu_us_per_handshake", 1),
    ("loadgen CPU µs/hs", "client_cpu_us_per_handshake", 1),
    ("HTTP req/s", "requests_per_sec", 0),
    ("srv CPU µs/req", "server_cpu_us_per_req", 2),
    ("errors", "errors", 0),
]
# The wire columns appear only where they tell something (everything else is binary and fixed).
WIRE_KEYS = {"wire_bytes_per_msg", "wire_ratio"}
WIRE_SCENARIOS = {"json", "deflate"}


def fmt(value, decimals):
    if value is None:
        return "–"
    if decimals == 0:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}"


def tls_groups(records):
    """The handshakes per key-exchange group over `records` (loadgen's `tls_groups`, e.g.
    "X25519MLKEM768:100,X25519:3"), most used first, and how many had a HelloRetryRequest;
    ({}, 0) for runs without TLS."""
    counts, retries = {}, 0
    for r in records:
        for entry in filter(None, r.get("tls_groups", "").split(",")):
            group, _, n = entry.rpartition(":")
            counts[group] = counts.get(group, 0) + int(n)
        retries += r.get("tls_hello_retries", 0)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])), retries


def placement(meta):
    """Where the server and the load generator ran: pinned each to its CPU (PIN=1, and results
    from before the knob), or unpinned (PIN=0)."""
    if meta.get("pin", 1):
        return f"server pinned to CPU {meta.get('server_cpu')}, loadgen to CPU {meta.get('loadgen_cpu')}"
    return (f"**unpinned** (PIN=0): server and loadgen share the {meta.get('cpus', '?')} CPUs "
            f"(samecore still both on CPU {meta.get('server_cpu')})")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    path = argv[0]
    out_md = None
    if "--markdown" in argv:
        out_md = argv[argv.index("--markdown") + 1]

    meta = {}
    runs = {}  # (scenario, server) -> [record]
    failures = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                failures.append(f"unparsable line: {line[:120]}")
                continue
            if rec.get("mode") == "meta":
                meta = rec
                continue
            key = (rec.get("scenario"), rec.get("server"))
            if isinstance(rec.get("server_peak_rss_kib"), (int, float)):
                rec["server_peak_rss_mib"] = rec["server_peak_rss_kib"] / 1024
            if "failed" in rec:
                failures.append(f"{key[0]} / {key[1]} (rep {rec.get('rep')}): {rec['failed']}")
                continue
            runs.setdefault(key, []).append(rec)

    def median(scenario, server, metric):
        values = [r[metric] for r in runs.get((scenario, server), []) if r.get(metric) is not None]
        return statistics.median(values) if values else None

    lines = []
    if meta:
        lines.append(
            f"Run of {meta.get('date')}: {meta.get('reps')} repetition(s), warm-up {meta.get('warmup')} s, "
            f"measured {meta.get('duration')} s (idle hold {meta.get('idle_hold')} s, wrk {meta.get('wrk_duration')} s); "
            f"{placement(meta)}; "
            f"{meta.get('cpu_model')}, Linux {meta.get('kernel')}. "
            f"Medians over repetitions."
        )
        if meta.get("tls_groups", "default") != "default":
            lines.append(f"(TLS scenarios: loadgen --tls-groups {meta['tls_groups']})")
        if "compression_flag" in meta and not meta.get("compression_flag"):
            lines.append("(echo example: no --compression flag found; deflate runs rely on its default)")
        if not meta.get("loops_flag") or not meta.get("inline_flag"):
            lines.append(
                f"(echo example flags: --loops {'yes' if meta.get('loops_flag') else 'absent'}, "
                f"--inline {'yes' if meta.get('inline_flag') else 'absent: no wsreactor-inline runs'})"
            )
        lines.append("")

    ratio_rows = []
    for scenario in ORDER + sorted({s for s, _ in runs} - set(ORDER), key=str):
        servers = [s for s in SERVER_ORDER if (scenario, s) in runs]
        servers += sorted({sv for sc, sv in runs if sc == scenario} - set(servers), key=str)
        if not servers:
            continue
        desc, primary, higher = SCENARIOS.get(scenario, ("", None, True))
        cols = [c for c in COLUMNS if any(median(scenario, s, c[1]) is not None for s in servers)
                and (c[1] not in WIRE_KEYS or scenario in WIRE_SCENARIOS)]
        lines.append(f"### {scenario}: {desc}")
        lines.append("")
        lines.append("| server | " + " | ".join(c[0] for c in cols) + " |")
        lines.append("|---|" + "---:|" * len(cols))
        for s in servers:
            cells = [fmt(median(scenario, s, key), dec) for _, key, dec in cols]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines.append("")
        # permessage-deflate: what each server answered (context takeover or not).
        answers = [(s, sorted({r["deflate"] for r in runs[(scenario, s)] if "deflate" in r}))
                   for s in servers]
        if any(a for _, a in answers):
            lines.append("Negotiated (the servers' answers to `permessage-deflate; client_max_window_bits`):")
            lines.append("")
            lines.extend(f"- {s}: " + ", ".join(f"`{x}`" for x in a) for s, a in answers if a)
            lines.append("")
        # TLS: the version, cipher suite and key exchange each server negotiated (the first
        # handshake of each run), then the key-exchange group of every handshake.
        tls = [(s, sorted({r["tls"] for r in runs[(scenario, s)] if "tls" in r})) for s in servers]
        if any(a for _, a in tls):
            lines.append("TLS negotiated: " + "; ".join(
                f"{s} " + ", ".join(f"`{x}`" for x in a) for s, a in tls if a) + ".")
            lines.append("")
        groups = [(s, tls_groups(runs[(scenario, s)])) for s in servers]
        if any(counts for _, (counts, _) in groups):
            lines.append("Key exchange, every handshake of the runs: " + "; ".join(
                f"{s} " + ", ".join(f"`{g}` ×{n:,}" for g, n in counts.items())
                + (f" ({retries:,} after a HelloRetryRequest)" if retries else "")
                for s, (counts, retries) in groups if counts) + ".")
            lines.append("")
        if primary:
            for w in WSREACTOR:
                mine = median(scenario, w, primary)
                if mine is None:
                    continue
                for p in PEERS:
                    theirs = median(scenario, p, primary)
                    if theirs is None:
                        continue
                    cpu_key = {"requests_per_sec": "server_cpu_us_per_req",
                               "handshakes_per_sec": "server_cpu_us_per_handshake",
                               "deliveries_per_sec": "server_cpu_us_per_delivery"}.get(
                        primary, "server_cpu_us_per_msg")
                    c_mine, c_theirs = median(scenario, w, cpu_key), median(scenario, p, cpu_key)
                    ratio = mine / theirs if theirs else None
                    cpu_ratio = c_mine / c_theirs if c_mine is not None and c_theirs else None
                    tail_ratio, rss_ratio = (
                        (a / b if a is not None and b else None)
                        for a, b in ((median(scenario, w, k), median(scenario, p, k))
                                     for k in ("p999_us", "server_peak_rss_kib")))
                    ratio_rows.append((scenario, primary, "higher" if higher else "lower", w, p, ratio,
                                       cpu_ratio, tail_ratio, rss_ratio))

    if ratio_rows:
        lines.append("### Ratios: wsreactor / peer (medians)")
        lines.append("")
        lines.append("Primary metric: above 1 is better where higher is better, below 1 where lower is. "
                     "Server CPU per message (or request, or handshake), p99.9 latency and the server's "
                     "peak RSS: below 1 means wsreactor's is lower.")
        lines.append("")
        lines.append("| scenario | metric (better) | wsreactor mode | peer | ratio | server CPU/op ratio "
                     "| p99.9 ratio | peak RSS ratio |")
        lines.append("|---|---|---|---|---:|---:|---:|---:|")
        for scenario, metric, better, w, p, ratio, cpu_ratio, tail_ratio, rss_ratio in ratio_rows:
            lines.append(f"| {scenario} | {metric} ({better}) | {w} | {p} | {fmt(ratio, 2)} | {fmt(cpu_ratio, 2)} "
                         f"| {fmt(tail_ratio, 2)} | {fmt(rss_ratio, 2)} |")
        lines.append("")

    if failures:
        lines.append("### Failed runs")
        lines.append("")
        lines.extend(f"- {f}" for f in failures)
        lines.append("")

    text = "\n".join(lines)
    print(text)
    if out_md:
        with open(out_md, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
