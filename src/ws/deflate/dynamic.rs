//! A dynamic block's codes and header (RFC 1951 §3.2.7), for level 2.
//!
//! The counts of a block's symbols enter [`DynamicCodes::make`], which makes a code for each
//! alphabet ([`huffman`](super::huffman)) and run-length codes their lengths into the header.
//! It works in place: the encoder keeps one `DynamicCodes` per thread and remakes it for each
//! block. What leaves: the codes the encoder writes the block in, the header's bits
//! ([`DynamicCodes::put_header`]), and whether the block is shorter in these codes than in the
//! fixed ones ([`DynamicCodes::shorter_than_fixed`]).

use crate::ws::deflate::bits::BitWriter;
use crate::ws::deflate::huffman::{CodeMaker, MAX_LENGTH, canonical_codes};
use crate::ws::deflate::symbols::{
    Code, DISTANCE_SYMBOLS, FIXED_DISTANCE, FIXED_LITERAL_LENGTH, LITERAL_LENGTH_SYMBOLS,
};

/// How often each symbol is used, the end of the block included.
pub(super) struct Counts {
    pub(super) literal_length: [u32; LITERAL_LENGTH_SYMBOLS],
    pub(super) distance: [u32; DISTANCE_SYMBOLS],
}

impl Counts {
    pub(super) fn new() -> Self {
        Counts {
            literal_length: [0; LITERAL_LENGTH_SYMBOLS],
            distance: [0; DISTANCE_SYMBOLS],
        }
    }

    /// Every count back to zero, for the next block.
    pub(super) fn clear(&mut self) {
        self.literal_length.fill(0);
        self.distance.fill(0);
    }
}

/// A dynamic block's codes and the header that describes them (RFC 1951 §3.2.7): the code
/// lengths of both alphabets as one run-length coded sequence, itself in a Huffman code of
/// 19 symbols with codes of at most 7 bits.
pub(super) struct DynamicCodes {
    pub(super) literal_length: [Code; LITERAL_LENGTH_SYMBOLS],
    pub(super) distance: [Code; DISTANCE_SYMBOLS],
    /// How many literal/length (257..=286) and distance (1..=30) lengths the header sends.
    literal_lengths_sent: usize,
    distance_lengths_sent: usize,
    /// The code length sequence, run-length coded: (symbol 0..=18, its extra bits' value).
    runs: Vec<(u8, u8)>,
    length_code: [Code; 19],
    /// How many code length code lengths the header sends (4..=19), in [`LENGTH_CODE_ORDER`].
    length_codes_sent: usize,
    /// The block's bits in these codes, header included, and its symbols' bits in the fixed
    /// codes; the extra bits, the same in any code, left out of both.
    bits: u64,
    fixed_bits: u64,
    maker: CodeMaker,
}

/// The order the code length code's lengths are sent in (§3.2.7).
const LENGTH_CODE_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Extra bits of the code length symbols 16 (repeat the last length 3..=6 times), 17 (3..=10
/// zeros) and 18 (11..=138 zeros).
const RUN_EXTRA_BITS: [u32; 3] = [2, 3, 7];

/// The code length code's limit (§3.2.7).
const LENGTH_CODE_LIMIT: u8 = 7;

impl Default for DynamicCodes {
    fn default() -> Self {
        DynamicCodes {
            literal_length: [(0, 0); LITERAL_LENGTH_SYMBOLS],
            distance: [(0, 0); DISTANCE_SYMBOLS],
            literal_lengths_sent: 257,
            distance_lengths_sent: 1,
            runs: Vec::new(),
            length_code: [(0, 0); 19],
            length_codes_sent: 4,
            bits: 0,
            fixed_bits: 0,
            maker: CodeMaker::default(),
        }
    }
}

impl DynamicCodes {
    /// The codes, header and sizes for a block of `counts`, in place of the last block's.
    pub(super) fn make(&mut self, counts: &Counts) {
        let maker = &mut self.maker;
        // Both alphabets' lengths, the distance ones moved up after the literal/length ones sent.
        let mut sequence = [0u8; LITERAL_LENGTH_SYMBOLS + DISTANCE_SYMBOLS];
        let literal_lengths = &mut sequence[..LITERAL_LENGTH_SYMBOLS];
        let counted = &counts.literal_length;
        let literal_bits = maker.code_lengths(counted, MAX_LENGTH, literal_lengths);
        let fixed_literal_bits = bits_in(counted, maker.used(), &FIXED_LITERAL_LENGTH);
        self.literal_lengths_sent =
            257.max(put_codes(maker, literal_lengths, &mut self.literal_length));

        let mut distance_lengths = [0u8; DISTANCE_SYMBOLS];
        let counted = &counts.distance;
        let distance_bits = maker.code_lengths(counted, MAX_LENGTH, &mut distance_lengths);
        let fixed_distance_bits = bits_in(counted, maker.used(), &FIXED_DISTANCE);
        self.distance_lengths_sent = 1.max(put_codes(maker, &distance_lengths, &mut self.distance));

        let (literal_sent, distance_sent) = (self.literal_lengths_sent, self.distance_lengths_sent);
        sequence[literal_sent..literal_sent + distance_sent]
            .copy_from_slice(&distance_lengths[..distance_sent]);
        run_length(&sequence[..literal_sent + distance_sent], &mut self.runs);
        let header_bits = self.make_length_code();

        self.bits = header_bits + literal_bits + distance_bits;
        self.fixed_bits = fixed_literal_bits + fixed_distance_bits;
    }

    /// The code of the code length symbols, from the runs: returns the header's bits.
    fn make_length_code(&mut self) -> u64 {
        let mut run_counts = [0u32; 19];
        for &(symbol, _) in &self.runs {
            run_counts[usize::from(symbol)] += 1;
        }
        let mut length_code_lengths = [0u8; 19];
        let maker = &mut self.maker;
        let run_bits = maker.code_lengths(&run_counts, LENGTH_CODE_LIMIT, &mut length_code_lengths);
        put_codes(maker, &length_code_lengths, &mut self.length_code);
        self.length_codes_sent = 4.max(
            LENGTH_CODE_ORDER
                .iter()
                .rposition(|&symbol| length_code_lengths[symbol] != 0)
                .map_or(0, |last| last + 1),
        );
        let extra_bits: u64 = RUN_EXTRA_BITS
            .iter()
            .zip(&run_counts[16..])
            .map(|(&extra, &count)| u64::from(extra * count))
            .sum();
        3 + 5 + 5 + 4 + 3 * self.length_codes_sent as u64 + run_bits + extra_bits
    }

    /// Whether the block takes fewer bits in these codes, header included, than in the fixed
    /// codes.
    pub(super) fn shorter_than_fixed(&self) -> bool {
        self.bits < self.fixed_bits
    }

    pub(super) fn put_header(&self, bits: &mut BitWriter) {
        // BFINAL 0, BTYPE 10 (dynamic Huffman codes), HLIT, HDIST, HCLEN.
        bits.put(0b100, 3);
        bits.put((self.literal_lengths_sent - 257) as u32, 5);
        bits.put((self.distance_lengths_sent - 1) as u32, 5);
        bits.put((self.length_codes_sent - 4) as u32, 4);
        for &symbol in &LENGTH_CODE_ORDER[..self.length_codes_sent] {
            bits.put(u32::from(self.length_code[symbol].1), 3);
        }
        for &(symbol, extra) in &self.runs {
            let (code, length) = self.length_code[usize::from(symbol)];
            bits.put(u32::from(code), u32::from(length));
            if let Some(run) = symbol.checked_sub(16) {
                bits.put(u32::from(extra), RUN_EXTRA_BITS[usize::from(run)]);
            }
        }
    }
}

/// `codes` remade for `lengths`, the code `maker` made last (unused symbols (0, 0)): returns
/// how many lengths the header would send of it, up to the last used symbol.
fn put_codes(maker: &CodeMaker, lengths: &[u8], codes: &mut [Code]) -> usize {
    codes.fill((0, 0));
    canonical_codes(lengths, maker.used(), codes);
    maker.used().last().map_or(0, |&last| usize::from(last) + 1)
}

/// The bits the `used` symbols of `counts` take in `codes`.
fn bits_in(counts: &[u32], used: &[u16], codes: &[Code]) -> u64 {
    used.iter()
        .map(|&symbol| {
            u64::from(counts[usize::from(symbol)]) * u64::from(codes[usize::from(symbol)].1)
        })
        .sum()
}

/// Code lengths as code length symbols (§3.2.7): a length as itself, 16 for 3..=6 more of the
/// length before, 17 for 3..=10 zeros, 18 for 11..=138 zeros: into `runs`, in place of what it
/// held.
fn run_length(lengths: &[u8], runs: &mut Vec<(u8, u8)>) {
    runs.clear();
    let mut at = 0;
    while at < lengths.len() {
        let length = lengths[at];
        let run = lengths[at..].iter().take_while(|&&l| l == length).count();
        let mut left = run;
        if length == 0 {
            while left >= 11 {
                let zeros = left.min(138);
                runs.push((18, (zeros - 11) as u8));
                left -= zeros;
            }
            if left >= 3 {
                runs.push((17, (left - 3) as u8));
                left = 0;
            }
        } else {
            runs.push((length, 0));
            left -= 1;
            while left >= 3 {
                let repeats = left.min(6);
                runs.push((16, (repeats - 3) as u8));
                left -= repeats;
            }
        }
        runs.extend(std::iter::repeat_n((length, 0), left));
        at += run;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_lengths_take_the_repeat_symbols() {
        let mut lengths = vec![5, 5, 5, 5, 5, 5, 5, 5, 0, 0, 3, 0, 0, 0];
        lengths.extend([0; 150]);
        lengths.extend([7, 7, 7]);
        // What the runs held before is replaced.
        let mut runs = vec![(1, 1)];
        run_length(&lengths, &mut runs);
        assert_eq!(
            runs,
            [
                // 5, then 7 more: 6 (16 with 3) and 1 as itself.
                (5, 0),
                (16, 3),
                (5, 0),
                // Two zeros as themselves, a 3, then 153 zeros: 138 and 15 (18 twice).
                (0, 0),
                (0, 0),
                (3, 0),
                (18, 127),
                (18, 4),
                // 7 and two more: fewer than three repeats go as themselves.
                (7, 0),
                (7, 0),
                (7, 0),
            ]
        );
    }
}
