//! The transport seam: what a connection's session reads from and writes to.
//!
//! A session (`src/session/`) never touches a socket: the netpoller reads, writes and shuts down
//! for it (`netpoller/table/pump.rs`) through a [`Transport`], whose every answer is already
//! classified into the four cases of [`IoOutcome`] (`io.rs`, the one place where `io::Result`s
//! become those cases). The event loop's transport is a [`Stream`] (`stream.rs`): a plain TCP
//! socket or, with the `tls` feature, TLS over one (`tls.rs`, rustls driven by the loop). Unit
//! tests and the fuzz target use an in-memory wire (`memory.rs`) whose chunking,
//! back-pressure, EOF and resets they script.
//!
//! A transport may hold bytes of its own — TLS keeps records it could not write yet — so the
//! trait also says how much it holds ([`Transport::buffered_output`]) and lets the loop push it
//! out ([`Transport::flush`]). The loop counts those bytes with the session's own output for
//! WRITABLE interest, the write stall and the memory budget, and writes nothing new from the
//! session until they are out, so a buffering transport plugs in without a change to the state
//! machine. Plain TCP holds nothing.

mod io;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod memory;
mod stream;
#[cfg(feature = "tls")]
mod tls;

use std::io::IoSlice;

pub(crate) use io::{IoOutcome, is_resource_exhausted};
pub(crate) use stream::Stream;
#[cfg(feature = "tls")]
pub(crate) use tls::TlsStream;

/// A byte stream to one peer, non-blocking: every call returns at once.
pub(crate) trait Transport {
    /// Reads into `buf` (never empty).
    fn read(&mut self, buf: &mut [u8]) -> IoOutcome;

    /// Reads into `first`, then into `then` once `first` is full (`readv`; neither is empty):
    /// the rest of a message's payload and, in the same call, what follows it. For
    /// [`read_drained`](Self::read_drained), `asked` is both lengths together, so a transport
    /// that reads into `first` alone must not judge by `asked` (TLS, which does not).
    fn read_two(&mut self, first: &mut [u8], then: &mut [u8]) -> IoOutcome;

    /// Did the read that just returned `got` of the `asked` bytes leave nothing to read until
    /// the next readiness event? So it is for a TCP socket under edge-triggered polling when
    /// `got < asked` (the kernel copies all it has; bytes that come later raise a new edge);
    /// TLS answers for the socket under it and the bytes it holds itself. The default, `false`,
    /// reads on until `WouldBlock`.
    fn read_drained(&self, asked: usize, got: usize) -> bool {
        let _ = (asked, got);
        false
    }

    /// Writes from `buf` (never empty).
    fn write(&mut self, buf: &[u8]) -> IoOutcome;

    /// Writes from several slices at once (`writev`); they are never all empty.
    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> IoOutcome;

    /// Bytes for the peer that the transport holds itself, on top of what the session has queued
    /// (TLS records the socket did not take yet). Plain TCP holds none.
    fn buffered_output(&self) -> usize;

    /// Bytes from the peer the transport holds itself, not yet read by the session (TLS records
    /// in part, or decrypted and waiting). Counted in the connection's buffered bytes.
    fn buffered_input(&self) -> usize {
        0
    }

    /// Pushes out the bytes [`buffered_output`](Self::buffered_output) counts, as far as the
    /// socket takes them (what it does not take stays counted there).
    fn flush(&mut self) -> Result<(), PeerGone>;

    /// Sends FIN after the last byte written (for TLS: `close_notify` first). Reading goes on.
    fn shutdown_write(&mut self);

    /// Frees the transport's own buffers that are empty: called whenever the session gives its
    /// buffers back, so that an idle connection holds none anywhere.
    fn release_idle(&mut self) {}
}

/// The peer is gone: a write or flush found the connection reset or broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerGone;
