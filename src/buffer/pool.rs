//! [`BufferPool`]: each event loop's free lists of read buffers, write buffers and write chunks.
//!
//! A session takes a buffer when bytes arrive or are queued and gives it back as soon as it is
//! drained, so an idle connection holds none. The pool keeps at most `max_pooled` free buffers of
//! each kind, so a burst does not pin memory; it also counts the buffers lent out now (the
//! `buffers_in_use` gauge).

use super::read::ReadBuffer;
use super::write::{ChunkPool, WriteBuffer};

/// The loop's free lists of read buffers, write buffers and write chunks.
#[derive(Debug)]
pub(crate) struct BufferPool {
    read_size: usize,
    max_pooled: usize,
    free_read: Vec<ReadBuffer>,
    free_write: Vec<WriteBuffer>,
    /// Write chunks, of the read buffer's size.
    pub(crate) chunks: ChunkPool,
    /// Read and write buffers lent out now (taken and not given back).
    in_use: usize,
}

impl BufferPool {
    pub(crate) fn new(read_size: usize, max_pooled: usize) -> Self {
        BufferPool {
            read_size,
            max_pooled,
            free_read: Vec::new(),
            free_write: Vec::new(),
            chunks: ChunkPool::new(read_size, max_pooled),
            in_use: 0,
        }
    }

    pub(crate) fn take_read(&mut self) -> ReadBuffer {
        self.in_use += 1;
        self.free_read
            .pop()
            .unwrap_or_else(|| ReadBuffer::new(self.read_size))
    }

    /// Returns a drained read buffer. One that grew (for a large HTTP request) is freed rather
    /// than kept, so the pool never pins more than `max_pooled * read_size` bytes.
    pub(crate) fn give_read(&mut self, mut buf: ReadBuffer) {
        self.in_use = self.in_use.saturating_sub(1);
        if self.free_read.len() < self.max_pooled && buf.storage.len() == self.read_size {
            buf.start = 0;
            buf.end = 0;
            self.free_read.push(buf);
        }
    }

    pub(crate) fn take_write(&mut self) -> WriteBuffer {
        self.in_use += 1;
        self.free_write.pop().unwrap_or_default()
    }

    /// Returns a write buffer; its chunks go back to the chunk list.
    pub(crate) fn give_write(&mut self, mut buf: WriteBuffer) {
        self.in_use = self.in_use.saturating_sub(1);
        buf.clear(&mut self.chunks);
        if self.free_write.len() < self.max_pooled {
            self.free_write.push(buf);
        }
    }

    /// Frees every free buffer (after a storm: the pool refills as traffic needs).
    pub(crate) fn shrink(&mut self) {
        self.free_read = Vec::new();
        self.free_write = Vec::new();
        self.chunks.shrink();
    }

    /// Free buffers held now (all kinds).
    pub(crate) fn len(&self) -> usize {
        self.free_read.len() + self.free_write.len() + self.chunks.len()
    }

    /// Read and write buffers lent to connections now: zero when every connection is idle.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{MAX_SLICES, OWNED_CHUNK_MIN, SHARED_CHUNK_MIN};
    use std::io::IoSlice;
    use std::sync::Arc;

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

    /// `has_room` says what `spare` will lend, before it moves or grows anything: the pump
    /// goes round on its word, so the two must never disagree.
    #[test]
    fn has_room_agrees_with_spare() {
        for size in [1, 2, 8] {
            for max_len in [0, 1, 4, 8, 16] {
                for start in 0..=size {
                    for end in start..=size {
                        let mut buf = ReadBuffer::new(size);
                        buf.start = start;
                        buf.end = end;
                        let said = buf.has_room(max_len);
                        let lent = !buf.spare(max_len).is_empty();
                        assert_eq!(said, lent, "{size} {max_len} {start}..{end}");
                    }
                }
            }
        }
        let mut empty = ReadBuffer::new(0);
        assert_eq!(empty.has_room(8), !empty.spare(8).is_empty());
    }

    #[test]
    fn read_pool_reuses_and_is_bounded() {
        let mut pool = BufferPool::new(16, 1);
        let a = pool.take_read();
        let b = pool.take_read();
        assert_eq!(pool.in_use(), 2);
        pool.give_read(a);
        pool.give_read(b);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.in_use(), 0);
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
        w.extend(b"hello ", &mut pool.chunks);
        w.append_vec(b"world".to_vec(), &mut pool.chunks);
        assert_eq!(w.chunk_count(), 1, "small pieces share a chunk");
        let big = vec![7u8; OWNED_CHUNK_MIN];
        let big_ptr = big.as_ptr();
        w.append_vec(big, &mut pool.chunks);
        assert_eq!(w.chunk_count(), 2);
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        assert_eq!(w.slices(&mut slices), 2);
        assert_eq!(
            slices[1].as_ptr(),
            big_ptr,
            "the large payload is not copied"
        );
        w.extend(b"!", &mut pool.chunks);
        assert_eq!(w.len(), 11 + OWNED_CHUNK_MIN + 1);
        let all = pending(&w);
        assert_eq!(&all[..11], b"hello world");
        assert_eq!(all.len(), w.len());

        w.advance(3, &mut pool.chunks);
        assert_eq!(w.front(), b"lo world");
        w.advance(8 + OWNED_CHUNK_MIN, &mut pool.chunks);
        assert_eq!(pending(&w), b"!");
        w.advance(1, &mut pool.chunks);
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
        w.extend(&[1u8; 40], &mut pool.chunks);
        assert_eq!(w.chunk_count(), 1);
        assert_eq!(pending(&w), vec![1u8; 40]);
    }

    #[test]
    fn a_shared_frame_is_queued_by_reference_on_every_buffer() {
        let mut pool = BufferPool::new(64, 4);
        let frame: Arc<[u8]> = vec![9u8; SHARED_CHUNK_MIN].into();
        let (mut a, mut b) = (pool.take_write(), pool.take_write());
        for w in [&mut a, &mut b] {
            w.extend(b"head", &mut pool.chunks);
            w.append_shared(&frame, &mut pool.chunks);
            w.extend(b"tail", &mut pool.chunks);
            assert_eq!(w.chunk_count(), 3, "packed, shared, packed");
            assert_eq!(w.len(), 8 + SHARED_CHUNK_MIN);
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            assert_eq!(w.slices(&mut slices), 3);
            assert_eq!(
                slices[1].as_ptr(),
                frame.as_ptr(),
                "both buffers point at the one encoded frame"
            );
        }
        assert_eq!(Arc::strong_count(&frame), 3);
        a.advance(4 + 10, &mut pool.chunks);
        assert_eq!(a.front().len(), SHARED_CHUNK_MIN - 10, "partly written");
        a.advance(SHARED_CHUNK_MIN - 10, &mut pool.chunks);
        assert_eq!(a.front(), b"tail");
        assert_eq!(
            Arc::strong_count(&frame),
            2,
            "written out: reference let go"
        );
        pool.give_write(b);
        assert_eq!(Arc::strong_count(&frame), 1, "a cleared buffer lets go too");
        a.append_shared(&frame, &mut pool.chunks);
        a.extend(b"!", &mut pool.chunks);
        assert_eq!(a.chunk_count(), 3, "nothing packs into a shared chunk");
        assert_eq!(pending(&a).len(), 4 + SHARED_CHUNK_MIN + 1);
    }

    #[test]
    fn a_small_shared_frame_is_packed_like_any_small_frame() {
        let mut pool = BufferPool::new(64, 4);
        let frame: Arc<[u8]> = vec![3u8; 10].into();
        let mut w = pool.take_write();
        w.extend(b"a", &mut pool.chunks);
        w.append_shared(&frame, &mut pool.chunks);
        assert_eq!(w.chunk_count(), 1);
        assert_eq!(Arc::strong_count(&frame), 1, "copied, not referenced");
        assert_eq!(pending(&w)[1..], [3u8; 10]);
    }
}
