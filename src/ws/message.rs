//! A complete WebSocket data message, as delivered to the application and as sent to a peer.
//!
//! A [`Message`] leaves [`MessageDecoder`](crate::ws::MessageDecoder) once all its fragments are
//! reassembled, unmasked and (for text) validated as UTF-8; the application builds one with the
//! `From` impls to send it, and its bytes enter [`encode_frame`](crate::ws::encode_frame) through
//! [`Message::as_bytes`] and `Message::opcode`.

use crate::ws::frame::OpCode;

/// A complete data message: text (always valid UTF-8) or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (opcode 0x1); its payload is valid UTF-8 (RFC 6455 §5.6).
    Text(String),
    /// A binary message (opcode 0x2).
    Binary(Vec<u8>),
}

impl Message {
    /// Number of payload bytes (for text, bytes of UTF-8, not characters).
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True when the payload is empty (empty messages are valid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The payload, by value (no copy).
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The opcode a frame carrying this message has: [`OpCode::Text`] or [`OpCode::Binary`].
    pub(crate) fn opcode(&self) -> OpCode {
        match self {
            Message::Text(_) => OpCode::Text,
            Message::Binary(_) => OpCode::Binary,
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(text.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Message::Binary(bytes)
    }
}

impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Self {
        Message::Binary(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let table: [(Message, &[u8], OpCode); 5] = [
            (Message::from("héllo"), "héllo".as_bytes(), OpCode::Text),
            (Message::from(String::new()), b"", OpCode::Text),
            (Message::from(vec![1, 2, 3]), &[1, 2, 3], OpCode::Binary),
            (Message::from(&b"ab"[..]), b"ab", OpCode::Binary),
            (Message::from(Vec::new()), b"", OpCode::Binary),
        ];
        for (message, bytes, opcode) in table {
            assert_eq!(message.as_bytes(), bytes);
            assert_eq!(message.len(), bytes.len());
            assert_eq!(message.is_empty(), bytes.is_empty());
            assert_eq!(message.opcode(), opcode);
        }
    }
}
