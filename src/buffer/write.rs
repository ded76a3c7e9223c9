//! [`WriteBuffer`]: bytes waiting for the socket, as a queue of chunks for one `writev`.
//!
//! Bytes enter by copy ([`WriteBuffer::extend`], packed into pooled chunks), by value
//! ([`WriteBuffer::append_vec`]: a large payload becomes a chunk of its own, never copied), or
//! shared ([`WriteBuffer::append_shared`]: a frame encoded once for many connections — a topic
//! publication, a broadcast — is queued as a reference to the one copy every connection holds).
//! They leave through [`WriteBuffer::front`] (one chunk) or [`WriteBuffer::slices`] (several) and
//! [`WriteBuffer::advance`], which gives written chunks back to the [`ChunkPool`] (a shared chunk
//! just lets go of its reference).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;

/// Payloads at least this large are queued as their own chunk instead of being copied.
pub(crate) const OWNED_CHUNK_MIN: usize = 4096;

/// Shared frames at least this large are queued by reference; smaller ones are copied into the
/// packed chunk like any small frame.
///
/// Measured on the development machine (x86-64, one queue operation per subscriber): copying a
/// frame into a packed chunk costs 3 ns at 64 B, 6 ns at 512 B, 11 ns at 1 KiB, 17 ns at 2 KiB
/// and 37 ns at 4 KiB; queuing a reference costs 12-14 ns whatever the size, and about 60 ns
/// while two event loops bump the same reference count at once. Below 1 KiB the copy is cheaper
/// and many small frames share one chunk (one `writev` slot); from 1 KiB on the copy grows with
/// the size while the reference does not, and a subscriber that lags holds a pointer instead of
/// a copy of the payload.
pub(crate) const SHARED_CHUNK_MIN: usize = 1024;

/// Most slices handed to one `writev`.
pub(crate) const MAX_SLICES: usize = 64;

/// One run of bytes in a [`WriteBuffer`].
#[derive(Debug)]
enum Chunk {
    /// Bytes this connection owns: a pooled chunk of packed small frames, or a large payload.
    Owned(Vec<u8>),
    /// A frame encoded once and shared with other connections (each holds a reference; the
    /// bytes are freed when the last one has written them).
    Shared(Arc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(bytes) => bytes,
            Chunk::Shared(bytes) => bytes,
        }
    }
}

/// Bytes waiting to be written, as a queue of chunks. Small frames are packed into pooled chunks;
/// a large payload handed over by value is queued as its own chunk, uncopied, and so is a large
/// frame shared with other connections. One `writev` sends many chunks at once.
#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    chunks: VecDeque<Chunk>,
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
    pub(crate) fn extend(&mut self, bytes: &[u8], pool: &mut ChunkPool) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        if let Some(Chunk::Owned(tail)) = self.chunks.back_mut()
            && tail.capacity() - tail.len() >= bytes.len()
            && tail.capacity() <= pool.chunk_size
        {
            tail.extend_from_slice(bytes);
            return;
        }
        let mut chunk = if bytes.len() <= pool.chunk_size {
            pool.take_chunk()
        } else {
            Vec::with_capacity(bytes.len())
        };
        chunk.extend_from_slice(bytes);
        self.chunks.push_back(Chunk::Owned(chunk));
    }

    /// Appends `bytes` by value: a large one becomes a chunk of its own (no copy), a small one is
    /// packed like [`extend`](Self::extend).
    pub(crate) fn append_vec(&mut self, bytes: Vec<u8>, pool: &mut ChunkPool) {
        if bytes.len() < OWNED_CHUNK_MIN {
            self.extend(&bytes, pool);
        } else {
            self.len += bytes.len();
            self.chunks.push_back(Chunk::Owned(bytes));
        }
    }

    /// Appends a frame shared with other connections: from [`SHARED_CHUNK_MIN`] bytes on, as a
    /// reference to the same bytes (no copy); a smaller one is packed like
    /// [`extend`](Self::extend).
    pub(crate) fn append_shared(&mut self, bytes: &Arc<[u8]>, pool: &mut ChunkPool) {
        if bytes.len() < SHARED_CHUNK_MIN {
            self.extend(bytes, pool);
        } else {
            self.len += bytes.len();
            self.chunks.push_back(Chunk::Shared(Arc::clone(bytes)));
        }
    }

    /// Fills `slices` with the pending bytes for one vectored write (no allocation) and
    /// returns how many it used.
    pub(crate) fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
        let mut used = 0;
        for (slot, chunk) in slices.iter_mut().zip(&self.chunks) {
            let start = if used == 0 { self.written } else { 0 };
            *slot = IoSlice::new(&chunk.bytes()[start..]);
            used += 1;
        }
        used
    }

    /// Chunks queued: one is written with a plain `write`, more with one `writev`.
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// The first pending chunk (for a plain `write` when there is only one).
    pub(crate) fn front(&self) -> &[u8] {
        self.chunks
            .front()
            .map_or(&[], |chunk| &chunk.bytes()[self.written..])
    }

    /// Marks `n` bytes written; chunks written out go back to the pool.
    pub(crate) fn advance(&mut self, mut n: usize, pool: &mut ChunkPool) {
        self.len -= n.min(self.len);
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.written = 0;
            if let Some(chunk) = self.chunks.pop_front() {
                pool.give(chunk);
            }
        }
    }
}

impl WriteBuffer {
    /// Empties the buffer (written or not), giving its chunks back, so it can be pooled.
    pub(super) fn clear(&mut self, pool: &mut ChunkPool) {
        while let Some(chunk) = self.chunks.pop_front() {
            pool.give(chunk);
        }
        self.written = 0;
        self.len = 0;
    }
}

/// The free lists of write chunks: vectors of one capacity that small frames are packed into,
/// and large payloads written out, kept for the next large message read.
#[derive(Debug)]
pub(crate) struct ChunkPool {
    /// Capacity of a pooled chunk.
    chunk_size: usize,
    max_pooled: usize,
    free: Vec<Vec<u8>>,
    /// Written payloads larger than a chunk: a large message read next is assembled in one
    /// (`take_payload`) instead of memory the allocator may have given back to the kernel and
    /// must fault in again, page by page. They keep their bytes: initialized room the message
    /// is read into without zeroing it first.
    payloads: Vec<Vec<u8>>,
    /// Capacity of `payloads`, in bytes: at most `max_pooled * chunk_size / 4`.
    payload_bytes: usize,
}

impl ChunkPool {
    pub(crate) fn new(chunk_size: usize, max_pooled: usize) -> Self {
        ChunkPool {
            chunk_size,
            max_pooled,
            free: Vec::new(),
            payloads: Vec::new(),
            payload_bytes: 0,
        }
    }

    /// A vector of at least `capacity` bytes for a message to be assembled in: a pooled payload
    /// if one fits (no more than twice the size), its old bytes kept as initialized room (see
    /// `MessageDecoder::decode_with`), else a new, empty one.
    pub(crate) fn take_payload(&mut self, capacity: usize) -> Vec<u8> {
        if capacity > self.chunk_size
            && let Some(at) = self
                .payloads
                .iter()
                .position(|v| (capacity..=capacity.saturating_mul(2)).contains(&v.capacity()))
        {
            let payload = self.payloads.swap_remove(at);
            self.payload_bytes -= payload.capacity();
            return payload;
        }
        Vec::with_capacity(capacity)
    }

    fn take_chunk(&mut self) -> Vec<u8> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.chunk_size))
    }

    /// Takes back a written chunk: a pooled one is kept, an owned payload is freed, a shared one
    /// lets go of its reference.
    fn give(&mut self, chunk: Chunk) {
        if let Chunk::Owned(chunk) = chunk {
            self.give_chunk(chunk);
        }
    }

    /// Keeps a written chunk of the pooled size, or a large payload while the payloads kept
    /// stay under their bound, for reuse; others are freed.
    fn give_chunk(&mut self, mut chunk: Vec<u8>) {
        let capacity = chunk.capacity();
        if capacity == self.chunk_size && self.free.len() < self.max_pooled {
            chunk.clear();
            self.free.push(chunk);
        } else if capacity > self.chunk_size
            && self.payload_bytes.saturating_add(capacity)
                <= self.max_pooled.saturating_mul(self.chunk_size) / 4
        {
            self.payload_bytes += capacity;
            self.payloads.push(chunk);
        }
    }

    /// Free chunks and payloads held now.
    pub(crate) fn len(&self) -> usize {
        self.free.len() + self.payloads.len()
    }

    /// Frees every free chunk and payload.
    pub(crate) fn shrink(&mut self) {
        self.free = Vec::new();
        self.payloads = Vec::new();
        self.payload_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload written out comes back for the next large message of a fitting size — the
    /// same memory, not a new allocation — and the payloads kept stay under their bound.
    #[test]
    fn written_payloads_are_kept_for_large_messages_within_a_bound() {
        let mut pool = ChunkPool::new(16 * 1024, 16); // keeps 64 KiB of payloads at most
        let mut out = WriteBuffer::default();
        let payload = vec![7u8; 40_000];
        let address = payload.as_ptr();
        out.append_vec(payload, &mut pool);
        let written = out.len();
        out.advance(written, &mut pool);
        assert_eq!(pool.len(), 1, "kept");
        assert_eq!(
            pool.take_payload(16 * 1024).capacity(),
            16 * 1024,
            "small: not it"
        );
        assert_eq!(
            pool.take_payload(90_000).capacity(),
            90_000,
            "too small: not it"
        );
        let again = pool.take_payload(30_000);
        assert_eq!(
            (again.as_ptr(), again.len()),
            (address, 40_000),
            "the same memory, its bytes kept as initialized room"
        );
        assert_eq!(pool.len(), 0);

        for _ in 0..3 {
            out.append_vec(vec![1u8; 30_000], &mut pool);
        }
        let written = out.len();
        out.advance(written, &mut pool);
        assert_eq!(
            pool.len(),
            2,
            "two of 30,000 bytes fit in 64 KiB, the third is freed"
        );
        pool.shrink();
        assert_eq!(pool.len(), 0);
    }
}
