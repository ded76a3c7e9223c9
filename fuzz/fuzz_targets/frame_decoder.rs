//! Arbitrary bytes, in arbitrary chunkings, into the WebSocket frame decoder and message
//! assembler. The first byte picks the chunk size; the decoder must never panic, never consume
//! more than it was given, and never leave more than an incomplete frame header unconsumed.
//! Compressed messages it yields are inflated too (see also the `inflate` target).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsreactor::ws::{Decoded, DecoderLimits, MessageDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, wire)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let limits = DecoderLimits {
        max_message_size: 64 * 1024,
        max_fragments: 64,
        max_frame_size: 32 * 1024,
        // Odd chunk sizes decode as if permessage-deflate was negotiated (RSV1 allowed).
        deflate: chunk % 2 == 1,
    };
    let mut decoder = MessageDecoder::new();
    let mut buffer = Vec::new();
    for piece in wire.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            let Ok((consumed, item)) = decoder.decode(&buffer, &limits) else {
                return;
            };
            assert!(consumed <= buffer.len());
            if let Some(Decoded::Compressed(compressed)) = &item {
                if let Ok(message) = compressed.inflate(limits.max_message_size) {
                    assert!(message.len() <= limits.max_message_size);
                }
            }
            buffer.drain(..consumed);
            if item.is_none() && consumed == 0 {
                break;
            }
        }
        assert!(buffer.len() < 14);
    }
});
