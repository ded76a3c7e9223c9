//! Buffers that a connection holds only while it has bytes to process or to send.
//!
//! An idle connection owns no buffer: memory per idle connection is a headline number. When a
//! socket becomes readable the loop takes a [`ReadBuffer`] from its [`BufferPool`], reads into it,
//! hands the bytes to the HTTP parser or the frame decoder, and gives the buffer back as soon as
//! every byte is consumed. Outbound bytes work the same way with a [`WriteBuffer`]. The pool keeps
//! at most `max_pooled` free buffers of each kind, so a burst of activity does not pin memory
//! forever.

use std::collections::VecDeque;
use std::io::IoSlice;

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

/// Payloads at least this large are queued as their own chunk instead of being copied.
pub(crate) const OWNED_CHUNK_MIN: usize = 4096;

/// Most slices handed to one `writev`.
pub(crate) const MAX_SLICES: usize = 64;

/// Bytes waiting to be written, as a queue of chunks. Small frames are packed into pooled chunks;
/// a large payload handed over by value is queued as its own chunk, uncopied. One `writev` sends
/// many chunks at once.
#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    written: usize,
    /// Bytes not yet written, over all chunks.
    len: usize,
}

impl WriteBuffer {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a copy of `bytes`, packed into the last chunk when it has room.
    pub(crate) fn extend(&mut self, bytes: &[u8], pool: &mut BufferPool) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        if let Some(tail) = self.chunks.back_mut() {
            if tail.capacity() - tail.len() >= bytes.len() && tail.capacity() <= pool.chunk_size {
                tail.extend_from_slice(bytes);
                return;
            }
        }
        let mut chunk = if bytes.len() <= pool.chunk_size {
            pool.take_chunk()
        } else {
            Vec::with_capacity(bytes.len())
        };
        chunk.extend_from_slice(bytes);
        self.chunks.push_back(chunk);
    }

    /// Appends `bytes` by value: a large one becomes a chunk of its own (no copy), a small one is
    /// packed like [`extend`](Self::extend).
    pub(crate) fn append_vec(&mut self, bytes: Vec<u8>, pool: &mut BufferPool) {
        if bytes.len() < OWNED_CHUNK_MIN {
            self.extend(&bytes, pool);
        } else {
            self.len += bytes.len();
            self.chunks.push_back(bytes);
        }
    }

    /// Fills `slices` with the pending bytes for one vectored write (no allocation) and
    /// returns how many it used.
    pub(crate) fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
        let mut used = 0;
        for (slot, chunk) in slices.iter_mut().zip(&self.chunks) {
            let start = if used == 0 { self.written } else { 0 };
            *slot = IoSlice::new(&chunk[start..]);
            used += 1;
        }
        used
    }

    /// The first pending chunk (for a plain `write` when there is only one).
    pub(crate) fn front(&self) -> &[u8] {
        self.chunks
            .front()
            .map_or(&[], |chunk| &chunk[self.written..])
    }

    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Marks `n` bytes written; chunks written out go back to the pool.
    pub(crate) fn advance(&mut self, mut n: usize, pool: &mut BufferPool) {
        self.len -= n.min(self.len);
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.written = 0;
            if let Some(chunk) = self.chunks.pop_front() {
                pool.give_chunk(chunk);
            }
        }
    }
}

/// The loop's free lists of read buffers, write buffers and write chunks.
#[derive(Debug)]
pub(crate) struct BufferPool {
    read_size: usize,
    /// Capacity of a pooled write chunk (the read size).
    chunk_size: usize,
    max_pooled: usize,
    free_read: Vec<ReadBuffer>,
    free_write: Vec<WriteBuffer>,
    free_chunks: Vec<Vec<u8>>,
}

impl BufferPool {
    pub(crate) fn new(read_size: usize, max_pooled: usize) -> Self {
        BufferPool {
            read_size,
            chunk_size: read_size,
            max_pooled,
            free_read: Vec::new(),
            free_write: Vec::new(),
            free_chunks: Vec::new(),
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

    /// Returns a write buffer; its chunks go back to the chunk list.
    pub(crate) fn give_write(&mut self, mut buf: WriteBuffer) {
        while let Some(chunk) = buf.chunks.pop_front() {
            self.give_chunk(chunk);
        }
        buf.written = 0;
        buf.len = 0;
        if self.free_write.len() < self.max_pooled {
            self.free_write.push(buf);
        }
    }

    fn take_chunk(&mut self) -> Vec<u8> {
        self.free_chunks
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.chunk_size))
    }

    /// Keeps a written chunk of the pooled size for reuse; others (owned payloads) are freed.
    fn give_chunk(&mut self, mut chunk: Vec<u8>) {
        if chunk.capacity() == self.chunk_size && self.free_chunks.len() < self.max_pooled {
            chunk.clear();
            self.free_chunks.push(chunk);
        }
    }

    /// Free buffers held now (all kinds).
    pub(crate) fn len(&self) -> usize {
        self.free_read.len() + self.free_write.len() + self.free_chunks.len()
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
    fn read_pool_reuses_and_is_bounded() {
        let mut pool = BufferPool::new(16, 1);
        let a = pool.take_read();
        let b = pool.take_read();
        pool.give_read(a);
        pool.give_read(b);
        assert_eq!(pool.len(), 1);
    }

    fn pending(buf: &WriteBuffer) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let used = buf.slices(&mut slices);
        slices[..used]
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect()
    }

    #[test]
    fn small_writes_pack_and_large_ones_are_queued_uncopied() {
        let mut pool = BufferPool::new(64, 4);
        let mut w = pool.take_write();
        w.extend(b"hello ", &mut pool);
        w.append_vec(b"world".to_vec(), &mut pool);
        assert_eq!(w.chunk_count(), 1, "small pieces share a chunk");
        let big = vec![7u8; OWNED_CHUNK_MIN];
        let big_ptr = big.as_ptr();
        w.append_vec(big, &mut pool);
        assert_eq!(w.chunk_count(), 2);
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        assert_eq!(w.slices(&mut slices), 2);
        assert_eq!(
            slices[1].as_ptr(),
            big_ptr,
            "the large payload is not copied"
        );
        w.extend(b"!", &mut pool);
        assert_eq!(w.len(), 11 + OWNED_CHUNK_MIN + 1);
        let all = pending(&w);
        assert_eq!(&all[..11], b"hello world");
        assert_eq!(all.len(), w.len());

        w.advance(3, &mut pool);
        assert_eq!(w.front(), b"lo world");
        w.advance(8 + OWNED_CHUNK_MIN, &mut pool);
        assert_eq!(pending(&w), b"!");
        w.advance(1, &mut pool);
        assert!(w.is_empty());
        pool.give_write(w);
        assert_eq!(
            pool.len(),
            3,
            "the write buffer and both small chunks are pooled"
        );
    }

    #[test]
    fn a_large_copy_gets_its_own_exact_chunk() {
        let mut pool = BufferPool::new(16, 4);
        let mut w = pool.take_write();
        w.extend(&[1u8; 40], &mut pool);
        assert_eq!(w.chunk_count(), 1);
        assert_eq!(pending(&w), vec![1u8; 40]);
    }
}
