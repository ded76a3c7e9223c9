//! [`ReadBuffer`]: the bytes read from a socket that the parser or decoder has not consumed yet.
//!
//! Bytes enter through [`ReadBuffer::spare`] + [`ReadBuffer::filled`] (a read straight into the
//! buffer) and leave through [`ReadBuffer::data`] + [`ReadBuffer::consume`] (the codec says how
//! much it used). The storage is initialised once, when the pool creates it.

/// Bytes read from a socket and not yet consumed: `storage[start..end]`.
///
/// `storage` is fully initialised once, when it is created, so reads go straight into it without
/// zeroing it again on every use.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    pub(super) storage: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
}

impl ReadBuffer {
    pub(super) fn new(size: usize) -> Self {
        ReadBuffer {
            storage: vec![0; size],
            start: 0,
            end: 0,
        }
    }

    /// The unconsumed bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    /// Bytes of memory it occupies (its storage, used or not).
    pub(crate) fn capacity(&self) -> usize {
        self.storage.len()
    }

    /// Marks `n` bytes at the front as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Would [`spare`](Self::spare) lend any room (without moving or growing anything yet)?
    /// False only when the buffer holds `max_len` unconsumed bytes or more from its start.
    pub(crate) fn has_room(&self, max_len: usize) -> bool {
        let len = self.storage.len();
        self.end < len || self.start > 0 || (len > 0 && len < max_len)
    }

    /// Room to read into, after moving unconsumed bytes to the front if that makes room, and
    /// growing the storage up to `max_len` if it is full. Empty when the buffer holds `max_len`
    /// unconsumed bytes already.
    pub(crate) fn spare(&mut self, max_len: usize) -> &mut [u8] {
        if self.end == self.storage.len() && self.start > 0 {
            self.storage.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.storage.len() && self.storage.len() < max_len {
            let grown = (self.storage.len() * 2).min(max_len);
            self.storage.resize(grown, 0);
        }
        &mut self.storage[self.end..]
    }

    /// Records that `n` bytes were read into the slice returned by [`spare`](Self::spare).
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.storage.len());
    }
}
