//! TLS: a [`Transport`] that speaks TLS over a TCP socket, so that the session above it reads
//! and writes plaintext and never knows which transport it runs on.
//!
//! It drives rustls's *unbuffered* API (`UnbufferedServerConnection`): rustls keeps the keys
//! and the handshake state, and this file owns every buffer. That is the point: rustls's
//! buffered `ServerConnection` keeps a 4 KiB receive buffer for as long as the connection
//! lives, while here the ciphertext buffers exist only while bytes move and are given up when
//! the connection goes idle ([`release_idle`](Transport::release_idle)), like the session's own
//! (the 18 KiB `incoming` one to a few spares its loop keeps for the next active connection:
//! `tls/spare.rs`).
//! `docs/architecture.md` ("TLS") has the measurements behind that choice.
//!
//! Bytes in: socket → `incoming` (ciphertext) → `process` (rustls takes each complete record:
//! handshake messages move its state, application data comes out decrypted) → the session's
//! read buffer (what does not fit waits in `plaintext`, and goes first next time). Bytes out:
//! the session's write → `process` encrypts it into `outgoing` → socket. Handshake flights and
//! alerts join `outgoing` the same way, in order. `process` follows rustls's states; the steps
//! that move bytes between its records and these buffers are in `tls/records.rs`.
//!
//! What this transport may hold is bounded: `incoming` by [`INCOMING_MAX`], `plaintext` by what
//! one `incoming` decrypts to, and `outgoing` by one write's worth ([`WRITE_MAX`], and less
//! than a record more): new plaintext is taken only once the ciphertext before it is out, so
//! backpressure reaches the session exactly as on plain TCP. All of it is counted in the
//! connection's buffered bytes.

mod records;
mod spare;

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, UnbufferedStatus};

use self::records::{append, deliver_records, encode_record, write_traffic};
use super::io as socket_io;
use super::{IoOutcome, PeerGone, Transport};
use crate::http::plaintext_on_tls_port;
use crate::metrics::{Metrics, add};

/// The most plaintext one record carries (RFC 8446 §5.1).
const RECORD_PLAINTEXT: usize = 16 * 1024;

/// The largest TLS record on the wire: 16 KiB of payload, 2 KiB of expansion, a 5-byte header
/// (RFC 8446 §5.2 allows less; TLS 1.2 allows this much). `incoming` starts this big so one
/// whole record always fits.
const RECORD_MAX: usize = RECORD_PLAINTEXT + 2048 + 5;

/// `incoming` grows past one record only while a handshake message spans several records
/// (rustls joins them in place); no honest client's hello comes near this.
pub(crate) const INCOMING_MAX: usize = 4 * RECORD_MAX;

/// Plaintext taken from the session per write: four full records, and the rest of a slice shorter
/// than a record past them (so a 64 KiB message and its header go in one send). `outgoing` holds
/// at most that, encrypted, plus a handshake flight.
pub(crate) const WRITE_MAX: usize = 64 * 1024;

/// What `process` should do once rustls can take application data.
#[derive(Debug, Clone, Copy)]
enum Then<'a> {
    /// Nothing: only take what `incoming` holds.
    Nothing,
    /// Encrypt these bytes.
    Encrypt(&'a [u8]),
    /// Send `close_notify`.
    CloseNotify,
}

/// Where the TLS conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No byte has come yet: the first one tells a ClientHello from plaintext HTTP.
    New,
    /// The handshake is under way.
    Handshaking,
    /// Application data flows.
    Open,
    /// The peer sent `close_notify`: nothing more will be read.
    PeerClosed,
    /// A TLS error (bad bytes, an alert): the connection cannot continue.
    Failed,
}

/// A TLS server connection over a non-blocking TCP socket.
pub(crate) struct TlsStream {
    socket: TcpStream,
    tls: UnbufferedServerConnection,
    stage: Stage,
    /// Ciphertext read and not yet taken by rustls: `incoming[incoming_start..incoming_end]`.
    /// What rustls is done with is skipped, not moved (many small records would make moving
    /// quadratic); the rest moves to the front only when room is needed. Empty (no
    /// allocation) while idle.
    incoming: Vec<u8>,
    incoming_start: usize,
    incoming_end: usize,
    /// Decrypted bytes the session has not read yet: `plaintext[plaintext_start..]`.
    plaintext: Vec<u8>,
    plaintext_start: usize,
    /// Ciphertext for the peer not yet written: `outgoing[outgoing_start..]`.
    outgoing: Vec<u8>,
    outgoing_start: usize,
    /// `shutdown_write` was asked: FIN goes once `outgoing` is out.
    fin_wanted: bool,
    fin_sent: bool,
    /// The last read of the socket came back short: it had nothing more then, and bytes that
    /// came since raise a new edge.
    socket_drained: bool,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("stage", &self.stage)
            .field("incoming", &(self.incoming_end - self.incoming_start))
            .field("plaintext", &(self.plaintext.len() - self.plaintext_start))
            .field("outgoing", &(self.outgoing.len() - self.outgoing_start))
            .finish_non_exhaustive()
    }
}

impl Drop for TlsStream {
    /// Its `incoming` buffer goes to the loop's spares (`spare.rs`) for the next connection.
    fn drop(&mut self) {
        spare::give(std::mem::take(&mut self.incoming));
    }
}

impl TlsStream {
    /// A server connection on `socket`, before any byte of the handshake.
    pub(crate) fn new(
        socket: TcpStream,
        tls: UnbufferedServerConnection,
        metrics: Arc<Metrics>,
    ) -> Self {
        TlsStream {
            socket,
            tls,
            stage: Stage::New,
            incoming: Vec::new(),
            incoming_start: 0,
            incoming_end: 0,
            plaintext: Vec::new(),
            plaintext_start: 0,
            outgoing: Vec::new(),
            outgoing_start: 0,
            fin_wanted: false,
            fin_sent: false,
            socket_drained: false,
            metrics,
        }
    }

    /// The socket, for the poller.
    pub(crate) fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    fn plaintext_pending(&self) -> usize {
        self.plaintext.len() - self.plaintext_start
    }

    /// Copies decrypted bytes into `buf`.
    fn take_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let pending = &self.plaintext[self.plaintext_start..];
        let n = pending.len().min(buf.len());
        buf[..n].copy_from_slice(&pending[..n]);
        self.plaintext_start += n;
        if self.plaintext_start == self.plaintext.len() {
            self.plaintext.clear();
            self.plaintext_start = 0;
        }
        n
    }

    /// Room to read ciphertext into: `incoming` is allocated on the first byte after idleness,
    /// and grows only while one handshake message spans more than it holds.
    fn incoming_room(&mut self) -> Result<(), io::Error> {
        if self.incoming_start > 0 {
            self.incoming
                .copy_within(self.incoming_start..self.incoming_end, 0);
            self.incoming_end -= self.incoming_start;
            self.incoming_start = 0;
        }
        if self.incoming.is_empty() {
            self.incoming = spare::take();
        } else if self.incoming_end == self.incoming.len() {
            if self.incoming.len() >= INCOMING_MAX {
                return Err(invalid(
                    "a TLS handshake message larger than the server accepts",
                ));
            }
            let grown = (self.incoming.len() * 2).min(INCOMING_MAX);
            self.incoming.resize(grown, 0);
        }
        Ok(())
    }

    /// Hands rustls what `incoming` holds, state by state, until it needs more bytes (or can
    /// take application data, and `then` is done). Decrypted data goes to `sink` (the
    /// session's read buffer) while it has room, the rest to `plaintext`; records for the peer
    /// go to `outgoing` (`records.rs` moves the bytes). Returns how many bytes of `then`'s data
    /// were encrypted, and how many went to `sink`.
    fn process(
        &mut self,
        then: Then<'_>,
        sink: &mut [u8],
    ) -> Result<(usize, usize), rustls::Error> {
        let mut encrypted = 0;
        let mut delivered = 0;
        let mut then = Some(then);
        loop {
            let UnbufferedStatus { discard, state } = self
                .tls
                .process_tls_records(&mut self.incoming[self.incoming_start..self.incoming_end]);
            // Ok(true) once rustls needs more bytes (or is closed), or has taken what `then`
            // asked; Ok(false) while it has more to hand out.
            let finished = match state {
                Err(err) => Err(err),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let room = &mut sink[delivered..];
                    deliver_records(&mut traffic, room, &mut self.plaintext).map(|n| {
                        delivered += n;
                        false
                    })
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    append(&mut self.outgoing, 512, |buf| {
                        encode_record(&mut encode, buf)
                    });
                    Ok(false)
                }
                // The records encoded so far are sent, in order, by `send_outgoing`.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    Ok(false)
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.stage = Stage::PeerClosed;
                    Ok(false)
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    if self.stage == Stage::Handshaking {
                        self.stage = Stage::Open;
                        add(&self.metrics.tls_handshakes, 1);
                    }
                    encrypted = write_traffic(&mut traffic, then.take(), &mut self.outgoing);
                    Ok(true)
                }
                Ok(ConnectionState::BlockedHandshake | ConnectionState::Closed) => Ok(true),
                // Early data is never accepted (the config keeps `max_early_data_size` at 0).
                Ok(_) => Ok(true),
            };
            self.discard(discard);
            if finished? {
                return Ok((encrypted, delivered));
            }
        }
    }

    /// Drops `n` bytes rustls is done with from the front of `incoming`'s data.
    fn discard(&mut self, n: usize) {
        self.incoming_start += n;
        if self.incoming_start == self.incoming_end {
            self.incoming_start = 0;
            self.incoming_end = 0;
        }
    }

    /// A TLS error: whatever alert rustls has for the peer is queued and sent (best effort),
    /// and the connection is done.
    fn fail(&mut self, err: rustls::Error) -> IoOutcome {
        add(&self.metrics.tls_errors, 1);
        self.stage = Stage::Failed;
        // rustls queued an alert for the peer if the error calls for one; it hands it out
        // before looking at the input again. It must not look again (it would fail a second
        // time, and rustls asserts that it sends one fatal alert only), so this asks only while
        // it has something to send, with the same buffer as always (its bookkeeping points
        // into it).
        while self.tls.wants_write() {
            let UnbufferedStatus { discard, state } = self
                .tls
                .process_tls_records(&mut self.incoming[self.incoming_start..self.incoming_end]);
            let more = match state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    append(&mut self.outgoing, 64, |buf| {
                        encode_record(&mut encode, buf)
                    })
                }
                _ => false,
            };
            self.discard(discard);
            if !more {
                break;
            }
        }
        let _ = self.send_outgoing();
        IoOutcome::Failed(invalid(&format!("TLS: {err}")))
    }

    /// The first bytes on a TLS port are plaintext HTTP (`GET / HTTP/1.1`, a browser pointed at
    /// `http://`): they are answered `400` in plaintext, saying to use `https://`, and the
    /// connection ends. A ClientHello begins with 0x16; a request, with an uppercase letter.
    fn refuse_plaintext_http(&mut self) -> IoOutcome {
        add(&self.metrics.tls_plaintext_refused, 1);
        self.stage = Stage::Failed;
        // A fresh socket's send buffer is empty: this small write lands whole.
        let _ = socket_io::write(&mut self.socket, &plaintext_on_tls_port());
        let _ = self.socket.shutdown(Shutdown::Write);
        IoOutcome::Failed(invalid("plaintext HTTP on the TLS port"))
    }

    /// Writes `outgoing` until it is out or the socket is full; then FIN, if it was asked for.
    fn send_outgoing(&mut self) -> Result<(), PeerGone> {
        while self.outgoing_start < self.outgoing.len() {
            match socket_io::write(&mut self.socket, &self.outgoing[self.outgoing_start..]) {
                IoOutcome::Progress(n) => self.outgoing_start += n,
                IoOutcome::WouldBlock => return Ok(()),
                IoOutcome::Closed => return Err(PeerGone),
                IoOutcome::Failed(err) => {
                    log::debug!("TLS write failed: {err}");
                    return Err(PeerGone);
                }
            }
        }
        self.outgoing.clear();
        self.outgoing_start = 0;
        if self.fin_wanted && !self.fin_sent {
            self.fin_sent = true;
            if let Err(err) = self.socket.shutdown(Shutdown::Write) {
                log::trace!("shutdown(Write): {err}");
            }
        }
        Ok(())
    }
}

impl Transport for TlsStream {
    /// Decrypted bytes: those waiting first, then whatever the socket brings, read until a
    /// record yields application data or the socket would block (so edge-triggered readiness
    /// comes again). Handshake flights produced on the way go out at once.
    fn read(&mut self, buf: &mut [u8]) -> IoOutcome {
        loop {
            if self.plaintext_pending() > 0 {
                return IoOutcome::Progress(self.take_plaintext(buf));
            }
            match self.stage {
                Stage::PeerClosed => return IoOutcome::Closed,
                Stage::Failed => return IoOutcome::Failed(invalid("TLS connection failed")),
                Stage::New | Stage::Handshaking | Stage::Open => {}
            }
            if let Err(err) = self.incoming_room() {
                add(&self.metrics.tls_errors, 1);
                self.stage = Stage::Failed;
                return IoOutcome::Failed(err);
            }
            let spare = &mut self.incoming[self.incoming_end..];
            let room = spare.len();
            match socket_io::read(&mut self.socket, spare) {
                IoOutcome::Progress(n) => {
                    self.socket_drained = n < room;
                    if self.stage == Stage::New {
                        if self.incoming[0].is_ascii_uppercase() {
                            return self.refuse_plaintext_http();
                        }
                        self.stage = Stage::Handshaking;
                    }
                    self.incoming_end += n;
                    let delivered = match self.process(Then::Nothing, buf) {
                        Ok((_, delivered)) => delivered,
                        Err(err) => return self.fail(err),
                    };
                    if self.send_outgoing().is_err() {
                        return IoOutcome::Closed;
                    }
                    if delivered > 0 {
                        return IoOutcome::Progress(delivered);
                    }
                }
                // EOF without `close_notify` (a truncation, to TLS) is still the end of input.
                other => return other,
            }
        }
    }

    /// Into `first` alone: the plaintext comes a record at a time from rustls, and
    /// [`read_drained`](Self::read_drained) does not judge by the length asked.
    fn read_two(&mut self, first: &mut [u8], _then: &mut [u8]) -> IoOutcome {
        self.read(first)
    }

    /// Drained when the socket was (its last read came back short) and nothing read from it
    /// waits here: no decrypted bytes, no ciphertext rustls has not taken. Only while open:
    /// after the peer's `close_notify` the next read must say so.
    fn read_drained(&self, _asked: usize, _got: usize) -> bool {
        self.socket_drained
            && self.stage == Stage::Open
            && self.plaintext_pending() == 0
            && self.incoming_start == self.incoming_end
    }

    fn write(&mut self, buf: &[u8]) -> IoOutcome {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Encrypts up to [`WRITE_MAX`] bytes of the slices, once the ciphertext before them is
    /// out; `WouldBlock` while it is not (or while the handshake is under way).
    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> IoOutcome {
        match self.stage {
            Stage::Open | Stage::PeerClosed => {}
            Stage::Failed => return IoOutcome::Closed,
            Stage::New | Stage::Handshaking => return IoOutcome::WouldBlock,
        }
        if self.send_outgoing().is_err() {
            return IoOutcome::Closed;
        }
        if self.outgoing_start < self.outgoing.len() {
            return IoOutcome::WouldBlock;
        }
        let mut taken = 0;
        for slice in slices {
            let room = WRITE_MAX.saturating_sub(taken);
            if room == 0 {
                break;
            }
            let mut len = slice.len().min(room);
            if slice.len() - len < RECORD_PLAINTEXT {
                len = slice.len();
            }
            let part = &slice[..len];
            if part.is_empty() {
                continue;
            }
            match self.process(Then::Encrypt(part), &mut []) {
                Ok((n, _)) if n == part.len() => taken += n,
                Ok(_) => break,
                Err(err) => return self.fail(err),
            }
        }
        if taken == 0 {
            return IoOutcome::WouldBlock;
        }
        if self.send_outgoing().is_err() {
            return IoOutcome::Closed;
        }
        IoOutcome::Progress(taken)
    }

    fn buffered_output(&self) -> usize {
        self.outgoing.len() - self.outgoing_start
    }

    fn buffered_input(&self) -> usize {
        self.incoming.len() + self.plaintext.capacity()
    }

    fn flush(&mut self) -> Result<(), PeerGone> {
        self.send_outgoing()
    }

    /// `close_notify` (once the handshake is done), then FIN after it.
    fn shutdown_write(&mut self) {
        if matches!(self.stage, Stage::Open | Stage::PeerClosed)
            && let Err(err) = self.process(Then::CloseNotify, &mut [])
        {
            log::debug!("TLS close_notify: {err}");
        }
        self.fin_wanted = true;
        if self.send_outgoing().is_err() {
            log::trace!("TLS: the peer is gone before our FIN");
        }
    }

    /// Frees the ciphertext and plaintext buffers once they are empty: an idle TLS connection
    /// holds only rustls's keys and state.
    fn release_idle(&mut self) {
        if self.incoming_end == 0 && !self.incoming.is_empty() {
            spare::give(std::mem::take(&mut self.incoming));
        }
        if self.plaintext_pending() == 0 && self.plaintext.capacity() > 0 {
            self.plaintext = Vec::new();
            self.plaintext_start = 0;
        }
        if self.outgoing_start == self.outgoing.len() && self.outgoing.capacity() > 0 {
            self.outgoing = Vec::new();
            self.outgoing_start = 0;
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
mod tests;
