//! Length-limited Huffman codes from symbol counts, in deflate's canonical form (RFC 1951
//! §3.2.2): what a dynamic block sends.
//!
//! Counts enter [`code_lengths`], which gives every used symbol an optimal code length of at
//! most `limit` bits; the lengths enter [`canonical_codes`], which gives the codes themselves.
//! Every code is complete (its lengths fill the code space exactly): where fewer than two
//! symbols are used, one or two unused ones get a length too, as zlib does, since a decoder may
//! refuse a code with one symbol.

use crate::ws::deflate::bits::reverse;
use crate::ws::deflate::symbols::Code;

/// The largest alphabet: literals and lengths.
const MAX_SYMBOLS: usize = 286;

/// Sets `lengths[s]` to the length of symbol `s`'s code: optimal for `counts` among codes of at
/// most `limit` bits, 0 for a symbol not used. `counts` has 2..=286 symbols, `lengths` as many.
pub(super) fn code_lengths(counts: &[u32], limit: u8, lengths: &mut [u8]) {
    lengths.fill(0);
    // Each used symbol as its count above its number, so that one sort orders both.
    let mut symbols = [0u64; MAX_SYMBOLS];
    let mut used = 0;
    for (symbol, &count) in counts.iter().enumerate() {
        if count > 0 {
            symbols[used] = u64::from(count) << 16 | symbol as u64;
            used += 1;
        }
    }
    // Two symbols at least, so that the code is complete: unused ones, counted once.
    let mut spare = 0;
    while used < 2 {
        if counts[spare] == 0 {
            symbols[used] = 1 << 16 | spare as u64;
            used += 1;
        }
        spare += 1;
    }
    let symbols = &mut symbols[..used];
    symbols.sort_unstable();

    let mut depths = [0u32; MAX_SYMBOLS];
    for (depth, &symbol) in depths.iter_mut().zip(symbols.iter()) {
        *depth = (symbol >> 16) as u32;
    }
    minimum_redundancy(&mut depths[..used]);
    let mut per_length = [0u32; MAX_SYMBOLS];
    for &depth in &depths[..used] {
        per_length[depth as usize] += 1;
    }
    limit_lengths(&mut per_length, u32::from(limit));
    // The least used symbols take the longest codes.
    let mut next = 0;
    for length in (1..=limit).rev() {
        for _ in 0..per_length[usize::from(length)] {
            lengths[(symbols[next] & 0xffff) as usize] = length;
            next += 1;
        }
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

/// Moves codes longer than `limit` to `limit` and lengthens shorter ones until the code fits
/// (miniz's method): `per_length[l]` is how many codes have length `l`.
fn limit_lengths(per_length: &mut [u32], limit: u32) {
    let limit = limit as usize;
    let longest = per_length.iter().rposition(|&n| n > 0).unwrap_or(0);
    if longest <= limit {
        return;
    }
    for length in limit + 1..=longest {
        per_length[limit] += per_length[length];
        per_length[length] = 0;
    }
    // Kraft's sum in units of 2^-limit: too much now; each round below takes one away.
    let mut total: u64 = (1..=limit)
        .map(|length| u64::from(per_length[length]) << (limit - length))
        .sum();
    while total != 1 << limit {
        per_length[limit] -= 1;
        if let Some(length) = (1..limit).rev().find(|&length| per_length[length] != 0) {
            per_length[length] -= 1;
            per_length[length + 1] += 2;
        }
        total -= 1;
    }
}

/// The canonical codes of `lengths` (RFC 1951 §3.2.2), reversed for putting, into `codes`.
pub(super) fn canonical_codes(lengths: &[u8], codes: &mut [Code]) {
    let mut per_length = [0u16; 16];
    for &length in lengths {
        per_length[usize::from(length)] += 1;
    }
    per_length[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for length in 1..16 {
        code = (code + per_length[length - 1]) << 1;
        next[length] = code;
    }
    for (symbol, &length) in lengths.iter().enumerate() {
        codes[symbol] = if length == 0 {
            (0, 0)
        } else {
            let code = next[usize::from(length)];
            next[usize::from(length)] += 1;
            (reverse(code, length), length)
        };
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

    #[test]
    fn lengths_are_optimal_and_complete() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
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
            code_lengths(&counts, 15, &mut lengths);
            assert_eq!(kraft(&lengths), 1 << 15, "{counts:?}");
            if counts.iter().filter(|&&c| c > 0).count() >= 2 {
                for (&count, &length) in counts.iter().zip(&lengths) {
                    assert_eq!(count > 0, length > 0, "{counts:?}");
                }
                // Without a limit that binds, the code is optimal; with one, it costs more.
                let mut unlimited = vec![0; symbols];
                code_lengths(&counts, 100, &mut unlimited);
                assert_eq!(
                    cost(&counts, &unlimited),
                    optimal_cost(&counts),
                    "{counts:?}"
                );
                if unlimited.iter().all(|&l| l <= 15) {
                    assert_eq!(lengths, unlimited);
                } else {
                    assert!(cost(&counts, &lengths) > optimal_cost(&counts));
                }
            }
        }
    }

    #[test]
    fn fewer_than_two_used_symbols_still_make_a_complete_code() {
        for counts in [[0u32, 0, 0], [0, 7, 0], [5, 0, 0], [0, 0, 9]] {
            let mut lengths = [0; 3];
            code_lengths(&counts, 7, &mut lengths);
            assert_eq!(lengths.iter().filter(|&&l| l == 1).count(), 2, "{counts:?}");
            for (count, length) in counts.iter().zip(lengths) {
                assert!(*count == 0 || length == 1);
            }
        }
    }

    #[test]
    fn skewed_counts_are_limited_to_the_longest_length() {
        // Fibonacci counts make the optimal code as deep as there are symbols.
        let mut counts = vec![1u32, 1];
        while counts.len() < 25 {
            counts.push(counts[counts.len() - 1] + counts[counts.len() - 2]);
        }
        for limit in [7, 9, 15] {
            let mut lengths = vec![0; counts.len()];
            code_lengths(&counts, limit, &mut lengths);
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
        canonical_codes(&lengths, &mut codes);
        let expected = [0b010, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111];
        for ((reversed, length), (code, want_length)) in
            codes.iter().zip(expected.iter().zip(lengths))
        {
            assert_eq!(*length, want_length);
            assert_eq!(reverse(*reversed, *length), *code);
        }
    }
}
