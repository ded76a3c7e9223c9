//! The encoder's output inflated by zlib-rs as peers inflate it: every length, window and
//! block choice, and the window's limit checked a few bytes of output at a time.

use super::*;
use flate2::{Decompress, FlushDecompress, Status};

const BOTH: [Codes; 2] = [Codes::Fixed, Codes::Fitted];

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
    let mut scratch = Scratch::default();
    for (bits, codes) in (9..=15u8).flat_map(|bits| BOTH.map(|codes| (bits, codes))) {
        let window = 1usize << bits;
        for gap in [window - 300, window - 200, window - 199, window - 198] {
            let block = noise(200, u64::from(bits));
            let mut payload = block.clone();
            payload.extend_from_slice(&noise(gap, 7));
            payload.extend_from_slice(&block);
            let deflated = deflate(&payload, bits, codes, &mut scratch);
            let inflated = inflate_through_the_window(&deflated, bits);
            assert!(
                inflated.as_ref() == Some(&payload),
                "{bits} {gap} {codes:?}"
            );
            // Within the window the repeat was found: it cost far less than the same
            // payload ending in 200 fresh bytes of noise.
            let mut unrepeated = payload[..payload.len() - 200].to_vec();
            unrepeated.extend_from_slice(&noise(200, 99));
            let reference = deflate(&unrepeated, bits, codes, &mut scratch).len();
            let repeat_found = deflated.len() + 150 < reference;
            assert_eq!(repeat_found, gap + 200 <= window, "{bits} {gap} {codes:?}");
        }
    }
}

#[test]
fn runs_lengths_and_sizes_round_trip() {
    // A thread's scratch after other messages: stale entries must not matter.
    let mut scratch = Scratch {
        table: vec![7; 100],
        tokens: vec![9; 10],
        ..Scratch::default()
    };
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
        for (bits, codes) in [9, 15].into_iter().flat_map(|b| BOTH.map(|c| (b, c))) {
            let deflated = deflate(payload, bits, codes, &mut scratch);
            assert_eq!(inflate(&deflated, bits, payload.len()), *payload);
        }
    }
    // A long run costs a few bits per 258 bytes.
    for codes in BOTH {
        assert!(deflate(&vec![b'x'; 100_000], 15, codes, &mut scratch).len() < 1_000);
    }
}

/// JSON-like text: its own code saves a fifth; a short text in the fixed code.
#[test]
fn a_code_made_for_the_message_where_it_is_shorter() {
    let mut scratch = Scratch::default();
    let json: Vec<u8> = (0..40)
        .flat_map(|i: u32| {
            format!(r#"{{"id":{i},"user":"u{}","x":{}}},"#, i % 7, i * 37).into_bytes()
        })
        .collect();
    let fixed = deflate(&json, 15, Codes::Fixed, &mut scratch);
    let fitted = deflate(&json, 15, Codes::Fitted, &mut scratch);
    // BTYPE, the second and third bits: 01 fixed, 10 dynamic.
    assert_eq!(fixed[0] & 0b110, 0b010);
    assert_eq!(fitted[0] & 0b110, 0b100);
    assert!(
        fitted.len() * 10 < fixed.len() * 9,
        "{} {}",
        fitted.len(),
        fixed.len()
    );
    assert_eq!(inflate(&fitted, 15, json.len()), json);
    let short = deflate(b"hello, hello", 15, Codes::Fitted, &mut scratch);
    assert_eq!(
        short,
        deflate(b"hello, hello", 15, Codes::Fixed, &mut scratch)
    );
}

/// Matches of every length, from near and far: a fitted code has long and short runs of
/// code lengths for every alphabet.
#[test]
fn matches_of_every_length_and_many_distances_round_trip_in_a_fitted_code() {
    let mut scratch = Scratch::default();
    let mut payload: Vec<u8> = (0..=255u8).collect();
    let distances = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577, 32768,
    ];
    let mut length = 4;
    for round in 0..600 {
        let back = distances[round % distances.len()].min(payload.len());
        let start = payload.len() - back;
        for k in 0..length {
            // Overlapping, as deflate's copies are.
            payload.push(payload[start + k]);
        }
        payload.extend_from_slice(&noise(3, payload.len() as u64));
        length = if length >= 258 { 4 } else { length + 1 };
    }
    for bits in [9, 12, 15] {
        let deflated = deflate(&payload, bits, Codes::Fitted, &mut scratch);
        assert_eq!(deflated[0] & 0b110, 0b100);
        assert_eq!(inflate(&deflated, bits, payload.len()), payload);
    }
}

/// A message longer than a block's tokens: several blocks, each in its own codes, and the
/// scratch space stays one block's.
#[test]
fn a_long_message_is_written_in_blocks_of_its_own_codes() {
    let mut scratch = Scratch::default();
    // Text, then noise, then text: the middle block's best code is the fixed one or its own.
    let text: Vec<u8> = (0..3_000u32)
        .flat_map(|i| format!("{{\"id\":{i},\"x\":{}}},", i * 7).into_bytes())
        .collect();
    let mut payload = text.clone();
    payload.extend_from_slice(&noise(3 * BLOCK_TOKENS, 8));
    payload.extend_from_slice(&text);
    for bits in [9, 15] {
        let deflated = deflate(&payload, bits, Codes::Fitted, &mut scratch);
        assert_eq!(inflate(&deflated, bits, payload.len()), payload);
        assert_eq!(scratch.tokens.len(), BLOCK_TOKENS);
        let fixed = deflate(&payload, bits, Codes::Fixed, &mut scratch);
        assert!(
            deflated.len() < fixed.len(),
            "{} {}",
            deflated.len(),
            fixed.len()
        );
    }
}
