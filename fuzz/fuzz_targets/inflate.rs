//! The permessage-deflate paths that face the network: arbitrary `Sec-WebSocket-Extensions`
//! offers into the negotiation, and arbitrary compressed payloads into the inflater.
//!
//! Input: one byte splitting the rest into an offer and a payload, then both. Checked: nothing
//! panics; an accepted offer's response header negotiates to the same agreement (what the server
//! answers is an offer it would accept); an inflated message never exceeds the limit, and text
//! is UTF-8; and whatever the inflater accepts, compressing it again and inflating gives it back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsreactor::ws::deflate::{compress, negotiate};
use wsreactor::ws::{Compressed, Message};

/// Small, so that bombs hit it quickly.
const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (offer, payload) = rest.split_at(usize::from(split).min(rest.len()));

    if let Some(agreement) = negotiate([offer]) {
        let answer = agreement.response_header();
        assert_eq!(negotiate([answer.as_bytes()]), Some(agreement), "{answer}");
        assert!((9..=15).contains(&agreement.server_window_bits()));
    }

    let text = split & 1 == 1;
    let compressed = Compressed {
        text,
        payload: payload.to_vec(),
    };
    let Ok(message) = compressed.inflate(LIMIT) else {
        return;
    };
    assert!(message.len() <= LIMIT);
    assert_eq!(matches!(message, Message::Text(_)), text);
    let window_bits = 9 + split % 7;
    let again = Compressed {
        text,
        payload: compress(message.as_bytes(), window_bits, u32::from(split % 10)),
    };
    assert_eq!(again.inflate(LIMIT).as_ref(), Ok(&message));
});
