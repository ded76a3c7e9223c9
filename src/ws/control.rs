//! Control frames' payloads: held inline while they arrive, and the close payload's rules.
//!
//! The decoder copies a ping, pong or close payload (at most 125 bytes, RFC 6455 §5.5) into a
//! [`ControlPayload`] instead of allocating; a close payload then goes through [`parse_close`],
//! which checks the code and the UTF-8 reason and yields a [`CloseFrame`] or a [`WsError`].

use std::fmt;

use crate::ws::close::{CloseCode, CloseFrame};
use crate::ws::error::WsError;
use crate::ws::frame::MAX_CONTROL_PAYLOAD;

/// Up to 125 bytes of control-frame payload, held inline (no heap allocation per ping).
#[derive(Clone, Copy)]
pub struct ControlPayload {
    pub(super) len: u8,
    pub(super) bytes: [u8; MAX_CONTROL_PAYLOAD],
}

impl ControlPayload {
    /// A payload holding a copy of `bytes`, or `None` when it is longer than 125 bytes (the limit
    /// for control frames, RFC 6455 §5.5).
    pub fn new(bytes: &[u8]) -> Option<ControlPayload> {
        let len = u8::try_from(bytes.len())
            .ok()
            .filter(|&len| usize::from(len) <= MAX_CONTROL_PAYLOAD)?;
        let mut payload = ControlPayload::empty();
        payload.bytes[..bytes.len()].copy_from_slice(bytes);
        payload.len = len;
        Some(payload)
    }

    /// The payload bytes (unmasked).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub(super) fn empty() -> ControlPayload {
        ControlPayload {
            len: 0,
            bytes: [0; MAX_CONTROL_PAYLOAD],
        }
    }
}

impl PartialEq for ControlPayload {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ControlPayload {}

impl fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ControlPayload")
            .field(&self.as_bytes())
            .finish()
    }
}

/// Parses the (unmasked) payload of a received close frame: `None` when it is empty, else a
/// 2-byte code in network order followed by a UTF-8 reason.
pub(crate) fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, WsError> {
    match payload {
        [] => Ok(None),
        // If there is a body, the first two bytes of the body MUST be a 2-byte unsigned
        // integer representing a status code. (RFC 6455 §5.5.1)
        [_] => Err(WsError::Protocol("close frame payload of 1 byte")),
        [high, low, reason @ ..] => {
            let code = CloseCode::from_u16(u16::from_be_bytes([*high, *low]));
            if !code.is_allowed_on_wire() {
                return Err(WsError::Protocol("close code not allowed on the wire"));
            }
            // The data after the status code MUST be UTF-8-encoded. (RFC 6455 §5.5.1)
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_payloads() {
        let ok = |code: CloseCode, reason: &str| {
            Ok(Some(CloseFrame {
                code,
                reason: reason.into(),
            }))
        };
        type Parsed = Result<Option<CloseFrame>, WsError>;
        let table: [(&[u8], Parsed); 9] = [
            (b"", Ok(None)),
            (
                &[0x03],
                Err(WsError::Protocol("close frame payload of 1 byte")),
            ),
            (&[0x03, 0xE8], ok(CloseCode::Normal, "")),
            (b"\x03\xE9bye \xC3\xA9", ok(CloseCode::Away, "bye é")),
            (&[0x0F, 0xA0], ok(CloseCode::Other(4000), "")),
            (
                &[0x03, 0xED],
                Err(WsError::Protocol("close code not allowed on the wire")),
            ),
            (
                &[0x03, 0xEE],
                Err(WsError::Protocol("close code not allowed on the wire")),
            ),
            (
                &[0x00, 0x00],
                Err(WsError::Protocol("close code not allowed on the wire")),
            ),
            (&[0x03, 0xE8, 0xFF], Err(WsError::InvalidUtf8)),
        ];
        for (payload, expected) in table {
            assert_eq!(parse_close(payload), expected, "{payload:?}");
        }
    }
}
