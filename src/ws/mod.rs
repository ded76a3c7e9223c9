//! The WebSocket protocol (RFC 6455), server side: frame encoding and a streaming message decoder.
//!
//! Bytes read from a client's socket enter through [`MessageDecoder::decode`], which parses and
//! unmasks frames, reassembles fragmented messages, validates UTF-8 and close payloads, and hands
//! out [`Decoded`] items (data [`Message`]s, pings, pongs, closes) or a [`WsError`] that names the
//! [`CloseCode`] to answer with. Bytes going to a client leave through [`encode_frame`] and
//! [`encode_close`], which append unmasked frames to an output buffer. permessage-deflate
//! (RFC 7692) is negotiated and applied per message in [`deflate`].
//!
//! Nothing here does I/O, spawns threads or holds locks: the event loops own the sockets, the
//! sessions the buffers, and they call these functions.
//!
//! Only the crate uses this module, except with the `fuzzing` feature, which makes it public
//! for the fuzz targets and property tests; items only they use are not dead code.

#![cfg_attr(not(feature = "fuzzing"), allow(dead_code, unused_imports))]

pub mod close;
mod control;
pub mod decoder;
pub mod deflate;
pub mod error;
pub mod extension;
pub mod frame;
mod header;
pub mod message;
mod utf8;

pub use close::{CloseCode, CloseFrame, CloseInfo};
pub use control::ControlPayload;
pub use decoder::{Decoded, DecoderLimits, MessageDecoder};
pub use deflate::{Compressed, PerMessageDeflate};
pub use error::WsError;
pub use frame::{
    OpCode, apply_mask, encode_close, encode_data_header, encode_frame, encode_header,
    encode_shared_frame,
};
pub use message::Message;
