//! A dynamic block's codes and header (RFC 1951 §3.2.7), for level 2.
//!
//! The counts of a message's symbols enter [`DynamicCodes::new`], which makes a code for each
//! alphabet ([`huffman`](super::huffman)) and run-length codes their lengths into the header.
//! What leaves: the codes the encoder writes the message in, the header's bits
//! ([`DynamicCodes::put_header`]), and the block's size ([`DynamicCodes::cost`]) to compare with
//! the fixed codes' ([`cost`]).

use crate::ws::deflate::bits::BitWriter;
use crate::ws::deflate::huffman::{canonical_codes, code_lengths};
use crate::ws::deflate::symbols::{Code, DISTANCE_SYMBOLS, LITERAL_LENGTH_SYMBOLS};

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
}

/// The bits the symbols take in these codes (the extra bits are the same in any code).
pub(super) fn cost(counts: &Counts, literal_length: &[Code], distance: &[Code]) -> u64 {
    let sum = |counts: &[u32], codes: &[Code]| -> u64 {
        counts
            .iter()
            .zip(codes)
            .map(|(&count, &(_, length))| u64::from(count) * u64::from(length))
            .sum()
    };
    sum(&counts.literal_length, literal_length) + sum(&counts.distance, distance)
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
}

/// The order the code length code's lengths are sent in (§3.2.7).
const LENGTH_CODE_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Extra bits of the code length symbols 16 (repeat the last length 3..=6 times), 17 (3..=10
/// zeros) and 18 (11..=138 zeros).
const RUN_EXTRA_BITS: [u32; 3] = [2, 3, 7];

impl DynamicCodes {
    pub(super) fn new(counts: &Counts) -> Self {
        let mut literal_lengths = [0u8; LITERAL_LENGTH_SYMBOLS];
        code_lengths(&counts.literal_length, 15, &mut literal_lengths);
        let mut distance_lengths = [0u8; DISTANCE_SYMBOLS];
        code_lengths(&counts.distance, 15, &mut distance_lengths);
        let literal_lengths_sent = 257.max(sent(&literal_lengths));
        let distance_lengths_sent = 1.max(sent(&distance_lengths));

        let mut sequence = [0u8; LITERAL_LENGTH_SYMBOLS + DISTANCE_SYMBOLS];
        sequence[..literal_lengths_sent].copy_from_slice(&literal_lengths[..literal_lengths_sent]);
        sequence[literal_lengths_sent..literal_lengths_sent + distance_lengths_sent]
            .copy_from_slice(&distance_lengths[..distance_lengths_sent]);
        let runs = run_length(&sequence[..literal_lengths_sent + distance_lengths_sent]);

        let mut run_counts = [0u32; 19];
        for &(symbol, _) in &runs {
            run_counts[usize::from(symbol)] += 1;
        }
        let mut length_code_lengths = [0u8; 19];
        code_lengths(&run_counts, 7, &mut length_code_lengths);
        let length_codes_sent = 4.max(
            LENGTH_CODE_ORDER
                .iter()
                .rposition(|&symbol| length_code_lengths[symbol] != 0)
                .map_or(0, |last| last + 1),
        );

        let mut codes = DynamicCodes {
            literal_length: [(0, 0); LITERAL_LENGTH_SYMBOLS],
            distance: [(0, 0); DISTANCE_SYMBOLS],
            literal_lengths_sent,
            distance_lengths_sent,
            runs,
            length_code: [(0, 0); 19],
            length_codes_sent,
        };
        canonical_codes(&literal_lengths, &mut codes.literal_length);
        canonical_codes(&distance_lengths, &mut codes.distance);
        canonical_codes(&length_code_lengths, &mut codes.length_code);
        codes
    }

    /// The header's bits and the symbols'.
    pub(super) fn cost(&self, counts: &Counts) -> u64 {
        let header: u64 = 3
            + 5
            + 5
            + 4
            + 3 * self.length_codes_sent as u64
            + self
                .runs
                .iter()
                .map(|&(symbol, _)| {
                    let extra = symbol
                        .checked_sub(16)
                        .map_or(0, |run| RUN_EXTRA_BITS[usize::from(run)]);
                    u64::from(self.length_code[usize::from(symbol)].1) + u64::from(extra)
                })
                .sum::<u64>();
        header + cost(counts, &self.literal_length, &self.distance)
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

/// How many lengths to send: up to the last used symbol.
fn sent(lengths: &[u8]) -> usize {
    lengths
        .iter()
        .rposition(|&l| l != 0)
        .map_or(0, |last| last + 1)
}

/// Code lengths as code length symbols (§3.2.7): a length as itself, 16 for 3..=6 more of the
/// length before, 17 for 3..=10 zeros, 18 for 11..=138 zeros.
fn run_length(lengths: &[u8]) -> Vec<(u8, u8)> {
    let mut runs = Vec::with_capacity(lengths.len());
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
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_lengths_take_the_repeat_symbols() {
        let mut lengths = vec![5, 5, 5, 5, 5, 5, 5, 5, 0, 0, 3, 0, 0, 0];
        lengths.extend([0; 150]);
        lengths.extend([7, 7, 7]);
        assert_eq!(
            run_length(&lengths),
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
