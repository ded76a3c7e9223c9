//! The buffers a session borrows from its loop's pool: a read buffer while input waits to be
//! decoded, a write buffer while output waits for the socket. Taken when bytes arrive or are
//! queued, given back as soon as they are drained, so an idle connection holds none.

use std::sync::Arc;

use crate::buffer::{BufferPool, ReadBuffer, WriteBuffer};
use crate::metrics::{add, sub};
use crate::session::connection::Session;
use crate::session::env::Env;

impl Session {
    /// Queues bytes for the peer (taking a write buffer from the pool if none is held).
    pub(crate) fn queue(&mut self, env: &mut Env<'_>, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        add(&env.metrics.pending_outbound_bytes, bytes.len() as u64);
        let pool = &mut *env.pool;
        self.output
            .get_or_insert_with(|| pool.take_write())
            .extend(bytes, &mut pool.chunks);
    }

    /// Like [`queue`](Self::queue), taking ownership of the bytes: a large payload is queued
    /// as is and written from its own buffer (no copy).
    pub(crate) fn queue_vec(&mut self, env: &mut Env<'_>, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        add(&env.metrics.pending_outbound_bytes, bytes.len() as u64);
        let pool = &mut *env.pool;
        self.output
            .get_or_insert_with(|| pool.take_write())
            .append_vec(bytes, &mut pool.chunks);
    }

    /// Queues a frame shared with other connections (a topic publication, a broadcast): a large
    /// one by reference to the one encoded copy, a small one packed like any small frame.
    pub(crate) fn queue_shared(&mut self, env: &mut Env<'_>, frame: &Arc<[u8]>) {
        if frame.is_empty() {
            return;
        }
        add(&env.metrics.pending_outbound_bytes, frame.len() as u64);
        let pool = &mut *env.pool;
        self.output
            .get_or_insert_with(|| pool.take_write())
            .append_shared(frame, &mut pool.chunks);
    }

    /// Gives drained buffers back to the pool: an idle connection holds none.
    pub(super) fn release_buffers(&mut self, pool: &mut BufferPool) {
        if self.input.as_ref().is_some_and(ReadBuffer::is_empty)
            && let Some(buf) = self.input.take()
        {
            pool.give_read(buf);
            let free = pool.len();
            log::trace!("{}: read buffer back to the pool ({free} free)", self.id);
        }
        if self.output.as_ref().is_some_and(WriteBuffer::is_empty)
            && let Some(buf) = self.output.take()
        {
            pool.give_write(buf);
            let free = pool.len();
            log::trace!("{}: write buffer back to the pool ({free} free)", self.id);
        }
    }

    /// Gives every buffer back, drained or not, when the session ends.
    pub(super) fn return_all_buffers(&mut self, env: &mut Env<'_>) {
        if let Some(input) = self.input.take() {
            env.pool.give_read(input);
        }
        if let Some(output) = self.output.take() {
            sub(&env.metrics.pending_outbound_bytes, output.len() as u64);
            env.pool.give_write(output);
        }
    }
}
