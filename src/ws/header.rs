//! Parser for the header of a frame sent by a client (RFC 6455 §5.2), with every header-level rule
//! a server enforces.
//!
//! The first bytes of a frame enter [`parse_client_header`]; a [`FrameHeader`] and the header's
//! length leave it once the whole header is present, or `None` while it is incomplete. Rules that
//! can be checked on the bytes already present are checked at once, so a bad frame fails early.

use crate::ws::error::WsError;
use crate::ws::frame::{MAX_CONTROL_PAYLOAD, OpCode};

/// Longest frame header: 2 bytes + 8 bytes of extended length + 4 bytes of masking key.
#[cfg(test)]
pub(crate) const MAX_HEADER_LEN: usize = 14;

/// A parsed and checked client frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// FIN bit: this is the final fragment of a message.
    pub(crate) fin: bool,
    /// The opcode; never reserved.
    pub(crate) opcode: OpCode,
    /// RSV1: the message this frame starts is compressed (permessage-deflate). Only ever set on
    /// the first frame of a data message, and only when compression was negotiated.
    pub(crate) compressed: bool,
    /// The masking key (client frames are always masked).
    pub(crate) mask: [u8; 4],
    /// Announced payload length; at most 125 for control frames, below 2^63 for all frames. Not
    /// yet checked against any size limit.
    pub(crate) payload_len: u64,
}

/// Parses a client frame header at the start of `buf`.
///
/// `deflate`: permessage-deflate was negotiated, so RSV1 may mark a compressed message.
///
/// Returns `Ok(None)` when `buf` holds fewer bytes than the header needs (always fewer than
/// 14 bytes), `Ok(Some((header, header_len)))` when it is complete, and an error as soon
/// as the bytes present break a rule.
pub(crate) fn parse_client_header(
    buf: &[u8],
    deflate: bool,
) -> Result<Option<(FrameHeader, usize)>, WsError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let (fin, opcode, compressed) = check_first_byte(first, deflate)?;
    let Some(&second) = buf.get(1) else {
        return Ok(None);
    };
    let short_len = check_second_byte(second, opcode)?;
    let Some((payload_len, mask_at)) = payload_length(buf, short_len)? else {
        return Ok(None);
    };
    let Some(mask) = buf
        .get(mask_at..mask_at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
    else {
        return Ok(None);
    };
    let header = FrameHeader {
        fin,
        opcode,
        compressed,
        mask,
        payload_len,
    };
    Ok(Some((header, mask_at + 4)))
}

/// The rules of the first byte (FIN, RSV1–3, opcode): its FIN bit, opcode and RSV1 (the message
/// is compressed), or the rule it breaks.
#[inline]
fn check_first_byte(first: u8, deflate: bool) -> Result<(bool, OpCode, bool), WsError> {
    // RSV1, RSV2, RSV3: MUST be 0 unless an extension is negotiated that defines meanings for
    // non-zero values. (RFC 6455 §5.2) permessage-deflate defines RSV1 only.
    let compressed = first & 0x40 != 0;
    if first & 0x30 != 0 || (compressed && !deflate) {
        return Err(WsError::Protocol(
            "reserved bit set without a negotiated extension",
        ));
    }
    // If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket
    // Connection_. (RFC 6455 §5.2)
    let opcode = OpCode::from_u8(first & 0x0F).ok_or(WsError::Protocol("reserved opcode"))?;
    // An endpoint MUST NOT set the "Per-Message Compressed" bit of control frames and
    // non-first fragments of a data message. (RFC 7692 §6.1)
    if compressed && opcode.is_control() {
        return Err(WsError::Protocol("RSV1 set on a control frame"));
    }
    if compressed && opcode == OpCode::Continue {
        return Err(WsError::Protocol("RSV1 set on a continuation frame"));
    }
    let fin = first & 0x80 != 0;
    // Control frames themselves MUST NOT be fragmented. (RFC 6455 §5.5)
    if opcode.is_control() && !fin {
        return Err(WsError::Protocol("control frame is fragmented"));
    }
    Ok((fin, opcode, compressed))
}

/// The rules of the second byte (MASK, payload length) for a frame of `opcode`: its 7-bit
/// payload length, or the rule it breaks.
#[inline]
fn check_second_byte(second: u8, opcode: OpCode) -> Result<u8, WsError> {
    // The server MUST close the connection upon receiving a frame that is not masked.
    // (RFC 6455 §5.1)
    if second & 0x80 == 0 {
        return Err(WsError::Protocol("frame is not masked"));
    }
    let short_len = second & 0x7F;
    // All control frames MUST have a payload length of 125 bytes or less. (RFC 6455 §5.5)
    if opcode.is_control() && usize::from(short_len) > MAX_CONTROL_PAYLOAD {
        return Err(WsError::Protocol(
            "control frame payload longer than 125 bytes",
        ));
    }
    Ok(short_len)
}

/// The payload length `short_len` announces (itself, or the 16- or 64-bit length after it in
/// `buf`) and where the masking key starts; `None` while the extended length is incomplete.
#[inline]
fn payload_length(buf: &[u8], short_len: u8) -> Result<Option<(u64, usize)>, WsError> {
    let length = match short_len {
        126 => buf
            .get(2..4)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(|bytes| (u64::from(u16::from_be_bytes(bytes)), 4)),
        127 => {
            // The most significant bit MUST be 0. (RFC 6455 §5.2)
            if buf.get(2).is_some_and(|&b| b & 0x80 != 0) {
                return Err(WsError::Protocol(
                    "64-bit payload length has its most significant bit set",
                ));
            }
            buf.get(2..10)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(|bytes| (u64::from_be_bytes(bytes), 10))
        }
        len => Some((u64::from(len), 2)),
    };
    // Non-minimal length encodings are accepted: rejecting them buys nothing.
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: [u8; 4] = [1, 2, 3, 4];

    fn header(fin: bool, opcode: OpCode, payload_len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            opcode,
            compressed: false,
            mask: M,
            payload_len,
        }
    }

    #[test]
    fn complete_headers() {
        let table: [(&[u8], FrameHeader, usize); 6] = [
            (&[0x81, 0x85, 1, 2, 3, 4], header(true, OpCode::Text, 5), 6),
            (
                &[0x02, 0x80, 1, 2, 3, 4],
                header(false, OpCode::Binary, 0),
                6,
            ),
            (
                &[0x80, 0xFE, 0x01, 0x00, 1, 2, 3, 4],
                header(true, OpCode::Continue, 256),
                8,
            ),
            (
                &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4],
                header(true, OpCode::Binary, 65536),
                14,
            ),
            // Non-minimal: 5 encoded in 16 bits is accepted.
            (
                &[0x82, 0xFE, 0, 5, 1, 2, 3, 4],
                header(true, OpCode::Binary, 5),
                8,
            ),
            (
                &[0x89, 0xFD, 1, 2, 3, 4],
                header(true, OpCode::Ping, 125),
                6,
            ),
        ];
        for (bytes, expected, len) in table {
            assert_eq!(
                parse_client_header(bytes, false),
                Ok(Some((expected, len))),
                "{bytes:?}"
            );
            // Every strict prefix is incomplete, never an error, and shorter than 14 bytes.
            for cut in 0..bytes.len() {
                assert_eq!(
                    parse_client_header(&bytes[..cut], false),
                    Ok(None),
                    "{bytes:?} cut {cut}"
                );
                assert!(cut < MAX_HEADER_LEN);
            }
            // Trailing payload bytes do not change the result.
            let mut longer = bytes.to_vec();
            longer.extend_from_slice(&[9; 20]);
            assert_eq!(
                parse_client_header(&longer, false),
                Ok(Some((expected, len)))
            );
        }
    }

    #[test]
    fn rule_violations_fail_early() {
        let table: [(&[u8], &str); 12] = [
            (&[0xC1], "reserved bit set without a negotiated extension"),
            (&[0xA1], "reserved bit set without a negotiated extension"),
            (&[0x91], "reserved bit set without a negotiated extension"),
            (&[0x83], "reserved opcode"),
            (&[0x87], "reserved opcode"),
            (&[0x8B], "reserved opcode"),
            (&[0x8F], "reserved opcode"),
            (&[0x09], "control frame is fragmented"),
            (&[0x81, 0x05], "frame is not masked"),
            (&[0x89, 0xFE], "control frame payload longer than 125 bytes"),
            (&[0x88, 0xFF], "control frame payload longer than 125 bytes"),
            (
                &[0x82, 0xFF, 0x80],
                "64-bit payload length has its most significant bit set",
            ),
        ];
        for (bytes, rule) in table {
            assert_eq!(
                parse_client_header(bytes, false),
                Err(WsError::Protocol(rule)),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn rsv1_marks_a_compressed_message_only_where_deflate_allows() {
        let compressed = |fin, opcode| FrameHeader {
            compressed: true,
            ..header(fin, opcode, 5)
        };
        type Parsed = Result<Option<(FrameHeader, usize)>, WsError>;
        let table: [(&[u8], Parsed); 6] = [
            (
                &[0xC1, 0x85, 1, 2, 3, 4],
                Ok(Some((compressed(true, OpCode::Text), 6))),
            ),
            (
                &[0x42, 0x85, 1, 2, 3, 4],
                Ok(Some((compressed(false, OpCode::Binary), 6))),
            ),
            (
                &[0xC0],
                Err(WsError::Protocol("RSV1 set on a continuation frame")),
            ),
            (
                &[0xC9],
                Err(WsError::Protocol("RSV1 set on a control frame")),
            ),
            (
                &[0xE1],
                Err(WsError::Protocol(
                    "reserved bit set without a negotiated extension",
                )),
            ),
            (
                &[0xD1],
                Err(WsError::Protocol(
                    "reserved bit set without a negotiated extension",
                )),
            ),
        ];
        for (bytes, expected) in table {
            assert_eq!(parse_client_header(bytes, true), expected, "{bytes:x?}");
            // Without deflate, RSV1 is always an error.
            assert_eq!(
                parse_client_header(bytes, false),
                Err(WsError::Protocol(
                    "reserved bit set without a negotiated extension"
                )),
                "{bytes:x?}"
            );
        }
        // Deflate changes nothing for frames without RSV1.
        assert_eq!(
            parse_client_header(&[0x81, 0x85, 1, 2, 3, 4], true),
            Ok(Some((header(true, OpCode::Text, 5), 6)))
        );
    }

    #[test]
    fn largest_length_parses_without_allocating() {
        let bytes = [
            0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
        ];
        let parsed = parse_client_header(&bytes, false);
        assert_eq!(
            parsed,
            Ok(Some((header(true, OpCode::Binary, (1 << 63) - 1), 14)))
        );
    }
}
