//! An in-memory transport for unit tests and the fuzz target: a scripted wire, no sockets.
//!
//! A [`MemoryTransport`] and its [`Wire`] share one [`WireState`]: the test (the "peer") puts
//! bytes on the wire, sends EOF or a reset, fails the socket, limits how much the "socket" accepts (a peer that
//! stops reading), and reads back what the session wrote and whether it sent FIN. Reads are cut
//! into chunks of `read_chunk` bytes, so a test controls how a stream is split. With
//! `holds_output` the transport behaves like TLS: it takes every byte written, keeps what the
//! socket does not take, and reports it through `buffered_output` until `flush` moves it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::rc::Rc;

use super::{IoOutcome, PeerGone, Transport};

/// The shared state of one in-memory connection.
#[derive(Debug)]
pub(crate) struct WireState {
    /// Bytes the peer sent that the session has not read yet.
    pub inbound: VecDeque<u8>,
    /// The peer sent FIN after `inbound`.
    pub peer_eof: bool,
    /// The connection was reset (`ECONNRESET`): reads and writes report the peer gone, as
    /// `io.rs` classifies a reset — the same as EOF for reads.
    pub reset: bool,
    /// The socket failed with an error that is not a reset (`ETIMEDOUT` after TCP keepalive
    /// gave up): every call fails.
    pub failed: bool,
    /// Most bytes one read returns.
    pub read_chunk: usize,
    /// Bytes the session wrote that reached the peer.
    pub outbound: Vec<u8>,
    /// How many more bytes the socket accepts before it would block (a peer that stops reading
    /// lets this run down to zero).
    pub write_room: usize,
    /// The session sent FIN.
    pub fin_received: bool,
    /// Behave like a buffering transport (TLS): accept everything, hold what the socket refuses.
    pub holds_output: bool,
    /// Bytes held by a buffering transport.
    pub held: Vec<u8>,
    /// Number of read calls that found nothing (`WouldBlock`), to check edge-triggered draining.
    pub empty_reads: usize,
    /// Number of read calls that brought bytes.
    pub reads: usize,
    /// Number of write calls (`write`, `write_vectored`), to check that output is corked.
    pub writes: usize,
}

impl Default for WireState {
    fn default() -> Self {
        WireState {
            inbound: VecDeque::new(),
            peer_eof: false,
            reset: false,
            failed: false,
            read_chunk: usize::MAX,
            outbound: Vec::new(),
            write_room: usize::MAX,
            fin_received: false,
            holds_output: false,
            held: Vec::new(),
            empty_reads: 0,
            reads: 0,
            writes: 0,
        }
    }
}

/// The test's end of an in-memory connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wire(pub Rc<RefCell<WireState>>);

impl Wire {
    /// A fresh wire and the transport that reads and writes it.
    pub(crate) fn pair() -> (Wire, MemoryTransport) {
        let wire = Wire::default();
        let transport = MemoryTransport(Rc::clone(&wire.0));
        (wire, transport)
    }

    /// The peer sends `bytes`.
    pub(crate) fn send(&self, bytes: &[u8]) {
        self.0.borrow_mut().inbound.extend(bytes);
    }

    /// Takes what the session has written so far.
    pub(crate) fn take_output(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.borrow_mut().outbound)
    }

    /// Changes the state (EOF, reset, chunking, room).
    pub(crate) fn with<R>(&self, change: impl FnOnce(&mut WireState) -> R) -> R {
        change(&mut self.0.borrow_mut())
    }
}

/// The session's end of an in-memory connection.
#[derive(Debug)]
pub(crate) struct MemoryTransport(Rc<RefCell<WireState>>);

impl WireState {
    /// Moves up to `write_room` bytes of `bytes` to the peer; returns how many.
    fn deliver(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.write_room);
        self.outbound.extend_from_slice(&bytes[..n]);
        self.write_room -= n;
        n
    }
}

impl Transport for MemoryTransport {
    fn read(&mut self, buf: &mut [u8]) -> IoOutcome {
        self.read_two(buf, &mut [])
    }

    /// As `readv`: `first` filled before `then`, in one read of the scripted chunk size.
    fn read_two(&mut self, first: &mut [u8], then: &mut [u8]) -> IoOutcome {
        let mut wire = self.0.borrow_mut();
        if wire.failed {
            return IoOutcome::Failed(std::io::ErrorKind::TimedOut.into());
        }
        if wire.reset {
            return IoOutcome::Closed;
        }
        if wire.inbound.is_empty() {
            if wire.peer_eof {
                return IoOutcome::Closed;
            }
            wire.empty_reads += 1;
            return IoOutcome::WouldBlock;
        }
        let n = (first.len() + then.len())
            .min(wire.read_chunk.max(1))
            .min(wire.inbound.len());
        let slots = first.iter_mut().chain(then.iter_mut());
        for (slot, byte) in slots.zip(wire.inbound.drain(..n)) {
            *slot = byte;
        }
        wire.reads += 1;
        IoOutcome::Progress(n)
    }

    /// As a socket's: a read returns all there is unless the test cuts reads into chunks.
    fn read_drained(&self, asked: usize, got: usize) -> bool {
        got < asked && self.0.borrow().read_chunk == usize::MAX
    }

    fn write(&mut self, buf: &[u8]) -> IoOutcome {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> IoOutcome {
        let mut wire = self.0.borrow_mut();
        wire.writes += 1;
        if wire.failed {
            return IoOutcome::Failed(std::io::ErrorKind::TimedOut.into());
        }
        if wire.reset {
            return IoOutcome::Closed;
        }
        if wire.holds_output {
            // Like TLS: everything is taken; what the socket refuses stays held.
            let mut taken = 0;
            for slice in slices {
                wire.held.extend_from_slice(slice);
                taken += slice.len();
            }
            let held = std::mem::take(&mut wire.held);
            let sent = wire.deliver(&held);
            wire.held = held[sent..].to_vec();
            return IoOutcome::Progress(taken);
        }
        if wire.write_room == 0 {
            return IoOutcome::WouldBlock;
        }
        let mut written = 0;
        for slice in slices {
            let n = wire.deliver(slice);
            written += n;
            if n < slice.len() {
                break;
            }
        }
        IoOutcome::Progress(written)
    }

    fn buffered_output(&self) -> usize {
        self.0.borrow().held.len()
    }

    fn flush(&mut self) -> Result<(), PeerGone> {
        let mut wire = self.0.borrow_mut();
        if wire.reset || wire.failed {
            return Err(PeerGone);
        }
        let held = std::mem::take(&mut wire.held);
        let sent = wire.deliver(&held);
        wire.held = held[sent..].to_vec();
        Ok(())
    }

    fn shutdown_write(&mut self) {
        self.0.borrow_mut().fin_received = true;
    }
}
