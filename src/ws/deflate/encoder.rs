//! Deflating one message, the encoder behind `compression_level` 1 and 2: greedy matches found
//! through a hash table the size of the message. At level 1 ([`Codes::Fixed`]) they are written
//! in the fixed Huffman codes (RFC 1951 §3.2.6) as they are found, one block; at level 2
//! ([`Codes::Fitted`]) every 16 Ki of them make a block in codes built for it (§3.2.7,
//! `dynamic.rs`), or in the fixed ones where those are shorter.
//!
//! A payload enters [`deflate`] whole. It leaves as those blocks (BFINAL clear) followed by the
//! first three bits of an empty stored block and the padding to a byte: what a sync flush
//! gives, without the `00 00 ff ff` that RFC 7692 §7.2.1 strips. The caller keeps a [`Scratch`]
//! per thread (the hash table, a block's matches and the room its codes are made in); nothing
//! else lives between calls.
//!
//! Why not zlib's fastest level: it finds matches the same way (zlib-ng's `deflate_quick`, which
//! zlib-rs ports), but resetting a zlib stream clears a 128 KiB hash table whatever the
//! message's size. For a 1 KiB message that clearing cost as much as the compressing, and it
//! evicted the table from the cache that the compressing then missed in; and `deflate_quick`
//! only writes fixed codes, a fifth longer than a code made for JSON (docs/benchmarks.md,
//! "Compression without the 128 KiB reset"). Here the table has about one entry per byte of the
//! message (at most 2^15), and only that much is cleared. Inflating, the side that faces the
//! network, stays with zlib-rs.

use crate::ws::deflate::bits::BitWriter;
use crate::ws::deflate::dynamic::{Counts, DynamicCodes};
use crate::ws::deflate::symbols::{
    Code, END_OF_BLOCK, FIXED_DISTANCE, FIXED_LITERAL_LENGTH, distance_symbol, length_symbol,
};

/// Shortest match this encoder takes (deflate allows 3): the four bytes it reads and hashes at
/// once to find one.
const MATCH_PREFIX: usize = 4;
/// Longest match deflate can code (RFC 1951 §3.2.5).
const MAX_MATCH: usize = 258;
/// Fewest and most hash bits: at least a small table, at most 32,768 entries (128 KiB).
const MIN_HASH_BITS: u32 = 8;
const MAX_HASH_BITS: u32 = 15;

/// Tokens per block at level 2 (64 KiB of them): a longer message is written in several
/// blocks, each in codes made for its part, so the buffer stays this size whatever the message.
const BLOCK_TOKENS: usize = 16 * 1024;

/// What a thread keeps between messages so as not to allocate them again.
#[derive(Default)]
pub(super) struct Scratch {
    /// Hash of four bytes → the last position they were seen at, plus one (0: none).
    table: Vec<u32>,
    /// The block being found, as literals and matches ([`Blocks`]): [`BLOCK_TOKENS`] of them
    /// once level 2 was used.
    tokens: Vec<u32>,
    /// A level 2 block's codes, remade for each block.
    codes: DynamicCodes,
}

/// Which codes the block is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Codes {
    /// The fixed codes, written as the matches are found: one pass (level 1).
    Fixed,
    /// Codes made for each block, or the fixed ones where shorter: a block's matches are kept,
    /// counted, and written in a second pass (level 2).
    Fitted,
}

/// `payload` deflated, never referring further back than `2^window_bits` bytes (the window the
/// peer agreed to keep, 9..=15 bits), without the tail.
///
/// Positions are 32-bit: a payload of 4 GiB or more is the caller's to split or store.
pub(super) fn deflate(
    payload: &[u8],
    window_bits: u8,
    codes: Codes,
    scratch: &mut Scratch,
) -> Vec<u8> {
    // Worst case: every byte a 9-bit literal in fixed codes, and each block's framing; a
    // dynamic block is written only when shorter.
    let blocks = payload.len() / BLOCK_TOKENS + 1;
    let mut bits = BitWriter::with_capacity(payload.len() + payload.len() / 8 + 2 * blocks + 8);
    let Scratch {
        table,
        tokens,
        codes: dynamic,
    } = scratch;
    match codes {
        Codes::Fixed => {
            // BFINAL 0, BTYPE 01 (fixed Huffman codes).
            bits.put(0b010, 3);
            let mut block = FixedBlock(&mut bits);
            find_matches(payload, window_bits, table, &mut block);
            put_end_of_block(&mut bits, &FIXED_LITERAL_LENGTH);
        }
        Codes::Fitted => {
            tokens.resize(BLOCK_TOKENS, 0);
            let mut blocks = Blocks::new(tokens, dynamic, &mut bits);
            find_matches(payload, window_bits, table, &mut blocks);
            blocks.finish();
        }
    }
    // The sync flush's empty stored block: BFINAL 0, BTYPE 00, padding to the byte; its LEN and
    // NLEN are the stripped tail.
    bits.put(0, 3);
    bits.finish()
}

/// Where [`find_matches`] sends what it finds.
trait Matches {
    fn literal(&mut self, byte: u8);
    /// `length` 4..=258 bytes, `distance` 1..=32,768 back.
    fn matched(&mut self, length: usize, distance: usize);
}

/// Greedy matching: at each position, the last one with the same four bytes, if within the
/// window.
fn find_matches(payload: &[u8], window_bits: u8, table: &mut Vec<u32>, out: &mut impl Matches) {
    let max_distance = 1usize << window_bits.clamp(9, 15);
    let hash_bits = hash_bits(payload.len());
    table.clear();
    table.resize(1 << hash_bits, 0);
    // A slice from here: its start and length stay in registers rather than being read back
    // from the `Vec` after each write of output.
    let table = table.as_mut_slice();
    let mut at = 0;
    while at + MATCH_PREFIX <= payload.len() {
        let prefix = read_u32(payload, at);
        let slot = (prefix.wrapping_mul(0x9E37_79B1) >> (32 - hash_bits)) as usize;
        let candidate = table[slot] as usize;
        table[slot] = at as u32 + 1;
        if candidate != 0 {
            let earlier = candidate - 1;
            let distance = at - earlier;
            if distance <= max_distance && read_u32(payload, earlier) == prefix {
                let most = (payload.len() - at).min(MAX_MATCH);
                let length = MATCH_PREFIX
                    + common_prefix(payload, earlier + MATCH_PREFIX, at + MATCH_PREFIX, most);
                out.matched(length, distance);
                at += length;
                continue;
            }
        }
        out.literal(payload[at]);
        at += 1;
    }
    for &byte in &payload[at..] {
        out.literal(byte);
    }
}

/// A fixed-code block, written as the matches are found.
struct FixedBlock<'a>(&'a mut BitWriter);

impl Matches for FixedBlock<'_> {
    fn literal(&mut self, byte: u8) {
        let (code, length) = FIXED_LITERAL_LENGTH[usize::from(byte)];
        self.0.put(u32::from(code), u32::from(length));
    }

    fn matched(&mut self, length: usize, distance: usize) {
        let (symbol, extra, extra_bits) = length_symbol(length);
        let (code, code_length) = FIXED_LITERAL_LENGTH[symbol];
        let (distance_symbol, distance_extra, distance_extra_bits) = distance_symbol(distance);
        let (distance_code, _) = FIXED_DISTANCE[distance_symbol];
        // At most 8 + 5 + 5 + 13 = 31 bits: one put.
        let length_bits = u32::from(code_length) + extra_bits;
        self.0.put(
            u32::from(code)
                | extra << code_length
                | (u32::from(distance_code) | distance_extra << 5) << length_bits,
            length_bits + 5 + distance_extra_bits,
        );
    }
}

/// Blocks in codes made for them: the matches kept as tokens, a `u32` each, and each symbol
/// counted; every [`BLOCK_TOKENS`], and at the end, the block is written (dynamic, or fixed where
/// shorter). A token is a literal byte, or a match (bit 31) with its distance symbol (bits
/// 24..=28), its length less 3 (bits 15..=22) and its distance less 1 (bits 0..=14).
struct Blocks<'a> {
    /// [`BLOCK_TOKENS`] long: written in place, with no capacity check per token.
    tokens: &'a mut [u32],
    found: usize,
    counts: Counts,
    codes: &'a mut DynamicCodes,
    bits: &'a mut BitWriter,
    written: usize,
}

impl<'a> Blocks<'a> {
    const MATCH: u32 = 1 << 31;

    fn new(tokens: &'a mut [u32], codes: &'a mut DynamicCodes, bits: &'a mut BitWriter) -> Self {
        Blocks {
            tokens,
            found: 0,
            counts: Counts::new(),
            codes,
            bits,
            written: 0,
        }
    }

    fn push(&mut self, token: u32) {
        self.tokens[self.found] = token;
        self.found += 1;
        if self.found == self.tokens.len() {
            self.write_block();
        }
    }

    /// The tokens found so far as one block, in whichever code is shorter for them.
    fn write_block(&mut self) {
        self.counts.literal_length[END_OF_BLOCK] = 1;
        let dynamic = &mut *self.codes;
        dynamic.make(&self.counts);
        let found = &self.tokens[..self.found];
        if dynamic.shorter_than_fixed() {
            dynamic.put_header(self.bits);
            put_tokens(self.bits, found, &dynamic.literal_length, &dynamic.distance);
        } else {
            // BFINAL 0, BTYPE 01 (fixed Huffman codes).
            self.bits.put(0b010, 3);
            put_tokens(self.bits, found, &FIXED_LITERAL_LENGTH, &FIXED_DISTANCE);
        }
        self.found = 0;
        self.counts.clear();
        self.written += 1;
    }

    /// The last block: what is left, or an empty one if the message made none.
    fn finish(mut self) {
        if self.found > 0 || self.written == 0 {
            self.write_block();
        }
    }
}

impl Matches for Blocks<'_> {
    fn literal(&mut self, byte: u8) {
        self.counts.literal_length[usize::from(byte)] += 1;
        self.push(u32::from(byte));
    }

    fn matched(&mut self, length: usize, distance: usize) {
        let (symbol, _, _) = length_symbol(length);
        let (distance_symbol, _, _) = distance_symbol(distance);
        self.counts.literal_length[symbol] += 1;
        self.counts.distance[distance_symbol] += 1;
        self.push(
            Self::MATCH
                | (distance_symbol as u32) << 24
                | ((length - 3) as u32) << 15
                | (distance - 1) as u32,
        );
    }
}

/// The tokens in these codes, then the end of the block.
fn put_tokens(bits: &mut BitWriter, tokens: &[u32], literal_length: &[Code], distance: &[Code]) {
    for &token in tokens {
        if token & Blocks::MATCH == 0 {
            let (code, length) = literal_length[token as usize];
            bits.put(u32::from(code), u32::from(length));
            continue;
        }
        let (symbol, extra, extra_bits) = length_symbol(((token >> 15) & 0xff) as usize + 3);
        let (code, length) = literal_length[symbol];
        bits.put(
            u32::from(code) | extra << length,
            u32::from(length) + extra_bits,
        );
        let (_, extra, extra_bits) = distance_symbol((token & 0x7fff) as usize + 1);
        let (code, length) = distance[((token >> 24) & 0x1f) as usize];
        bits.put(
            u32::from(code) | extra << length,
            u32::from(length) + extra_bits,
        );
    }
    put_end_of_block(bits, literal_length);
}

fn put_end_of_block(bits: &mut BitWriter, literal_length: &[Code]) {
    let (code, length) = literal_length[END_OF_BLOCK];
    bits.put(u32::from(code), u32::from(length));
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

#[cfg(test)]
mod tests;
