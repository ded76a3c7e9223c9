//! Buffers that a connection holds only while it has bytes to process or to send.
//!
//! An idle connection owns no buffer: memory per idle connection is a headline number. When a
//! socket becomes readable the loop takes a [`ReadBuffer`] from its [`BufferPool`], reads into it,
//! hands the bytes to the HTTP parser or the frame decoder, and gives the buffer back as soon as
//! every byte is consumed. Outbound bytes work the same way with a [`WriteBuffer`]. The pool keeps
//! at most `max_pooled` free buffers of each kind, so a burst of activity does not pin memory
//! forever.

/// Bytes read from a socket and not yet consumed: `storage[start..end]`.
///
/// `storage` is fully initialised once, when it is created, so reads go straight into it without
/// zeroing it again on every use.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuffer {
    fn new(size: usize) -> Self {
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

    /// Marks `n` bytes at the front as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
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

/// Bytes waiting to be written: `bytes[written..]`.
#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    bytes: Vec<u8>,
    written: usize,
}

impl WriteBuffer {
    pub(crate) fn pending(&self) -> &[u8] {
        &self.bytes[self.written..]
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len() - self.written
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.written == self.bytes.len()
    }

    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.is_empty() {
            self.bytes.clear();
            self.written = 0;
        }
        self.bytes.extend_from_slice(bytes);
    }

    /// Takes `bytes` as the whole pending output when nothing is pending (no copy), or appends.
    pub(crate) fn append_vec(&mut self, bytes: Vec<u8>) {
        if self.is_empty() && bytes.capacity() >= self.bytes.capacity() {
            self.bytes = bytes;
            self.written = 0;
        } else {
            self.extend(&bytes);
        }
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.written = (self.written + n).min(self.bytes.len());
    }
}

/// The loop's free lists of read and write buffers.
#[derive(Debug)]
pub(crate) struct BufferPool {
    read_size: usize,
    max_pooled: usize,
    free_read: Vec<ReadBuffer>,
    free_write: Vec<WriteBuffer>,
}

impl BufferPool {
    pub(crate) fn new(read_size: usize, max_pooled: usize) -> Self {
        BufferPool {
            read_size,
            max_pooled,
            free_read: Vec::new(),
            free_write: Vec::new(),
        }
    }

    pub(crate) fn take_read(&mut self) -> ReadBuffer {
        self.free_read
            .pop()
            .unwrap_or_else(|| ReadBuffer::new(self.read_size))
    }

    /// Returns a drained read buffer. One that grew (for a large HTTP request) is freed rather
    /// than kept, so the pool never pins more than `max_pooled * read_size` bytes.
    pub(crate) fn give_read(&mut self, mut buf: ReadBuffer) {
        if self.free_read.len() < self.max_pooled && buf.storage.len() == self.read_size {
            buf.start = 0;
            buf.end = 0;
            self.free_read.push(buf);
        }
    }

    pub(crate) fn take_write(&mut self) -> WriteBuffer {
        self.free_write.pop().unwrap_or_default()
    }

    /// Returns a drained write buffer; one that grew past twice the read size is freed.
    pub(crate) fn give_write(&mut self, mut buf: WriteBuffer) {
        if self.free_write.len() < self.max_pooled && buf.bytes.capacity() <= 2 * self.read_size {
            buf.bytes.clear();
            buf.written = 0;
            self.free_write.push(buf);
        }
    }

    /// Free buffers held now (both kinds).
    pub(crate) fn len(&self) -> usize {
        self.free_read.len() + self.free_write.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_buffer_compacts_then_grows_up_to_the_limit() {
        let mut pool = BufferPool::new(8, 4);
        let mut buf = pool.take_read();
        buf.spare(8)[..8].copy_from_slice(b"abcdefgh");
        buf.filled(8);
        buf.consume(3);
        assert_eq!(buf.data(), b"defgh");
        assert_eq!(buf.spare(8).len(), 3, "compaction makes room");
        assert_eq!(buf.data(), b"defgh");
        buf.filled(3);
        assert_eq!(buf.spare(8).len(), 0, "full at the limit");
        assert_eq!(buf.spare(20).len(), 8, "grows by doubling");
        pool.give_read(buf);
        assert_eq!(pool.len(), 0, "a grown buffer is not pooled");
    }

    #[test]
    fn pool_reuses_and_is_bounded() {
        let mut pool = BufferPool::new(16, 1);
        let a = pool.take_read();
        let b = pool.take_read();
        pool.give_read(a);
        pool.give_read(b);
        assert_eq!(pool.len(), 1);
        let mut w = pool.take_write();
        w.extend(b"hello");
        w.advance(2);
        assert_eq!(w.pending(), b"llo");
        w.advance(3);
        assert!(w.is_empty());
        pool.give_write(w);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn append_vec_takes_ownership_when_empty() {
        let mut w = WriteBuffer::default();
        w.append_vec(b"abc".to_vec());
        w.append_vec(b"def".to_vec());
        assert_eq!(w.pending(), b"abcdef");
    }
}
