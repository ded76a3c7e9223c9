//! permessage-deflate (RFC 7692): compressing WebSocket messages, one message at a time.
//!
//! `negotiate.rs` turns the client's `Sec-WebSocket-Extensions` offers into a
//! [`PerMessageDeflate`] agreement (or none) during the upgrade. `codec.rs` inflates a received
//! [`Compressed`] message into a [`Message`](crate::ws::Message), enforcing the size limit while
//! it inflates, and compresses outgoing payloads ([`compress`]), with codecs owned by the thread
//! that runs the handler (a worker, or an inline loop) and reset per message. `fixed.rs` is the
//! encoder `compress` uses at level 1, the default: fixed Huffman codes, a hash table the size
//! of the message.
//!
//! The frame layer's part is small: RSV1 on the first frame of a message marks it compressed
//! (`header.rs`, `decoder.rs`), and [`encode_data_header`](crate::ws::encode_data_header) sets it
//! on the way out. The event loop never inflates or compresses in worker mode; it only carries
//! the compressed bytes.

mod codec;
mod fixed;
mod negotiate;

pub use codec::{Compressed, compress};
pub use negotiate::{Declined, PerMessageDeflate, negotiate};
