//! Unit tests of [`MessageDecoder`](super::MessageDecoder): every decoding rule. The streaming
//! contract and the split-point property test are in the `stream` submodule.
//!
//! Frames enter through the client-side encoder [`masked_frame`] and are fed to a decoder whole,
//! split at every point, or byte by byte, the way the reactor would feed its read buffer.

use super::*;
use crate::ws::close::CloseCode;
use crate::ws::header::MAX_HEADER_LEN;

mod stream;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUE: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// Client-side encoder: one masked frame with the shortest length encoding.
fn masked_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// What feeding a stream gives: every item, or the error.
type Outcome = Result<Vec<Decoded>, WsError>;

fn limits() -> DecoderLimits {
    DecoderLimits::default()
}

/// Feeds `chunks` the way the reactor does (keeping back only unconsumed bytes, calling until
/// `(0, None)`), checks the streaming contract after each chunk, and returns every item.
fn feed<'a>(
    decoder: &mut MessageDecoder,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    limits: &DecoderLimits,
) -> Outcome {
    let mut carry = Vec::new();
    let mut items = Vec::new();
    for chunk in chunks {
        carry.extend_from_slice(chunk);
        let mut at = 0;
        loop {
            let (used, item) = decoder.decode(&carry[at..], limits)?;
            at += used;
            match item {
                Some(item) => items.push(item),
                None if used == 0 => break,
                None => {}
            }
        }
        // Only an incomplete header may be left unconsumed.
        let left = &carry[at..];
        assert!(left.len() < MAX_HEADER_LEN, "{} bytes left", left.len());
        assert_eq!(parse_client_header(left, false), Ok(None));
        carry.drain(..at);
    }
    assert!(carry.is_empty(), "stream ended inside a frame header");
    Ok(items)
}

fn decode_whole(stream: &[u8]) -> Outcome {
    let mut decoder = MessageDecoder::new();
    let items = feed(&mut decoder, [stream], &limits())?;
    assert!(decoder.is_idle());
    Ok(items)
}

fn text(s: &str) -> Decoded {
    Decoded::Message(Message::Text(s.into()))
}

fn binary(b: &[u8]) -> Decoded {
    Decoded::Message(Message::Binary(b.to_vec()))
}

fn ping(b: &[u8]) -> Decoded {
    Decoded::Ping(ControlPayload::new(b).expect("short payload"))
}

fn protocol(rule: &'static str) -> Outcome {
    Err(WsError::Protocol(rule))
}

#[test]
fn single_frame_messages() {
    let table: [(Vec<u8>, Decoded); 6] = [
        (masked_frame(true, TEXT, b"hello", MASK), text("hello")),
        (
            masked_frame(true, TEXT, "héllo 🦀".as_bytes(), MASK),
            text("héllo 🦀"),
        ),
        (masked_frame(true, TEXT, b"", MASK), text("")),
        (
            masked_frame(true, BINARY, &[0, 1, 255], MASK),
            binary(&[0, 1, 255]),
        ),
        (masked_frame(true, BINARY, b"", MASK), binary(b"")),
        (
            masked_frame(true, BINARY, &[7; 300], MASK),
            binary(&[7; 300]),
        ),
    ];
    for (frame, expected) in table {
        let mut decoder = MessageDecoder::new();
        let (used, item) = decoder.decode(&frame, &limits()).expect("valid frame");
        assert_eq!((used, item), (frame.len(), Some(expected)));
        assert!(decoder.is_idle());
        assert_eq!(decoder.decode(&[], &limits()), Ok((0, None)));
    }
}

#[test]
fn whole_frame_allocates_exactly_its_payload() {
    let frame = masked_frame(true, BINARY, &[9; 1000], MASK);
    let (_, item) = MessageDecoder::new()
        .decode(&frame, &limits())
        .expect("valid");
    let Some(Decoded::Message(Message::Binary(data))) = item else {
        panic!("expected binary, got {item:?}");
    };
    assert_eq!(data.capacity(), 1000);
}

#[test]
fn sixty_four_bit_length() {
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let frame = masked_frame(true, BINARY, &payload, MASK);
    assert_eq!(frame[1], 0x80 | 127);
    assert_eq!(decode_whole(&frame), Ok(vec![binary(&payload)]));
    let mut decoder = MessageDecoder::new();
    let items = feed(&mut decoder, frame.chunks(1000), &limits());
    assert_eq!(items, Ok(vec![binary(&payload)]));
    assert!(decoder.is_idle());
}

#[test]
fn header_rules() {
    let mut rsv = masked_frame(true, TEXT, b"x", MASK);
    rsv[0] |= 0x40;
    let mut unmasked = masked_frame(true, TEXT, b"", MASK);
    unmasked[1] &= 0x7F;
    unmasked.truncate(2);
    let mut msb = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1];
    msb.extend_from_slice(&MASK);
    let table: [(Vec<u8>, &str); 6] = [
        (rsv, "reserved bit set without a negotiated extension"),
        (unmasked, "frame is not masked"),
        (
            msb,
            "64-bit payload length has its most significant bit set",
        ),
        (
            masked_frame(true, PING, &[0; 126], MASK),
            "control frame payload longer than 125 bytes",
        ),
        (
            masked_frame(false, PING, b"", MASK),
            "control frame is fragmented",
        ),
        (
            masked_frame(false, CLOSE, b"", MASK),
            "control frame is fragmented",
        ),
    ];
    for (frame, rule) in table {
        assert_eq!(decode_whole(&frame), protocol(rule), "{frame:?}");
    }
    for opcode in (0x3..=0x7).chain(0xB..=0xF) {
        let frame = masked_frame(true, opcode, b"", MASK);
        assert_eq!(
            decode_whole(&frame),
            protocol("reserved opcode"),
            "{opcode:#x}"
        );
    }
}

#[test]
fn huge_announced_length_fails_before_allocating() {
    let mut header = vec![0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    header.extend_from_slice(&MASK);
    let mut decoder = MessageDecoder::new();
    let limits = DecoderLimits {
        max_message_size: usize::MAX,
        max_frame_size: usize::MAX,
        max_fragments: 10,
        deflate: false,
    };
    // Even with no size limit, only what arrives is reserved (at most RESERVE_AHEAD ahead).
    if u64::try_from(usize::MAX).is_ok_and(|max| max < (1 << 63) - 1) {
        assert!(decoder.decode(&header, &limits).is_err());
    } else {
        assert_eq!(decoder.decode(&header, &limits), Ok((14, None)));
        let reserved = decoder
            .state
            .as_ref()
            .and_then(|state| state.message.as_ref())
            .map(|message| message.data.capacity());
        assert!(
            reserved.is_some_and(|cap| cap <= 2 * RESERVE_AHEAD),
            "{reserved:?}"
        );
    }
    let small = DecoderLimits {
        max_message_size: 1 << 20,
        max_frame_size: usize::MAX,
        max_fragments: 10,
        deflate: false,
    };
    let mut decoder = MessageDecoder::new();
    assert_eq!(
        decoder.decode(&header, &small),
        Err(WsError::MessageTooBig { limit: 1 << 20 })
    );
    assert!(decoder.is_idle(), "nothing was allocated for the frame");
}

#[test]
fn message_size_limit() {
    let limits = DecoderLimits {
        max_message_size: 10,
        max_frame_size: usize::MAX,
        max_fragments: 100,
        deflate: false,
    };
    let too_big = Err(WsError::MessageTooBig { limit: 10 });
    let mut decoder = MessageDecoder::new();
    let exact = masked_frame(true, BINARY, &[1; 10], MASK);
    assert_eq!(
        feed(&mut decoder, [&exact[..]], &limits),
        Ok(vec![binary(&[1; 10])])
    );

    // One byte over, detected from the header alone.
    let over = masked_frame(true, BINARY, &[1; 11], MASK);
    assert_eq!(MessageDecoder::new().decode(&over[..6], &limits), too_big);

    // Over across fragments: the fragment that would push the total past the limit fails.
    let mut stream = masked_frame(false, TEXT, b"12345", MASK);
    stream.extend(masked_frame(false, CONTINUE, b"6789", MASK));
    let third = stream.len();
    stream.extend(masked_frame(true, CONTINUE, b"ab", MASK));
    let mut decoder = MessageDecoder::new();
    assert_eq!(feed(&mut decoder, [&stream[..third]], &limits), Ok(vec![]));
    assert_eq!(decoder.decode(&stream[third..third + 6], &limits), too_big);
}

#[test]
fn fragment_count_limit() {
    let limits = DecoderLimits {
        max_message_size: 1000,
        max_frame_size: usize::MAX,
        max_fragments: 3,
        deflate: false,
    };
    let fragments = |count: usize| {
        let mut stream = masked_frame(false, BINARY, b"a", MASK);
        for _ in 2..count {
            stream.extend(masked_frame(false, CONTINUE, b"b", MASK));
        }
        stream.extend(masked_frame(true, CONTINUE, b"c", MASK));
        stream
    };
    let mut decoder = MessageDecoder::new();
    assert_eq!(
        feed(&mut decoder, [&fragments(3)[..]], &limits),
        Ok(vec![binary(b"abc")])
    );
    let mut decoder = MessageDecoder::new();
    assert_eq!(
        feed(&mut decoder, [&fragments(4)[..]], &limits),
        Err(WsError::MessageTooBig { limit: 3 })
    );
    // An unfragmented message counts as one frame.
    let one = DecoderLimits {
        max_message_size: 1000,
        max_frame_size: usize::MAX,
        max_fragments: 1,
        deflate: false,
    };
    let frame = masked_frame(true, TEXT, b"x", MASK);
    assert_eq!(
        MessageDecoder::new().decode(&frame, &one),
        Ok((frame.len(), Some(text("x"))))
    );
}

#[test]
fn fragmentation_rules() {
    let cont = masked_frame(true, CONTINUE, b"x", MASK);
    assert_eq!(
        decode_whole(&cont),
        protocol("continuation frame without a message in progress")
    );
    let nested = "new data frame while a fragmented message is in progress";
    for opcode in [TEXT, BINARY] {
        for fin in [true, false] {
            let mut stream = masked_frame(false, TEXT, b"a", MASK);
            stream.extend(masked_frame(fin, opcode, b"b", MASK));
            assert_eq!(decode_whole(&stream), protocol(nested), "{opcode} {fin}");
        }
    }
}

#[test]
fn fragmented_text_with_ping_in_the_middle() {
    let mut stream = masked_frame(false, TEXT, b"Hel", [1, 2, 3, 4]);
    stream.extend(masked_frame(true, PING, b"are you there", [5, 6, 7, 8]));
    stream.extend(masked_frame(false, CONTINUE, b"lo, ", [9, 9, 9, 9]));
    stream.extend(masked_frame(true, PONG, b"", [0, 0, 0, 1]));
    stream.extend(masked_frame(true, CONTINUE, b"world", [4, 3, 2, 1]));
    let expected = vec![
        ping(b"are you there"),
        Decoded::Pong(ControlPayload::new(b"").expect("empty")),
        text("Hello, world"),
    ];
    assert_eq!(decode_whole(&stream), Ok(expected));
}

#[test]
fn zero_length_fragments() {
    let mut stream = masked_frame(false, TEXT, b"", MASK);
    stream.extend(masked_frame(false, CONTINUE, b"", MASK));
    stream.extend(masked_frame(true, CONTINUE, b"", MASK));
    stream.extend(masked_frame(false, BINARY, b"", MASK));
    stream.extend(masked_frame(false, CONTINUE, b"ab", MASK));
    stream.extend(masked_frame(true, CONTINUE, b"", MASK));
    assert_eq!(decode_whole(&stream), Ok(vec![text(""), binary(b"ab")]));
}

#[test]
fn text_utf8_rules() {
    let crab = "🦀".as_bytes();
    let mut split_char = masked_frame(false, TEXT, &[b'a', crab[0], crab[1]], MASK);
    split_char.extend(masked_frame(true, CONTINUE, &crab[2..], MASK));
    let mut dangling = masked_frame(false, TEXT, b"a", MASK);
    dangling.extend(masked_frame(true, CONTINUE, &crab[..3], MASK));
    let mut bad_first = masked_frame(false, TEXT, &[0xFF], MASK);
    bad_first.extend(masked_frame(true, CONTINUE, b"ok", MASK));
    let table: [(Vec<u8>, Outcome); 6] = [
        (split_char, Ok(vec![text("a🦀")])),
        (dangling, Err(WsError::InvalidUtf8)),
        (bad_first, Err(WsError::InvalidUtf8)),
        (
            masked_frame(true, TEXT, &crab[..2], MASK),
            Err(WsError::InvalidUtf8),
        ),
        (
            masked_frame(true, TEXT, &[0xC0, 0x80], MASK),
            Err(WsError::InvalidUtf8),
        ),
        // Binary messages are not checked.
        (
            masked_frame(true, BINARY, &[0xFF], MASK),
            Ok(vec![binary(&[0xFF])]),
        ),
    ];
    for (stream, expected) in table {
        assert_eq!(decode_whole(&stream), expected, "{stream:?}");
        // Byte by byte gives the same outcome.
        let mut decoder = MessageDecoder::new();
        assert_eq!(feed(&mut decoder, stream.chunks(1), &limits()), expected);
    }
}

#[test]
fn utf8_fails_fast_before_the_rest_arrives() {
    let mut payload = vec![b'o', b'k', 0xFF];
    payload.extend_from_slice(&[b'x'; 100]);
    let frame = masked_frame(true, TEXT, &payload, MASK);
    let mut decoder = MessageDecoder::new();
    // Header (6 bytes) plus the first 3 payload bytes: already invalid.
    assert_eq!(
        decoder.decode(&frame[..9], &limits()),
        Err(WsError::InvalidUtf8)
    );

    // The same inside a later fragment whose first chunk is invalid.
    let mut stream = masked_frame(false, TEXT, b"fine", MASK);
    let start = stream.len();
    stream.extend(masked_frame(true, CONTINUE, &[0x80; 50], MASK));
    let mut decoder = MessageDecoder::new();
    assert_eq!(
        feed(&mut decoder, [&stream[..start]], &limits()),
        Ok(vec![])
    );
    assert_eq!(
        decoder.decode(&stream[start..start + 7], &limits()),
        Err(WsError::InvalidUtf8)
    );
}

#[test]
fn close_frames() {
    let close = |code: CloseCode, reason: &str| {
        Ok(vec![Decoded::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))])
    };
    let not_allowed = protocol("close code not allowed on the wire");
    let table: [(&[u8], Outcome); 8] = [
        (b"", Ok(vec![Decoded::Close(None)])),
        (&[0x03], protocol("close frame payload of 1 byte")),
        (&[0x03, 0xE8], close(CloseCode::Normal, "")),
        (b"\x03\xE9g\xC3\xB6ne", close(CloseCode::Away, "göne")),
        (b"\x0F\xA0app", close(CloseCode::Other(4000), "app")),
        (&[0x03, 0xED], not_allowed.clone()),
        (&[0x13, 0x88], not_allowed),
        (&[0x03, 0xE8, 0xC3], Err(WsError::InvalidUtf8)),
    ];
    for (payload, expected) in table {
        let frame = masked_frame(true, CLOSE, payload, MASK);
        assert_eq!(decode_whole(&frame), expected, "{payload:?}");
        let mut decoder = MessageDecoder::new();
        assert_eq!(feed(&mut decoder, frame.chunks(1), &limits()), expected);
    }
}

#[test]
fn decoding_continues_after_close() {
    let mut stream = masked_frame(true, CLOSE, &[0x03, 0xE8], MASK);
    stream.extend(masked_frame(true, TEXT, b"late", MASK));
    let expected = vec![
        Decoded::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: String::new(),
        })),
        text("late"),
    ];
    assert_eq!(decode_whole(&stream), Ok(expected));
}

#[test]
fn control_payload_basics() {
    assert!(ControlPayload::new(&[0; 126]).is_none());
    let full = ControlPayload::new(&[7; 125]).expect("125 bytes fit");
    assert_eq!(full.as_bytes(), &[7; 125][..]);
    assert_eq!(
        format!("{:?}", ping(b"hi")),
        "Ping(ControlPayload([104, 105]))"
    );
}
