//! Tests of the streaming contract of [`MessageDecoder`](super::super::MessageDecoder): what is
//! consumed, what is kept, when it is idle, and a property test that every way of splitting a
//! stream into reads decodes to the same items.
//!
//! Streams enter through the parent module's client-side encoder (`masked_frame`) and its
//! reactor-like feeding loop (`feed`), which checks the contract after every read.

use super::*;

#[test]
fn idle_decoder_is_small() {
    // One Option<Box<State>>: a single pointer thanks to the null-pointer niche.
    assert!(std::mem::size_of::<MessageDecoder>() <= 48);
    assert_eq!(
        std::mem::size_of::<MessageDecoder>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn returns_after_one_item() {
    let mut stream = masked_frame(true, TEXT, b"one", MASK);
    let first = stream.len();
    stream.extend(masked_frame(true, TEXT, b"two", MASK));
    let mut decoder = MessageDecoder::new();
    assert_eq!(
        decoder.decode(&stream, &limits()),
        Ok((first, Some(text("one"))))
    );
    assert_eq!(
        decoder.decode(&stream[first..], &limits()),
        Ok((stream.len() - first, Some(text("two"))))
    );
}

#[test]
fn partial_payload_is_consumed_and_kept() {
    let frame = masked_frame(true, BINARY, &[5; 200], MASK);
    let mut decoder = MessageDecoder::new();
    assert_eq!(decoder.decode(&frame[..100], &limits()), Ok((100, None)));
    assert!(!decoder.is_idle());
    assert_eq!(decoder.decode(&[], &limits()), Ok((0, None)));
    assert_eq!(
        decoder.decode(&frame[100..], &limits()),
        Ok((frame.len() - 100, Some(binary(&[5; 200]))))
    );
    assert!(decoder.is_idle());

    // The same for a control frame.
    let frame = masked_frame(true, PING, b"ping payload", MASK);
    assert_eq!(decoder.decode(&frame[..9], &limits()), Ok((9, None)));
    assert!(!decoder.is_idle());
    assert_eq!(
        decoder.decode(&frame[9..], &limits()),
        Ok((frame.len() - 9, Some(ping(b"ping payload"))))
    );
    assert!(decoder.is_idle());
}

#[test]
fn incomplete_header_is_left_unconsumed() {
    let frame = masked_frame(true, BINARY, &[1; 70_000], MASK);
    let mut decoder = MessageDecoder::new();
    for cut in 0..14 {
        assert_eq!(
            decoder.decode(&frame[..cut], &limits()),
            Ok((0, None)),
            "cut {cut}"
        );
        assert!(decoder.is_idle());
    }
}

#[test]
fn idle_after_each_complete_message() {
    let mut stream = masked_frame(false, BINARY, b"ab", MASK);
    let ping_at = stream.len();
    stream.extend(masked_frame(true, PING, b"in between", MASK));
    let last_at = stream.len();
    stream.extend(masked_frame(true, CONTINUE, b"cd", MASK));
    let mut decoder = MessageDecoder::new();
    assert_eq!(
        decoder.decode(&stream[..ping_at], &limits()),
        Ok((ping_at, None))
    );
    assert!(!decoder.is_idle(), "a fragmented message is held");
    // A partial control frame between fragments, then the rest of it.
    assert_eq!(
        decoder.decode(&stream[ping_at..ping_at + 8], &limits()),
        Ok((8, None))
    );
    let (used, item) = decoder
        .decode(&stream[ping_at + 8..], &limits())
        .expect("valid");
    assert_eq!(
        (ping_at + 8 + used, item),
        (last_at, Some(ping(b"in between")))
    );
    assert!(!decoder.is_idle(), "the fragmented message is still held");
    let (used, item) = decoder
        .decode(&stream[last_at..], &limits())
        .expect("valid");
    assert_eq!(
        (last_at + used, item),
        (stream.len(), Some(binary(b"abcd")))
    );
    assert!(decoder.is_idle());
}

/// A stream mixing every kind of frame, and the items it decodes to.
fn mixed_stream() -> (Vec<u8>, Vec<Decoded>) {
    let words = "héllo wörld 🦀!".as_bytes();
    let big: Vec<u8> = (0..300u32).map(|i| (i * 13) as u8).collect();
    let frames = [
        masked_frame(true, TEXT, b"hello", [1, 2, 3, 4]),
        masked_frame(true, BINARY, &big, [0xAA, 0xBB, 0xCC, 0xDD]),
        // Fragmented text split inside multi-byte characters, with control frames between.
        masked_frame(false, TEXT, &words[..2], [9, 8, 7, 6]),
        masked_frame(true, PING, b"p1", [4, 4, 4, 4]),
        masked_frame(false, CONTINUE, &words[2..15], [1, 0, 1, 0]),
        masked_frame(true, PONG, b"", [7, 7, 7, 7]),
        masked_frame(true, CONTINUE, &words[15..], [0xF0, 0x0F, 0xF0, 0x0F]),
        masked_frame(true, BINARY, b"", [3, 1, 4, 1]),
        // Fragmented binary with an empty middle fragment.
        masked_frame(false, BINARY, b"xy", [5, 9, 2, 6]),
        masked_frame(false, CONTINUE, b"", [5, 3, 5, 8]),
        masked_frame(true, CONTINUE, &big[..130], [9, 7, 9, 3]),
        masked_frame(true, PING, &[0x5A; 125], [2, 3, 8, 4]),
        masked_frame(true, CLOSE, b"\x03\xE8bye", [6, 2, 6, 4]),
        masked_frame(true, TEXT, b"after close", [3, 3, 8, 3]),
    ];
    let mut xy_big = b"xy".to_vec();
    xy_big.extend_from_slice(&big[..130]);
    let expected = vec![
        text("hello"),
        binary(&big),
        ping(b"p1"),
        Decoded::Pong(ControlPayload::new(b"").expect("empty")),
        text("héllo wörld 🦀!"),
        binary(b""),
        binary(&xy_big),
        ping(&[0x5A; 125]),
        Decoded::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })),
        text("after close"),
    ];
    (frames.concat(), expected)
}

#[test]
fn property_any_split_decodes_the_same() {
    let (stream, expected) = mixed_stream();
    assert_eq!(decode_whole(&stream), Ok(expected.clone()));

    for split in 0..=stream.len() {
        let mut decoder = MessageDecoder::new();
        let (a, b) = stream.split_at(split);
        assert_eq!(
            feed(&mut decoder, [a, b], &limits()),
            Ok(expected.clone()),
            "split {split}"
        );
        assert!(decoder.is_idle());
    }

    for size in 1..=17 {
        let mut decoder = MessageDecoder::new();
        let items = feed(&mut decoder, stream.chunks(size), &limits());
        assert_eq!(items, Ok(expected.clone()), "chunks of {size}");
        assert!(decoder.is_idle());
    }
}
