//! ceiling: the smallest single-threaded mio WebSocket echo server, the
//! performance ceiling of the wsreactor benchmark.
//!
//! One thread, one `mio::Poll`; per connection a read buffer allocated at
//! accept (16 KiB, grown when a frame does not fit) and an output buffer. It
//! reads the HTTP upgrade request up to `\r\n\r\n`, answers 101 with the
//! `Sec-WebSocket-Accept` key, then echoes every frame parsed from a read:
//! unmasked, with the same FIN bit and opcode (so fragmented messages pass
//! through too), a ping answered by a pong and pongs dropped; a close frame is
//! echoed and the connection dropped once it is written. All the replies to one
//! read are written with one `write`; what the socket does not take waits in
//! the output buffer for WRITABLE, and reading pauses until it drains.
//!
//! It trusts its clients: frames are assumed well-formed and masked (an
//! unmasked frame is echoed as is), no UTF-8 validation, no size limits.
//!
//! Usage: `ceiling --addr 127.0.0.1:PORT`

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use base64::Engine as _;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};

const USAGE: &str = "usage: ceiling --addr HOST:PORT";
const LISTENER: Token = Token(usize::MAX);
const READ_BUFFER: usize = 16 * 1024;
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut addr: Option<SocketAddr> = None;
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--addr", Some(v)) => match v.parse() {
                Ok(a) => addr = Some(a),
                Err(err) => {
                    eprintln!("ceiling: --addr {v}: {err}");
                    return ExitCode::from(2);
                }
            },
            ("-h" | "--help", _) => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("ceiling: bad argument {flag}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(addr) = addr else {
        eprintln!("ceiling: --addr is required\n{USAGE}");
        return ExitCode::from(2);
    };
    match run(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ceiling: {addr}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: SocketAddr) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(err) = poll.poll(&mut events, None) {
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let idx = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            if poll
                                .registry()
                                .register(&mut stream, Token(idx), Interest::READABLE)
                                .is_err()
                            {
                                free.push(idx);
                                continue;
                            }
                            conns[idx] = Some(Conn::new(stream, Token(idx)));
                        }
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                        // WouldBlock, or e.g. EMFILE: wait for the next event.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let idx = event.token().0;
            let Some(conn) = conns.get_mut(idx).and_then(Option::as_mut) else {
                continue;
            };
            let mut keep = true;
            if event.is_writable() {
                keep = conn.on_writable();
            }
            if keep && (event.is_readable() || event.is_read_closed() || event.is_error()) {
                keep = conn.on_readable();
            }
            if keep {
                keep = conn.update_interest(poll.registry()).is_ok();
            }
            if !keep {
                if let Some(mut conn) = conns[idx].take() {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
                free.push(idx);
            }
        }
    }
}

struct Conn {
    stream: TcpStream,
    token: Token,
    /// Read buffer: bytes `start..end` are received and not yet parsed.
    rbuf: Vec<u8>,
    start: usize,
    end: usize,
    /// Size of the frame at `start` when it is known and not complete yet.
    need: usize,
    /// Output: bytes `out_pos..` are still to be written.
    out: Vec<u8>,
    out_pos: usize,
    upgraded: bool,
    /// A close frame (or a 400) is queued: drop once the output is written.
    closing: bool,
    writable_registered: bool,
}

impl Conn {
    fn new(stream: TcpStream, token: Token) -> Conn {
        Conn {
            stream,
            token,
            rbuf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            need: 0,
            out: Vec::new(),
            out_pos: 0,
            upgraded: false,
            closing: false,
            writable_registered: false,
        }
    }

    /// Reads until WouldBlock, echoing after each read. False: drop the connection.
    fn on_readable(&mut self) -> bool {
        loop {
            if self.closing || self.out_pos < self.out.len() {
                // Wait for WRITABLE: the output has to drain first.
                return true;
            }
            if self.end == self.rbuf.len() || self.need > self.rbuf.len() - self.start {
                self.make_room();
            }
            match self.stream.read(&mut self.rbuf[self.end..]) {
                Ok(0) => return false,
                Ok(n) => {
                    self.end += n;
                    self.process();
                    if self.flush().is_err() {
                        return false;
                    }
                    if self.closing && self.out.is_empty() {
                        return false;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return true,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }

    fn on_writable(&mut self) -> bool {
        if self.flush().is_err() {
            return false;
        }
        if self.out.is_empty() {
            if self.closing {
                return false;
            }
            // Reading paused while the output was backed up: resume it.
            return self.on_readable();
        }
        true
    }

    fn update_interest(&mut self, registry: &Registry) -> io::Result<()> {
        let want = !self.out.is_empty();
        if want != self.writable_registered {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, self.token, interest)?;
            self.writable_registered = want;
        }
        Ok(())
    }

    /// Moves the unparsed bytes to the front, and grows the buffer when they
    /// fill it or the pending frame is larger.
    fn make_room(&mut self) {
        if self.start > 0 {
            self.rbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = self.need.max(self.end + 1);
        if want > self.rbuf.len() {
            let new_len = want.max(self.rbuf.len() * 2);
            self.rbuf.resize(new_len, 0);
        }
    }

    /// Writes the output until it is all written or the socket would block.
    fn flush(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }

    /// Parses what is buffered: the handshake, then every complete frame,
    /// queueing the replies in `out`.
    fn process(&mut self) {
        if !self.upgraded {
            let data = &self.rbuf[self.start..self.end];
            let Some(pos) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            match header(&data[..pos], b"sec-websocket-key") {
                Some(key) => {
                    let mut sha1 = sha1_smol::Sha1::new();
                    sha1.update(key);
                    sha1.update(GUID);
                    let accept =
                        base64::engine::general_purpose::STANDARD.encode(sha1.digest().bytes());
                    self.out.extend_from_slice(
                        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                          Connection: Upgrade\r\nSec-WebSocket-Accept: ",
                    );
                    self.out.extend_from_slice(accept.as_bytes());
                    self.out.extend_from_slice(b"\r\n\r\n");
                    self.upgraded = true;
                    self.start += pos + 4;
                }
                None => {
                    self.out.extend_from_slice(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    self.closing = true;
                    return;
                }
            }
        }
        self.need = 0;
        while !self.closing {
            let data = &self.rbuf[self.start..self.end];
            if data.len() < 2 {
                break;
            }
            let (b0, b1) = (data[0], data[1]);
            let (len, mut header_len) = match b1 & 0x7F {
                126 if data.len() >= 4 => (u16::from_be_bytes([data[2], data[3]]) as usize, 4),
                127 if data.len() >= 10 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&data[2..10]);
                    (u64::from_be_bytes(n) as usize, 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            let masked = b1 & 0x80 != 0;
            if masked {
                header_len += 4;
            }
            let total = header_len + len;
            if data.len() < total {
                self.need = total;
                break;
            }
            let opcode = b0 & 0x0F;
            if opcode != 0xA {
                // Same FIN bit and opcode (RSV bits cleared), a ping answered by a pong.
                let out_b0 = if opcode == 0x9 {
                    (b0 & 0x80) | 0xA
                } else {
                    b0 & 0x8F
                };
                let payload = &data[header_len..total];
                frame_header(&mut self.out, out_b0, len);
                if masked {
                    let m = &data[header_len - 4..header_len];
                    unmask_into(&mut self.out, payload, [m[0], m[1], m[2], m[3]]);
                } else {
                    self.out.extend_from_slice(payload);
                }
            }
            if opcode == 0x8 {
                self.closing = true;
            }
            self.start += total;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

/// The value of header `name` (lowercase) in a request head, trimmed.
fn header<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        if !line[..colon].trim_ascii().eq_ignore_ascii_case(name) {
            return None;
        }
        Some(line[colon + 1..].trim_ascii())
    })
}

/// An unmasked server frame header.
fn frame_header(out: &mut Vec<u8>, b0: u8, len: usize) {
    if len < 126 {
        out.extend_from_slice(&[b0, len as u8]);
    } else if len <= 0xFFFF {
        out.extend_from_slice(&[b0, 126]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[b0, 127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends `payload` to `out`, unmasked with `mask`, eight bytes at a time.
fn unmask_into(out: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    let base = out.len();
    out.extend_from_slice(payload);
    let m = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = out[base..].chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().unwrap()) ^ m;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}
