//! Deflating one message with the fixed Huffman codes (RFC 1951 §3.2.6), in one pass, with a
//! hash table the size of the message: the encoder behind `compression_level` 1.
//!
//! A payload enters [`deflate`] whole and leaves as one fixed-code block (BFINAL clear) followed
//! by the first three bits of an empty stored block and the padding to a byte: what a sync flush
//! gives, without the `00 00 ff ff` that RFC 7692 §7.2.1 strips. The caller keeps the hash table
//! between messages (one per thread); nothing else lives between calls.
//!
//! Why not zlib's fastest level: it does the same work (greedy matches found through a hash of
//! four bytes, fixed codes: zlib-ng's `deflate_quick`, which zlib-rs ports), but resetting a zlib
//! stream clears a 128 KiB hash table whatever the message's size. For a 1 KiB message that
//! clearing cost as much as the compressing, and it evicted the table from the cache that the
//! compressing then missed in (docs/benchmarks.md, "Compression without the 128 KiB reset").
//! Here the table has about one entry per byte of the message (at most 2^15), and only that much
//! is cleared. Inflating, the side that faces the network, stays with zlib-rs.

/// Shortest match this encoder takes (deflate allows 3): the four bytes it reads and hashes at
/// once to find one.
const MATCH_PREFIX: usize = 4;
/// Longest match deflate can code (RFC 1951 §3.2.5).
const MAX_MATCH: usize = 258;
/// Fewest and most hash bits: at least a small table, at most 32,768 entries (128 KiB).
const MIN_HASH_BITS: u32 = 8;
const MAX_HASH_BITS: u32 = 15;

/// `payload` deflated with fixed codes, never referring further back than `2^window_bits` bytes
/// (the window the peer agreed to keep, 9..=15 bits), without the tail. `table` is the thread's
/// hash table: any contents, resized and cleared here.
///
/// Positions are 32-bit: a payload of 4 GiB or more is the caller's to split or store.
pub(super) fn deflate(payload: &[u8], window_bits: u8, table: &mut Vec<u32>) -> Vec<u8> {
    let max_distance = 1usize << window_bits.clamp(9, 15);
    let hash_bits = hash_bits(payload.len());
    table.clear();
    table.resize(1 << hash_bits, 0);
    // Worst case: every byte a 9-bit literal, and the block's framing.
    let mut bits = BitWriter::with_capacity(payload.len() + payload.len() / 8 + 8);
    // BFINAL 0, BTYPE 01 (fixed Huffman codes).
    bits.put(0b010, 3);
    let mut at = 0;
    while at + MATCH_PREFIX <= payload.len() {
        let prefix = read_u32(payload, at);
        let slot = (prefix.wrapping_mul(0x9E37_79B1) >> (32 - hash_bits)) as usize;
        // Entries hold a position plus one; 0 is empty.
        let candidate = table[slot] as usize;
        table[slot] = at as u32 + 1;
        if candidate != 0 {
            let earlier = candidate - 1;
            let distance = at - earlier;
            if distance <= max_distance && read_u32(payload, earlier) == prefix {
                let most = (payload.len() - at).min(MAX_MATCH);
                let length = MATCH_PREFIX
                    + common_prefix(payload, earlier + MATCH_PREFIX, at + MATCH_PREFIX, most);
                bits.put_match(length, distance);
                at += length;
                continue;
            }
        }
        bits.put_literal(payload[at]);
        at += 1;
    }
    for &byte in &payload[at..] {
        bits.put_literal(byte);
    }
    // End of block (symbol 256: seven zero bits), then the sync flush's empty stored block:
    // BFINAL 0, BTYPE 00, padding to the byte; its LEN and NLEN are the stripped tail.
    bits.put(0, 7 + 3);
    bits.finish()
}

/// About one table entry per byte of the message.
fn hash_bits(len: usize) -> u32 {
    let bits = usize::BITS - len.saturating_sub(1).leading_zeros();
    bits.clamp(MIN_HASH_BITS, MAX_HASH_BITS)
}

/// How many bytes from `earlier` equal those from `here`, up to `most - MATCH_PREFIX` (the
/// prefix is already known equal). `here + most - MATCH_PREFIX` is within `data`.
fn common_prefix(data: &[u8], earlier: usize, here: usize, most: usize) -> usize {
    let most = most - MATCH_PREFIX;
    let mut same = 0;
    while same + 8 <= most {
        let differ = read_u64(data, earlier + same) ^ read_u64(data, here + same);
        if differ != 0 {
            return same + (differ.trailing_zeros() / 8) as usize;
        }
        same += 8;
    }
    while same < most && data[earlier + same] == data[here + same] {
        same += 1;
    }
    same
}

fn read_u32(data: &[u8], at: usize) -> u32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(bytes)
}

fn read_u64(data: &[u8], at: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// Bits packed from the least significant end of each byte (RFC 1951 §3.1.1), into a buffer
/// sized for the worst case up front.
struct BitWriter {
    out: Vec<u8>,
    /// Bytes of `out` written so far.
    written: usize,
    pending: u64,
    pending_bits: u32,
}

impl BitWriter {
    /// Room for `bytes`; a put past them appends, more slowly.
    fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            out: vec![0; bytes],
            written: 0,
            pending: 0,
            pending_bits: 0,
        }
    }

    /// Appends the low `count` bits of `value`; `count` ≤ 32.
    fn put(&mut self, value: u32, count: u32) {
        self.pending |= u64::from(value) << self.pending_bits;
        self.pending_bits += count;
        if self.pending_bits >= 32 {
            let word = (self.pending as u32).to_le_bytes();
            match self.out.get_mut(self.written..self.written + 4) {
                Some(room) => room.copy_from_slice(&word),
                None => {
                    self.out.truncate(self.written);
                    self.out.extend_from_slice(&word);
                }
            }
            self.written += 4;
            self.pending >>= 32;
            self.pending_bits -= 32;
        }
    }

    fn put_literal(&mut self, byte: u8) {
        let (code, count) = LITERAL_CODES[usize::from(byte)];
        self.put(u32::from(code), u32::from(count));
    }

    /// A length (3..=258) and a distance (1..=32,768) in one put of at most 31 bits.
    fn put_match(&mut self, length: usize, distance: usize) {
        let (length_code, length_count) = LENGTH_CODES[length - 3];
        let (distance_code, distance_count) = distance_code(distance);
        self.put(
            length_code | distance_code << length_count,
            u32::from(length_count) + distance_count,
        );
    }

    /// The bytes, the last one padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        let bytes = self.pending_bits.div_ceil(8) as usize;
        self.out.truncate(self.written);
        self.out
            .extend_from_slice(&self.pending.to_le_bytes()[..bytes]);
        self.out
    }
}

/// The Huffman code of literal/length symbol `symbol` in the fixed code (RFC 1951 §3.2.6), and
/// its length: 0-143 take 8 bits from 0x30, 144-255 9 bits from 0x190, 256-279 7 bits from 0,
/// 280-287 8 bits from 0xc0. Returned reversed: Huffman codes are packed most significant bit
/// first.
const fn fixed_code(symbol: u16) -> (u16, u8) {
    let (code, count) = match symbol {
        0..=143 => (0x30 + symbol, 8),
        144..=255 => (0x190 + symbol - 144, 9),
        256..=279 => (symbol - 256, 7),
        _ => (0xc0 + symbol - 280, 8),
    };
    (reverse(code, count), count)
}

const fn reverse(code: u16, count: u8) -> u16 {
    code.reverse_bits() >> (16 - count as u32)
}

/// Each literal's code, reversed, and its length.
const LITERAL_CODES: [(u16, u8); 256] = {
    let mut codes = [(0, 0); 256];
    let mut byte = 0;
    while byte < 256 {
        codes[byte] = fixed_code(byte as u16);
        byte += 1;
    }
    codes
};

/// The first length of each length symbol 257..=285 and its extra bits (RFC 1951 §3.2.5).
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// For each length 3..=258: its symbol's code (reversed) with the extra bits above it, and the
/// total bit count.
const LENGTH_CODES: [(u32, u8); 256] = {
    let mut codes = [(0, 0); 256];
    let mut index = 0;
    while index < 29 {
        let (code, count) = fixed_code(257 + index as u16);
        let extra = LENGTH_EXTRA[index];
        let first = LENGTH_BASE[index] as usize;
        // 284's range would reach 258, which 285 codes alone.
        let last = if index == 27 {
            257
        } else {
            first + (1 << extra) - 1
        };
        let mut length = first;
        while length <= last {
            let offset = (length - first) as u32;
            codes[length - 3] = (code as u32 | offset << count, count + extra);
            length += 1;
        }
        index += 1;
    }
    codes
};

/// A distance (1..=32,768) as its 5-bit symbol (RFC 1951 §3.2.5: fixed codes 0..=29 are the
/// symbols themselves, reversed) with its extra bits above it, and the total bit count. Symbols
/// come in pairs per power of two: for `d - 1` with top bit `n` (n ≥ 2), the symbol is
/// `2n + the bit below the top one`, with `n - 1` extra bits.
fn distance_code(distance: usize) -> (u32, u32) {
    let from_zero = (distance - 1) as u32;
    let (symbol, extra, offset) = if from_zero < 4 {
        (from_zero, 0, 0)
    } else {
        let top = 31 - from_zero.leading_zeros();
        let second = (from_zero >> (top - 1)) & 1;
        (
            2 * top + second,
            top - 1,
            from_zero - ((2 + second) << (top - 1)),
        )
    };
    (
        u32::from(DISTANCE_SYMBOLS[symbol as usize]) | offset << 5,
        5 + extra,
    )
}

/// The 5-bit codes of the distance symbols 0..=29, reversed.
const DISTANCE_SYMBOLS: [u8; 30] = {
    let mut codes = [0; 30];
    let mut symbol = 0;
    while symbol < 30 {
        codes[symbol] = reverse(symbol as u16, 5) as u8;
        symbol += 1;
    }
    codes
};

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress, Status};

    /// The distance symbols' first distances and extra bits, as RFC 1951 §3.2.5 tables them.
    const DISTANCE_BASE: [u32; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DISTANCE_EXTRA: [u32; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];

    #[test]
    fn every_distance_codes_as_the_rfc_tables_say() {
        for distance in 1..=32_768u32 {
            let symbol = DISTANCE_BASE.iter().rposition(|&b| b <= distance).unwrap();
            let extra = DISTANCE_EXTRA[symbol];
            let expected =
                u32::from(reverse(symbol as u16, 5)) | (distance - DISTANCE_BASE[symbol]) << 5;
            assert_eq!(
                distance_code(distance as usize),
                (expected, 5 + extra),
                "{distance}"
            );
        }
    }

    #[test]
    fn every_length_codes_as_the_rfc_tables_say() {
        for length in 3..=258u32 {
            let symbol = if length == 258 {
                28
            } else {
                LENGTH_BASE
                    .iter()
                    .rposition(|&b| u32::from(b) <= length)
                    .unwrap()
            };
            let (code, count) = fixed_code(257 + symbol as u16);
            let expected = u32::from(code) | (length - u32::from(LENGTH_BASE[symbol])) << count;
            assert_eq!(
                LENGTH_CODES[length as usize - 3],
                (expected, count + LENGTH_EXTRA[symbol]),
                "{length}"
            );
        }
    }

    #[test]
    fn the_fixed_codes_are_the_rfcs() {
        // RFC 1951 §3.2.6, written most significant bit first.
        for (symbol, code, count) in [
            (0, 0b0011_0000, 8),
            (143, 0b1011_1111, 8),
            (144, 0b1_1001_0000, 9),
            (255, 0b1_1111_1111, 9),
            (256, 0b000_0000, 7),
            (279, 0b001_0111, 7),
            (280, 0b1100_0000, 8),
            (287, 0b1100_0111, 8),
        ] {
            let (reversed, length) = fixed_code(symbol);
            assert_eq!(length, count, "{symbol}");
            assert_eq!(reverse(reversed, count), code, "{symbol}");
        }
    }

    /// Inflates as a peer that agreed to a window of `window_bits` does: a raw inflater with
    /// that window, the tail appended, a sync flush. The whole stream must be consumed.
    fn inflate(deflated: &[u8], window_bits: u8, expected_len: usize) -> Vec<u8> {
        let mut stream = deflated.to_vec();
        stream.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
        let mut inflater = Decompress::new_with_window_bits(false, window_bits);
        let mut out = Vec::with_capacity(expected_len + 64);
        let status = inflater.decompress_vec(&stream, &mut out, FlushDecompress::Sync);
        assert_eq!(status.ok(), Some(Status::Ok));
        assert_eq!(inflater.total_in(), stream.len() as u64);
        out
    }

    /// The same, a few bytes of output at a time, so that every match is copied out of the
    /// inflater's window of `2^window_bits` bytes rather than out of the output of one call: a
    /// distance past the window fails ("invalid distance too far back").
    fn inflate_through_the_window(deflated: &[u8], window_bits: u8) -> Option<Vec<u8>> {
        let mut stream = deflated.to_vec();
        stream.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
        let mut inflater = Decompress::new_with_window_bits(false, window_bits);
        let mut out = Vec::new();
        while inflater.total_in() < stream.len() as u64 {
            out.reserve_exact(16);
            let rest = &stream[inflater.total_in() as usize..];
            inflater
                .decompress_vec(rest, &mut out, FlushDecompress::Sync)
                .ok()?;
        }
        Some(out)
    }

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn no_match_reaches_past_the_window() {
        // A block of noise, then noise, then the first block again: a match 2^bits + 1 bytes back
        // must not be taken; one 2^bits back may be.
        let mut table = Vec::new();
        for bits in 9..=15u8 {
            let window = 1usize << bits;
            for gap in [window - 300, window - 200, window - 199, window - 198] {
                let block = noise(200, u64::from(bits));
                let mut payload = block.clone();
                payload.extend_from_slice(&noise(gap, 7));
                payload.extend_from_slice(&block);
                let deflated = deflate(&payload, bits, &mut table);
                let inflated = inflate_through_the_window(&deflated, bits);
                assert!(inflated.as_ref() == Some(&payload), "{bits} {gap}");
                // Within the window the repeat was found: it cost far less than the same
                // payload ending in 200 fresh bytes of noise.
                let mut unrepeated = payload[..payload.len() - 200].to_vec();
                unrepeated.extend_from_slice(&noise(200, 99));
                let reference = deflate(&unrepeated, bits, &mut table).len();
                let repeat_found = deflated.len() + 150 < reference;
                assert_eq!(repeat_found, gap + 200 <= window, "{bits} {gap}");
            }
        }
    }

    #[test]
    fn runs_lengths_and_sizes_round_trip() {
        let mut table = vec![7; 100];
        let mut payloads: Vec<Vec<u8>> = vec![
            b"a".to_vec(),
            b"abcd".to_vec(),
            b"abcdabcd".to_vec(),
            vec![0; 3],
            vec![0; 4],
            vec![0; 5],
            vec![b'x'; 258 + 4],
            vec![b'x'; 100_000],
            noise(70_000, 3),
        ];
        for len in [
            2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 255, 256, 257, 258, 259, 260, 1000,
        ] {
            payloads.push(b"0123456789".iter().cycle().take(len).copied().collect());
            payloads.push(vec![0x55; len]);
        }
        for payload in &payloads {
            for bits in [9, 15] {
                let deflated = deflate(payload, bits, &mut table);
                assert_eq!(inflate(&deflated, bits, payload.len()), *payload);
            }
        }
        // A long run costs a few bits per 258 bytes.
        assert!(deflate(&vec![b'x'; 100_000], 15, &mut table).len() < 1_000);
    }
}
