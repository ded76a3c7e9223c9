//! Compressing and inflating one message at a time (RFC 7692 §7.2), with codecs owned by the
//! thread that runs the handler, not by the connections.
//!
//! A compressed message enters [`Compressed::inflate`] as the decoder reassembled it (RSV1 was
//! set on its first frame) and leaves as a [`Message`], or as the [`WsError`] to close with:
//! `1009` as soon as the inflated size passes the limit — checked while inflating, so a small
//! message that inflates to gigabytes (a decompression bomb) costs at most about the limit — and
//! `1007` for bytes that are not deflate data or text that is not UTF-8. A payload to send enters
//! [`compress`] and leaves deflated without its `00 00 ff ff` tail.
//!
//! Every connection negotiates no context takeover (`negotiate.rs`), so a codec is reset before
//! each message and can serve any connection. Each thread keeps, in a thread-local created on
//! first use, one inflater, the scratch space of the encoder of levels 1 and 2 (`encoder.rs`:
//! a hash table of at most 128 KiB, 64 KiB for a block's matches and about 5.4 KiB to make its
//! codes in), and a zlib compressor per window size and level it has used for levels 0 and
//! 3..=9 (a server has one level; window sizes are 9..=15 bits): with worker threads that is a
//! few hundred KiB per worker, whatever the number of connections; an idle connection holds
//! none.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::ws::deflate::encoder::{self, Codes};
use crate::ws::deflate::negotiate::MAX_WINDOW_BITS;
use crate::ws::error::WsError;
use crate::ws::message::Message;

/// The four bytes a sync flush ends with, which the sender strips and the receiver appends
/// (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The first inflate buffer, before it doubles as needed (up to the limit). While it grows, the
/// old and the new buffer exist together for a moment: the peak is at most about one and a half
/// times the limit (tests/bomb_memory.rs measures it).
const FIRST_INFLATE_CHUNK: usize = 4096;

/// A data message as it arrived with RSV1 set: deflated, not yet checked for UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub struct Compressed {
    /// A text message (opcode 0x1) rather than binary.
    pub text: bool,
    /// The reassembled, unmasked payload of all its frames, without the tail.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Compressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressed")
            .field("text", &self.text)
            .field("len", &self.payload.len())
            .finish()
    }
}

impl Compressed {
    /// Inflates the message, allowing at most `max_message_size` bytes out.
    pub fn inflate(&self, max_message_size: usize) -> Result<Message, WsError> {
        let data = with_codecs(|codecs| {
            let inflater = codecs
                .inflater
                .get_or_insert_with(|| Decompress::new_with_window_bits(false, MAX_WINDOW_BITS));
            inflater.reset(false);
            inflate_into(inflater, &self.payload, max_message_size)
        })?;
        if !self.text {
            return Ok(Message::Binary(data));
        }
        String::from_utf8(data)
            .map(Message::Text)
            .map_err(|_| WsError::InvalidUtf8)
    }
}

/// Inflates `payload` and the tail, never growing the output past one byte over `limit`.
fn inflate_into(
    inflater: &mut Decompress,
    payload: &[u8],
    limit: usize,
) -> Result<Vec<u8>, WsError> {
    let corrupt = WsError::BadCompressedData;
    // One byte past the limit is how going past it shows.
    let most = limit.saturating_add(1);
    let mut out = Vec::with_capacity(FIRST_INFLATE_CHUNK.min(most));
    'parts: for (part, is_tail) in [(payload, false), (&TAIL[..], true)] {
        let mut rest = part;
        loop {
            if out.len() == out.capacity() {
                if out.len() > limit {
                    return Err(WsError::MessageTooBig { limit });
                }
                // Double; but once doubling reaches the limit, go straight to one past it, so
                // the last step is never a copy of a full-size buffer into a slightly larger one.
                let mut target = (out.capacity() * 2).max(FIRST_INFLATE_CHUNK).min(most);
                if target >= limit {
                    target = most;
                }
                out.reserve_exact(target - out.len());
            }
            let (in_before, out_before) = (inflater.total_in(), out.len());
            let status = inflater
                .decompress_vec(rest, &mut out, FlushDecompress::Sync)
                .map_err(|_| corrupt.clone())?;
            let used = usize::try_from(inflater.total_in() - in_before).unwrap_or(rest.len());
            rest = rest.get(used..).unwrap_or_default();
            if status == Status::StreamEnd {
                // A final block (BFINAL) ends the message. Only what RFC 7692 §7.2.1 leaves after
                // one may follow it: the `00` that starts an empty stored block whose other four
                // bytes are the tail (the §7.2.3.4 example), and the tail.
                if !is_tail && !matches!(rest, [] | [0x00]) {
                    return Err(corrupt);
                }
                break 'parts;
            }
            let progressed = used > 0 || out.len() > out_before;
            let room_left = out.len() < out.capacity();
            if rest.is_empty() && room_left {
                break;
            }
            if !progressed && room_left {
                // Input left that zlib will not take, with room to write: not deflate data.
                return Err(corrupt);
            }
        }
    }
    if out.len() > limit {
        return Err(WsError::MessageTooBig { limit });
    }
    Ok(out)
}

/// `payload` deflated with a window of `window_bits` at `level`, without the tail. Incompressible
/// input comes back as stored blocks, at most 5 bytes per 64 KiB (and one) larger.
pub fn compress(payload: &[u8], window_bits: u8, level: u32) -> Vec<u8> {
    let ours = match level {
        1 => Some(Codes::Fixed),
        2 => Some(Codes::Fitted),
        _ => None,
    };
    let out = match ours {
        Some(codes) if u32::try_from(payload.len()).is_ok_and(|len| len < u32::MAX) => {
            with_codecs(|codecs| encoder::deflate(payload, window_bits, codes, &mut codecs.scratch))
        }
        _ => compress_with_zlib(payload, window_bits, level),
    };
    if out.len() > stored_len(payload.len()) {
        // Incompressible input: fixed Huffman codes make it about 5% larger. Stored blocks cost
        // 5 bytes per 64 KiB instead.
        return stored(payload);
    }
    out
}

/// `payload` deflated by zlib-rs at `level`, without the tail.
fn compress_with_zlib(payload: &[u8], window_bits: u8, level: u32) -> Vec<u8> {
    with_codecs(|codecs| {
        let compressor = codecs.compressor(window_bits, level);
        compressor.reset();
        // zlib's bound for stored blocks: 5 bytes per 16 KiB, plus the flush's empty block.
        let mut out = Vec::with_capacity(payload.len() + payload.len() / 2048 + 16);
        let mut rest = payload;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity() / 2 + 64);
            }
            let (in_before, out_before) = (compressor.total_in(), out.len());
            // Compressing from memory into memory cannot fail: zlib reports only bad use.
            let _ = compressor.compress_vec(rest, &mut out, FlushCompress::Sync);
            let used = usize::try_from(compressor.total_in() - in_before).unwrap_or(rest.len());
            rest = rest.get(used..).unwrap_or_default();
            // The flush is complete once all input is in and zlib left room unused.
            if rest.is_empty() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && out.len() == out_before && out.len() < out.capacity() {
                break;
            }
        }
        // A sync flush ends with an empty stored block, 00 00 ff ff, which is stripped.
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        out
    })
}

/// Most bytes in a stored deflate block.
const STORED_BLOCK_MAX: usize = 65_535;

/// The length of `len` bytes as stored blocks, with the header byte of the empty block that the
/// stripped tail belongs to.
fn stored_len(len: usize) -> usize {
    len + len.div_ceil(STORED_BLOCK_MAX) * 5 + 1
}

/// `payload` as uncompressed ("stored") deflate blocks, none of them final (RFC 1951 §3.2.4):
/// the message keeps RSV1 set and needs no compressor at all. It ends as a sync flush does, with
/// the first byte of an empty stored block whose other four bytes are the tail (`00 00 ff ff`)
/// that RFC 7692 §7.2.1 strips: a receiver that appends the tail, or the tail and a final empty
/// block, reads a complete stream (RFC 7692 §7.2.3.4 shows the same shape).
fn stored(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored_len(payload.len()));
    for block in payload.chunks(STORED_BLOCK_MAX) {
        // BFINAL 0, BTYPE 00, then LEN and its one's complement, little-endian.
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        out.push(0x00);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.push(0x00);
    out
}

/// One thread's codecs.
#[derive(Default)]
struct Codecs {
    inflater: Option<Decompress>,
    /// The encoder of levels 1 and 2 (`encoder.rs`): its hash table, as large as the last
    /// message needed (at most 128 KiB), room for one block's matches (64 KiB) and for making
    /// its codes (about 5.4 KiB).
    scratch: encoder::Scratch,
    /// zlib compressors for the other levels, by (window bits, level), created on first use.
    compressors: Vec<(u8, u32, Compress)>,
}

impl Codecs {
    fn compressor(&mut self, window_bits: u8, level: u32) -> &mut Compress {
        let window_bits = window_bits.clamp(9, MAX_WINDOW_BITS);
        let level = level.min(9);
        let at = match self
            .compressors
            .iter()
            .position(|(bits, lvl, _)| (*bits, *lvl) == (window_bits, level))
        {
            Some(at) => at,
            None => {
                let compressor =
                    Compress::new_with_window_bits(Compression::new(level), false, window_bits);
                self.compressors.push((window_bits, level, compressor));
                self.compressors.len() - 1
            }
        };
        &mut self.compressors[at].2
    }
}

thread_local! {
    /// This thread's codecs: a worker's, or an inline event loop's.
    static CODECS: RefCell<Codecs> = RefCell::new(Codecs::default());
}

fn with_codecs<R>(use_codecs: impl FnOnce(&mut Codecs) -> R) -> R {
    CODECS.with(|codecs| use_codecs(&mut codecs.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compressed(text: bool, payload: Vec<u8>) -> Compressed {
        Compressed { text, payload }
    }

    #[test]
    fn round_trip_for_every_window() {
        let json = br#"{"user":"ada","action":"move","x":12,"y":40,"tags":["a","b"]}"#.repeat(40);
        for bits in 9..=15 {
            for level in [1, 6, 9] {
                let deflated = compress(&json, bits, level);
                assert!(deflated.len() < json.len() / 4, "{bits} {level}");
                let message = compressed(true, deflated).inflate(json.len()).unwrap();
                assert_eq!(message.as_bytes(), &json[..]);
            }
        }
    }

    #[test]
    fn incompressible_stored_and_empty_payloads_round_trip() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                // xorshift64: bytes with no repeats for deflate to find.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        for (payload, level) in [(&noise[..], 1), (&noise[..], 0), (&b""[..], 1), (b"a", 9)] {
            let deflated = compress(payload, 15, level);
            // Stored blocks: at most 5 bytes per 64 KiB more than the input.
            assert!(
                deflated.len() <= stored_len(payload.len()),
                "{} -> {}",
                payload.len(),
                deflated.len()
            );
            let message = compressed(false, deflated).inflate(payload.len()).unwrap();
            assert_eq!(message.as_bytes(), payload);
        }
    }

    /// What strict receivers do (gorilla, gws): append the tail and a final empty stored block
    /// (`00 00 ff ff 01 00 00 ff ff`) and expect the stream to end there, exactly.
    fn inflates_strictly(deflated: &[u8], expected: &[u8]) {
        let mut stream = deflated.to_vec();
        stream.extend_from_slice(&[0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff]);
        let mut inflater = Decompress::new(false);
        let mut out = Vec::with_capacity(expected.len() + 64);
        let status = inflater.decompress_vec(&stream, &mut out, FlushDecompress::Finish);
        assert_eq!(status.ok(), Some(Status::StreamEnd), "{deflated:x?}");
        assert_eq!(inflater.total_in(), stream.len() as u64);
        assert_eq!(out, expected);
    }

    #[test]
    fn every_output_is_a_complete_stream_for_strict_receivers() {
        let json = br#"{"user":"ada","x":12}"#.repeat(100);
        let noise: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).rotate_left(i % 31) >> 7) as u8)
            .collect();
        for payload in [&json[..], &noise, b"", b"a"] {
            for level in [0, 1, 6] {
                inflates_strictly(&compress(payload, 15, level), payload);
            }
            inflates_strictly(&stored(payload), payload);
        }
    }

    /// What most receivers do (browsers, Python `websockets`, Node `ws`, the load generator):
    /// append the tail and inflate with a sync flush into one inflater. The message must be
    /// consumed to its last byte and must not end the deflate stream (no BFINAL block, which ws
    /// on Node >= 12 refuses), so the same inflater, never reset, reads the next message too.
    fn inflates_like_a_peer(inflater: &mut Decompress, deflated: &[u8], expected: &[u8]) {
        let mut stream = deflated.to_vec();
        stream.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(expected.len() + 64);
        let before = inflater.total_in();
        let status = inflater.decompress_vec(&stream, &mut out, FlushDecompress::Sync);
        let start = &deflated[..deflated.len().min(16)];
        assert_eq!(status.ok(), Some(Status::Ok), "{start:x?}");
        assert_eq!(inflater.total_in() - before, stream.len() as u64);
        assert_eq!(out, expected);
    }

    fn json(len: usize) -> Vec<u8> {
        let mut json = Vec::with_capacity(len + 64);
        let mut i = 0u32;
        while json.len() < len {
            let record = format!(r#"{{"id":{i},"user":"u{}","x":{}}},"#, i % 7, i * 37);
            json.extend_from_slice(record.as_bytes());
            i += 1;
        }
        json.truncate(len);
        json
    }

    #[test]
    fn every_size_round_trips_through_a_peer_that_appends_the_tail() {
        let noise: Vec<u8> = (0..40_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).rotate_left(i % 31) >> 7) as u8)
            .collect();
        let mut payloads = vec![Vec::new(), b"a".to_vec(), b"Hello".to_vec(), noise];
        for len in [100, 1024, 4096, 16 * 1024, 300_000] {
            payloads.push(json(len));
        }
        // One inflater for every message, as a peer that keeps it between messages has.
        let mut kept = Decompress::new(false);
        for bits in [9, 12, 15] {
            for level in [0, 1, 6, 9] {
                for payload in &payloads {
                    let deflated = compress(payload, bits, level);
                    let what = format!("{} bytes, {bits} bits, level {level}", payload.len());
                    inflates_like_a_peer(&mut Decompress::new(false), &deflated, payload);
                    inflates_like_a_peer(&mut kept, &deflated, payload);
                    inflates_strictly(&deflated, payload);
                    let ours = compressed(false, deflated).inflate(payload.len());
                    assert_eq!(
                        ours.as_ref().map(|m| m.as_bytes()),
                        Ok(&payload[..]),
                        "{what}"
                    );
                }
            }
        }
    }

    #[test]
    fn known_vector_from_rfc_7692() {
        // "Hello" compressed without context takeover (RFC 7692 §7.2.3.1).
        let message = compressed(true, vec![0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
            .inflate(5)
            .unwrap();
        assert_eq!(message, Message::Text("Hello".into()));
        // The same with BFINAL set and no tail needed ("f3 48 cd c9 c9 07 00"), and as RFC 7692
        // §7.2.3.4 sends it: with the `00` of the empty stored block after it. (This one was
        // closed with 1007 before.)
        for bfinal in [
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..],
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
        ] {
            let message = compressed(true, bfinal.to_vec()).inflate(5).unwrap();
            assert_eq!(message, Message::Text("Hello".into()));
        }
        // Two uncompressed (stored) blocks (RFC 7692 §7.2.3.4 gives one; an empty one follows).
        let stored = vec![
            0x00, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
        ];
        let message = compressed(false, stored).inflate(5).unwrap();
        assert_eq!(message, Message::Binary(b"Hello".to_vec()));
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 16 * 1024 * 1024];
        let deflated = compress(&zeros, 15, 9);
        assert!(deflated.len() < 32 * 1024, "{}", deflated.len());
        let bomb = compressed(false, deflated);
        assert_eq!(
            bomb.inflate(1024 * 1024),
            Err(WsError::MessageTooBig { limit: 1024 * 1024 })
        );
        // Exactly at the limit is allowed; one byte less is not.
        assert_eq!(bomb.inflate(zeros.len()).map(|m| m.len()), Ok(zeros.len()));
        assert_eq!(
            bomb.inflate(zeros.len() - 1),
            Err(WsError::MessageTooBig {
                limit: zeros.len() - 1
            })
        );
    }

    #[test]
    fn garbage_and_bad_text_are_errors() {
        for garbage in [
            &[0xff, 0xff, 0xff][..],
            &[0x07],
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x55],
            // After a final block, only one `00` may come.
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00],
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x01],
        ] {
            assert_eq!(
                compressed(false, garbage.to_vec()).inflate(1000),
                Err(WsError::BadCompressedData),
                "{garbage:x?}"
            );
        }
        let latin1 = compress(&[0xe9; 200], 15, 1);
        assert_eq!(
            compressed(true, latin1.clone()).inflate(1000),
            Err(WsError::InvalidUtf8)
        );
        assert!(compressed(false, latin1).inflate(1000).is_ok());
        // The inflater is reset after an error: the next message is fine.
        let hello = compressed(true, vec![0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        assert_eq!(hello.inflate(5), Ok(Message::Text("Hello".into())));
    }
}
