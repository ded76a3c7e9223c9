//! Length-limited Huffman codes from symbol counts, in deflate's canonical form (RFC 1951
//! §3.2.2): what a dynamic block sends.
//!
//! Counts enter [`CodeMaker::code_lengths`], which gives every used symbol an optimal code
//! length of at most `limit` bits and says how many bits the symbols take in that code; the
//! lengths and the used symbols ([`CodeMaker::used`]) enter [`canonical_codes`], which gives the
//! codes themselves. Every code is complete (its lengths fill the code space exactly): where
//! fewer than two symbols are used, one or two unused ones get a length too, as zlib does, since
//! a decoder may refuse a code with one symbol.
//!
//! The encoder keeps a [`CodeMaker`] per thread: making a code works over the used symbols and
//! zeroes no array the size of the alphabet but the lengths.

use crate::ws::deflate::bits::reverse;
use crate::ws::deflate::symbols::Code;

/// The largest alphabet: literals and lengths.
const MAX_SYMBOLS: usize = 286;
/// The longest code length any of deflate's codes allows (§3.2.7).
pub(super) const MAX_LENGTH: u8 = 15;

/// Room for making one code after another, and the symbols the last one used.
pub(super) struct CodeMaker {
    /// The used symbols, in the alphabet's order: the first `used_count`.
    used: [u16; MAX_SYMBOLS],
    used_count: usize,
    /// Each used symbol as its count above its number, so that one sort orders both.
    by_count: [u64; MAX_SYMBOLS],
    /// Their counts in that order, then their depths in an optimal tree.
    depths: [u32; MAX_SYMBOLS],
}

impl Default for CodeMaker {
    fn default() -> Self {
        CodeMaker {
            used: [0; MAX_SYMBOLS],
            used_count: 0,
            by_count: [0; MAX_SYMBOLS],
            depths: [0; MAX_SYMBOLS],
        }
    }
}

impl CodeMaker {
    /// Sets `lengths[s]` to the length of symbol `s`'s code: optimal for `counts` among codes of
    /// at most `limit` (≤ 15) bits, 0 for a symbol not used. Returns the bits the symbols take in
    /// that code, the sum of count × length. `counts` has 2..=286 symbols, `lengths` as many.
    pub(super) fn code_lengths(&mut self, counts: &[u32], limit: u8, lengths: &mut [u8]) -> u64 {
        lengths.fill(0);
        let mut used = 0;
        for (symbol, &count) in counts.iter().enumerate() {
            // Written whether used or not, kept only if used: no branch to mispredict.
            self.by_count[used] = u64::from(count) << 16 | symbol as u64;
            used += usize::from(count > 0);
        }
        if used < 2 {
            used = self.add_spares(counts, used);
        }
        self.used_count = used;
        // Still in the alphabet's order.
        for (symbol, &counted) in self.used.iter_mut().zip(&self.by_count[..used]) {
            *symbol = (counted & 0xffff) as u16;
        }
        let by_count = &mut self.by_count[..used];
        by_count.sort_unstable();
        let depths = &mut self.depths[..used];
        for (depth, &symbol) in depths.iter_mut().zip(by_count.iter()) {
            *depth = (symbol >> 16) as u32;
        }
        minimum_redundancy(depths);
        // Depths beyond the limit counted at it, for `limit_lengths` to fix.
        let mut per_length = [0u32; MAX_LENGTH as usize + 1];
        for &depth in depths.iter() {
            per_length[depth.min(u32::from(limit)) as usize] += 1;
        }
        limit_lengths(&mut per_length[..=usize::from(limit)]);
        // The least used symbols take the longest codes.
        let mut bits = 0;
        let mut next = 0;
        for length in (1..=limit).rev() {
            let taking = per_length[usize::from(length)] as usize;
            for &symbol in &by_count[next..next + taking] {
                let symbol = (symbol & 0xffff) as usize;
                lengths[symbol] = length;
                bits += u64::from(counts[symbol]) * u64::from(length);
            }
            next += taking;
        }
        bits
    }

    /// The symbols the last code gave a length to, in the alphabet's order.
    pub(super) fn used(&self) -> &[u16] {
        &self.used[..self.used_count]
    }

    /// Two symbols at least, so that the code is complete: the first unused ones, counted once.
    /// Returns how many symbols the code has now.
    fn add_spares(&mut self, counts: &[u32], mut used: usize) -> usize {
        let mut spare = 0;
        while used < 2 {
            if counts[spare] == 0 {
                self.by_count[used] = 1 << 16 | spare as u64;
                used += 1;
            }
            spare += 1;
        }
        // In the alphabet's order, as the used symbols were.
        self.by_count[..used].sort_unstable_by_key(|&counted| counted & 0xffff);
        used
    }
}

/// Moffat and Katajainen's in-place computation of optimal code lengths ("In-place calculation
/// of minimum-redundancy codes", 1995): `weights`, sorted ascending, at least two, become the
/// code lengths of their symbols (non-increasing).
fn minimum_redundancy(weights: &mut [u32]) {
    let n = weights.len();
    // First pass, left to right: combine the two lightest trees, leaving parent pointers.
    weights[0] += weights[1];
    let (mut root, mut leaf) = (0, 2);
    for next in 1..n - 1 {
        if leaf >= n || weights[root] < weights[leaf] {
            weights[next] = weights[root];
            weights[root] = next as u32;
            root += 1;
        } else {
            weights[next] = weights[leaf];
            leaf += 1;
        }
        if leaf >= n || (root < next && weights[root] < weights[leaf]) {
            weights[next] += weights[root];
            weights[root] = next as u32;
            root += 1;
        } else {
            weights[next] += weights[leaf];
            leaf += 1;
        }
    }
    // Second pass, right to left: the depth of each internal node.
    weights[n - 2] = 0;
    for next in (0..n.saturating_sub(2)).rev() {
        weights[next] = weights[weights[next] as usize] + 1;
    }
    // Third pass, right to left: the depth of each leaf.
    let (mut available, mut used, mut depth) = (1usize, 0usize, 0u32);
    let mut root = n as isize - 2;
    let mut next = n as isize - 1;
    while available > 0 {
        while root >= 0 && weights[root as usize] == depth {
            used += 1;
            root -= 1;
        }
        while available > used {
            weights[next as usize] = depth;
            next -= 1;
            available -= 1;
        }
        available = 2 * used;
        depth += 1;
        used = 0;
    }
}

/// Moves codes longer than the limit to it and lengthens shorter ones until the code fits
/// (miniz's method): `per_length[l]` is how many codes have length `l`, those longer than the
/// limit (the last index) counted at it.
fn limit_lengths(per_length: &mut [u32]) {
    let limit = per_length.len() - 1;
    // Kraft's sum in units of 2^-limit: 2^limit for a complete code, more if codes were moved
    // up to the limit; each round below takes one away.
    let mut total: u64 = (1..=limit)
        .map(|length| u64::from(per_length[length]) << (limit - length))
        .sum();
    while total > 1 << limit {
        per_length[limit] -= 1;
        if let Some(length) = (1..limit).rev().find(|&length| per_length[length] != 0) {
            per_length[length] -= 1;
            per_length[length + 1] += 2;
        }
        total -= 1;
    }
}

/// The canonical codes of `lengths` (RFC 1951 §3.2.2), reversed for putting, into `codes` for
/// the `symbols` given, which are the used ones in increasing order; other codes are left as
/// they are.
pub(super) fn canonical_codes(lengths: &[u8], symbols: &[u16], codes: &mut [Code]) {
    let mut per_length = [0u16; MAX_LENGTH as usize + 1];
    for &symbol in symbols {
        per_length[usize::from(lengths[usize::from(symbol)])] += 1;
    }
    per_length[0] = 0;
    let mut next = [0u16; MAX_LENGTH as usize + 1];
    let mut code = 0u16;
    for length in 1..next.len() {
        code = (code + per_length[length - 1]) << 1;
        next[length] = code;
    }
    for &symbol in symbols {
        let length = lengths[usize::from(symbol)];
        let code = next[usize::from(length)];
        next[usize::from(length)] += 1;
        codes[usize::from(symbol)] = (reverse(code, length), length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kraft's sum of `lengths` in units of 2^-15: exactly 2^15 for a complete code.
    fn kraft(lengths: &[u8]) -> u64 {
        lengths
            .iter()
            .filter(|&&l| l > 0)
            .map(|&l| 1u64 << (15 - l))
            .sum()
    }

    /// The cost of an optimal (unlimited) Huffman code, by repeatedly merging the two
    /// lightest: the sum of the merged weights.
    fn optimal_cost(counts: &[u32]) -> u64 {
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<u64>> = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| std::cmp::Reverse(u64::from(c)))
            .collect();
        let mut cost = 0;
        while heap.len() > 1 {
            let a = heap.pop().unwrap().0;
            let b = heap.pop().unwrap().0;
            cost += a + b;
            heap.push(std::cmp::Reverse(a + b));
        }
        cost
    }

    fn cost(counts: &[u32], lengths: &[u8]) -> u64 {
        counts
            .iter()
            .zip(lengths)
            .map(|(&c, &l)| u64::from(c) * u64::from(l))
            .sum()
    }

    /// Optimal depths for `counts`' used symbols, straight from [`minimum_redundancy`].
    fn unlimited_depths(counts: &[u32]) -> Vec<(u32, u32)> {
        let mut weights: Vec<u32> = counts.iter().copied().filter(|&c| c > 0).collect();
        weights.sort_unstable();
        let sorted = weights.clone();
        minimum_redundancy(&mut weights);
        sorted.into_iter().zip(weights).collect()
    }

    #[test]
    fn lengths_are_optimal_and_complete() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut maker = CodeMaker::default();
        for round in 0..500 {
            let symbols = [2, 3, 19, 30, 100, 286][round % 6];
            let counts: Vec<u32> = (0..symbols)
                .map(|_| match next() % 4 {
                    0 => 0,
                    1 => (next() % 5) as u32,
                    _ => (next() % 1000) as u32,
                })
                .collect();
            let mut lengths = vec![0; symbols];
            let bits = maker.code_lengths(&counts, 15, &mut lengths);
            assert_eq!(kraft(&lengths), 1 << 15, "{counts:?}");
            assert_eq!(bits, cost(&counts, &lengths), "{counts:?}");
            if counts.iter().filter(|&&c| c > 0).count() >= 2 {
                let used: Vec<u16> = (0..symbols as u16)
                    .filter(|&s| counts[usize::from(s)] > 0)
                    .collect();
                assert_eq!(maker.used(), used, "{counts:?}");
                for (&count, &length) in counts.iter().zip(&lengths) {
                    assert_eq!(count > 0, length > 0, "{counts:?}");
                }
                // Without a limit the code is optimal; where the limit binds, it costs more.
                let depths = unlimited_depths(&counts);
                let unlimited: u64 = depths.iter().map(|&(c, d)| u64::from(c * d)).sum();
                assert_eq!(unlimited, optimal_cost(&counts), "{counts:?}");
                if depths.iter().all(|&(_, d)| d <= 15) {
                    assert_eq!(bits, unlimited, "{counts:?}");
                } else {
                    assert!(bits > unlimited, "{counts:?}");
                }
            }
        }
    }

    #[test]
    fn fewer_than_two_used_symbols_still_make_a_complete_code() {
        let mut maker = CodeMaker::default();
        for counts in [[0u32, 0, 0], [0, 7, 0], [5, 0, 0], [0, 0, 9]] {
            let mut lengths = [0; 3];
            assert_eq!(
                maker.code_lengths(&counts, 7, &mut lengths),
                cost(&counts, &lengths)
            );
            assert_eq!(lengths.iter().filter(|&&l| l == 1).count(), 2, "{counts:?}");
            for (count, length) in counts.iter().zip(lengths) {
                assert!(*count == 0 || length == 1);
            }
            let given: Vec<u16> = (0..3).filter(|&s| lengths[usize::from(s)] > 0).collect();
            assert_eq!(maker.used(), given, "{counts:?}");
        }
    }

    #[test]
    fn skewed_counts_are_limited_to_the_longest_length() {
        // Fibonacci counts make the optimal code as deep as there are symbols.
        let mut counts = vec![1u32, 1];
        while counts.len() < 25 {
            counts.push(counts[counts.len() - 1] + counts[counts.len() - 2]);
        }
        let depths = unlimited_depths(&counts);
        assert_eq!(depths.iter().map(|&(_, d)| d).max(), Some(24));
        let unlimited: u64 = depths.iter().map(|&(c, d)| u64::from(c * d)).sum();
        let mut maker = CodeMaker::default();
        for limit in [7, 9, 15] {
            let mut lengths = vec![0; counts.len()];
            let bits = maker.code_lengths(&counts, limit, &mut lengths);
            assert_eq!(bits, cost(&counts, &lengths));
            assert!(bits > unlimited, "{limit}");
            assert_eq!(lengths.iter().max(), Some(&limit));
            let sum: u64 = lengths.iter().map(|&l| 1u64 << (15 - l)).sum();
            assert_eq!(sum, 1 << 15, "{limit}: {lengths:?}");
            // The most used symbol keeps the shortest code.
            assert_eq!(lengths.iter().min(), lengths.last());
        }
    }

    #[test]
    fn canonical_codes_follow_the_rfcs_example() {
        // RFC 1951 §3.2.2: lengths (3, 3, 3, 3, 3, 2, 4, 4) give 010 011 100 101 110 00 1110 1111.
        let lengths = [3, 3, 3, 3, 3, 2, 4, 4];
        let mut codes = [(0, 0); 8];
        canonical_codes(&lengths, &[0, 1, 2, 3, 4, 5, 6, 7], &mut codes);
        let expected = [0b010, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111];
        for ((reversed, length), (code, want_length)) in
            codes.iter().zip(expected.iter().zip(lengths))
        {
            assert_eq!(*length, want_length);
            assert_eq!(reverse(*reversed, *length), *code);
        }
    }
}
