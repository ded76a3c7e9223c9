//! Why a client's byte stream was rejected, and which close code answers it.
//!
//! A [`WsError`] leaves [`MessageDecoder::decode`](crate::ws::MessageDecoder::decode) (and the
//! internal header and close-payload parsers); the caller turns it into a close frame with
//! [`WsError::close_code`] and stops reading from that connection.

use std::fmt;

use crate::ws::close::CloseCode;

/// A violation of RFC 6455 or of the configured limits by the peer. After it, the connection must
/// be closed with [`WsError::close_code`]; the decoder must not be fed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsError {
    /// The peer broke a rule of RFC 6455; close code 1002 ([`CloseCode::Protocol`]).
    /// The text says which rule (e.g. "frame is not masked").
    Protocol(&'static str),
    /// A text message or a close reason is not valid UTF-8; close code 1007
    /// ([`CloseCode::Invalid`]).
    InvalidUtf8,
    /// A message (or a single frame) would exceed
    /// [`DecoderLimits::max_message_size`](crate::ws::DecoderLimits::max_message_size), or a
    /// message has more frames than
    /// [`DecoderLimits::max_fragments`](crate::ws::DecoderLimits::max_fragments); close code 1009
    /// ([`CloseCode::Size`]).
    MessageTooBig {
        /// The limit that was exceeded: a number of bytes, or a number of fragments.
        limit: usize,
    },
    /// A message marked compressed (RSV1, with permessage-deflate negotiated) is not a valid
    /// deflate stream; close code 1007 ([`CloseCode::Invalid`]): its payload is not what its
    /// frame says it is.
    BadCompressedData,
}

impl WsError {
    /// The close code to send to the peer for this error (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            WsError::Protocol(_) => CloseCode::Protocol,
            WsError::InvalidUtf8 | WsError::BadCompressedData => CloseCode::Invalid,
            WsError::MessageTooBig { .. } => CloseCode::Size,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Protocol(rule) => write!(f, "WebSocket protocol error: {rule}"),
            WsError::InvalidUtf8 => f.write_str("invalid UTF-8 in a text message or close reason"),
            WsError::MessageTooBig { limit } => {
                write!(f, "WebSocket message too big (limit {limit})")
            }
            WsError::BadCompressedData => f.write_str("compressed message is not deflate data"),
        }
    }
}

impl std::error::Error for WsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_and_messages() {
        let table = [
            (
                WsError::Protocol("frame is not masked"),
                1002,
                "frame is not masked",
            ),
            (WsError::InvalidUtf8, 1007, "UTF-8"),
            (WsError::MessageTooBig { limit: 42 }, 1009, "42"),
            (WsError::BadCompressedData, 1007, "deflate"),
        ];
        for (err, code, text) in table {
            assert_eq!(err.close_code().as_u16(), code, "{err:?}");
            assert!(err.to_string().contains(text), "{err}");
        }
    }
}
