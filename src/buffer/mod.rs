//! Buffers that a connection holds only while it has bytes to process or to send.
//!
//! An idle connection owns no buffer: memory per idle connection is a headline number. When a
//! socket becomes readable its session takes a [`ReadBuffer`] from the loop's [`BufferPool`],
//! reads into it, hands the bytes to the HTTP parser or the frame decoder, and gives the buffer
//! back as soon as every byte is consumed. Outbound bytes work the same way with a
//! [`WriteBuffer`]. These types know nothing of sockets or protocols; the event loop owns one
//! pool and lends it to each session step.

mod pool;
mod read;
mod write;

pub(crate) use pool::BufferPool;
pub(crate) use read::ReadBuffer;
#[cfg(test)]
pub(crate) use write::SHARED_CHUNK_MIN;
pub(crate) use write::{MAX_SLICES, OWNED_CHUNK_MIN, WriteBuffer};
