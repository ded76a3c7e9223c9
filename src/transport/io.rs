//! The one place where `io::Result`s from sockets are classified.
//!
//! Everything above this module matches on four cases — [`IoOutcome`] — instead of on
//! `ErrorKind`s: bytes moved, the socket would block, the peer is gone, or a real failure.
//! `Interrupted` is retried here and never seen above.

use std::io::{self, Read, Write};

/// What one read or write on a non-blocking socket did.
#[derive(Debug)]
pub(crate) enum IoOutcome {
    /// `n > 0` bytes were read or written.
    Progress(usize),
    /// The socket has no data (read) or no room (write) now; readiness will tell us when.
    WouldBlock,
    /// The peer closed: EOF on read, or reset / broken pipe on either side.
    Closed,
    /// Any other error; the connection cannot continue.
    Failed(io::Error),
}

/// Reads once into `buf` (which must not be empty).
pub(crate) fn read(socket: &mut impl Read, buf: &mut [u8]) -> IoOutcome {
    retry(|| socket.read(buf))
}

/// Reads once into several buffers in turn (`readv`), which must not all be empty.
pub(crate) fn read_vectored(socket: &mut impl Read, bufs: &mut [io::IoSliceMut<'_>]) -> IoOutcome {
    retry(|| socket.read_vectored(bufs))
}

/// Writes once from `buf` (which must not be empty).
pub(crate) fn write(socket: &mut impl Write, buf: &[u8]) -> IoOutcome {
    retry(|| socket.write(buf))
}

/// Writes once from several slices (`writev`), which must not all be empty.
pub(crate) fn write_vectored(socket: &mut impl Write, slices: &[io::IoSlice<'_>]) -> IoOutcome {
    retry(|| socket.write_vectored(slices))
}

/// Runs one read or write, again while it is interrupted, and classifies the result. Zero bytes
/// from a non-empty buffer means the peer closed (EOF on read; a closed socket on write).
fn retry(mut op: impl FnMut() -> io::Result<usize>) -> IoOutcome {
    loop {
        match op() {
            Ok(0) => return IoOutcome::Closed,
            Ok(n) => return IoOutcome::Progress(n),
            Err(err) => match classify(err) {
                Some(outcome) => return outcome,
                None => continue,
            },
        }
    }
}

/// `None` means "interrupted: try again".
fn classify(err: io::Error) -> Option<IoOutcome> {
    use io::ErrorKind::*;
    match err.kind() {
        Interrupted => None,
        WouldBlock => Some(IoOutcome::WouldBlock),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
            Some(IoOutcome::Closed)
        }
        _ => Some(IoOutcome::Failed(err)),
    }
}

/// True for the `accept` errors that mean "out of file descriptors" (`EMFILE`, `ENFILE`) or
/// memory: retrying at once would spin, so the loop pauses accepting instead.
pub(crate) fn is_resource_exhausted(err: &io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOBUFS: i32 = 105;
    const ENOMEM: i32 = 12;
    matches!(err.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scripted(Vec<io::Result<usize>>);

    impl Read for Scripted {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            self.0.remove(0)
        }
    }

    #[test]
    fn interrupted_is_retried_and_kinds_are_classified() {
        let mut s = Scripted(vec![Err(io::ErrorKind::Interrupted.into()), Ok(3)]);
        assert!(matches!(read(&mut s, &mut [0; 8]), IoOutcome::Progress(3)));
        let mut s = Scripted(vec![Ok(0)]);
        assert!(matches!(read(&mut s, &mut [0; 8]), IoOutcome::Closed));
        let mut s = Scripted(vec![Err(io::ErrorKind::ConnectionReset.into())]);
        assert!(matches!(read(&mut s, &mut [0; 8]), IoOutcome::Closed));
        let mut s = Scripted(vec![Err(io::ErrorKind::WouldBlock.into())]);
        assert!(matches!(read(&mut s, &mut [0; 8]), IoOutcome::WouldBlock));
        let mut s = Scripted(vec![Err(io::ErrorKind::PermissionDenied.into())]);
        assert!(matches!(read(&mut s, &mut [0; 8]), IoOutcome::Failed(_)));
    }

    #[test]
    fn fd_exhaustion_is_recognised() {
        assert!(is_resource_exhausted(&io::Error::from_raw_os_error(24)));
        assert!(is_resource_exhausted(&io::Error::from_raw_os_error(23)));
        assert!(!is_resource_exhausted(&io::Error::from_raw_os_error(104)));
    }
}
