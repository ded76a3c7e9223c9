//! The encoder behind `compression_level` 1 and 2 (`src/ws/deflate/encoder.rs`): whatever a
//! handler sends must inflate back to itself in a peer that keeps only the window it agreed to.
//!
//! Input: one byte choosing the window (9..=15 bits) and the level (its high bit), then the
//! payload. Checked: nothing panics;
//! the output is never longer than stored blocks would be; and an inflater with that window,
//! given the tail and a few bytes of room at a time (so that every match is copied out of its
//! window, not out of the output of the same call), reads the payload back, byte for byte,
//! consuming the whole message.
#![no_main]

use flate2::{Decompress, FlushDecompress};
use libfuzzer_sys::fuzz_target;
use wsreactor::ws::deflate::compress;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, payload)) = data.split_first() else {
        return;
    };
    let window_bits = 9 + choice % 7;
    let level = 1 + u32::from(choice >> 7);
    let deflated = compress(payload, window_bits, level);
    assert!(deflated.len() <= payload.len() + payload.len().div_ceil(65_535) * 5 + 1);

    let mut stream = deflated;
    stream.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    let mut inflater = Decompress::new_with_window_bits(false, window_bits);
    let mut out = Vec::new();
    let room = 1 + usize::from(choice / 7) % 64;
    while inflater.total_in() < stream.len() as u64 {
        out.reserve_exact(room);
        let before = (inflater.total_in(), out.len());
        let rest = &stream[inflater.total_in() as usize..];
        inflater
            .decompress_vec(rest, &mut out, FlushDecompress::Sync)
            .expect("a valid deflate stream within the window");
        assert!(out.len() <= payload.len());
        assert_ne!(before, (inflater.total_in(), out.len()), "no progress");
    }
    assert!(out == payload);
});
