//! Frame opcodes, the server-side frame encoder, and payload masking (RFC 6455 §5.2, §5.3).
//!
//! Payload bytes enter [`encode_frame`] / [`encode_close`] and leave appended, with a frame
//! header, to the caller's output buffer — or, for a frame many connections send,
//! [`encode_shared_frame`] returns it in one shared allocation. [`apply_mask`] unmasks client
//! payloads in place for the decoder.

use std::sync::Arc;

use crate::ws::close::CloseCode;

/// A frame opcode (RFC 6455 §5.2). Reserved opcodes (0x3-0x7, 0xB-0xF) are not representable: the
/// decoder rejects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: a continuation frame of a fragmented message.
    Continue,
    /// 0x1: the first (or only) frame of a text message.
    Text,
    /// 0x2: the first (or only) frame of a binary message.
    Binary,
    /// 0x8: a close frame.
    Close,
    /// 0x9: a ping.
    Ping,
    /// 0xA: a pong.
    Pong,
}

impl OpCode {
    /// True for close, ping and pong: control frames, whose opcodes have the high bit set
    /// (RFC 6455 §5.5).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }

    /// The 4-bit opcode value on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continue => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// The opcode for a 4-bit wire value, or `None` for the reserved values.
    pub(crate) fn from_u8(value: u8) -> Option<OpCode> {
        match value {
            0x0 => Some(OpCode::Continue),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }
}

/// Largest payload of a control frame. All control frames MUST have a payload length of 125 bytes
/// or less. (RFC 6455 §5.5)
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// Appends one unmasked, FIN=1 frame (server frames are never masked, RFC 6455 §5.1) with the
/// shortest length encoding (7-bit, 16-bit, 64-bit).
///
/// For control opcodes the caller must keep `payload` within 125 bytes (RFC 6455 §5.5); this is
/// checked in debug builds only.
pub fn encode_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    debug_assert!(!opcode.is_control() || payload.len() <= MAX_CONTROL_PAYLOAD);
    out.reserve(10 + payload.len());
    encode_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}

/// One unmasked, FIN=1 data frame in an allocation of its own, to be shared by every connection
/// that sends it (a topic publication, a broadcast): the payload is copied once, straight into
/// the shared bytes.
pub fn encode_shared_frame(opcode: OpCode, payload: &[u8]) -> Arc<[u8]> {
    debug_assert!(!opcode.is_control());
    let mut header = Vec::with_capacity(10);
    encode_header(&mut header, opcode, payload.len());
    // A chain of two slices has an exact length: `collect` allocates the `Arc` once.
    header.iter().chain(payload).copied().collect()
}

/// Appends only the header of an unmasked, FIN=1 frame whose payload of `len` bytes the caller
/// sends right after it (so a large payload can be written from its own buffer, uncopied).
pub fn encode_header(out: &mut Vec<u8>, opcode: OpCode, len: usize) {
    encode_data_header(out, opcode, len, false);
}

/// Like [`encode_header`], with RSV1 set when `compressed`: "the first frame of a compressed
/// message has the RSV1 bit set" (permessage-deflate, RFC 7692 §6). Only for data opcodes.
pub fn encode_data_header(out: &mut Vec<u8>, opcode: OpCode, len: usize, compressed: bool) {
    debug_assert!(!compressed || !opcode.is_control());
    let rsv1 = if compressed { 0x40 } else { 0 };
    out.push(0x80 | rsv1 | opcode.as_u8());
    // A server MUST NOT mask any frames that it sends to the client. (RFC 6455 §5.1)
    // The minimal number of bytes MUST be used to encode the length. (RFC 6455 §5.2)
    if let Ok(short) = u8::try_from(len)
        && usize::from(short) <= MAX_CONTROL_PAYLOAD
    {
        out.push(short);
    } else if let Ok(medium) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&medium.to_be_bytes());
    } else {
        out.push(127);
        // usize is at most 64 bits on every supported target, so this never saturates.
        let long = u64::try_from(len).unwrap_or(u64::MAX);
        out.extend_from_slice(&long.to_be_bytes());
    }
}

/// Appends a close frame: 2-byte code in network order + UTF-8 reason. Reason is truncated (on a
/// char boundary) so the payload is <= 125 bytes. CloseCode::Status/Abnormal (1005/1006) must never
/// be sent: for them append a close frame with an EMPTY payload.
///
/// The same holds for every code that [`CloseCode::is_allowed_on_wire`] rejects (1004, 1015,
/// 0-999, 1016-2999, 5000+): they are sent as an empty close frame.
pub fn encode_close(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    // 1005, 1006 and 1015 MUST NOT be set as a status code in a Close control frame by an
    // endpoint. (RFC 6455 §7.4.1)
    if !code.is_allowed_on_wire() {
        encode_frame(out, OpCode::Close, &[]);
        return;
    }
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    payload[..2].copy_from_slice(&code.as_u16().to_be_bytes());
    payload[2..2 + reason.len()].copy_from_slice(reason);
    encode_frame(out, OpCode::Close, &payload[..2 + reason.len()]);
}

/// XORs `buf` with the 4-byte masking key, where `offset` is the position of `buf[0]` within the
/// frame's payload (so masking can continue across chunks). Process 8 bytes at a time (u64 XOR via
/// u64::from_ne_bytes on chunks_exact_mut(8)) with a byte-wise tail; no unsafe.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    // Octet i of the transformed data is the XOR of octet i of the original data with octet at
    // index i modulo 4 of the masking key. (RFC 6455 §5.3)
    let key = std::array::from_fn::<u8, 4, _>(|i| mask[(offset + i) % 4]);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // Each chunk is a multiple of 4 bytes long, so the tail starts at key[0] again.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(opcode: OpCode, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, opcode, &vec![0xAB; len]);
        assert!(out[out.len() - len..].iter().all(|&b| b == 0xAB));
        out.truncate(out.len() - len);
        out
    }

    #[test]
    fn encode_frame_length_forms() {
        let table: [(usize, &[u8]); 5] = [
            (0, &[0x82, 0]),
            (125, &[0x82, 125]),
            (126, &[0x82, 126, 0x00, 0x7E]),
            (65535, &[0x82, 126, 0xFF, 0xFF]),
            (65536, &[0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]),
        ];
        for (len, header) in table {
            assert_eq!(header_of(OpCode::Binary, len), header, "len {len}");
        }
        assert_eq!(header_of(OpCode::Text, 3), [0x81, 3]);
        assert_eq!(header_of(OpCode::Pong, 0), [0x8A, 0]);
    }

    #[test]
    fn a_shared_frame_is_the_same_bytes_as_an_appended_one() {
        for len in [0, 125, 126, 70_000] {
            let payload = vec![0x5A; len];
            let mut appended = Vec::new();
            encode_frame(&mut appended, OpCode::Binary, &payload);
            assert_eq!(*encode_shared_frame(OpCode::Binary, &payload), *appended);
        }
    }

    #[test]
    fn compressed_headers_set_rsv1() {
        let mut out = Vec::new();
        encode_data_header(&mut out, OpCode::Text, 7, true);
        encode_data_header(&mut out, OpCode::Binary, 300, true);
        encode_data_header(&mut out, OpCode::Binary, 1, false);
        assert_eq!(out, [0xC1, 7, 0xC2, 126, 0x01, 0x2C, 0x82, 1]);
    }

    #[test]
    fn encode_appends() {
        let mut out = vec![1, 2];
        encode_frame(&mut out, OpCode::Ping, b"hi");
        assert_eq!(out, [1, 2, 0x89, 2, b'h', b'i']);
    }

    #[test]
    fn encode_close_payloads() {
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::Normal, "bye");
        assert_eq!(out, [0x88, 5, 0x03, 0xE8, b'b', b'y', b'e']);

        for code in [
            CloseCode::Status,
            CloseCode::Abnormal,
            CloseCode::Other(1015),
        ] {
            let mut out = Vec::new();
            encode_close(&mut out, code, "ignored");
            assert_eq!(out, [0x88, 0], "{code}");
        }
    }

    #[test]
    fn encode_close_truncates_on_char_boundary() {
        // 'é' is 2 bytes: 100 of them are 200 bytes; 123 bytes would split the 62nd.
        let reason = "é".repeat(100);
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::Away, &reason);
        assert_eq!(out[..2], [0x88, 124]);
        assert_eq!(out[2..4], [0x03, 0xE9]);
        assert_eq!(std::str::from_utf8(&out[4..]), Ok("é".repeat(61).as_str()));

        // A 4-byte character straddling the limit is dropped whole; ASCII fills exactly 123.
        let reason = format!("{}🦀", "a".repeat(121));
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::Normal, &reason);
        assert_eq!(out[1], 2 + 121);
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::Normal, &"a".repeat(200));
        assert_eq!(out[1], 125);
        assert_eq!(out.len(), 2 + 125);
    }

    fn naive_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte ^= mask[(offset + i) % 4];
        }
    }

    #[test]
    fn apply_mask_matches_naive() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..70 {
            for offset in 0..9 {
                let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = original.clone();
                let mut slow = original.clone();
                apply_mask(&mut fast, mask, offset);
                naive_mask(&mut slow, mask, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
                apply_mask(&mut fast, mask, offset);
                assert_eq!(fast, original, "masking twice restores");
            }
        }
    }

    #[test]
    fn apply_mask_continues_across_chunks() {
        let mask = [0xDE, 0xAD, 0xBE, 0xEF];
        let original: Vec<u8> = (0..=255).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, mask, 0);
        for split in 0..original.len() {
            let mut parts = original.clone();
            let (a, b) = parts.split_at_mut(split);
            apply_mask(a, mask, 0);
            apply_mask(b, mask, split);
            assert_eq!(parts, whole, "split {split}");
        }
    }

    #[test]
    fn opcode_values() {
        for value in 0..16u8 {
            match OpCode::from_u8(value) {
                Some(op) => {
                    assert_eq!(op.as_u8(), value);
                    assert_eq!(op.is_control(), value >= 8);
                }
                None => assert!(matches!(value, 0x3..=0x7 | 0xB..=0xF), "{value}"),
            }
        }
    }
}
