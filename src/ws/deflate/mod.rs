//! permessage-deflate (RFC 7692): compressing WebSocket messages, one message at a time.
//!
//! `negotiate.rs` turns the client's `Sec-WebSocket-Extensions` offers into a
//! [`PerMessageDeflate`] agreement (or none) during the upgrade. `codec.rs` inflates a received
//! [`Compressed`] message into a [`Message`](crate::ws::Message), enforcing the size limit while
//! it inflates, and compresses outgoing payloads ([`compress`]), with codecs owned by the thread
//! that runs the handler (a worker, or an inline loop) and reset per message. `encoder.rs` is
//! the deflate encoder `compress` uses at levels 1 (the default) and 2, with a hash table the
//! size of the message; `dynamic.rs` and `huffman.rs` make the codes and header of level 2's
//! blocks, `symbols.rs` holds deflate's alphabets and fixed codes, `bits.rs` packs the bits.
//!
//! The frame layer's part is small: RSV1 on the first frame of a message marks it compressed
//! (`header.rs`, `decoder.rs`), and [`encode_data_header`](crate::ws::encode_data_header) sets it
//! on the way out. In worker mode the event loop inflates and compresses only the batches it
//! handles itself (messages the handler declared non-blocking, within a turn's budget:
//! `runner/on_loop.rs`); otherwise it only carries the compressed bytes.

mod bits;
mod codec;
mod dynamic;
mod encoder;
mod huffman;
mod negotiate;
mod symbols;

pub use codec::{Compressed, compress};
pub use negotiate::{Declined, PerMessageDeflate, negotiate};
