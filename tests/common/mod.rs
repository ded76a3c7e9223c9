//! Shared helpers for the integration tests: start a server on 127.0.0.1:0, connect real
//! clients (tungstenite for well-formed traffic, raw `TcpStream` for malformed bytes), and wait
//! for conditions with a deadline instead of sleeping.

#![allow(dead_code)]

pub mod browser;
pub mod http;
pub mod redis;
pub mod tls;
pub mod tools;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use tungstenite::WebSocket;
use wsreactor::{Config, Handler, Server, ServerHandle, Stats};

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A test config: port 0, two workers, short timeouts. `WSREACTOR_TEST_LOOPS=N` runs the
/// suite with N event loops, to check every behaviour in that mode too.
pub fn config() -> Config {
    let mut config = Config::default();
    config.addr = "127.0.0.1:0".parse().expect("literal address");
    config.workers = 2;
    if let Some(loops) = std::env::var("WSREACTOR_TEST_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.event_loops = loops;
    }
    // `WSREACTOR_TEST_INLINE=1` runs handlers on the loop threads (for the protocol suites;
    // tests that block a handler on purpose need workers).
    config.inline_handlers = std::env::var("WSREACTOR_TEST_INLINE").is_ok_and(|v| v == "1");
    config.close_timeout = Duration::from_secs(2);
    config.shutdown_timeout = Duration::from_secs(2);
    config
}

/// Starts a server with `config` and `handler`.
pub fn start<H>(config: Config, handler: H) -> Server
where
    H: Handler + Send + Sync,
    H::Session: Send,
{
    let _ = env_logger::builder().is_test(true).try_init();
    Server::builder()
        .config(config)
        .build(handler)
        .expect("server starts")
}

/// An echo handler (the closure form).
pub fn echo() -> impl Handler<Session = ()> + Send + Sync {
    |ctx: &mut wsreactor::Context<'_>, msg: wsreactor::Message| ctx.send(msg)
}

/// A connected tungstenite client.
pub type Client = WebSocket<TcpStream>;

/// Connects a tungstenite client to `ws://addr/ws`.
pub fn connect(addr: SocketAddr) -> Client {
    connect_path(addr, "/ws")
}

/// Connects a tungstenite client to `ws://addr{path}`.
pub fn connect_path(addr: SocketAddr, path: &str) -> Client {
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    let (client, _response) =
        tungstenite::client(format!("ws://{addr}{path}"), stream).expect("websocket handshake");
    client
}

/// Sends `text` on a tungstenite client and expects it back.
pub fn echo_text(client: &mut Client, text: &str) {
    client.send(tungstenite::Message::text(text)).unwrap();
    assert_eq!(client.read().unwrap(), tungstenite::Message::text(text));
}

/// Closes a tungstenite client cleanly and reads until the server closes TCP.
pub fn close_client(mut client: Client) {
    client.close(None).unwrap();
    loop {
        match client.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => return,
            Err(err) => panic!("while closing: {err}"),
        }
    }
}

/// A raw TCP connection with a read timeout.
pub fn raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// A valid upgrade request for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Opens a raw connection and completes the WebSocket handshake by hand.
pub fn raw_websocket(addr: SocketAddr) -> TcpStream {
    let mut stream = raw(addr);
    stream
        .write_all(upgrade_request("/ws").as_bytes())
        .expect("write upgrade");
    let head = read_http_head(&mut stream).expect("101 response");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    stream
}

/// Reads one HTTP response head (up to and including the blank line), byte by byte so nothing
/// after it is consumed.
pub fn read_http_head(stream: &mut impl Read) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Reads one HTTP response: the head and a `Content-Length` body.
pub fn read_http_response(stream: &mut TcpStream) -> io::Result<(String, Vec<u8>)> {
    let head = read_http_head(stream)?;
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok((head, body))
}

/// The status code of a response head.
pub fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// A client frame: FIN as given, `opcode`, masked with `mask` (or unmasked if `None`).
pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked client frame with a fixed key.
pub fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, Some([0x12, 0x34, 0x56, 0x78]))
}

/// One server frame read from a raw stream: (fin, opcode, payload).
pub fn read_frame(stream: &mut TcpStream) -> io::Result<(bool, u8, Vec<u8>)> {
    let (first, payload) = read_raw_frame(stream)?;
    Ok((first & 0x80 != 0, first & 0x0F, payload))
}

/// One server frame read from a raw stream: its first byte (FIN, RSV1-3, opcode) and payload.
pub fn read_raw_frame(stream: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
    let len = match head[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b)?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b)?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload)?;
    Ok((head[0], payload))
}

/// Reads frames until a close frame and returns its code (None for an empty close payload).
pub fn read_close_code(stream: &mut TcpStream) -> Option<u16> {
    loop {
        let (_, opcode, payload) = read_frame(stream).expect("a close frame");
        if opcode == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

/// True once the peer has closed: a read returns EOF (or a reset) within the deadline.
pub fn reaches_eof(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
    false
}

/// Polls `condition` until it holds or the deadline passes (no fixed sleeps).
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until the server's stats satisfy `condition`, and returns them.
pub fn wait_for_stats(
    handle: &ServerHandle,
    what: &str,
    condition: impl Fn(&Stats) -> bool,
) -> Stats {
    let mut last = handle.stats();
    wait_until(what, || {
        last = handle.stats();
        condition(&last)
    });
    last
}

/// Polls `probe` until it yields a value or the deadline passes (no fixed sleeps).
pub fn poll_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Seconds since the Unix epoch that an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110
/// §5.6.7) stands for, if it is one — including the right day name for its date.
pub fn parse_imf_fixdate(date: &str) -> Option<u64> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = date.as_bytes();
    if b.len() != 29 || &date[3..5] != ", " || &date[25..] != " GMT" {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = date.get(range)?;
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (day, year) = (number(5..7)?, number(12..16)?);
    let month = MONTHS.iter().position(|m| *m == &date[8..11])? as u64 + 1;
    let (hour, minute, second) = (number(17..19)?, number(20..22)?, number(23..25)?);
    if [b[7], b[11], b[16], b[19], b[22]] != [b' ', b' ', b' ', b':', b':'] {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    // Days since 1970-01-01 by counting: independent of the server's civil_from_days.
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut days: u64 = (1970..year).map(|y| if leap(y) { 366 } else { 365 }).sum();
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += lengths[..(month - 1) as usize].iter().sum::<u64>();
    if day > lengths[(month - 1) as usize] {
        return None;
    }
    days += day - 1;
    if DAYS[(days % 7) as usize] != &date[..3] {
        return None;
    }
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// A response head without its `Date` field, after checking that it has exactly one, that it is
/// an IMF-fixdate, and that it is the current time (within a few seconds): what the exact-bytes
/// tests compare.
pub fn without_date(head: &str) -> String {
    let dates: Vec<&str> = head
        .split("\r\n")
        .filter_map(|line| line.strip_prefix("Date: "))
        .collect();
    assert_eq!(dates.len(), 1, "one Date field in {head:?}");
    let sent = parse_imf_fixdate(dates[0])
        .unwrap_or_else(|| panic!("Date is not an IMF-fixdate: {:?}", dates[0]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    assert!(
        sent.abs_diff(now) <= 5,
        "Date {:?} is not now ({now})",
        dates[0]
    );
    head.replacen(&format!("Date: {}\r\n", dates[0]), "", 1)
}

/// Runs the Python `script` with `arg` (a URL) and returns the JSON it printed; the test fails,
/// showing Python's stderr, if the script does.
pub fn run_python_json(python: &str, script: &str, arg: &str) -> serde_json::Value {
    let output = Command::new(python)
        .args(["-c", script, arg])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script's JSON")
}
