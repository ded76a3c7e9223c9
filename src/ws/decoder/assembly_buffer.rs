//! The buffer a data message is assembled in: its bytes so far, then room already initialized.
//!
//! Bytes enter by [`append`](AssemblyBuffer::append) (a copy out of a read buffer) or by a read
//! straight into [`room`](AssemblyBuffer::room) and then [`commit`](AssemblyBuffer::commit);
//! they leave, once the message is whole, as the vector [`into_vec`](AssemblyBuffer::into_vec)
//! gives, cut to the message.
//!
//! Safe code may only lend initialized memory to a read, so room after the message must hold
//! some value before a read fills it. The vector's length marks how far it does: the room past
//! the message's end up to it is reused as it is, and only room never initialized is zeroed —
//! once per buffer, not once per read. A vector taken from a pool of written payloads comes with
//! its old contents as that room, so a large message read into one is never zeroed at all.
//! Those old bytes are never part of the message: it is the first `filled` bytes.

/// A message's bytes (`bytes[..filled]`) and the initialized room after them
/// (`bytes[filled..]`). Invariant: `filled <= bytes.len()`.
pub(super) struct AssemblyBuffer {
    bytes: Vec<u8>,
    filled: usize,
}

impl AssemblyBuffer {
    /// Assembles in `bytes`, whose contents are taken as initialized room, not message bytes.
    pub(super) fn new(bytes: Vec<u8>) -> Self {
        AssemblyBuffer { bytes, filled: 0 }
    }

    /// Bytes of the message so far.
    pub(super) fn len(&self) -> usize {
        self.filled
    }

    /// Heap bytes held.
    pub(super) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// The message so far.
    pub(super) fn filled(&self) -> &[u8] {
        &self.bytes[..self.filled]
    }

    /// Makes sure `additional` more bytes fit without moving the buffer. Growing it copies the
    /// message only, not the room after it.
    pub(super) fn reserve(&mut self, additional: usize) {
        if self.bytes.capacity() - self.filled < additional {
            self.bytes.truncate(self.filled);
            self.bytes.reserve(additional);
        }
    }

    /// Appends `input` to the message; returns the bytes appended (to be unmasked in place).
    pub(super) fn append(&mut self, input: &[u8]) -> &mut [u8] {
        let start = self.filled;
        let (within, beyond) = input.split_at((self.bytes.len() - start).min(input.len()));
        self.bytes[start..start + within.len()].copy_from_slice(within);
        self.bytes.extend_from_slice(beyond);
        self.filled += input.len();
        &mut self.bytes[start..self.filled]
    }

    /// `n` bytes of room after the message to read into, initialized: zeroed only where the
    /// buffer never held a byte. Past the capacity the buffer grows (callers stay within it).
    pub(super) fn room(&mut self, n: usize) -> &mut [u8] {
        let end = self.filled + n;
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        &mut self.bytes[self.filled..end]
    }

    /// The first `n` bytes of the room (at most what is initialized) were filled: they join
    /// the message. Returns them (to be unmasked in place).
    pub(super) fn commit(&mut self, n: usize) -> &mut [u8] {
        let start = self.filled;
        self.filled += n.min(self.bytes.len() - start);
        &mut self.bytes[start..self.filled]
    }

    /// The message, its vector cut to it.
    pub(super) fn into_vec(mut self) -> Vec<u8> {
        self.bytes.truncate(self.filled);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::AssemblyBuffer;

    #[test]
    fn a_reused_vector_lends_its_old_bytes_as_room_and_never_shows_them() {
        let mut old = Vec::with_capacity(200);
        old.resize(100, 9u8);
        let address = old.as_ptr();
        let mut buffer = AssemblyBuffer::new(old);
        assert_eq!(buffer.len(), 0, "old bytes are not the message");
        assert_eq!(buffer.append(b"abc"), b"abc");
        assert_eq!(buffer.room(5), [9; 5], "room reused, not zeroed");
        buffer.room(5).copy_from_slice(b"defgh");
        assert_eq!(buffer.commit(2), b"de", "only what was read joins");
        assert_eq!(buffer.filled(), b"abcde");
        // Room past the old length is zeroed, once.
        assert_eq!(&buffer.room(100)[95..], [0; 5]);
        assert_eq!(buffer.commit(0), b"");
        assert_eq!(buffer.append(&[1; 150]).len(), 150, "over the old end");
        let message = buffer.into_vec();
        assert_eq!(message.len(), 155);
        assert_eq!(
            (&message[..5], &message[5..]),
            (&b"abcde"[..], &[1u8; 150][..])
        );
        assert_eq!(message.as_ptr(), address, "the same memory");
    }

    #[test]
    fn growing_copies_the_message_and_a_commit_stops_at_the_room_initialized() {
        let mut buffer = AssemblyBuffer::new(vec![5u8; 64]);
        buffer.append(b"xy");
        buffer.reserve(1000);
        assert!(buffer.capacity() >= 1002);
        assert_eq!(
            buffer.room(3),
            [0; 3],
            "stale room dropped when the buffer moved"
        );
        assert_eq!(buffer.commit(10), [0; 3], "never past the room");
        assert_eq!(buffer.filled(), b"xy\0\0\0");
        assert_eq!(buffer.into_vec(), b"xy\0\0\0");
    }
}
