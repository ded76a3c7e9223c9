//! `--mode fanout`: one publisher, N subscribers of one topic (the `fanout1k`, `fanout10k`
//! scenarios).
//!
//! The subscribers upgrade on `/sub/TOPIC` (paced like the echo mode's connects), then the server's
//! RSS is read until it settles (as in `idle`), then the publisher upgrades on `/pub/TOPIC` and
//! sends masked binary messages of `--size` bytes (at least 16): the sequence number (u64 LE) and
//! the send time (u64 LE, nanoseconds since the load generator started), then a fixed pattern.
//! At most `--inflight` messages are in flight: a message stops being in flight when every
//! subscriber has it (or, counted as errors, after 5 s). Every subscriber must receive every
//! message, in order, with its exact length; a gap, a reordering, a wrong size or opcode, or a
//! close from the server is an error. Latency is publish → receive, per delivery, from the time
//! stamp in the payload (one clock: same process). One event loop (one thread): the publisher and
//! every subscriber. With `--tls` every connection is TLS ([`tls`]); what the server sends is
//! decrypted into a scratch buffer and parsed from there.
//!
//! Across nodes: `--sub-addr` spreads the subscribers over several servers (in turn), the
//! publisher staying on `--addr`, and `--also-pid` adds their CPU time (and Redis's) to the
//! server's. `--socketio` speaks Socket.IO 4 instead (Engine.IO v4 over the WebSocket): each
//! connection sends the CONNECT packet `40` once upgraded; a message is an event with one binary
//! attachment — a text packet (`451-[...]`), skipped, then the binary frame, checked as above;
//! Engine.IO pings (`2`) are answered (`3`); the publisher emits `p` events the same way.

use super::*;

/// A message not yet received by every subscriber.
struct Pending {
    left: usize,
    sent: Instant,
}

struct Sub {
    stream: TcpStream,
    /// `--tls`: the TLS session over `stream`.
    tls: Option<Box<rustls::ClientConnection>>,
    open: bool,
    started: Instant,
    expected_accept: String,
    head: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes of an incomplete frame.
    partial: Vec<u8>,
    next_seq: Option<u64>,
    closed: bool,
}

impl Sub {
    fn flush(&mut self, wire: &AtomicU64) -> io::Result<()> {
        if let Some(t) = self.tls.as_deref_mut() {
            return match tls::flush(t, &mut self.stream, &mut self.out, &mut self.out_pos, wire) {
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                r => r.map(drop),
            };
        }
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out_pos += n;
                    wire.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }
}

/// What one frame meant.
enum Got {
    Data(u64, u64),
    Ping(Vec<u8>),
    /// An Engine.IO ping (`2`), to answer with `3`.
    EngineIoPing,
    /// Socket.IO's answer to the CONNECT packet (`40{...}`): events may be emitted now.
    SocketIoConnected,
    Close,
}

/// The Socket.IO event the publisher sends before each binary attachment.
const SOCKETIO_EVENT: &[u8] = br#"451-["p",{"_placeholder":true,"num":0}]"#;

/// Parses complete server frames from `data`; returns the bytes consumed. `socketio`: text
/// frames are Engine.IO / Socket.IO packets (pings answered, the rest skipped).
fn parse(data: &[u8], size: usize, socketio: bool, out: &mut Vec<Got>) -> Result<usize, String> {
    let mut pos = 0;
    loop {
        let rest = &data[pos..];
        if rest.len() < 2 {
            return Ok(pos);
        }
        let (b0, b1) = (rest[0], rest[1]);
        if b1 & 0x80 != 0 {
            return Err("masked frame from the server".into());
        }
        let (len, hdr) = match b1 & 0x7F {
            126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 if rest.len() >= 10 => (
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return Ok(pos),
            n => (n as usize, 2),
        };
        if len > size.max(125) && !(socketio && b0 & 0x0F == 1 && len < 4096) {
            return Err(format!("frame of {len} bytes (expected {size})"));
        }
        if rest.len() < hdr + len {
            return Ok(pos);
        }
        let payload = &rest[hdr..hdr + len];
        match b0 & 0x0F {
            2 if b0 & 0x80 != 0 => {
                if len != size {
                    return Err(format!("message of {len} bytes (expected {size})"));
                }
                let seq = u64::from_le_bytes(payload[0..8].try_into().unwrap());
                let ts = u64::from_le_bytes(payload[8..16].try_into().unwrap());
                out.push(Got::Data(seq, ts));
            }
            1 if socketio && payload == b"2" => out.push(Got::EngineIoPing),
            1 if socketio && payload.starts_with(b"40") => out.push(Got::SocketIoConnected),
            1 if socketio => {}
            9 => out.push(Got::Ping(payload.to_vec())),
            10 => {}
            8 => out.push(Got::Close),
            op => return Err(format!("unexpected frame (opcode {op}, byte 0 {b0:#04x})")),
        }
        pos += hdr + len;
    }
}

fn masked_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], rng: &mut Rng) {
    frame_header(out, 0x80 | opcode, payload.len());
    let key = (rng.next() as u32).to_ne_bytes();
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key);
}

fn open(
    args: &Args,
    registry: &mio::Registry,
    (addr, path): (SocketAddr, &str),
    idx: usize,
    rng: &mut Rng,
) -> Result<Sub, String> {
    let tls = args.tls.as_deref().map(tls::Tls::connect).transpose()?;
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    registry
        .register(
            &mut stream,
            Token(idx),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| format!("register: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&rng.next().to_ne_bytes());
    raw[8..].copy_from_slice(&rng.next().to_ne_bytes());
    let key = base64(&raw);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        args.host
    );
    Ok(Sub {
        stream,
        tls,
        open: false,
        started: Instant::now(),
        expected_accept: accept_key(&key),
        head: Vec::new(),
        out: request.into_bytes(),
        out_pos: 0,
        partial: Vec::new(),
        next_seq: None,
        closed: false,
    })
}

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum Phase {
    Subscribing,
    Settling,
    Publishing,
    Draining,
}

pub(crate) fn run(args: &Args) -> ExitCode {
    let base = Instant::now();
    let wire_sent = AtomicU64::new(0);
    let wire_recv = AtomicU64::new(0);
    let pid = args.server_pid;
    let rss_before = pid.and_then(proc_rss_kib);
    let n = args.connections;
    let mut rng = Rng::new(0xFA11);
    let mut poll = Poll::new().expect("epoll");
    let mut events = Events::with_capacity(4096);
    let mut scratch = vec![0u8; READ_BUF];
    let mut plain = Vec::new();
    let mut handshakes = tls::Handshakes::default();
    let mut subs: Vec<Option<Sub>> = Vec::with_capacity(n + 1);
    let mut errors = 0u64;
    let mut reported = 0usize;
    let mut error = |msg: String| {
        errors += 1;
        if reported < MAX_REPORTED_ERRORS {
            reported += 1;
            eprintln!("loadgen[fanout]: {msg}");
        }
    };
    let (sub_path, pub_path) = if args.socketio {
        let path = |role| {
            format!("/socket.io/?EIO=4&transport=websocket&role={role}&topic={}", args.topic)
        };
        (path("sub"), path("pub"))
    } else {
        (format!("/sub/{}", args.topic), format!("/pub/{}", args.topic))
    };
    let sub_addr = |idx: usize| match args.sub_addrs.len() {
        0 => args.addr,
        n => args.sub_addrs[idx % n],
    };
    let servers_cpu = || {
        let pids = args.server_pid.iter().chain(&args.also_pids);
        pids.map(|pid| proc_cpu_seconds(&pid.to_string()))
            .sum::<Option<f64>>()
            .filter(|_| args.server_pid.is_some())
    };
    let cpu_snapshot = |_: Option<u32>| (servers_cpu(), proc_cpu_seconds("self"));
    let connect_timeout = Duration::from_secs_f64(args.connect_timeout);

    // State.
    let mut phase = Phase::Subscribing;
    let mut to_open = n;
    let mut pending_hs = 0usize;
    let mut subscribed = 0usize;
    let mut settle_start = Instant::now();
    let mut settle_last: Option<u64> = None;
    let mut settle_stable = 0;
    let mut settle_next = Instant::now();
    let mut rss_after = None;
    let pub_idx = n;
    let mut pub_conn: Option<Sub> = None;
    let mut pub_open = false;
    let mut next_seq = 0u64;
    let mut front_seq = 0u64;
    let mut inflight: VecDeque<Pending> = VecDeque::new();
    let mut t_go = Instant::now();
    let mut window: Option<(Instant, Instant)> = None;
    let mut measuring = false;
    let mut cpu0 = (None, None);
    let mut cpu1 = (None, None);
    let mut wire0 = (0, 0);
    let mut wire1 = (0, 0);
    let mut published = 0u64;
    let mut deliveries = 0u64;
    let mut missed = 0u64;
    let mut hist = new_hist();
    let mut drain_deadline = Instant::now();
    let hard_deadline = base + Duration::from_secs(120);
    let body = make_body(args.size);
    let mut payload = body.clone();
    let mut got = Vec::new();
    let stall = Duration::from_secs(5);
    let mut last_sweep = Instant::now();

    loop {
        let now = Instant::now();
        if now >= hard_deadline {
            error(format!("gave up after 120 s in phase {phase:?}"));
            break;
        }
        match phase {
            Phase::Subscribing => {
                while to_open > 0 && pending_hs < args.connect_batch {
                    let idx = subs.len();
                    let target = (sub_addr(idx), sub_path.as_str());
                    match open(args, poll.registry(), target, idx, &mut rng) {
                        Ok(s) => {
                            subs.push(Some(s));
                            pending_hs += 1;
                        }
                        Err(e) => error(e),
                    }
                    to_open -= 1;
                }
                if to_open == 0 && pending_hs == 0 {
                    phase = Phase::Settling;
                    settle_start = now;
                    settle_next = now + Duration::from_secs(1);
                }
            }
            Phase::Settling if now >= settle_next => {
                let r = pid.and_then(proc_rss_kib);
                settle_stable = if r == settle_last {
                    settle_stable + 1
                } else {
                    0
                };
                settle_last = r;
                settle_next = now + Duration::from_millis(250);
                if settle_stable >= 2 || now.duration_since(settle_start) > Duration::from_secs(6) {
                    rss_after = r;
                    phase = Phase::Publishing;
                    let target = (args.addr, pub_path.as_str());
                    match open(args, poll.registry(), target, pub_idx, &mut rng) {
                        Ok(s) => pub_conn = Some(s),
                        Err(e) => {
                            error(format!("publisher: {e}"));
                            break;
                        }
                    }
                }
            }
            Phase::Settling => {}
            Phase::Publishing if pub_open => {
                if window.is_none()
                    && !measuring
                    && now >= t_go + Duration::from_secs_f64(args.warmup)
                {
                    measuring = true;
                    cpu0 = cpu_snapshot(pid);
                    wire0 = (
                        wire_sent.load(Ordering::Relaxed),
                        wire_recv.load(Ordering::Relaxed),
                    );
                    window = Some((now, now));
                } else if measuring {
                    let start = window.unwrap().0;
                    if now >= start + Duration::from_secs_f64(args.duration) {
                        measuring = false;
                        cpu1 = cpu_snapshot(pid);
                        wire1 = (
                            wire_sent.load(Ordering::Relaxed),
                            wire_recv.load(Ordering::Relaxed),
                        );
                        window = Some((start, now));
                        phase = Phase::Draining;
                        drain_deadline = now + Duration::from_secs(1);
                    }
                }
            }
            Phase::Publishing => {}
            Phase::Draining => {
                if inflight.is_empty() || now >= drain_deadline {
                    break;
                }
            }
        }
        // Stalled messages: some subscriber never got them.
        while let Some(p) = inflight.front() {
            if now.duration_since(p.sent) < stall {
                break;
            }
            missed += p.left as u64;
            error(format!(
                "message {front_seq} missed by {} subscribers after {stall:?}",
                p.left
            ));
            inflight.pop_front();
            front_seq += 1;
        }
        // Publish up to the window.
        if phase == Phase::Publishing
            && pub_open
            && let Some(p) = pub_conn.as_mut()
        {
            let live = subscribed;
            while inflight.len() < args.inflight && live > 0 {
                let ts = base.elapsed().as_nanos() as u64;
                payload[0..8].copy_from_slice(&next_seq.to_le_bytes());
                payload[8..16].copy_from_slice(&ts.to_le_bytes());
                if args.socketio {
                    masked_frame(&mut p.out, 1, SOCKETIO_EVENT, &mut rng);
                }
                masked_frame(&mut p.out, 2, &payload, &mut rng);
                inflight.push_back(Pending {
                    left: live,
                    sent: Instant::now(),
                });
                next_seq += 1;
                if measuring {
                    published += 1;
                }
            }
            if let Err(e) = p.flush(&wire_sent) {
                error(format!("publisher write: {e}"));
                break;
            }
        }
        if now.duration_since(last_sweep) >= Duration::from_millis(100) {
            last_sweep = now;
            for slot in subs.iter_mut() {
                if let Some(s) = slot
                    && !s.open
                    && now.duration_since(s.started) > connect_timeout
                {
                    *slot = None;
                    pending_hs -= 1;
                    error(format!(
                        "subscriber not upgraded within {connect_timeout:?}"
                    ));
                }
            }
        }
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(5)))
            && e.kind() != io::ErrorKind::Interrupted
        {
            error(format!("poll: {e}"));
            break;
        }
        for ev in events.iter() {
            let idx = ev.token().0;
            let is_pub = idx == pub_idx;
            let slot = if is_pub {
                &mut pub_conn
            } else {
                match subs.get_mut(idx) {
                    Some(s) => s,
                    None => continue,
                }
            };
            let Some(conn) = slot.as_mut() else { continue };
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let mut fail: Option<String> = None;
            if let Err(e) = conn.flush(&wire_sent) {
                fail = Some(format!("write: {e}"));
            }
            let mut buf_now;
            if readable && fail.is_none() {
                loop {
                    match conn.stream.read(&mut scratch) {
                        Ok(0) => {
                            fail = Some("server closed the connection".into());
                            break;
                        }
                        Ok(k) => {
                            wire_recv.fetch_add(k as u64, Ordering::Relaxed);
                            buf_now = Instant::now();
                            let mut tls_closed = false;
                            let mut data: &[u8] = match conn.tls.as_deref_mut() {
                                None => &scratch[..k],
                                Some(t) => match tls::decrypt(t, &scratch[..k], &mut plain) {
                                    Ok(closed) => {
                                        tls_closed = closed;
                                        &plain
                                    }
                                    Err(e) => {
                                        fail = Some(e);
                                        break;
                                    }
                                },
                            };
                            if !conn.open {
                                conn.head.extend_from_slice(data);
                                let Some(end) = conn.head.windows(4).position(|w| w == b"\r\n\r\n")
                                else {
                                    continue;
                                };
                                let end = end + 4;
                                if let Err(e) =
                                    check_response(&conn.head[..end], &conn.expected_accept, false)
                                {
                                    fail = Some(e);
                                    break;
                                }
                                conn.open = true;
                                if let Some(t) = conn.tls.as_deref() {
                                    handshakes.record(t);
                                }
                                conn.partial = conn.head.split_off(end);
                                conn.head = Vec::new();
                                if args.socketio {
                                    // CONNECT to the main namespace.
                                    masked_frame(&mut conn.out, 1, b"40", &mut rng);
                                }
                                if is_pub {
                                    // Socket.IO drops a client that emits before its CONNECT
                                    // is answered: wait for `40{...}`.
                                    pub_open = !args.socketio;
                                    t_go = Instant::now();
                                } else {
                                    pending_hs -= 1;
                                    subscribed += 1;
                                }
                                data = &[];
                            }
                            let owned;
                            let frames: &[u8] = if conn.partial.is_empty() {
                                data
                            } else {
                                conn.partial.extend_from_slice(data);
                                owned = std::mem::take(&mut conn.partial);
                                &owned
                            };
                            got.clear();
                            match parse(frames, args.size, args.socketio, &mut got) {
                                Ok(used) => conn.partial = frames[used..].to_vec(),
                                Err(e) => {
                                    fail = Some(e);
                                    break;
                                }
                            }
                            let t_ns = buf_now.duration_since(base).as_nanos() as u64;
                            for g in got.drain(..) {
                                match g {
                                    Got::Data(seq, ts) if !is_pub => {
                                        if let Some(want) = conn.next_seq
                                            && seq != want
                                        {
                                            error(format!(
                                                "subscriber {idx}: message {seq}, expected {want}"
                                            ));
                                        }
                                        conn.next_seq = Some(seq + 1);
                                        if measuring {
                                            deliveries += 1;
                                            let _ = hist.record(t_ns.saturating_sub(ts).max(1));
                                        }
                                        if seq >= front_seq
                                            && let Some(p) =
                                                inflight.get_mut((seq - front_seq) as usize)
                                        {
                                            p.left = p.left.saturating_sub(1);
                                        }
                                    }
                                    Got::Data(..) => {
                                        error("the publisher got a message".into());
                                    }
                                    Got::Ping(body) => {
                                        masked_frame(&mut conn.out, 10, &body, &mut rng);
                                    }
                                    Got::EngineIoPing => {
                                        masked_frame(&mut conn.out, 1, b"3", &mut rng);
                                    }
                                    Got::SocketIoConnected if is_pub => {
                                        pub_open = true;
                                        t_go = Instant::now();
                                    }
                                    Got::SocketIoConnected => {}
                                    Got::Close => {
                                        conn.closed = true;
                                    }
                                }
                            }
                            if conn.closed {
                                fail = Some("server sent a close frame".into());
                                break;
                            }
                            if tls_closed {
                                fail = Some("server sent TLS close_notify".into());
                                break;
                            }
                            if k < scratch.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            fail = Some(format!("read: {e}"));
                            break;
                        }
                    }
                }
                if fail.is_none()
                    && let Err(e) = conn.flush(&wire_sent)
                {
                    fail = Some(format!("write: {e}"));
                }
            }
            if let Some(msg) = fail {
                let was_open = conn.open;
                *slot = None;
                if is_pub {
                    error(format!("publisher: {msg}"));
                    pub_open = false;
                } else if was_open {
                    subscribed -= 1;
                    error(format!("subscriber {idx}: {msg}"));
                } else {
                    pending_hs -= 1;
                    error(format!("subscriber {idx} (handshake): {msg}"));
                }
            }
            // Messages every subscriber has leave the window.
            while inflight.front().is_some_and(|p| p.left == 0) {
                inflight.pop_front();
                front_seq += 1;
            }
        }
        if is_stopped(&pub_conn, phase) {
            break;
        }
    }
    // Close frames to everyone (best effort), then drop the sockets.
    for s in subs.iter_mut().flatten().chain(pub_conn.iter_mut()) {
        if s.open {
            masked_frame(&mut s.out, 8, &1000u16.to_be_bytes(), &mut rng);
            let _ = s.flush(&wire_sent);
        }
    }
    thread::sleep(Duration::from_millis(200));
    drop(subs);
    drop(pub_conn);

    let (start, end) = window.unwrap_or((base, base));
    let seconds = end.duration_since(start).as_secs_f64();
    let per = |c0: Option<f64>, c1: Option<f64>, k: u64| match (c0, c1) {
        (Some(a), Some(b)) if k > 0 => Some((b - a) * 1e6 / k as f64),
        _ => None,
    };
    let pct = |c0: Option<f64>, c1: Option<f64>| match (c0, c1) {
        (Some(a), Some(b)) if seconds > 0.0 => Some((b - a) * 100.0 / seconds),
        _ => None,
    };
    let q = |quantile: f64| {
        (!hist.is_empty()).then(|| hist.value_at_quantile(quantile) as f64 / 1000.0)
    };
    let rate = |k: u64| (seconds > 0.0).then(|| k as f64 / seconds);
    let mut j = Json::new();
    j.str("mode", "fanout");
    for (k, v) in &args.labels {
        j.str(k, v);
    }
    j.int("connections", n as u64);
    j.int("connected", subscribed as u64);
    j.str("payload", "binary");
    if args.tls.is_some() {
        handshakes.write_json(&mut j);
    }
    j.str("topic", &args.topic);
    j.int("inflight", args.inflight as u64);
    j.int("size", args.size as u64);
    j.num("seconds", Some(seconds));
    j.int("published", published);
    j.int("deliveries", deliveries);
    j.num("publishes_per_sec", rate(published));
    j.num("deliveries_per_sec", rate(deliveries));
    j.num("p50_us", q(0.5));
    j.num("p99_us", q(0.99));
    j.num("p999_us", q(0.999));
    j.num(
        "max_us",
        (!hist.is_empty()).then(|| hist.max() as f64 / 1000.0),
    );
    j.int("missed", missed);
    j.int("errors", errors);
    j.num(
        "server_cpu_us_per_delivery",
        per(cpu0.0, cpu1.0, deliveries),
    );
    j.num(
        "client_cpu_us_per_delivery",
        per(cpu0.1, cpu1.1, deliveries),
    );
    j.num("server_cpu_pct", pct(cpu0.0, cpu1.0));
    j.num("client_cpu_pct", pct(cpu0.1, cpu1.1));
    j.num("server_rss_kib_before", rss_before.map(|v| v as f64));
    j.num("server_rss_kib_after", rss_after.map(|v| v as f64));
    j.num(
        "kib_per_sub",
        match (rss_before, rss_after) {
            (Some(b), Some(a)) if subscribed > 0 => Some((a as f64 - b as f64) / subscribed as f64),
            _ => None,
        },
    );
    j.int("wire_bytes_sent", wire1.0 - wire0.0);
    j.int("wire_bytes_recv", wire1.1 - wire0.1);
    println!("{}", j.finish());
    if subscribed == 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The publisher is gone after it was needed: nothing more to measure.
fn is_stopped(pub_conn: &Option<Sub>, phase: Phase) -> bool {
    phase == Phase::Publishing && pub_conn.is_none()
}
