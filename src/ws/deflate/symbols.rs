//! Deflate's alphabets (RFC 1951 §3.2.5): which symbol and extra bits code a match's length or
//! distance, and the fixed Huffman codes (§3.2.6).
//!
//! Lengths and distances enter [`length_symbol`] and [`distance_symbol`]; symbols, extra bits and
//! codes leave, for the encoder to count and to put.

use crate::ws::deflate::bits::reverse;

/// Literal/length symbols: 256 literals, the end of a block (256) and 29 lengths (257..=285).
pub(super) const LITERAL_LENGTH_SYMBOLS: usize = 286;
/// Distance symbols 0..=29.
pub(super) const DISTANCE_SYMBOLS: usize = 30;
/// The literal/length symbol that ends a block.
pub(super) const END_OF_BLOCK: usize = 256;

/// The first length of each length symbol 257..=285 and its extra bits.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// For each length 3..=258, its length symbol less 257.
const LENGTH_SYMBOL: [u8; 256] = {
    let mut symbols = [0; 256];
    let mut index = 0;
    while index < 29 {
        let first = LENGTH_BASE[index] as usize;
        // 284's range would reach 258, which 285 codes alone.
        let last = if index == 27 {
            257
        } else {
            first + (1 << LENGTH_EXTRA[index]) - 1
        };
        let mut length = first;
        while length <= last {
            symbols[length - 3] = index as u8;
            length += 1;
        }
        index += 1;
    }
    symbols
};

/// A match length (3..=258) as its literal/length symbol, its extra bits' value and count.
pub(super) fn length_symbol(length: usize) -> (usize, u32, u32) {
    let index = usize::from(LENGTH_SYMBOL[length - 3]);
    let offset = (length - usize::from(LENGTH_BASE[index])) as u32;
    (257 + index, offset, u32::from(LENGTH_EXTRA[index]))
}

/// A distance (1..=32,768) as its symbol, its extra bits' value and count. Symbols come in pairs
/// per power of two: for `d - 1` with top bit `n` (n ≥ 2), the symbol is `2n + the bit below
/// the top one`, with `n - 1` extra bits.
pub(super) fn distance_symbol(distance: usize) -> (usize, u32, u32) {
    let from_zero = (distance - 1) as u32;
    if from_zero < 4 {
        return (from_zero as usize, 0, 0);
    }
    let top = 31 - from_zero.leading_zeros();
    let second = (from_zero >> (top - 1)) & 1;
    let offset = from_zero - ((2 + second) << (top - 1));
    ((2 * top + second) as usize, offset, top - 1)
}

/// A code: the Huffman code, reversed for putting, and its length in bits (0: unused symbol).
pub(super) type Code = (u16, u8);

/// The fixed literal/length code (§3.2.6): 0-143 take 8 bits from 0x30, 144-255 9 bits from
/// 0x190, 256-279 7 bits from 0, 280-287 8 bits from 0xc0.
pub(super) const FIXED_LITERAL_LENGTH: [Code; LITERAL_LENGTH_SYMBOLS] = {
    let mut codes = [(0, 0); LITERAL_LENGTH_SYMBOLS];
    let mut symbol = 0;
    while symbol < LITERAL_LENGTH_SYMBOLS {
        let s = symbol as u16;
        let (code, count) = match s {
            0..=143 => (0x30 + s, 8),
            144..=255 => (0x190 + s - 144, 9),
            256..=279 => (s - 256, 7),
            _ => (0xc0 + s - 280, 8),
        };
        codes[symbol] = (reverse(code, count), count);
        symbol += 1;
    }
    codes
};

/// The fixed distance code: each symbol in five bits.
pub(super) const FIXED_DISTANCE: [Code; DISTANCE_SYMBOLS] = {
    let mut codes = [(0, 0); DISTANCE_SYMBOLS];
    let mut symbol = 0;
    while symbol < DISTANCE_SYMBOLS {
        codes[symbol] = (reverse(symbol as u16, 5), 5);
        symbol += 1;
    }
    codes
};

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_distance_has_the_rfcs_symbol() {
        for distance in 1..=32_768u32 {
            let symbol = DISTANCE_BASE.iter().rposition(|&b| b <= distance).unwrap();
            assert_eq!(
                distance_symbol(distance as usize),
                (
                    symbol,
                    distance - DISTANCE_BASE[symbol],
                    DISTANCE_EXTRA[symbol]
                ),
                "{distance}"
            );
        }
    }

    #[test]
    fn every_length_has_the_rfcs_symbol() {
        // RFC 1951 §3.2.5's table, as (symbol, extra bits, first length).
        let table: Vec<(usize, u32, u32)> = (257..=264)
            .map(|s| (s, 0, s as u32 - 254))
            .chain([(265, 1, 11), (266, 1, 13), (267, 1, 15), (268, 1, 17)])
            .chain([(269, 2, 19), (270, 2, 23), (271, 2, 27), (272, 2, 31)])
            .chain([(273, 3, 35), (274, 3, 43), (275, 3, 51), (276, 3, 59)])
            .chain([(277, 4, 67), (278, 4, 83), (279, 4, 99), (280, 4, 115)])
            .chain([(281, 5, 131), (282, 5, 163), (283, 5, 195), (284, 5, 227)])
            .collect();
        for length in 3..=258u32 {
            let expected = if length == 258 {
                (285, 0, 0)
            } else {
                let &(symbol, extra, first) = table
                    .iter()
                    .rev()
                    .find(|(_, _, first)| *first <= length)
                    .unwrap();
                (symbol, length - first, extra)
            };
            assert_eq!(length_symbol(length as usize), expected, "{length}");
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
            (285, 0b1100_0101, 8),
        ] {
            let (reversed, length) = FIXED_LITERAL_LENGTH[symbol];
            assert_eq!(length, count, "{symbol}");
            assert_eq!(reverse(reversed, count), code, "{symbol}");
        }
        assert_eq!(FIXED_DISTANCE[1], (0b10000, 5));
    }
}
