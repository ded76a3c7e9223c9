#!/usr/bin/env python3
"""A hostile mix of clients against a running echo server (issue 9), standard library only.

Legit clients echo messages and measure round trips while, at the same time, attackers that
never read, trickle one huge frame, send HTTP headers forever, flood pings, reset connections
in a loop or sit idle try to make the server run out of memory or file descriptors. The server's
RSS (/proc/PID/status) and open fds (/proc/PID/fd) are sampled every 0.5 s during the attack and
for --after seconds once every client is gone; /metrics is read at the end.

    python3 scripts/hostile.py --addr 127.0.0.1:9001 --pid "$(pgrep -n echo)"
    bash scripts/hostile.sh            # builds and starts the echo, then runs this

Client classes (each a count flag): legit, non-readers, tricklers, slowloris, ping flooders,
RST churn loops, idle. Every attacker records how it ended (close frame code, HTTP status, EOF,
RST, EPIPE, still open) and when, in seconds since its own start. Everything is bounded: the
attack stops at --duration, the sampling at --after, and a watchdog ends the run regardless.

The WebSocket client side is written here by hand (RFC 6455 framing, masked frames, no
extensions offered). Masking uses a fresh key per frame for legit clients; the attackers that
push bulk (non-readers, ping flooders) send from a small pool of pre-masked frames so that the
client is not the bottleneck: the server cannot tell. The legit clients run in a forked process
of their own (their event loop is not held up by the attackers' sends), and both processes
report their event-loop lag and CPU: if those are high, part of a slow round trip is the
client's, not the server's. The report's timeline also shows the server's and the client's CPU
(100 = one core) and the kernel's TCP buffer memory (machine-wide, /proc/net/sockstat).
"""

import argparse
import asyncio
import base64
import errno
import hashlib
import json
import multiprocessing
import os
import random
import resource
import socket
import statistics
import struct
import sys
import time
import urllib.request

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ASCII = bytes(b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"[i % 64]
              for i in range(256))  # random bytes -> valid UTF-8 text
METRIC_WORDS = ("closed", "timeout", "rejected", "pending", "buffer", "budget", "dropped",
                "backpressure")
TIMELINE_METRICS = ("wsreactor_connections_open", "wsreactor_websocket_connections_open",
                    "wsreactor_pending_outbound_bytes", "wsreactor_buffers_in_use")


# ---------------------------------------------------------------------------------------------
# WebSocket framing (client side: every frame masked).

def mask(payload, key):
    """XOR payload with the 4-byte key, repeated (fast: one big-int XOR)."""
    n = len(payload)
    if n == 0:
        return b""
    keys = (key * ((n + 3) // 4))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


def frame_header(opcode, length, key, fin=True):
    b0 = (0x80 if fin else 0) | opcode
    if length < 126:
        head = struct.pack("!BB", b0, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, length)
    return head + key


def frame(opcode, payload, key=None):
    key = key or os.urandom(4)
    return frame_header(opcode, len(payload), key) + mask(payload, key)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class Frames:
    """Incremental parser of the frames the server sends (unmasked; masked handled too)."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data

    def next(self):
        """(fin, opcode, payload) of the next complete frame, or None."""
        b = self.buf
        if len(b) < 2:
            return None
        b0, b1 = b[0], b[1]
        n, i = b1 & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, i = struct.unpack_from("!H", b, 2)[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, i = struct.unpack_from("!Q", b, 2)[0], 10
        key = None
        if b1 & 0x80:
            if len(b) < i + 4:
                return None
            key, i = bytes(b[i:i + 4]), i + 4
        if len(b) < i + n:
            return None
        payload = bytes(b[i:i + n])
        del b[:i + n]
        if key:
            payload = mask(payload, key)
        return bool(b0 & 0x80), b0 & 0x0F, payload


def close_code(payload):
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


# ---------------------------------------------------------------------------------------------
# Sockets.

class Closed(Exception):
    """The connection ended; .kind says how ('close 1008', 'http 408', 'EOF', 'RST', ...)."""

    def __init__(self, kind, detail=""):
        super().__init__(kind)
        self.kind, self.detail = kind, detail


def kind_of(exc):
    if isinstance(exc, Closed):
        return exc.kind
    if isinstance(exc, ConnectionResetError):
        return "RST"
    if isinstance(exc, BrokenPipeError):
        return "EPIPE"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno:
        return "error " + errno.errorcode.get(exc.errno, str(exc.errno))
    return "error " + type(exc).__name__


async def connect(ctx, rcvbuf=None, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: window
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.wait_for(ctx.loop.sock_connect(s, ctx.addr), timeout)
    except BaseException:
        s.close()
        raise
    return s


async def read_head(ctx, s, timeout=10.0):
    """The HTTP response head (status line + headers) and what came after it."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Closed("timeout", "no response head")
        data = await asyncio.wait_for(ctx.loop.sock_recv(s, 4096), left)
        if not data:
            raise Closed("EOF", "before the response head")
        buf += data
        if len(buf) > 65536:
            raise Closed("error", "response head too long")
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def status_of(head):
    parts = head.split("\r\n", 1)[0].split(" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


async def upgrade(ctx, s, timeout=10.0):
    """Upgrade to WebSocket on /ws (no extensions offered); returns the bytes after the head."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /ws HTTP/1.1\r\nHost: {ctx.host}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n")
    await asyncio.wait_for(ctx.loop.sock_sendall(s, request.encode()), timeout)
    head, rest = await read_head(ctx, s, timeout)
    status = status_of(head)
    if status != 101:
        raise Closed(f"http {status}", "upgrade refused")
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    if accept.lower() not in head.lower():
        raise Closed("error", "bad Sec-WebSocket-Accept")
    return rest


def rst_close(s):
    """Close so that the kernel sends RST (SO_LINGER on, 0 s)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def drain_now(s, frames, limit=1 << 20):
    """Read what the kernel holds right now, without waiting. Returns 'close N', 'EOF', 'RST'
    or None (still open, nothing conclusive), scanning the frames for a close frame."""
    got, ended = 0, None
    while got < limit:
        try:
            data = s.recv(262144)
        except (BlockingIOError, InterruptedError):
            break
        except ConnectionResetError:
            ended = "RST"
            break
        except OSError as e:
            ended = kind_of(e)
            break
        if not data:
            ended = "EOF"
            break
        got += len(data)
        frames.feed(data)
    while True:
        f = frames.next()
        if f is None:
            break
        if f[1] == 8:
            code = close_code(f[2])
            return f"close {code}" if code else "close (no code)"
    return ended


# ---------------------------------------------------------------------------------------------
# Client classes. Each record is a dict; "end" is the kind, "t_end" seconds since its start.

def new_record(cls, i):
    return {"class": cls, "id": i, "start": None, "t_open": None, "end": None, "t_end": None,
            "detail": ""}


def opened(rec):
    """The connection is up (upgraded, or the request's first line sent)."""
    rec["t_open"] = round(time.monotonic() - rec["start"], 3)


def finish(rec, kind, detail="", when=None):
    if rec["end"] is None:
        rec["end"] = kind
        rec["detail"] = detail
        if when is None:
            when = time.monotonic()
        rec["t_end"] = None if kind == "open" else round(when - rec["start"], 2)


async def watch(ctx, s, frames, rec, on_frame=None):
    """Read until the connection ends; returns the kind ('close N', 'EOF', 'RST', ...)."""
    while True:
        f = frames.next()
        if f is not None:
            if f[1] == 8:
                code = close_code(f[2])
                return f"close {code}" if code else "close (no code)"
            if on_frame:
                on_frame(f)
            continue
        try:
            data = await ctx.loop.sock_recv(s, 65536)
        except OSError as e:
            return kind_of(e)
        if not data:
            return "EOF"
        frames.feed(data)


async def legit(ctx, i, stats):
    """Echo loop: send, wait for the echo, compare, record the RTT; reconnect if closed."""
    rng = random.Random(i)
    size = ctx.args.legit_size
    while not ctx.stopping:
        s, outstanding, t_conn = None, False, time.monotonic()
        try:
            s = await connect(ctx)
            frames = Frames()
            frames.feed(await upgrade(ctx, s))
            stats["connections"] += 1
            while not ctx.stopping:
                binary = rng.random() < 0.5
                payload = rng.randbytes(size)
                if not binary:
                    payload = payload.translate(ASCII)
                data = frame(2 if binary else 1, payload)
                t0 = time.monotonic()
                outstanding = True
                await ctx.loop.sock_sendall(s, data)
                stats["sent"] += 1
                parts, opcode = [], None
                while True:
                    f = frames.next()
                    if f is None:
                        chunk = await ctx.loop.sock_recv(s, 65536)
                        if not chunk:
                            raise Closed("EOF")
                        frames.feed(chunk)
                        continue
                    fin, op, pl = f
                    if op == 9:  # a legit client answers pings
                        await ctx.loop.sock_sendall(s, frame(10, pl))
                        continue
                    if op == 10:
                        continue
                    if op == 8:
                        code = close_code(pl)
                        raise Closed(f"close {code}" if code else "close (no code)",
                                     pl[2:].decode("utf-8", "replace"))
                    if op in (1, 2):
                        opcode, parts = op, [pl]
                    elif op == 0:
                        parts.append(pl)
                    if fin:
                        break
                rtt = time.monotonic() - t0
                outstanding = False
                echoed = b"".join(parts)
                if echoed == payload and opcode == (2 if binary else 1):
                    stats["echoed"] += 1
                else:
                    stats["mismatched"] += 1
                stats["rtt"].append((round(t0 - ctx.t0, 3), rtt))
                await asyncio.sleep(rng.uniform(0.010, 0.050))
        except asyncio.CancelledError:
            pass
        except BaseException as e:  # closed under us: loud
            kind = kind_of(e)
            detail = e.detail if isinstance(e, Closed) else str(e)
            stats["errors"].append({"client": i, "how": kind, "detail": detail,
                                    "t_run": round(time.monotonic() - ctx.t0, 2),
                                    "t_conn": round(time.monotonic() - t_conn, 2)})
            print(f"!! legit client {i} ended by the server: {kind} {detail} at "
                  f"{time.monotonic() - ctx.t0:.1f} s into the run", file=sys.stderr, flush=True)
        finally:
            if outstanding:
                stats["lost"] += 1
            if s is not None:
                try:
                    s.send(frame(8, close_payload(1000)))
                except OSError:
                    pass
                s.close()
        if not ctx.stopping:
            try:
                await asyncio.sleep(1.0)  # then reconnect, as a real client would
            except asyncio.CancelledError:
                return


async def pusher(ctx, rec, frames_pool, rcvbuf):
    """Shared by non-readers and ping flooders: upgrade, then send frames from frames_pool as
    fast as the socket takes them, never reading."""
    s, frames = None, Frames()
    try:
        s = await connect(ctx, rcvbuf=rcvbuf)
        frames.feed(await upgrade(ctx, s))  # the 101 head is the only thing ever read
        opened(rec)
        rec["sent_bytes"] = 0
        k = rec["id"]
        while True:
            data = frames_pool[k % len(frames_pool)]
            k += 1
            await ctx.loop.sock_sendall(s, data)
            rec["sent_bytes"] += len(data)
            if ctx.args.push_rate > 0:
                await asyncio.sleep(len(data) / (ctx.args.push_rate * 2**20))
    except asyncio.CancelledError:
        # End of the attack: read what is there to learn how (or whether) it ended.
        ended = drain_now(s, frames) if s is not None else None
        finish(rec, ended or "open", "seen at the end of the attack")
    except BaseException as e:
        when = time.monotonic()
        kind = kind_of(e)
        detail = e.detail if isinstance(e, Closed) else f"on send ({e})"
        if s is not None and kind in ("RST", "EPIPE"):
            ended = drain_now(s, frames)
            if ended and ended.startswith("close"):
                detail, kind = f"{kind} on send after {ended}", ended
        finish(rec, kind, detail, when)
    finally:
        if s is not None:
            s.close()


async def trickler(ctx, rec):
    """Announce a 16 MiB binary frame, then send 1 KiB of it per second."""
    s, frames, sender, watcher = None, Frames(), None, None
    try:
        s = await connect(ctx)
        frames.feed(await upgrade(ctx, s))
        opened(rec)
        key = os.urandom(4)
        length = ctx.args.trickle_frame
        chunk = mask(os.urandom(ctx.args.trickle_chunk), key)  # chunk % 4 == 0: key stays aligned
        await ctx.loop.sock_sendall(s, frame_header(2, length, key))
        rec["sent_bytes"] = 0

        async def send_loop():
            while rec["sent_bytes"] + len(chunk) <= length:
                await asyncio.sleep(1.0)
                await asyncio.wait_for(ctx.loop.sock_sendall(s, chunk), 10)
                rec["sent_bytes"] += len(chunk)
            await asyncio.Future()  # all sent (not with the defaults): wait for the watcher

        sender = asyncio.ensure_future(send_loop())
        watcher = asyncio.ensure_future(watch(ctx, s, frames, rec))
        done, _ = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if watcher in done:
            finish(rec, watcher.result())
        else:  # the send failed first; give the watcher a moment to see why
            when = time.monotonic()
            try:
                kind = await asyncio.wait_for(watcher, 2)
            except asyncio.TimeoutError:
                kind = kind_of(sender.exception())
            finish(rec, kind, f"send failed: {kind_of(sender.exception())}", when)
    except asyncio.CancelledError:
        finish(rec, (drain_now(s, frames) if s else None) or "open")
    except BaseException as e:
        finish(rec, kind_of(e), getattr(e, "detail", str(e)))
    finally:
        for t in (sender, watcher):
            if t is not None:
                t.cancel()
        if s is not None:
            s.close()


async def slowloris(ctx, rec):
    """An HTTP request that never ends: one more header line every --slowloris-interval s."""
    s = None
    try:
        s = await connect(ctx)
        await ctx.loop.sock_sendall(s, f"GET / HTTP/1.1\r\nHost: {ctx.host}\r\n".encode())
        opened(rec)
        rec["lines"] = 0

        async def send_loop():
            n = 0
            while True:
                await asyncio.sleep(ctx.args.slowloris_interval)
                n += 1
                await asyncio.wait_for(ctx.loop.sock_sendall(s, f"X-Slow-{n}: {n}\r\n".encode()), 10)
                rec["lines"] = n

        async def read_status():
            buf = b""
            while b"\r\n" not in buf:
                try:
                    data = await ctx.loop.sock_recv(s, 4096)
                except OSError as e:
                    return kind_of(e)
                if not data:
                    return "EOF"
                buf += data
            status = status_of(buf.split(b"\r\n", 1)[0].decode("latin-1"))
            return f"http {status}"

        sender = asyncio.ensure_future(send_loop())
        reader = asyncio.ensure_future(read_status())
        try:
            done, _ = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                finish(rec, reader.result())
            else:
                when = time.monotonic()
                try:
                    kind = await asyncio.wait_for(reader, 2)
                except asyncio.TimeoutError:
                    kind = kind_of(sender.exception())
                finish(rec, kind, f"send failed: {kind_of(sender.exception())}", when)
        finally:
            sender.cancel()
            reader.cancel()
    except asyncio.CancelledError:
        finish(rec, "open")
    except BaseException as e:
        finish(rec, kind_of(e), getattr(e, "detail", str(e)))
    finally:
        if s is not None:
            s.close()


async def idle(ctx, rec):
    """Upgrade, then nothing: pings are read (the kernel would ack them anyway) but never
    answered."""
    s, frames = None, Frames()
    try:
        s = await connect(ctx)
        frames.feed(await upgrade(ctx, s))
        opened(rec)
        rec["pings"] = 0

        def on_frame(f):
            if f[1] == 9:
                rec["pings"] += 1
                rec.setdefault("t_first_ping", round(time.monotonic() - rec["start"], 2))

        finish(rec, await watch(ctx, s, frames, rec, on_frame))
    except asyncio.CancelledError:
        finish(rec, (drain_now(s, frames) if s else None) or "open")
    except BaseException as e:
        finish(rec, kind_of(e), getattr(e, "detail", str(e)))
    finally:
        if s is not None:
            s.close()


async def churn(ctx, i, stats):
    """Connect, send an upgrade (odd cycles: wait for its 101) or half a request, then RST."""
    n = 0
    while not ctx.stopping:
        n += 1
        full = n % 2 == 1
        s = None
        try:
            s = await connect(ctx)
            if full:
                await upgrade(ctx, s, timeout=5)
                stats["upgraded_then_rst"] += 1
            else:
                await ctx.loop.sock_sendall(s, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgr")
                stats["half_request_then_rst"] += 1
        except asyncio.CancelledError:
            break
        except BaseException as e:
            k = kind_of(e)
            stats["failures"][k] = stats["failures"].get(k, 0) + 1
        finally:
            if s is not None:
                rst_close(s)
        stats["cycles"] += 1
        try:
            await asyncio.sleep(ctx.args.churn_pause)
        except asyncio.CancelledError:
            break


# ---------------------------------------------------------------------------------------------
# Server sampling.

def proc_sample(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])  # kB
        out["cpu_s"] = proc_cpu(pid) or 0.0
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        return None
    return out


def proc_cpu(pid):
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def tcp_mem_mib():
    """Kernel memory in TCP socket buffers, machine-wide (/proc/net/sockstat: pages)."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    words = line.split()
                    return round(int(words[words.index("mem") + 1]) * 4096 / 2**20)
    except (OSError, ValueError):
        pass
    return None


def fetch_metrics(addr, timeout=5.0):
    host, port = addr
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as r:
        body = r.read().decode()
    values = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            pass
    return values


async def metrics(ctx):
    try:
        return await asyncio.wait_for(asyncio.to_thread(fetch_metrics, ctx.addr), 8)
    except Exception as e:  # noqa: BLE001 - any failure is reported, not fatal
        return {"error": f"{type(e).__name__}: {e}"}


async def sampler(ctx):
    """Every ~0.5 s: RSS, peak RSS and fds of the server."""
    while True:
        s = proc_sample(ctx.args.pid) if ctx.args.pid else None
        if s is not None:
            s["t"] = round(time.monotonic() - ctx.t0, 2)
            s["phase"] = ctx.phase
            ctx.samples.append(s)
        await asyncio.sleep(0.5)


async def timeline(ctx):
    """Every 5 s: the last /proc sample (and CPU use since the previous row: 100 = one core)
    and a few gauges from /metrics."""
    prev = None
    while True:
        t, phase = time.monotonic() - ctx.t0, ctx.phase
        m = await metrics(ctx)
        row = {"t": round(t, 1), "phase": phase}
        cpu = os.times()
        cpu = cpu.user + cpu.system + (proc_cpu(ctx.legit_pid) or 0.0)
        row["tcp_mem_mib"] = tcp_mem_mib()
        if ctx.samples:
            s = ctx.samples[-1]
            row.update(rss_mib=round(s["VmRSS"] / 1024, 1), fds=s["fds"])
            if prev:
                dt = s["t"] - prev[0]["t"]
                if dt > 0:
                    row["server_cpu%"] = round(100 * (s["cpu_s"] - prev[0]["cpu_s"]) / dt)
                    row["client_cpu%"] = round(100 * (cpu - prev[1]) / (t - prev[2]))
            prev = (s, cpu, t)
        row.update({k.replace("wsreactor_", ""): int(m[k]) for k in TIMELINE_METRICS if k in m})
        if "error" in m:
            row["metrics_error"] = m["error"]
        ctx.timeline.append(row)
        await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - ctx.t0 - t)))


async def loop_lag(ctx):
    """How late this client's event loop wakes up (if it lags, the RTTs are the client's)."""
    while True:
        t = time.monotonic()
        await asyncio.sleep(0.1)
        ctx.lag.append((t - ctx.t0, time.monotonic() - t - 0.1))


# ---------------------------------------------------------------------------------------------
# The run.

class Ctx:
    pass


def new_ctx(args, loop):
    ctx = Ctx()
    ctx.args, ctx.loop = args, loop
    host, port = args.addr.rsplit(":", 1)
    ctx.addr, ctx.host = (host, int(port)), args.addr
    ctx.stopping, ctx.phase, ctx.samples, ctx.timeline, ctx.lag = False, "baseline", [], [], []
    ctx.legit_pid = None
    return ctx


def legit_process(args, conn):
    """The legit clients run in a process of their own, so that what the attackers cost the
    client (a send into a full loopback socket can take the kernel a while) does not show up
    in the legit round trips. Waits for the attack's start time, runs for --duration, sends
    its stats back."""
    if not conn.poll(args.baseline + 120):
        return
    t0 = conn.recv()

    async def main():
        ctx = new_ctx(args, asyncio.get_running_loop())
        ctx.t0 = t0
        stats = {"connections": 0, "sent": 0, "echoed": 0, "mismatched": 0, "lost": 0,
                 "errors": [], "rtt": []}
        lag = asyncio.ensure_future(loop_lag(ctx))
        cpu0 = os.times()
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        tasks = [asyncio.ensure_future(legit(ctx, i, stats)) for i in range(args.legit)]
        for k in range(1, int(args.duration) + 1):
            await asyncio.sleep(max(0.0, t0 + k - time.monotonic()))
            if k % 10 == 0:
                recent = [r for t, r in stats["rtt"] if t >= k - 10]
                print(f"  t={k:>3} s  legit: echoed {stats['echoed']}, errors "
                      f"{len(stats['errors'])}, last 10 s RTT p99 "
                      f"{ms(quantile(recent, 0.99))} ms", file=sys.stderr, flush=True)
        await asyncio.sleep(max(0.0, t0 + args.duration - time.monotonic()))
        # Stop sending; an echo still on its way has --grace seconds to arrive, else it is lost.
        ctx.stopping = True
        _, pending = await asyncio.wait(tasks, timeout=args.grace) if tasks else (None, [])
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=15) if pending else (None, [])
        lag.cancel()
        cpu1 = os.times()
        return {"stats": stats, "lag": ctx.lag, "stuck": len(pending),
                "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)}

    try:
        result = asyncio.run(asyncio.wait_for(main(), args.duration + 60))
    except asyncio.TimeoutError:
        result = None
    conn.send(result)
    conn.close()


def quantile(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def ms(x):
    return None if x is None else round(x * 1000, 2)


async def run(args, child, conn):
    ctx = new_ctx(args, asyncio.get_running_loop())
    ctx.legit_pid = child.pid
    ctx.t0 = time.monotonic() + args.baseline  # times are seconds since the attack began

    # Baseline: the server before any client.
    baseline_metrics = await metrics(ctx)
    bg = [asyncio.ensure_future(f(ctx)) for f in (sampler, timeline, loop_lag)]
    await asyncio.sleep(args.baseline)
    baseline = proc_sample(args.pid) if args.pid else None

    # Bulk frames, pre-masked: 64 KiB binary messages; batches of 125-byte pings.
    nonreader_pool = [frame(2, os.urandom(args.nonreader_size)) for _ in range(8)]
    ping_batches = [b"".join(frame(9, os.urandom(125)) for _ in range(500)) for _ in range(4)]

    ctx.phase, ctx.t0 = "attack", time.monotonic()
    conn.send(ctx.t0)  # the legit process starts now
    cpu0 = os.times()
    churn_stats = {"loops": args.churn, "cycles": 0, "upgraded_then_rst": 0,
                   "half_request_then_rst": 0, "failures": {}}
    records, tasks = [], []

    def spawn(cls, count, make):
        for i in range(count):
            rec = new_record(cls, i)
            rec["start"] = time.monotonic()
            records.append(rec)
            tasks.append(asyncio.ensure_future(make(rec)))

    spawn("non-reader", args.non_readers,
          lambda r: pusher(ctx, r, nonreader_pool, args.rcvbuf))
    spawn("trickler", args.tricklers, lambda r: trickler(ctx, r))
    spawn("slowloris", args.slowloris, lambda r: slowloris(ctx, r))
    spawn("ping-flooder", args.ping_flooders, lambda r: pusher(ctx, r, ping_batches, args.rcvbuf))
    spawn("idle", args.idle, lambda r: idle(ctx, r))
    for i in range(args.churn):
        tasks.append(asyncio.ensure_future(churn(ctx, i, churn_stats)))
    print(f"attack: {args.legit} legit, {args.non_readers} non-readers, {args.tricklers} "
          f"tricklers, {args.slowloris} slowloris, {args.ping_flooders} ping flooders, "
          f"{args.churn} RST churn loops, {args.idle} idle, for {args.duration:g} s",
          file=sys.stderr, flush=True)

    for k in range(int(args.duration)):
        await asyncio.sleep(1)
        if (k + 1) % 10 == 0 and ctx.samples:
            s = ctx.samples[-1]
            print(f"  t={k + 1:>3} s  rss={s['VmRSS'] / 1024:7.1f} MiB  fds={s['fds']:>5}  "
                  f"churn cycles={churn_stats['cycles']}",
                  file=sys.stderr, flush=True)
    await asyncio.sleep(args.duration - int(args.duration))

    # Attack end: sample, then stop every client (bounded) and read the server's counters.
    at_end = proc_sample(args.pid) if args.pid else None
    metrics_at_end = await metrics(ctx)
    ctx.stopping = True
    for t in tasks:
        t.cancel()
    _, pending = await asyncio.wait(tasks, timeout=15)
    cpu1 = os.times()
    legit_result = None
    if await ctx.loop.run_in_executor(None, conn.poll, 30):
        legit_result = conn.recv()
    if legit_result is None:
        print("!! the legit process sent no result", file=sys.stderr, flush=True)
        legit_result = {"stats": {"connections": 0, "sent": 0, "echoed": 0, "mismatched": 0,
                                  "lost": 0, "errors": [], "rtt": []},
                        "lag": [], "stuck": None, "cpu_s": None}
    legit_stats = legit_result["stats"]
    ctx.phase, t_after = "after", time.monotonic()
    print(f"attack over ({len(pending)} clients did not stop in 15 s); sampling for "
          f"{args.after:g} s", file=sys.stderr, flush=True)
    while time.monotonic() - t_after < args.after:
        await asyncio.sleep(min(1.0, args.after - (time.monotonic() - t_after)))
    after = proc_sample(args.pid) if args.pid else None
    metrics_after = await metrics(ctx)
    for t in bg:
        t.cancel()

    # The report, as a dict.
    rtts = [r for _, r in legit_stats["rtt"]]
    windows, lag_windows = {}, {}
    for t, r in legit_stats["rtt"]:
        windows.setdefault(int(t // 10) * 10, []).append(r)
    lags = [x for t, x in ctx.lag if t >= 0]
    legit_lags = [x for t, x in legit_result["lag"] if t >= 0]
    attack_lag_windows = {}
    for lag_list, into in ((legit_result["lag"], lag_windows), (ctx.lag, attack_lag_windows)):
        for t, x in lag_list:
            if t >= 0:
                into.setdefault(int(t // 10) * 10, []).append(x)
    classes = {}
    for rec in records:
        c = classes.setdefault(rec["class"], {"count": 0, "ends": {}})
        c["count"] += 1
        e = c["ends"].setdefault(rec["end"] or "unrecorded", {"n": 0, "times": [], "open": []})
        e["n"] += 1
        if rec["t_end"] is not None:
            e["times"].append(rec["t_end"])
            if rec["t_open"] is not None:
                e["open"].append(rec["t_end"] - rec["t_open"])
    for c in classes.values():
        for e in c["ends"].values():
            ts, since_open = e.pop("times"), e.pop("open")
            e["median_since_open_s"] = (round(statistics.median(since_open), 2)
                                        if since_open else None)
            e["median_s"] = round(statistics.median(ts), 2) if ts else None
            e["min_s"] = min(ts) if ts else None
            e["max_s"] = max(ts) if ts else None
    extra = {}
    for rec in records:
        if rec["class"] == "idle" and "t_first_ping" in rec:
            extra.setdefault("idle_first_ping_s", []).append(rec["t_first_ping"])
        if "sent_bytes" in rec:
            kib = rec["class"] == "trickler"
            extra.setdefault(rec["class"] + ("_sent_kib" if kib else "_sent_mib"), []).append(
                rec["sent_bytes"] / (2**10 if kib else 2**20))
    extras = {k: {"median": round(statistics.median(v), 2), "max": round(max(v), 2),
                  "total": round(sum(v), 1)} for k, v in extra.items()}

    for rec in records:
        rec["start"] = round(rec["start"] - ctx.t0, 3)
    samples = ctx.samples
    attack_samples = [s for s in samples if s["phase"] == "attack"]

    def mib(kb):
        return None if kb is None else round(kb / 1024, 1)

    def pick(m):
        if "error" in m:
            return {"error": m["error"]}
        return {k: v for k, v in m.items() if any(w in k for w in METRIC_WORDS)}

    names = sorted((set(pick(metrics_at_end)) | set(pick(metrics_after))) - {"error"})
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    report = {
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "legit": {
            "clients": args.legit, "connections": legit_stats["connections"],
            "sent": legit_stats["sent"], "echoed": legit_stats["echoed"],
            "lost": legit_stats["lost"], "mismatched": legit_stats["mismatched"],
            "errors": len(legit_stats["errors"]), "error_list": legit_stats["errors"],
            "rtt_ms": {"p50": ms(quantile(rtts, 0.5)), "p99": ms(quantile(rtts, 0.99)),
                       "max": ms(max(rtts) if rtts else None)},
            "rtt_ms_by_10s": {f"{t}-{t + 10}s": {"n": len(v), "p50": ms(quantile(v, 0.5)),
                                                 "p99": ms(quantile(v, 0.99)),
                                                 "max": ms(max(v)),
                                                 "client_lag_p99": ms(quantile(
                                                     lag_windows.get(t, []), 0.99)),
                                                 "client_lag_max": ms(max(
                                                     lag_windows.get(t, [None]),
                                                     key=lambda x: x or 0)),
                                                 "attackers_lag_p99": ms(quantile(
                                                     attack_lag_windows.get(t, []), 0.99))}
                              for t, v in sorted(windows.items())},
        },
        "attackers": classes,
        "attacker_extras": extras,
        "churn": churn_stats,
        "server": {
            "rss_baseline_mib": mib(baseline and baseline.get("VmRSS")),
            "rss_peak_mib_vmhwm": mib(max((s["VmHWM"] for s in samples), default=None)),
            "rss_max_sampled_mib": mib(max((s["VmRSS"] for s in attack_samples), default=None)),
            "rss_at_attack_end_mib": mib(at_end and at_end.get("VmRSS")),
            "rss_after_mib": mib(after and after.get("VmRSS")),
            "after_s": args.after,
            "fds_baseline": baseline and baseline.get("fds"),
            "fds_max": max((s["fds"] for s in samples), default=None),
            "fds_at_attack_end": at_end and at_end.get("fds"),
            "fds_final": after and after.get("fds"),
        },
        "metrics": {n: {"baseline": baseline_metrics.get(n), "attack_end": metrics_at_end.get(n),
                        "after": metrics_after.get(n)} for n in names},
        "metrics_errors": {k: m["error"] for k, m in
                           (("baseline", baseline_metrics), ("attack_end", metrics_at_end),
                            ("after", metrics_after)) if "error" in m},
        "timeline": ctx.timeline,
        "records": records,
        "client": {"cpu_s": round(cpu, 1), "cpu_percent_of_one_core":
                   round(100 * cpu / max(args.duration, 1e-9), 1),
                   "loop_lag_ms": {"p50": ms(quantile(lags, 0.5)),
                                   "p99": ms(quantile(lags, 0.99)),
                                   "max": ms(max(lags) if lags else None)},
                   "stuck_tasks": len(pending),
                   "legit_cpu_s": legit_result["cpu_s"] and round(legit_result["cpu_s"], 1),
                   "legit_loop_lag_ms": {"p50": ms(quantile(legit_lags, 0.5)),
                                         "p99": ms(quantile(legit_lags, 0.99)),
                                         "max": ms(max(legit_lags) if legit_lags else None)},
                   "legit_stuck_tasks": legit_result["stuck"]},
    }
    return report


def text_report(r):
    out = []
    p = out.append
    L, S, C = r["legit"], r["server"], r["client"]
    cfg = r["config"]
    p(f"== hostile mix against {cfg['addr']} (pid {cfg['pid']}): {cfg['duration']:g} s attack, "
      f"{cfg['after']:g} s after ==")
    p("")
    p(f"legit ({L['clients']} clients, {cfg['legit_size']} B messages, "
      f"{L['connections']} connections):")
    p(f"  sent {L['sent']}  echoed {L['echoed']}  lost {L['lost']}  mismatched {L['mismatched']}"
      f"  errors {L['errors']}")
    p(f"  RTT ms  p50 {L['rtt_ms']['p50']}  p99 {L['rtt_ms']['p99']}  max {L['rtt_ms']['max']}")
    for w, v in L["rtt_ms_by_10s"].items():
        p(f"    {w:>9}: n={v['n']:<6} p50 {v['p50']:<8} p99 {v['p99']:<8} max {v['max']:<8}"
          f"  (loop lag p99/max: legit {v['client_lag_p99']}/{v['client_lag_max']}, "
          f"attackers p99 {v['attackers_lag_p99']})")
    if L["error_list"]:
        p("  !! LEGIT CLIENTS CLOSED BY THE SERVER:")
        for e in L["error_list"][:20]:
            p(f"     client {e['client']}: {e['how']} {e['detail']} at {e['t_run']} s into the run"
              f" ({e['t_conn']} s into its connection)")
        if len(L["error_list"]) > 20:
            p(f"     ... and {len(L['error_list']) - 20} more")
    p("")
    p("attackers (end kind: count, time to end since the client's start: median [min-max] s):")
    for cls, c in r["attackers"].items():
        p(f"  {cls:<13} {c['count']:>4}")
        for kind, e in sorted(c["ends"].items(), key=lambda kv: -kv[1]["n"]):
            t = (f"median {e['median_s']} s [{e['min_s']}-{e['max_s']}], "
                 f"{e['median_since_open_s']} s after open"
                 if e["median_s"] is not None else "")
            p(f"      {kind:<18} {e['n']:>4}  {t}")
    for k, v in r["attacker_extras"].items():
        p(f"  {k}: median {v['median']}  max {v['max']}  total {v['total']}")
    ch = r["churn"]
    p(f"  rst-churn     {ch['loops']:>4} loops: {ch['cycles']} cycles "
      f"({ch['upgraded_then_rst']} upgraded then RST, {ch['half_request_then_rst']} half request "
      f"then RST), failures {ch['failures'] or 'none'}")
    p("")
    p("server:")
    p(f"  RSS baseline {S['rss_baseline_mib']} MiB, peak (VmHWM) {S['rss_peak_mib_vmhwm']} MiB, "
      f"at attack end {S['rss_at_attack_end_mib']} MiB, {S['after_s']:g} s after "
      f"{S['rss_after_mib']} MiB")
    p(f"  fds baseline {S['fds_baseline']}, max {S['fds_max']}, at attack end "
      f"{S['fds_at_attack_end']}, final {S['fds_final']}")
    p("  timeline (every 5 s):")
    keys = ["rss_mib", "fds", "server_cpu%", "client_cpu%", "tcp_mem_mib"] + [
        k.replace("wsreactor_", "") for k in TIMELINE_METRICS]
    short = {"connections_open": "conns", "websocket_connections_open": "ws_open",
             "pending_outbound_bytes": "pending_out_bytes", "buffers_in_use": "bufs_in_use",
             "server_cpu%": "srv_cpu%", "client_cpu%": "cli_cpu%",
             "tcp_mem_mib": "tcp_MiB"}
    width = {k: max(len(short.get(k, k)), 7) for k in keys}
    width["pending_outbound_bytes"] = 17
    p("    " + f"{'t':>6} {'phase':<8} " + " ".join(f"{short.get(k, k):>{width[k]}}"
                                                for k in keys))
    for row in r["timeline"]:
        cells = " ".join(f"{row.get(k, '-')!s:>{width[k]}}" for k in keys)
        p(f"    {row['t']:>6} {row['phase']:<8} {cells}" +
          (f"  ({row['metrics_error']})" if "metrics_error" in row else ""))
    p("")
    p("server /metrics (names with " + ", ".join(METRIC_WORDS) + "):")
    p(f"    {'':<58} {'baseline':>12} {'attack end':>12} {'after':>12}")
    for n, v in r["metrics"].items():
        cells = " ".join(f"{'-' if v[k] is None else f'{v[k]:g}':>12}"
                         for k in ("baseline", "attack_end", "after"))
        p(f"    {n:<58} {cells}")
    for k, e in r["metrics_errors"].items():
        p(f"    !! /metrics at {k}: {e}")
    p("")
    p(f"client, attackers' process: {C['cpu_s']} s CPU ({C['cpu_percent_of_one_core']}% of one"
      f" core during the attack), event-loop lag ms p50 {C['loop_lag_ms']['p50']} p99 "
      f"{C['loop_lag_ms']['p99']} max {C['loop_lag_ms']['max']}, tasks that did not stop: "
      f"{C['stuck_tasks']}")
    LL = C["legit_loop_lag_ms"]
    p(f"client, legit process: {C['legit_cpu_s']} s CPU, event-loop lag ms p50 {LL['p50']} "
      f"p99 {LL['p99']} max {LL['max']}, tasks that did not stop: {C['legit_stuck_tasks']}")
    return "\n".join(out)


def parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--addr", default="127.0.0.1:9001", help="server HOST:PORT")
    ap.add_argument("--pid", type=int, default=0, help="server PID to sample in /proc (0: none)")
    ap.add_argument("--duration", type=float, default=60, help="attack seconds")
    ap.add_argument("--after", type=float, default=60, help="seconds sampled after the attack")
    ap.add_argument("--baseline", type=float, default=2, help="seconds sampled before it")
    ap.add_argument("--legit", type=int, default=100, help="legit echo clients")
    ap.add_argument("--legit-size", type=int, default=1024, help="legit message bytes")
    ap.add_argument("--grace", type=float, default=2,
                    help="seconds an echo in flight at the end may still take (else: lost)")
    ap.add_argument("--non-readers", type=int, default=300, help="clients that never read")
    ap.add_argument("--nonreader-size", type=int, default=65536, help="their message bytes")
    ap.add_argument("--rcvbuf", type=int, default=4096, help="SO_RCVBUF of non-readers/flooders")
    ap.add_argument("--push-rate", type=float, default=0,
                    help="MiB/s cap per non-reader/flooder; 0: as fast as the socket takes")
    ap.add_argument("--tricklers", type=int, default=50, help="one huge frame, 1 KiB/s")
    ap.add_argument("--trickle-frame", type=int, default=16 << 20, help="announced frame bytes")
    ap.add_argument("--trickle-chunk", type=int, default=1024, help="bytes sent per second (a multiple of 4)")
    ap.add_argument("--slowloris", type=int, default=50, help="HTTP headers that never end")
    ap.add_argument("--slowloris-interval", type=float, default=3, help="seconds per header line")
    ap.add_argument("--ping-flooders", type=int, default=10, help="pings, never reading pongs")
    ap.add_argument("--churn", type=int, default=20, help="concurrent connect/RST loops")
    ap.add_argument("--churn-pause", type=float, default=0.01, help="seconds between cycles")
    ap.add_argument("--idle", type=int, default=200, help="upgraded, then silent")
    ap.add_argument("--json", default="", help="also write the report as JSON here")
    return ap


def main():
    ap = parser()
    if sys.argv[1:] == ["--list-flags"]:  # for hostile.sh: which flags are ours
        print(" ".join(o for a in ap._actions for o in a.option_strings if o.startswith("--")
                       and o != "--help"))
        return 0
    args = ap.parse_args()
    if args.trickle_chunk % 4:
        ap.error("--trickle-chunk must be a multiple of 4 (the mask key stays aligned)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.legit + args.non_readers + args.tricklers + args.slowloris + args.ping_flooders \
        + args.churn + args.idle + 100
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    watchdog = args.baseline + args.duration + args.after + 90
    # Fork the legit process first, before this process has an event loop or threads.
    conn, child_conn = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(
        target=legit_process, args=(args, child_conn), daemon=True)
    child.start()
    try:
        report = asyncio.run(asyncio.wait_for(run(args, child, conn), watchdog))
    except asyncio.TimeoutError:
        print(f"hostile.py: watchdog: the run took more than {watchdog:g} s", file=sys.stderr)
        return 1
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
    print(text_report(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
