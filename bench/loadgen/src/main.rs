//! `loadgen`: the WebSocket load generator of the wsreactor benchmarks.
//!
//! One mio event loop per `--threads` (default 1), each with its own share of the connections.
//! Every connection does a real opening handshake (random `Sec-WebSocket-Key`, checks the `101`
//! and `Sec-WebSocket-Accept`), sends masked binary frames and verifies every echoed byte as it
//! arrives (a streaming frame parser: nothing is buffered, so 15,000 connections cost little and
//! 64 KiB echoes are compared straight out of one read buffer). Each message starts with the
//! connection's sequence number and id, so reordering, loss, duplication and corruption are all
//! errors. Latency (send → echo complete) goes into an HDR histogram. It prints one JSON line.
//!
//! `--json` sends JSON-like text messages instead (different bodies, picked at random), and
//! `--deflate` (which implies `--json`) offers permessage-deflate as browsers do, compresses what it
//! sends and inflates what comes back (module [`deflate`]); a server that declines fails the run.
//! Bytes on the wire (everything the sockets sent and received) are counted either way.
//!
//! `--tls` speaks WebSocket over TLS (`wss://`) in every mode, with rustls (module [`tls`]): churn
//! cycles then include the TLS handshake, and the wire bytes are TLS records.
//!
//! ```text
//! loadgen --addr 127.0.0.1:9001 [--mode echo|idle|churn|fanout] [--connections N] [--inflight K]
//!         [--size S] [--warmup W] [--duration D] [--server-pid PID] [--threads T]
//!         [--json] [--deflate] [--deflate-level L]
//!         [--tls --tls-ca PEM [--tls-name N] [--tls-resume] [--tls-groups G,G]]
//! ```
//!
//! Run `loadgen --help` for every flag.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use sha1::{Digest, Sha1};

mod deflate;
mod fanout;
mod tls;
use deflate::{Compress, Decompress, Params};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Bytes of every message that identify it: the sequence number (u64 LE) and the connection id
/// (u32 LE). The rest is a fixed pattern shared by all connections.
const PREFIX: usize = 12;
/// One read buffer per event loop, big enough for several 64 KiB echoes per `read`.
const READ_BUF: usize = 256 * 1024;
/// Error messages printed to stderr per thread (the rest are only counted).
const MAX_REPORTED_ERRORS: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Echo,
    Idle,
    Churn,
    Fanout,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Idle => "idle",
            Mode::Churn => "churn",
            Mode::Fanout => "fanout",
        }
    }
}

#[derive(Clone, Debug)]
struct Args {
    addr: SocketAddr,
    host: String,
    path: String,
    mode: Mode,
    connections: usize,
    inflight: usize,
    size: usize,
    warmup: f64,
    duration: f64,
    server_pid: Option<u32>,
    threads: usize,
    connect_batch: usize,
    connect_timeout: f64,
    labels: Vec<(String, String)>,
    /// Text messages: JSON-like bodies (`--json`, implied by `--deflate`).
    json: bool,
    /// Offer permessage-deflate and require it.
    deflate: bool,
    deflate_level: u32,
    /// Fan-out: the topic (`/sub/TOPIC`, `/pub/TOPIC`).
    topic: String,
    /// Fan-out: the servers the subscribers connect to, in turn (`--sub-addr`; none: `addr`).
    sub_addrs: Vec<SocketAddr>,
    /// More server processes whose CPU time counts (`--also-pid`: the other node, Redis).
    also_pids: Vec<u32>,
    /// Fan-out over Socket.IO 4 (Engine.IO v4 on a WebSocket) instead of plain WebSocket.
    socketio: bool,
    /// `--tls`: the client config every connection is made with.
    tls: Option<Arc<tls::Tls>>,
}

const USAGE: &str = "\
usage: loadgen --addr HOST:PORT [flags]

  --addr HOST:PORT        server to load (required)
  --path PATH             request path of the upgrade [/ws]
  --mode MODE             echo | idle | churn | fanout [echo]
  --topic T               fanout: subscribers upgrade on /sub/T, the publisher on /pub/T [bench]
  --sub-addr HOST:PORT    fanout: subscribers connect to these servers in turn (repeatable) [--addr];
                          the publisher connects to --addr
  --also-pid PID          fanout: another server process whose CPU time counts with --server-pid's
                          (repeatable: the other node, Redis)
  --socketio              fanout over Socket.IO 4: /socket.io/?EIO=4&transport=websocket&role=sub|pub
                          &topic=T, a CONNECT packet (40) after the upgrade, each message an event
                          with one binary attachment (the text packet is skipped), pings (2)
                          answered (3); the publisher emits \"p\" events
  --connections N         connections (echo, idle), concurrent connect/close loops (churn) or
                          subscribers (fanout, plus one publisher) [1]
  --inflight K            messages in flight per connection (echo), or published and not yet
                          received by every subscriber (fanout) [1]
  --size S                message size in bytes (echo, churn) [32]
  --warmup W              seconds of traffic before the measured window (echo, churn) [1]
  --duration D            seconds measured (echo, churn) or held idle (idle) [5]
  --server-pid PID        server process: CPU time (echo, churn) and RSS (idle) from /proc/PID
  --threads T             event loops, each with its own share of the connections [1]
  --connect-batch B       handshakes pending at once per loop (pacing of the connects) [500]
  --connect-timeout S     seconds for one connection to be upgraded, else an error [15]
  --label KEY=VALUE       extra string field in the JSON line (repeatable)
  --json                  send JSON-like text messages (varied bodies) instead of binary ones
  --deflate               offer permessage-deflate (as browsers do: client_max_window_bits),
                          compress messages, inflate echoes; implies --json. A server that
                          declines fails the run (exit status 3, \"failed\" in the JSON line)
  --deflate-level L       zlib level of the messages the load generator sends (0-9) [6, zlib's
                          default, as browsers use]
  --tls                   WebSocket over TLS (wss://), rustls with the aws-lc-rs provider, in
                          every mode; churn cycles include the TLS handshake. Needs --tls-ca
  --tls-ca PATH           PEM file of the certificates to trust (a self-signed server
                          certificate is its own CA)
  --tls-name NAME         server name to verify the certificate for, sent as SNI [localhost]
  --tls-resume            allow TLS session resumption (tickets, session ids); off by default,
                          so that every churn cycle is a full handshake
  --tls-groups G,G        key-exchange groups to offer, in order (X25519MLKEM768, X25519,
                          secp256r1, ...) [the provider's default: X25519MLKEM768 first, with an
                          X25519 key share beside it]; X25519 alone matches a server without
                          ML-KEM

Prints one JSON line on stdout; diagnostics go to stderr. Exit status 0 even with errors
(they are counted in \"errors\"); 2 for bad flags; 1 if nothing could be connected; 3 if
--deflate was given and the server declined it.
";

fn parse_args() -> Result<Args, String> {
    let mut argv = std::env::args().skip(1);
    let mut addr = None;
    let mut args = Args {
        addr: "127.0.0.1:9001".parse().unwrap(),
        host: String::new(),
        path: "/ws".into(),
        mode: Mode::Echo,
        connections: 1,
        inflight: 1,
        size: 32,
        warmup: 1.0,
        duration: 5.0,
        server_pid: None,
        threads: 1,
        connect_batch: 500,
        connect_timeout: 15.0,
        labels: Vec::new(),
        json: false,
        deflate: false,
        deflate_level: 6,
        topic: "bench".into(),
        sub_addrs: Vec::new(),
        also_pids: Vec::new(),
        socketio: false,
        tls: None,
    };
    let mut tls_on = false;
    let mut tls_resume = false;
    let mut tls_ca = None;
    let mut tls_name = String::from("localhost");
    let mut tls_groups = None;
    fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
        v.parse().map_err(|_| format!("--{name}: bad value {v:?}"))
    }
    while let Some(arg) = argv.next() {
        if arg == "--help" || arg == "-h" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        if arg == "--json" || arg == "--deflate" {
            args.json = true;
            args.deflate |= arg == "--deflate";
            continue;
        }
        if arg == "--socketio" {
            args.socketio = true;
            continue;
        }
        if arg == "--tls" || arg == "--tls-resume" {
            tls_on = true;
            tls_resume |= arg == "--tls-resume";
            continue;
        }
        let Some(name) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => {
                let v = argv.next().ok_or(format!("--{name} needs a value"))?;
                (name.to_owned(), v)
            }
        };
        let v = value.as_str();
        match name.as_str() {
            "addr" => addr = Some(v.to_owned()),
            "path" => args.path = v.to_owned(),
            "topic" => args.topic = v.to_owned(),
            "sub-addr" => args.sub_addrs.push(
                v.to_socket_addrs()
                    .map_err(|e| format!("--sub-addr {v}: {e}"))?
                    .next()
                    .ok_or(format!("--sub-addr {v}: no address"))?,
            ),
            "also-pid" => args.also_pids.push(num(&name, v)?),
            "mode" => {
                args.mode = match v {
                    "echo" => Mode::Echo,
                    "idle" => Mode::Idle,
                    "churn" => Mode::Churn,
                    "fanout" => Mode::Fanout,
                    _ => return Err(format!("--mode: unknown mode {v:?}")),
                }
            }
            "connections" => args.connections = num(&name, v)?,
            "inflight" => args.inflight = num(&name, v)?,
            "size" => args.size = num(&name, v)?,
            "warmup" => args.warmup = num(&name, v)?,
            "duration" => args.duration = num(&name, v)?,
            "server-pid" => args.server_pid = Some(num(&name, v)?),
            "threads" => args.threads = num(&name, v)?,
            "connect-batch" => args.connect_batch = num(&name, v)?,
            "connect-timeout" => args.connect_timeout = num(&name, v)?,
            "deflate-level" => args.deflate_level = num(&name, v)?,
            "tls-ca" => tls_ca = Some(v.to_owned()),
            "tls-name" => tls_name = v.to_owned(),
            "tls-groups" => tls_groups = Some(v.to_owned()),
            "label" => {
                let (k, val) = v
                    .split_once('=')
                    .ok_or(format!("--label: expected KEY=VALUE, got {v:?}"))?;
                args.labels.push((k.to_owned(), val.to_owned()));
            }
            _ => return Err(format!("unknown flag --{name} (try --help)")),
        }
    }
    let addr = addr.ok_or("--addr is required")?;
    args.addr = addr
        .to_socket_addrs()
        .map_err(|e| format!("--addr {addr}: {e}"))?
        .next()
        .ok_or(format!("--addr {addr}: no address"))?;
    args.host = addr;
    if args.connections == 0 || args.threads == 0 || args.connect_batch == 0 {
        return Err("--connections, --threads and --connect-batch must be at least 1".into());
    }
    if args.connections > 15_000 {
        return Err("--connections: at most 15000 (the per-process descriptor budget)".into());
    }
    if args.inflight == 0 {
        return Err("--inflight must be at least 1".into());
    }
    if args.size == 0 {
        return Err("--size must be at least 1".into());
    }
    if args.json && args.mode != Mode::Idle && args.size < deflate::MIN_JSON_SIZE {
        return Err(format!(
            "--json, --deflate: --size must be at least {}",
            deflate::MIN_JSON_SIZE
        ));
    }
    if args.mode == Mode::Fanout && (args.size < 16 || args.json) {
        return Err(
            "--mode fanout: binary messages (no --json, --deflate) of at least 16 bytes".into(),
        );
    }
    if args.deflate_level > 9 {
        return Err("--deflate-level: 0 to 9".into());
    }
    if !args.duration.is_finite()
        || args.duration <= 0.0
        || args.warmup.is_nan()
        || args.warmup < 0.0
    {
        return Err("--duration must be positive and --warmup not negative".into());
    }
    if tls_groups.is_some() && !tls_on {
        return Err("--tls-groups without --tls".into());
    }
    match (tls_on, tls_ca) {
        (true, Some(ca)) => {
            let tls = tls::Tls::new(&ca, &tls_name, tls_resume, tls_groups.as_deref())?;
            args.tls = Some(Arc::new(tls));
        }
        (true, None) => return Err("--tls needs --tls-ca PATH (the certificate to trust)".into()),
        (false, Some(_)) => return Err("--tls-ca without --tls".into()),
        (false, None) => {}
    }
    args.threads = args.threads.min(args.connections);
    Ok(args)
}

// ---------------------------------------------------------------------------------------------
// Small helpers: randomness, base64, masking, /proc.

/// xorshift64*: per-thread keys and masks. Not cryptographic; masks only need to vary.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut seed =
            t ^ (u64::from(std::process::id()) << 32) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if seed == 0 {
            seed = 0x2545_F491_4F6C_DD1D;
        }
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID);
    base64(&sha.finalize())
}

/// XORs `buf` with the 4-byte mask, eight bytes at a time (the key repeats every 4 bytes, so a
/// u64 of the key twice masks a whole word; `buf` starts at key phase 0).
fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    let k = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = buf.chunks_exact_mut(8);
    for w in &mut words {
        let v = u64::from_ne_bytes((&*w).try_into().unwrap()) ^ k;
        w.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of a process, in seconds, from /proc/PID/stat (fields 14 and 15).
fn proc_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: count fields after its closing ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3, so field N is fields[N - 3].
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// VmRSS of a process in KiB, from /proc/PID/status.
fn proc_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds of the server (if `--server-pid`) and of this process.
fn cpu_snapshot(pid: Option<u32>) -> (Option<f64>, Option<f64>) {
    (
        pid.and_then(|p| proc_cpu_seconds(&p.to_string())),
        proc_cpu_seconds("self"),
    )
}

// ---------------------------------------------------------------------------------------------
// Connections.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Non-blocking connect in progress; the request is queued in `out`.
    Connecting,
    /// Request sent (or being sent); reading the response head.
    Handshaking,
    /// Upgraded.
    Open,
    /// We sent a close frame and wait for the server's.
    Closing,
}

struct Conn {
    stream: TcpStream,
    /// `--tls`: the TLS session over `stream` (`out` is plaintext then, handed to it by `flush`).
    tls: Option<Box<rustls::ClientConnection>>,
    state: State,
    id: u32,
    started: Instant,
    expected_accept: String,
    head: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    // Streaming frame parser.
    hdr: [u8; 14],
    hdr_len: usize,
    in_payload: bool,
    remaining: u64,
    opcode: u8,
    fin: bool,
    msg_active: bool,
    msg_offset: usize,
    expect_prefix: [u8; PREFIX],
    ctrl: Vec<u8>,
    // Traffic.
    send_seq: u64,
    recv_seq: u64,
    /// Per message in flight: when it was sent and which body (text messages; 0 for binary).
    sent_at: VecDeque<(Instant, u32)>,
    /// Text messages: the echo being received, buffered whole (compressed or not).
    text_in: Vec<u8>,
    /// The echo being received has RSV1 set: compressed.
    compressed: bool,
    /// permessage-deflate, when negotiated.
    pmd: Option<Box<ConnDeflate>>,
}

/// A connection's permessage-deflate state. Its zlib streams exist only with context takeover
/// in that direction, created on first use. Without it, what we send is made from bodies
/// compressed once ([`deflate::push_stored_block`]) and echoes are inflated by the loop's shared
/// decompressor, reset per message; so idle connections cost nothing here.
struct ConnDeflate {
    params: Params,
    deflater: Option<Compress>,
    inflater: Option<Decompress>,
}

/// What a complete frame or message means to the loop.
enum Event {
    Message,
    Close,
}

/// The loop's handler of [`Event`]s, called by [`Conn::feed`].
type OnEvent<'a> = dyn FnMut(&mut Conn, Event, &mut Rng, &mut Payloads) -> Result<(), String> + 'a;

/// Appends a client frame header: `b0` (FIN, RSV, opcode), the mask bit and the length. The
/// 4-byte masking key follows, written by the caller.
fn frame_header(out: &mut Vec<u8>, b0: u8, len: usize) {
    out.push(b0);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

impl Conn {
    /// Writes what is queued (through TLS with `--tls`); `wire` counts the bytes that went out.
    /// Returns the bytes written to the socket.
    fn flush(&mut self, wire: &AtomicU64) -> io::Result<usize> {
        if let Some(t) = self.tls.as_deref_mut() {
            return tls::flush(t, &mut self.stream, &mut self.out, &mut self.out_pos, wire);
        }
        let mut written = 0;
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out_pos += n;
                    written += n;
                    wire.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(written),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(written)
    }

    /// Bytes wait for the socket (queued, or TLS records rustls holds).
    fn wants_write(&self) -> bool {
        match self.tls.as_deref() {
            Some(t) => tls::wants_write(t, &self.out, self.out_pos),
            None => self.out_pos < self.out.len(),
        }
    }

    /// Appends one masked client frame.
    fn push_frame(
        &mut self,
        opcode: u8,
        payload_len: usize,
        rng: &mut Rng,
        fill: impl FnOnce(&mut [u8]),
    ) {
        let out = &mut self.out;
        frame_header(out, 0x80 | opcode, payload_len);
        let key = (rng.next() as u32).to_ne_bytes();
        out.extend_from_slice(&key);
        let start = out.len();
        out.resize(start + payload_len, 0);
        fill(&mut out[start..]);
        apply_mask(&mut out[start..], key);
    }

    /// Appends the next message. Binary: one copy of a pre-masked body (see [`premask`]), then
    /// the masked prefix written over its start, so a 64 KiB message costs one memcpy here.
    /// Text: a random body with its prefix, compressed if permessage-deflate was negotiated.
    fn push_message(
        &mut self,
        p: &mut Payloads,
        rng: &mut Rng,
        now: Instant,
    ) -> Result<(), String> {
        if !p.json.is_empty() {
            return self.push_text(p, rng, now);
        }
        let (key, body) = &p.masked[(rng.next() >> 32) as usize % p.masked.len()];
        let size = body.len();
        let out = &mut self.out;
        frame_header(out, 0x82, size);
        out.extend_from_slice(key);
        let start = out.len();
        out.extend_from_slice(body);
        let prefix = prefix_of(self.send_seq, self.id);
        for (i, b) in prefix.iter().take(size).enumerate() {
            out[start + i] = b ^ key[i & 3];
        }
        self.send_seq += 1;
        self.sent_at.push_back((now, 0));
        Ok(())
    }

    /// A text message: body `idx` with this message's prefix. With permessage-deflate (RSV1 set,
    /// sync-flush tail stripped): deflated by this connection's compressor, which keeps its
    /// context; with `client_no_context_takeover`, the prefix in a stored block followed by the
    /// body compressed once at start-up ([`deflate::push_stored_block`]).
    fn push_text(&mut self, p: &mut Payloads, rng: &mut Rng, now: Instant) -> Result<(), String> {
        let idx = (rng.next() >> 32) as usize % p.json.len();
        let plain = &mut p.plain;
        plain.clear();
        plain.extend_from_slice(&p.json[idx]);
        deflate::write_json_prefix(plain, self.send_seq, self.id);
        let (payload, b0) = match &mut self.pmd {
            None => (&p.plain, 0x81),
            Some(z) => {
                let bits = z.params.client_window_bits();
                let level = p.level;
                p.zbuf.clear();
                if z.params.client_no_context_takeover {
                    let pre = precompressed(&mut p.precompressed, &p.json, level, bits)?;
                    deflate::push_stored_block(&mut p.zbuf, &p.plain[..deflate::JSON_PREFIX]);
                    p.zbuf.extend_from_slice(&pre[idx]);
                } else {
                    let c = z
                        .deflater
                        .get_or_insert_with(|| deflate::compressor(level, bits));
                    deflate::deflate_message(c, &p.plain, &mut p.zbuf)?;
                }
                (&p.zbuf, 0xC1)
            }
        };
        let out = &mut self.out;
        frame_header(out, b0, payload.len());
        let key = (rng.next() as u32).to_ne_bytes();
        out.extend_from_slice(&key);
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], key);
        self.send_seq += 1;
        self.sent_at.push_back((now, idx as u32));
        Ok(())
    }

    /// Checks the complete text echo in `text_in` (inflated first if compressed) against the
    /// message sent.
    fn check_text(&mut self, p: &mut Payloads) -> Result<(), String> {
        let &(_, idx) = self.sent_at.front().ok_or("echo without a send time")?;
        let got: &[u8] = if self.compressed {
            let z = self
                .pmd
                .as_mut()
                .ok_or("compressed echo without permessage-deflate")?;
            self.text_in.extend_from_slice(&deflate::TAIL);
            let d = if z.params.server_no_context_takeover {
                p.inflater.reset(false);
                &mut p.inflater
            } else {
                z.inflater.get_or_insert_with(deflate::decompressor)
            };
            deflate::inflate_message(d, &self.text_in, &mut p.zbuf, p.size)?;
            p.echoes_compressed += 1;
            &p.zbuf
        } else {
            p.echoes_uncompressed += 1;
            &self.text_in
        };
        let plain = &mut p.plain;
        plain.clear();
        plain.extend_from_slice(&p.json[idx as usize]);
        deflate::write_json_prefix(plain, self.recv_seq, self.id);
        if got.len() != plain.len() {
            return Err(format!("echo of {} bytes, sent {}", got.len(), plain.len()));
        }
        if got[..deflate::JSON_PREFIX] != plain[..deflate::JSON_PREFIX] {
            return Err(format!(
                "echo mismatch in the prefix of message {} (order or content)",
                self.recv_seq
            ));
        }
        if got != &plain[..] {
            return Err(format!(
                "echo content mismatch in message {}",
                self.recv_seq
            ));
        }
        Ok(())
    }

    fn push_close(&mut self, rng: &mut Rng) {
        self.push_frame(0x8, 2, rng, |dst| {
            dst.copy_from_slice(&1000u16.to_be_bytes())
        });
        self.state = State::Closing;
    }

    /// Feeds received bytes to the frame parser; calls `on_event` for every complete message
    /// and for the server's close frame. Verifies every payload byte: binary echoes as they
    /// stream in, against `p.body`; text echoes once complete ([`Conn::check_text`]).
    fn feed(
        &mut self,
        mut data: &[u8],
        p: &mut Payloads,
        rng: &mut Rng,
        on_event: &mut OnEvent,
    ) -> Result<(), String> {
        let size = p.size;
        let text = !p.json.is_empty();
        while !data.is_empty() {
            if !self.in_payload {
                // Header: 2 bytes, then the extended length (server frames are never masked).
                let need = if self.hdr_len < 2 {
                    2
                } else {
                    match self.hdr[1] & 0x7F {
                        126 => 4,
                        127 => 10,
                        _ => 2,
                    }
                };
                let take = (need - self.hdr_len).min(data.len());
                self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[..take]);
                self.hdr_len += take;
                data = &data[take..];
                if self.hdr_len < need || (need == 2 && matches!(self.hdr[1] & 0x7F, 126 | 127)) {
                    continue;
                }
                let b0 = self.hdr[0];
                let b1 = self.hdr[1];
                let rsv = b0 & 0x70;
                // RSV1 marks a compressed message: only on its first frame, only if negotiated.
                if rsv != 0 && !(rsv == 0x40 && self.pmd.is_some() && matches!(b0 & 0x0F, 1 | 2)) {
                    return Err(format!(
                        "frame with RSV bits {rsv:#x} set (opcode {:#x}, permessage-deflate {})",
                        b0 & 0x0F,
                        if self.pmd.is_some() {
                            "negotiated"
                        } else {
                            "not negotiated"
                        }
                    ));
                }
                if b1 & 0x80 != 0 {
                    return Err("server frame is masked".into());
                }
                let len = match b1 & 0x7F {
                    126 => u64::from(u16::from_be_bytes([self.hdr[2], self.hdr[3]])),
                    127 => u64::from_be_bytes(self.hdr[2..10].try_into().unwrap()),
                    n => u64::from(n),
                };
                self.hdr_len = 0;
                self.opcode = b0 & 0x0F;
                self.fin = b0 & 0x80 != 0;
                self.remaining = len;
                match self.opcode {
                    0x0 => {
                        if !self.msg_active {
                            return Err("continuation frame without a message".into());
                        }
                    }
                    0x1 | 0x2 => {
                        if (self.opcode == 0x1) != text {
                            return Err(if text {
                                "binary frame echoed for a text message".into()
                            } else {
                                "text frame echoed for a binary message".into()
                            });
                        }
                        if self.msg_active {
                            return Err("new message before the previous one finished".into());
                        }
                        if self.recv_seq >= self.send_seq {
                            return Err("echo of a message that was never sent".into());
                        }
                        self.msg_active = true;
                        self.msg_offset = 0;
                        self.expect_prefix = prefix_of(self.recv_seq, self.id);
                        self.compressed = rsv == 0x40;
                        self.text_in.clear();
                    }
                    0x8..=0xA => {
                        if !self.fin || len > 125 {
                            return Err("bad control frame".into());
                        }
                        self.ctrl.clear();
                    }
                    op => return Err(format!("unknown opcode {op:#x}")),
                }
                if len > 0 {
                    self.in_payload = true;
                    continue;
                }
            } else {
                let take = (self.remaining.min(data.len() as u64)) as usize;
                let chunk = &data[..take];
                data = &data[take..];
                self.remaining -= take as u64;
                if self.opcode >= 0x8 {
                    self.ctrl.extend_from_slice(chunk);
                } else if text {
                    // Compressed echoes of these messages are smaller; deflate's worst case is a
                    // few bytes per stored block.
                    if self.text_in.len() + take > size + size / 8 + 64 {
                        return Err(format!("echo longer than {size} bytes"));
                    }
                    self.text_in.extend_from_slice(chunk);
                } else {
                    let off = self.msg_offset;
                    if off + take > size {
                        return Err(format!("echo longer than {size} bytes"));
                    }
                    // Prefix bytes one by one, the rest as one slice comparison.
                    let plen = PREFIX.min(size);
                    let mut i = 0;
                    while i < take && off + i < plen {
                        if chunk[i] != self.expect_prefix[off + i] {
                            return Err(format!(
                                "echo mismatch at byte {} of message {} (order or content)",
                                off + i,
                                self.recv_seq
                            ));
                        }
                        i += 1;
                    }
                    if chunk[i..] != p.body[off + i..off + take] {
                        return Err(format!(
                            "echo content mismatch in message {}",
                            self.recv_seq
                        ));
                    }
                    self.msg_offset += take;
                }
                if self.remaining > 0 {
                    continue;
                }
                self.in_payload = false;
            }
            // A frame is complete.
            match self.opcode {
                0x0..=0x2 => {
                    if self.fin {
                        if text {
                            self.check_text(p)?;
                        } else if self.msg_offset != size {
                            return Err(format!("echo of {} bytes, sent {size}", self.msg_offset));
                        }
                        self.msg_active = false;
                        self.recv_seq += 1;
                        on_event(self, Event::Message, rng, p)?;
                    }
                }
                0x9 => {
                    let ping = std::mem::take(&mut self.ctrl);
                    self.push_frame(0xA, ping.len(), rng, |dst| dst.copy_from_slice(&ping));
                    self.ctrl = ping;
                }
                0xA => {}
                0x8 => on_event(self, Event::Close, rng, p)?,
                _ => unreachable!(),
            }
        }
        Ok(())
    }
}

fn prefix_of(seq: u64, id: u32) -> [u8; PREFIX] {
    let mut p = [0u8; PREFIX];
    p[..8].copy_from_slice(&seq.to_le_bytes());
    p[8..].copy_from_slice(&id.to_le_bytes());
    p
}

/// A few copies of the message body, each masked with its own random key: messages pick one at
/// random, so masks still vary from frame to frame without a masking pass per message.
fn premask(body: &[u8], rng: &mut Rng) -> Vec<([u8; 4], Vec<u8>)> {
    (0..8)
        .map(|_| {
            let key = (rng.next() as u32).to_ne_bytes();
            let mut b = body.to_vec();
            apply_mask(&mut b, key);
            (key, b)
        })
        .collect()
}

/// The pattern after each message's prefix: not constant, so a shifted echo is caught too.
fn make_body(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(131) ^ (i >> 8)) as u8)
        .collect()
}

/// What the connections of one loop send and expect back, and the decompressor they share.
struct Payloads {
    size: usize,
    /// Binary messages: the body and pre-masked copies of it (empty with `--json`).
    body: Vec<u8>,
    masked: Vec<([u8; 4], Vec<u8>)>,
    /// Text messages: different JSON-like bodies, one picked at random per message.
    json: Vec<Vec<u8>>,
    /// zlib level of what we send.
    level: u32,
    /// `client_no_context_takeover`: the bodies compressed once (after their prefix), by
    /// window bits.
    precompressed: Vec<(u8, Vec<Vec<u8>>)>,
    /// Decompressor for `server_no_context_takeover` (reset per message).
    inflater: Decompress,
    /// Scratch: the plain text of a message; its compressed form, or an inflated echo.
    plain: Vec<u8>,
    zbuf: Vec<u8>,
    echoes_compressed: u64,
    echoes_uncompressed: u64,
}

/// Text bodies per loop: enough that a 32 KiB window rarely holds the same body twice.
const JSON_BODIES: usize = 512;

impl Payloads {
    fn new(args: &Args, rng: &mut Rng) -> Payloads {
        // Idle connections send nothing: no bodies to make.
        let (body, masked, json) = if args.json && args.mode != Mode::Idle {
            // At most 8 MiB of bodies per loop for large sizes.
            let count = (8 << 20) / args.size;
            let count = count.clamp(16, JSON_BODIES);
            let json = deflate::json_bodies(args.size, count, &mut || rng.next());
            (Vec::new(), Vec::new(), json)
        } else {
            let body = make_body(args.size);
            let masked = premask(&body, rng);
            (body, masked, Vec::new())
        };
        Payloads {
            size: args.size,
            body,
            masked,
            json,
            level: args.deflate_level,
            precompressed: Vec::new(),
            inflater: deflate::decompressor(),
            plain: Vec::with_capacity(args.size),
            zbuf: Vec::new(),
            echoes_compressed: 0,
            echoes_uncompressed: 0,
        }
    }
}

/// The bodies compressed for window `bits` (computed on first use; every connection to one
/// server normally gets the same answer, so there is one entry).
fn precompressed<'p>(
    list: &'p mut Vec<(u8, Vec<Vec<u8>>)>,
    bodies: &[Vec<u8>],
    level: u32,
    bits: u8,
) -> Result<&'p [Vec<u8>], String> {
    let i = match list.iter().position(|(b, _)| *b == bits) {
        Some(i) => i,
        None => {
            let pre = bodies
                .iter()
                .map(|b| deflate::precompress_body(level, bits, b))
                .collect::<Result<_, _>>()?;
            list.push((bits, pre));
            list.len() - 1
        }
    };
    Ok(&list[i].1)
}

// ---------------------------------------------------------------------------------------------
// The event loop of one thread.

struct Shared {
    /// Echo, idle: threads whose connections are all upgraded (or failed).
    connected_threads: AtomicUsize,
    /// Echo: start sending. Churn: (unused, loops start at once.)
    go: AtomicBool,
    /// Inside the measured window.
    measuring: AtomicBool,
    /// Stop: send close frames, wait briefly for replies, return.
    stop: AtomicBool,
    /// Bytes written to and read from the sockets (all connections, handshakes included).
    wire_sent: AtomicU64,
    wire_recv: AtomicU64,
    /// `--deflate`: upgrades answered without permessage-deflate.
    declined: AtomicUsize,
}

#[derive(Default)]
struct Stats {
    connected: usize,
    messages: u64,
    cycles: u64,
    errors: u64,
    hist: Option<Histogram<u64>>,
    /// The first permessage-deflate answer seen.
    negotiated: Option<String>,
    echoes_compressed: u64,
    echoes_uncompressed: u64,
    /// `--tls`: what the handshakes negotiated.
    tls: tls::Handshakes,
}

struct Loop<'a> {
    args: &'a Args,
    shared: &'a Shared,
    thread: usize,
    poll: Poll,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    rng: Rng,
    payloads: Payloads,
    stats: Stats,
    hist: Histogram<u64>,
    reported: usize,
    next_id: u32,
    pending: usize,
    live: usize,
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000_000, 3).expect("histogram bounds")
}

impl<'a> Loop<'a> {
    fn error(&mut self, msg: String) {
        self.stats.errors += 1;
        if self.reported < MAX_REPORTED_ERRORS {
            self.reported += 1;
            eprintln!("loadgen[{}]: {msg}", self.thread);
        }
    }

    fn open(&mut self) {
        let mut stream = match TcpStream::connect(self.args.addr) {
            Ok(s) => s,
            Err(e) => {
                self.error(format!("connect: {e}"));
                return;
            }
        };
        let tls = match self.args.tls.as_deref().map(tls::Tls::connect).transpose() {
            Ok(t) => t,
            Err(e) => {
                self.error(e);
                return;
            }
        };
        let idx = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(idx),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.free.push(idx);
            self.error(format!("register: {e}"));
            return;
        }
        // Before the connection completes already: one call, no wait.
        let _ = stream.set_nodelay(true);
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&self.rng.next().to_ne_bytes());
        raw[8..].copy_from_slice(&self.rng.next().to_ne_bytes());
        let key = base64(&raw);
        let extensions = if self.args.deflate {
            format!("Sec-WebSocket-Extensions: {}\r\n", deflate::OFFER)
        } else {
            String::new()
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n",
            self.args.path, self.args.host
        );
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.conns[idx] = Some(Conn {
            stream,
            tls,
            state: State::Connecting,
            id,
            started: Instant::now(),
            expected_accept: accept_key(&key),
            head: Vec::new(),
            out: request.into_bytes(),
            out_pos: 0,
            hdr: [0; 14],
            hdr_len: 0,
            in_payload: false,
            remaining: 0,
            opcode: 0,
            fin: false,
            msg_active: false,
            msg_offset: 0,
            expect_prefix: [0; PREFIX],
            ctrl: Vec::new(),
            send_seq: 0,
            recv_seq: 0,
            sent_at: VecDeque::with_capacity(self.args.inflight),
            text_in: Vec::new(),
            compressed: false,
            pmd: None,
        });
        self.pending += 1;
        self.live += 1;
    }

    /// Removes a connection from the loop (the socket closes when `conn` drops).
    fn retire(&mut self, idx: usize, conn: Conn) {
        // No epoll_ctl(DEL): closing the socket (when `conn` drops) removes it from the epoll set.
        if matches!(conn.state, State::Connecting | State::Handshaking) {
            self.pending -= 1;
        }
        self.live -= 1;
        self.free.push(idx);
        drop(conn);
    }

    fn on_ready(&mut self, idx: usize, readable: bool, scratch: &mut [u8], plain: &mut Vec<u8>) {
        let Some(mut conn) = self.conns[idx].take() else {
            return;
        };
        match self.drive(&mut conn, readable, scratch, plain) {
            Ok(true) => self.conns[idx] = Some(conn),
            Ok(false) => self.retire(idx, conn),
            Err(msg) => {
                self.error(msg);
                self.retire(idx, conn);
            }
        }
    }

    /// Ok(false): the connection is finished (churn cycle or close handshake done). `plain`:
    /// scratch for what TLS decrypts.
    fn drive(
        &mut self,
        conn: &mut Conn,
        readable: bool,
        scratch: &mut [u8],
        plain: &mut Vec<u8>,
    ) -> Result<bool, String> {
        if conn.state == State::Connecting {
            // No getsockopt/getpeername round: a write to a socket still in SYN_SENT fails with
            // EAGAIN, to a refused one with the error, so the request write itself tells (with
            // --tls: the ClientHello's; the request waits in rustls for the handshake).
            if readable && let Ok(Some(e)) | Err(e) = conn.stream.take_error() {
                return Err(format!("connect: {e}"));
            }
            let n = conn
                .flush(&self.shared.wire_sent)
                .map_err(|e| format!("connect: {e}"))?;
            if n == 0 && conn.wants_write() {
                return Ok(true); // still connecting
            }
            conn.state = State::Handshaking;
        }
        if readable {
            loop {
                match conn.stream.read(scratch) {
                    Ok(0) => {
                        return if conn.state == State::Closing {
                            Ok(false)
                        } else {
                            Err(format!("server closed the connection ({:?})", conn.state))
                        };
                    }
                    Ok(n) => {
                        self.shared.wire_recv.fetch_add(n as u64, Ordering::Relaxed);
                        let now = Instant::now();
                        let (data, tls_closed) = match conn.tls.as_deref_mut() {
                            None => (&scratch[..n], false),
                            Some(t) => {
                                let closed = tls::decrypt(t, &scratch[..n], plain)?;
                                (&plain[..], closed)
                            }
                        };
                        if !data.is_empty() && !self.process(conn, data, now)? {
                            return Ok(false);
                        }
                        if tls_closed {
                            return if conn.state == State::Closing {
                                Ok(false)
                            } else {
                                Err(format!("server sent TLS close_notify ({:?})", conn.state))
                            };
                        }
                        if n < scratch.len() {
                            break; // drained: epoll (edge-triggered) reports new data
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
        }
        conn.flush(&self.shared.wire_sent)
            .map_err(|e| format!("write: {e}"))?;
        Ok(true)
    }

    /// Ok(false): finished.
    fn process(&mut self, conn: &mut Conn, data: &[u8], now: Instant) -> Result<bool, String> {
        let leftover;
        let mut data = data;
        if conn.state == State::Handshaking {
            conn.head.extend_from_slice(data);
            let Some(end) = conn.head.windows(4).position(|w| w == b"\r\n\r\n") else {
                if conn.head.len() > 16 * 1024 {
                    return Err("handshake response head too large".into());
                }
                return Ok(true);
            };
            let end = end + 4;
            let pmd = check_response(&conn.head[..end], &conn.expected_accept, self.args.deflate)?;
            match pmd {
                Some(params) => {
                    self.stats
                        .negotiated
                        .get_or_insert_with(|| params.describe());
                    conn.pmd = Some(Box::new(ConnDeflate {
                        params,
                        deflater: None,
                        inflater: None,
                    }));
                }
                None if self.args.deflate => {
                    self.shared.declined.fetch_add(1, Ordering::SeqCst);
                    return Err("server declined permessage-deflate (no \
                                Sec-WebSocket-Extensions in its 101)"
                        .into());
                }
                None => {}
            }
            if let Some(t) = conn.tls.as_deref() {
                self.stats.tls.record(t);
            }
            leftover = conn.head.split_off(end);
            conn.head = Vec::new();
            conn.state = State::Open;
            self.pending -= 1;
            self.stats.connected += 1;
            match self.args.mode {
                Mode::Fanout => unreachable!("fanout::run handles --mode fanout"),
                Mode::Echo => {
                    if self.shared.go.load(Ordering::Relaxed)
                        && !self.shared.stop.load(Ordering::Relaxed)
                    {
                        for _ in 0..self.args.inflight {
                            conn.push_message(&mut self.payloads, &mut self.rng, now)?;
                        }
                    }
                }
                Mode::Churn => conn.push_message(&mut self.payloads, &mut self.rng, now)?,
                Mode::Idle => {}
            }
            data = &leftover;
        }
        if data.is_empty() {
            return Ok(true);
        }
        let mode = self.args.mode;
        let inflight_mode = mode == Mode::Echo;
        let shared = self.shared;
        let stats = &mut self.stats;
        let hist = &mut self.hist;
        let mut done = false;
        conn.feed(
            data,
            &mut self.payloads,
            &mut self.rng,
            &mut |c, event, rng, p| {
                match event {
                    Event::Message => {
                        let (sent, _) = c.sent_at.pop_front().ok_or("echo without a send time")?;
                        if c.state != State::Open {
                            return Ok(()); // an echo still in flight when we started closing
                        }
                        if inflight_mode {
                            if shared.measuring.load(Ordering::Relaxed) {
                                stats.messages += 1;
                                hist.saturating_record(now.duration_since(sent).as_nanos() as u64);
                            }
                            if !shared.stop.load(Ordering::Relaxed) {
                                c.push_message(p, rng, now)?;
                            }
                        } else if mode == Mode::Churn {
                            c.push_close(rng);
                        }
                        Ok(())
                    }
                    Event::Close => {
                        if c.state != State::Closing {
                            let code = (c.ctrl.len() >= 2)
                                .then(|| u16::from_be_bytes([c.ctrl[0], c.ctrl[1]]));
                            return Err(format!("server sent close {code:?} unprompted"));
                        }
                        if mode == Mode::Churn && shared.measuring.load(Ordering::Relaxed) {
                            stats.cycles += 1;
                            hist.saturating_record(now.duration_since(c.started).as_nanos() as u64);
                        }
                        done = true;
                        Ok(())
                    }
                }
            },
        )?;
        if done {
            // Close handshake complete: flush what is left (a pong; with --tls, close_notify).
            if let Some(t) = conn.tls.as_deref_mut() {
                tls::close_notify(t);
            }
            let _ = conn.flush(&self.shared.wire_sent);
            return Ok(false);
        }
        Ok(true)
    }

    fn run(mut self, share: usize) -> Stats {
        let mut scratch = vec![0u8; READ_BUF];
        let mut plain = Vec::new();
        let mut events = Events::with_capacity(1024);
        let mode = self.args.mode;
        let mut to_open = share;
        let mut reported_connected = false;
        let mut go_seen = false;
        let mut stop_deadline: Option<Instant> = None;
        let mut last_sweep = Instant::now();
        let connect_timeout = Duration::from_secs_f64(self.args.connect_timeout);
        loop {
            let now = Instant::now();
            let stop = self.shared.stop.load(Ordering::Relaxed);
            match mode {
                Mode::Fanout => unreachable!("fanout::run handles --mode fanout"),
                Mode::Echo | Mode::Idle => {
                    while !stop && to_open > 0 && self.pending < self.args.connect_batch {
                        self.open();
                        to_open -= 1;
                    }
                    if !reported_connected && to_open == 0 && self.pending == 0 {
                        reported_connected = true;
                        self.shared.connected_threads.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Mode::Churn => {
                    while !stop && self.live < share {
                        let before = self.live;
                        self.open();
                        if self.live == before {
                            break; // connect failed (counted); retry next turn
                        }
                    }
                }
            }
            if mode == Mode::Echo && !go_seen && self.shared.go.load(Ordering::SeqCst) {
                go_seen = true;
                for idx in 0..self.conns.len() {
                    if let Some(mut c) = self.conns[idx].take() {
                        if c.state == State::Open {
                            let mut res = Ok(());
                            for _ in 0..self.args.inflight {
                                res = res.and_then(|()| {
                                    c.push_message(&mut self.payloads, &mut self.rng, now)
                                });
                            }
                            let res = res.and_then(|()| {
                                c.flush(&self.shared.wire_sent)
                                    .map_err(|e| format!("write: {e}"))
                            });
                            if let Err(e) = res {
                                self.error(e);
                                self.retire(idx, c);
                                continue;
                            }
                        }
                        self.conns[idx] = Some(c);
                    }
                }
            }
            if stop && stop_deadline.is_none() {
                stop_deadline = Some(now + Duration::from_secs(1));
                for idx in 0..self.conns.len() {
                    if let Some(mut c) = self.conns[idx].take() {
                        if c.state == State::Open {
                            c.push_close(&mut self.rng);
                            if c.flush(&self.shared.wire_sent).is_ok() {
                                self.conns[idx] = Some(c);
                                continue;
                            }
                        } else if c.state == State::Closing {
                            self.conns[idx] = Some(c);
                            continue;
                        }
                        self.retire(idx, c);
                    }
                }
            }
            if let Some(deadline) = stop_deadline
                && (self.live == 0 || now >= deadline)
            {
                break;
            }
            if now.duration_since(last_sweep) >= Duration::from_millis(100) {
                last_sweep = now;
                for idx in 0..self.conns.len() {
                    let expired = matches!(&self.conns[idx], Some(c)
                        if matches!(c.state, State::Connecting | State::Handshaking)
                            && now.duration_since(c.started) > connect_timeout);
                    if expired {
                        let c = self.conns[idx].take().unwrap();
                        self.error(format!(
                            "connection not upgraded within {connect_timeout:?} ({:?})",
                            c.state
                        ));
                        self.retire(idx, c);
                    }
                }
            }
            if let Err(e) = self.poll.poll(&mut events, Some(Duration::from_millis(20)))
                && e.kind() != io::ErrorKind::Interrupted
            {
                self.error(format!("poll: {e}"));
                break;
            }
            for ev in events.iter() {
                let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                self.on_ready(ev.token().0, readable, &mut scratch, &mut plain);
            }
        }
        for idx in 0..self.conns.len() {
            if let Some(c) = self.conns[idx].take() {
                self.retire(idx, c);
            }
        }
        self.stats.hist = Some(self.hist);
        self.stats.echoes_compressed = self.payloads.echoes_compressed;
        self.stats.echoes_uncompressed = self.payloads.echoes_uncompressed;
        self.stats
    }
}

/// Checks the `101` and returns the permessage-deflate parameters it accepted, if any. An
/// extension answered without an offer (`deflate` false) is an error.
fn check_response(
    head: &[u8],
    expected_accept: &str,
    deflate: bool,
) -> Result<Option<Params>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("incomplete handshake response".into()),
        Err(e) => return Err(format!("bad handshake response: {e}")),
    }
    if resp.code != Some(101) {
        return Err(format!(
            "handshake answered {} {}",
            resp.code.unwrap_or(0),
            resp.reason.unwrap_or("")
        ));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    if !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err("101 without Upgrade: websocket".into());
    }
    if !header("connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return Err("101 without Connection: Upgrade".into());
    }
    match header("sec-websocket-accept") {
        Some(v) if v == expected_accept => {}
        Some(v) => return Err(format!("wrong Sec-WebSocket-Accept {v:?}")),
        None => return Err("101 without Sec-WebSocket-Accept".into()),
    }
    let extensions: Vec<&str> = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| std::str::from_utf8(h.value).unwrap_or("?"))
        .collect();
    if !deflate && !extensions.is_empty() {
        return Err(format!(
            "101 with Sec-WebSocket-Extensions {extensions:?}, but none was offered"
        ));
    }
    deflate::parse_response(&extensions)
}

// ---------------------------------------------------------------------------------------------
// Main: threads, the measured window, the JSON line.

struct Json(String);

impl Json {
    fn new() -> Json {
        Json(String::from("{"))
    }
    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(&escape(k));
        self.0.push_str("\":");
    }
    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.0.push('"');
        self.0.push_str(&escape(v));
        self.0.push('"');
    }
    fn int(&mut self, k: &str, v: u64) {
        self.key(k);
        self.0.push_str(&v.to_string());
    }
    fn num(&mut self, k: &str, v: Option<f64>) {
        self.key(k);
        match v {
            Some(v) if v.is_finite() => self
                .0
                .push_str(&format!("{}", (v * 1000.0).round() / 1000.0)),
            _ => self.0.push_str("null"),
        }
    }
    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.mode == Mode::Fanout {
        return fanout::run(&args);
    }
    let args = Arc::new(args);
    let shared = Arc::new(Shared {
        connected_threads: AtomicUsize::new(0),
        go: AtomicBool::new(false),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        wire_sent: AtomicU64::new(0),
        wire_recv: AtomicU64::new(0),
        declined: AtomicUsize::new(0),
    });
    let pid = args.server_pid;
    let rss_before = pid.and_then(proc_rss_kib);
    if let (Mode::Idle, Some(p), None) = (args.mode, pid, rss_before) {
        eprintln!("loadgen: cannot read /proc/{p}/status");
    }

    let threads = args.threads;
    let mut handles = Vec::new();
    for t in 0..threads {
        let share = args.connections / threads + usize::from(t < args.connections % threads);
        let args = Arc::clone(&args);
        let shared = Arc::clone(&shared);
        handles.push(thread::spawn(move || {
            let poll = Poll::new().expect("epoll");
            let mut rng = Rng::new(t as u64 + 1);
            let payloads = Payloads::new(&args, &mut rng);
            let lp = Loop {
                args: &args,
                shared: &shared,
                thread: t,
                poll,
                conns: Vec::with_capacity(share),
                free: Vec::new(),
                rng,
                payloads,
                stats: Stats::default(),
                hist: new_hist(),
                reported: 0,
                next_id: (t as u32) << 24,
                pending: 0,
                live: 0,
            };
            lp.run(share)
        }));
    }

    let connect_deadline = Instant::now() + Duration::from_secs(120);
    let mut window = (Instant::now(), Instant::now());
    let mut cpu0 = (None, None);
    let mut cpu1 = (None, None);
    let wire = || {
        (
            shared.wire_sent.load(Ordering::SeqCst),
            shared.wire_recv.load(Ordering::SeqCst),
        )
    };
    let (mut wire0, mut wire1) = ((0, 0), (0, 0));
    let mut rss_after = None;
    match args.mode {
        Mode::Fanout => unreachable!("fanout::run handles --mode fanout"),
        Mode::Echo | Mode::Idle => {
            while shared.connected_threads.load(Ordering::SeqCst) < threads
                && Instant::now() < connect_deadline
            {
                thread::sleep(Duration::from_millis(5));
            }
        }
        Mode::Churn => {}
    }
    let t_ready = Instant::now();
    let declined = || shared.declined.load(Ordering::SeqCst);
    match args.mode {
        Mode::Fanout => unreachable!("fanout::run handles --mode fanout"),
        // Declined compression fails the run: no point measuring without it.
        _ if declined() > 0 => {}
        Mode::Echo | Mode::Churn => {
            shared.go.store(true, Ordering::SeqCst);
            sleep_until(t_ready + Duration::from_secs_f64(args.warmup));
            cpu0 = cpu_snapshot(pid);
            wire0 = wire();
            window.0 = Instant::now();
            shared.measuring.store(true, Ordering::SeqCst);
            sleep_until(window.0 + Duration::from_secs_f64(args.duration));
            shared.measuring.store(false, Ordering::SeqCst);
            window.1 = Instant::now();
            wire1 = wire();
            cpu1 = cpu_snapshot(pid);
        }
        Mode::Idle => {
            // Settle: at least 1 s, then until RSS stops changing (two equal readings 250 ms
            // apart) or 5 s more.
            thread::sleep(Duration::from_secs(1));
            if let Some(p) = pid {
                let settle_end = Instant::now() + Duration::from_secs(5);
                let mut last = proc_rss_kib(p);
                let mut stable = 0;
                while Instant::now() < settle_end && stable < 2 {
                    thread::sleep(Duration::from_millis(250));
                    let r = proc_rss_kib(p);
                    stable = if r == last { stable + 1 } else { 0 };
                    last = r;
                }
                rss_after = last;
            }
            sleep_until(t_ready + Duration::from_secs_f64(args.duration));
        }
    }
    shared.stop.store(true, Ordering::SeqCst);

    let mut total = Stats::default();
    let mut hist = new_hist();
    for h in handles {
        match h.join() {
            Ok(s) => {
                total.connected += s.connected;
                total.messages += s.messages;
                total.cycles += s.cycles;
                total.errors += s.errors;
                total.echoes_compressed += s.echoes_compressed;
                total.echoes_uncompressed += s.echoes_uncompressed;
                if total.negotiated.is_none() {
                    total.negotiated = s.negotiated;
                }
                total.tls.merge(s.tls);
                if let Some(sh) = &s.hist {
                    hist.add(sh).expect("histogram merge");
                }
            }
            Err(_) => total.errors += 1,
        }
    }

    let seconds = window.1.duration_since(window.0).as_secs_f64();
    let per = |c0: Option<f64>, c1: Option<f64>, n: u64| match (c0, c1) {
        (Some(a), Some(b)) if n > 0 => Some((b - a) * 1e6 / n as f64),
        _ => None,
    };
    let pct = |c0: Option<f64>, c1: Option<f64>| match (c0, c1) {
        (Some(a), Some(b)) if seconds > 0.0 => Some((b - a) * 100.0 / seconds),
        _ => None,
    };
    let q = |quantile: f64| {
        (!hist.is_empty()).then(|| hist.value_at_quantile(quantile) as f64 / 1000.0)
    };

    let mut j = Json::new();
    j.str("mode", args.mode.name());
    for (k, v) in &args.labels {
        j.str(k, v);
    }
    j.int("connections", args.connections as u64);
    j.int("connected", total.connected as u64);
    j.str("payload", if args.json { "json" } else { "binary" });
    if args.tls.is_some() {
        total.tls.write_json(&mut j);
    }
    if args.deflate {
        j.str(
            "deflate",
            total.negotiated.as_deref().unwrap_or("not negotiated"),
        );
    }
    let declined = declined();
    if args.deflate && declined > 0 {
        let msg = format!(
            "server declined permessage-deflate on {declined} of {} connections",
            args.connections
        );
        eprintln!("loadgen: FAILED: {msg}");
        j.str("failed", &msg);
        j.int("errors", total.errors);
        println!("{}", j.finish());
        return ExitCode::from(3);
    }
    // Bytes through the sockets in the measured window (echo, churn) or in all (idle: the
    // handshakes), WebSocket framing included, TCP/IP headers not.
    let (sent, recv) = match args.mode {
        Mode::Idle => wire(),
        _ => (wire1.0 - wire0.0, wire1.1 - wire0.1),
    };
    let per_op = |n: u64| (n > 0).then(|| (sent + recv) as f64 / n as f64);
    match args.mode {
        Mode::Fanout => unreachable!("fanout::run handles --mode fanout"),
        Mode::Echo => {
            j.int("inflight", args.inflight as u64);
            j.int("size", args.size as u64);
            j.num("seconds", Some(seconds));
            j.int("messages", total.messages);
            j.num("msgs_per_sec", Some(total.messages as f64 / seconds));
            j.num(
                "mb_per_sec",
                Some(total.messages as f64 * args.size as f64 / seconds / 1e6),
            );
            j.num("p50_us", q(0.5));
            j.num("p99_us", q(0.99));
            j.num("p999_us", q(0.999));
            j.num(
                "max_us",
                (!hist.is_empty()).then(|| hist.max() as f64 / 1000.0),
            );
            j.int("errors", total.errors);
            j.num("server_cpu_us_per_msg", per(cpu0.0, cpu1.0, total.messages));
            j.num("client_cpu_us_per_msg", per(cpu0.1, cpu1.1, total.messages));
            j.num("server_cpu_pct", pct(cpu0.0, cpu1.0));
            j.num("client_cpu_pct", pct(cpu0.1, cpu1.1));
            let n = total.messages;
            j.int("wire_bytes_sent", sent);
            j.int("wire_bytes_recv", recv);
            j.num("wire_bytes_per_msg", per_op(n));
            j.num("wire_sent_per_msg", (n > 0).then(|| sent as f64 / n as f64));
            j.num("wire_recv_per_msg", (n > 0).then(|| recv as f64 / n as f64));
            // Payload bytes (both directions) per byte on the wire: the compression ratio.
            j.num(
                "wire_ratio",
                (sent + recv > 0)
                    .then(|| 2.0 * (n * args.size as u64) as f64 / (sent + recv) as f64),
            );
            if args.json {
                j.int("echoes_compressed", total.echoes_compressed);
                j.int("echoes_uncompressed", total.echoes_uncompressed);
            }
        }
        Mode::Churn => {
            j.int("size", args.size as u64);
            j.num("seconds", Some(seconds));
            j.int("handshakes", total.cycles);
            j.num("handshakes_per_sec", Some(total.cycles as f64 / seconds));
            j.num("p50_us", q(0.5));
            j.num("p99_us", q(0.99));
            j.num("p999_us", q(0.999));
            j.int("errors", total.errors);
            j.num(
                "server_cpu_us_per_handshake",
                per(cpu0.0, cpu1.0, total.cycles),
            );
            j.num(
                "client_cpu_us_per_handshake",
                per(cpu0.1, cpu1.1, total.cycles),
            );
            j.num("server_cpu_pct", pct(cpu0.0, cpu1.0));
            j.num("client_cpu_pct", pct(cpu0.1, cpu1.1));
            j.int("wire_bytes_sent", sent);
            j.int("wire_bytes_recv", recv);
            j.num("wire_bytes_per_handshake", per_op(total.cycles));
        }
        Mode::Idle => {
            j.num("seconds", Some(args.duration));
            j.int("errors", total.errors);
            j.num("server_rss_kib_before", rss_before.map(|v| v as f64));
            j.num("server_rss_kib_after", rss_after.map(|v| v as f64));
            j.num(
                "kib_per_conn",
                match (rss_before, rss_after) {
                    (Some(b), Some(a)) if total.connected > 0 => {
                        Some((a as f64 - b as f64) / total.connected as f64)
                    }
                    _ => None,
                },
            );
            j.int("wire_bytes_sent", sent);
            j.int("wire_bytes_recv", recv);
        }
    }
    if args.deflate && args.mode != Mode::Idle && total.echoes_compressed == 0 {
        eprintln!("loadgen: WARNING: permessage-deflate negotiated, but no echo came compressed");
    }
    println!("{}", j.finish());
    if total.connected == 0 && args.mode != Mode::Churn {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
