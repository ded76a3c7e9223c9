//! Property tests for the two parsers that face the network, on stable Rust and inside
//! `cargo test`: a small seeded PRNG generates thousands of cases, so every run checks the same
//! cases and a failure names its seed.
//!
//! - Decoding a WebSocket stream gives the same items however the bytes are split, and when
//!   payloads are read straight into their message, assembled in vectors full of other bytes.
//! - encode → decode is the identity (server encoder, masked the way a client would).
//! - No input makes the frame decoder or the HTTP parser panic, however it is chunked.
//! - No header bytes make the origin check panic; a page's own origin is always accepted, however
//!   its case and default port are written, and another port never is.

use wsreactor::http::origin::check_origin;
use wsreactor::http::{
    ForwardedHost, HttpLimits, OriginCheck, OriginPolicy, OriginRefusal, Parsed, Request,
    RequestParser, UpgradeOrigin,
};
use wsreactor::ws::{Decoded, DecoderLimits, Message, MessageDecoder, OpCode, encode_frame};

/// xorshift64*: tiny, deterministic, good enough to pick sizes and bytes.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn text(&mut self, chars: usize) -> String {
        const ALPHABET: &[char] = &['a', 'Z', ' ', 'é', 'ß', '€', '中', '😀', '\u{10FFFF}', '\0'];
        (0..chars)
            .map(|_| ALPHABET[self.below(ALPHABET.len())])
            .collect()
    }
    /// A random text (mixed-width characters) or binary message of a random size.
    fn message(&mut self, text: bool) -> Message {
        let size = self.size();
        if text {
            Message::Text(self.text(size / 3))
        } else {
            Message::Binary(self.bytes(size))
        }
    }

    /// A size skewed towards small values but reaching past the 7- and 16-bit length forms.
    fn size(&mut self) -> usize {
        match self.below(10) {
            0 => 0,
            1..=5 => self.below(126),
            6..=8 => 126 + self.below(2000),
            _ => 65_530 + self.below(20),
        }
    }
}

/// A client frame masked with a random key, as a browser would send it.
fn client_frame(rng: &mut Rng, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = (rng.next() as u32).to_be_bytes();
    wsreactor::fuzzing::masked_frame(fin, opcode, payload, mask)
}

/// A random stream of messages, fragmented at random with pings between fragments; returns the
/// wire bytes and the items a decoder must produce.
fn random_stream(rng: &mut Rng) -> (Vec<u8>, Vec<Decoded>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..1 + rng.below(6) {
        let text = rng.below(2) == 0;
        let message = rng.message(text);
        let bytes = message.as_bytes().to_vec();
        let fragments = 1 + rng.below(4);
        let mut cuts: Vec<usize> = (0..fragments - 1)
            .map(|_| rng.below(bytes.len() + 1))
            .collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        for (i, pair) in cuts.windows(2).enumerate() {
            let opcode = match (i, &message) {
                (0, Message::Text(_)) => 0x1,
                (0, Message::Binary(_)) => 0x2,
                _ => 0x0,
            };
            let last = i == cuts.len() - 2;
            wire.extend(client_frame(rng, last, opcode, &bytes[pair[0]..pair[1]]));
            if !last && rng.below(3) == 0 {
                let ping = {
                    let n = rng.below(126);
                    rng.bytes(n)
                };
                wire.extend(client_frame(rng, true, 0x9, &ping));
                expected.push(Decoded::Ping(
                    wsreactor::ws::ControlPayload::new(&ping).expect("<= 125 bytes"),
                ));
            }
        }
        expected.push(Decoded::Message(message));
    }
    (wire, expected)
}

fn limits() -> DecoderLimits {
    DecoderLimits {
        max_message_size: 1 << 20,
        max_fragments: 1000,
        max_frame_size: 1 << 20,
        deflate: false,
    }
}

/// Decodes what `buffer` holds into `items`, new messages assembled in vectors from
/// `allocate`; what is consumed leaves the buffer, an incomplete header stays at its front.
fn decode_buffered(
    decoder: &mut MessageDecoder,
    buffer: &mut Vec<u8>,
    allocate: &mut dyn FnMut(usize) -> Vec<u8>,
    items: &mut Vec<Decoded>,
) -> Result<(), wsreactor::ws::WsError> {
    loop {
        let (consumed, item) = decoder.decode_with(buffer, &limits(), allocate)?;
        buffer.drain(..consumed);
        match item {
            Some(item) => items.push(item),
            None if consumed == 0 => return Ok(()),
            None => {}
        }
    }
}

/// Feeds `wire` in chunks whose sizes come from `chunk`, the way the reactor does: unconsumed
/// bytes stay at the front of the buffer.
fn decode_chunked(
    wire: &[u8],
    mut chunk: impl FnMut() -> usize,
) -> Result<Vec<Decoded>, wsreactor::ws::WsError> {
    let mut decoder = MessageDecoder::new();
    let mut items = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut offset = 0;
    while offset < wire.len() {
        let end = (offset + chunk().max(1)).min(wire.len());
        buffer.extend_from_slice(&wire[offset..end]);
        offset = end;
        decode_buffered(
            &mut decoder,
            &mut buffer,
            &mut Vec::with_capacity,
            &mut items,
        )?;
    }
    assert!(
        buffer.is_empty(),
        "bytes left over at the end of a complete stream"
    );
    assert!(
        decoder.is_idle(),
        "decoder holds state after a complete stream"
    );
    Ok(items)
}

#[test]
fn decoding_does_not_depend_on_how_the_stream_is_split() {
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
        let (wire, expected) = random_stream(&mut rng);
        let whole = decode_chunked(&wire, || usize::MAX).expect("valid stream");
        assert_eq!(whole, expected, "seed {seed}: whole stream");
        let mut sizes = Rng::new(seed ^ 0xABCD);
        let max = 1 + sizes.below(300);
        let chunked = decode_chunked(&wire, || 1 + sizes.below(max)).expect("valid stream");
        assert_eq!(chunked, expected, "seed {seed}: chunks of at most {max}");
    }
}

/// Reads `wire` as the loop does when it reads large payloads straight into their message:
/// while nothing is buffered and the decoder lends room (at least `min` bytes of a data frame
/// still to come), a read of random size goes there (some bring nothing); otherwise up to 300
/// bytes go into a read buffer. Every message is assembled in a vector full of other bytes,
/// as the loop's pool of written payloads hands them back.
fn decode_direct(
    wire: &[u8],
    rng: &mut Rng,
    min: usize,
) -> Result<Vec<Decoded>, wsreactor::ws::WsError> {
    let mut decoder = MessageDecoder::new();
    let mut items = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut offset = 0;
    let mut stale = |capacity: usize| vec![0xa5; capacity.max(1) * 2];
    loop {
        decode_buffered(&mut decoder, &mut buffer, &mut stale, &mut items)?;
        if offset == wire.len() {
            break;
        }
        if buffer.is_empty()
            && let Some(room) = decoder.payload_space(min)
        {
            let n = rng.below(room.len() + 1).min(wire.len() - offset);
            room[..n].copy_from_slice(&wire[offset..offset + n]);
            assert_eq!(decoder.payload_filled(n), n, "the room takes what was read");
            offset += n;
            continue;
        }
        let end = (offset + 1 + rng.below(300)).min(wire.len());
        buffer.extend_from_slice(&wire[offset..end]);
        offset = end;
    }
    assert!(buffer.is_empty() && decoder.is_idle(), "a complete stream");
    Ok(items)
}

#[test]
fn reading_payloads_straight_into_reused_vectors_decodes_the_same() {
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
        let (wire, expected) = random_stream(&mut rng);
        let mut reads = Rng::new(seed ^ 0x5EED);
        let min = 1 + reads.below(64);
        let items = decode_direct(&wire, &mut reads, min).expect("valid stream");
        assert_eq!(items, expected, "seed {seed}: room lent from {min} bytes");
    }
}

#[test]
fn byte_by_byte_decoding_matches() {
    for seed in 0..40 {
        let mut rng = Rng::new(seed);
        let (wire, expected) = random_stream(&mut rng);
        let items = decode_chunked(&wire, || 1).expect("valid stream");
        assert_eq!(items, expected, "seed {seed}");
    }
}

#[test]
fn encode_then_decode_is_the_identity() {
    for seed in 0..500 {
        let mut rng = Rng::new(seed);
        let message = rng.message(seed % 2 == 0);
        let mut server = Vec::new();
        let opcode = match &message {
            Message::Text(_) => OpCode::Text,
            Message::Binary(_) => OpCode::Binary,
        };
        encode_frame(&mut server, opcode, message.as_bytes());
        // Turn the server's frame into a client's: set the mask bit, insert a key, mask.
        let header_len = match server[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        let (header, payload) = server.split_at(header_len);
        let mask = (rng.next() as u32).to_be_bytes();
        let mut wire = header.to_vec();
        wire[1] |= 0x80;
        wire.extend_from_slice(&mask);
        wire.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let items = decode_chunked(&wire, || usize::MAX).expect("valid frame");
        assert_eq!(items, vec![Decoded::Message(message)], "seed {seed}");
    }
}

#[test]
fn no_input_makes_the_frame_decoder_panic() {
    for seed in 0..2000 {
        let mut rng = Rng::new(seed);
        let mut wire = if seed % 2 == 0 {
            {
                let n = rng.below(400);
                rng.bytes(n)
            }
        } else {
            random_stream(&mut rng).0
        };
        // Mutate a few bytes (headers included) of valid streams too.
        for _ in 0..rng.below(6) {
            if !wire.is_empty() {
                let at = rng.below(wire.len());
                wire[at] = rng.next() as u8;
            }
        }
        let mut sizes = Rng::new(seed);
        // Either outcome is fine; a panic fails the test.
        let _ = decode_chunked_lenient(&wire, || 1 + sizes.below(64));
    }
}

/// Like `decode_chunked`, without the end-of-stream assertions (random bytes end anywhere).
fn decode_chunked_lenient(wire: &[u8], mut chunk: impl FnMut() -> usize) -> Option<usize> {
    let mut decoder = MessageDecoder::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut items = 0;
    for piece in wire.chunks(chunk()) {
        buffer.extend_from_slice(piece);
        loop {
            let (consumed, item) = decoder.decode(&buffer, &limits()).ok()?;
            assert!(consumed <= buffer.len(), "consumed more than it was given");
            buffer.drain(..consumed);
            match item {
                Some(_) => items += 1,
                None if consumed == 0 => break,
                None => {}
            }
        }
        assert!(
            buffer.len() < 14,
            "more than a frame header left unconsumed"
        );
    }
    Some(items)
}

#[test]
fn no_input_makes_the_http_parser_panic() {
    let limits = HttpLimits {
        max_header_bytes: 2048,
        max_headers: 16,
        max_body_size: 4096,
    };
    let valid = b"POST /p?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello\
PUT /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n\
3;x=y\r\nabc\r\n1\r\nd\r\n0\r\nT: v\r\n\r\n\
GET / HTTP/1.0\r\n\r\n";
    for seed in 0..3000 {
        let mut rng = Rng::new(seed);
        let mut input = if seed % 3 == 0 {
            {
                let n = rng.below(600);
                rng.bytes(n)
            }
        } else {
            valid.to_vec()
        };
        for _ in 0..rng.below(5) {
            if input.is_empty() {
                break;
            }
            let at = rng.below(input.len());
            input[at] = match rng.below(4) {
                0 => b'\r',
                1 => b'\n',
                2 => b':',
                _ => rng.next() as u8,
            };
        }
        // Grow the buffer in random steps, as reads would, and drop what each request consumed.
        let mut parser = RequestParser::new();
        let mut buffer: Vec<u8> = Vec::new();
        let mut offset = 0;
        'feed: while offset < input.len() {
            let end = (offset + 1 + rng.below(40)).min(input.len());
            buffer.extend_from_slice(&input[offset..end]);
            offset = end;
            loop {
                match parser.parse(&buffer, &limits) {
                    Ok(Parsed::Complete { consumed, .. }) => {
                        assert!(consumed > 0 && consumed <= buffer.len());
                        buffer.drain(..consumed);
                    }
                    Ok(Parsed::Partial { consumed }) => {
                        assert!(consumed <= buffer.len());
                        buffer.drain(..consumed);
                        break;
                    }
                    Err(_) => break 'feed,
                }
            }
        }
    }
}

#[test]
fn the_valid_pipeline_parses_the_same_however_it_is_split() {
    let limits = HttpLimits {
        max_header_bytes: 2048,
        max_headers: 16,
        max_body_size: 4096,
    };
    let input = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /a HTTP/1.1\r\nHost: x\r\n\r\n\
POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nch\r\n5;e\r\nunked\r\n0\r\n\r\n\
GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
        let mut parser = RequestParser::new();
        let mut buffer: Vec<u8> = Vec::new();
        let mut targets = Vec::new();
        let mut offset = 0;
        while offset < input.len() {
            let end = (offset + 1 + rng.below(20)).min(input.len());
            buffer.extend_from_slice(&input[offset..end]);
            offset = end;
            loop {
                match parser.parse(&buffer, &limits).expect("valid pipeline") {
                    Parsed::Complete { request, consumed } => {
                        targets.push((request.target().to_owned(), request.body().to_vec()));
                        buffer.drain(..consumed);
                    }
                    Parsed::Partial { consumed } => {
                        // Inside a chunked body, what was decoded is used up at once.
                        buffer.drain(..consumed);
                        break;
                    }
                }
            }
        }
        assert_eq!(
            targets,
            vec![
                ("/p".to_owned(), b"hello".to_vec()),
                ("/a".to_owned(), Vec::new()),
                ("/c".to_owned(), b"chunked".to_vec()),
                ("/b".to_owned(), Vec::new()),
            ],
            "seed {seed}"
        );
    }
}

#[test]
fn a_two_gibibyte_length_header_fails_without_allocating() {
    let mut decoder = MessageDecoder::new();
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(2u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let err = decoder
        .decode(&header, &limits())
        .expect_err("over the limit");
    assert_eq!(err.close_code(), wsreactor::CloseCode::Size);
}

/// Bytes that look like origins and hosts often enough to reach every branch: letters, digits,
/// the separators of both grammars, quotes, and a few bytes that never belong.
fn origin_noise(rng: &mut Rng, len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"aZ09.:/[]*@%\" ;,=-_?#\\\x00\xff\xc3\t";
    const PIECES: &[&[u8]] = &[
        b"http://",
        b"https://",
        b"wss://",
        b"null",
        b"[::1]",
        b"*.",
        b":443",
    ];
    let mut out = Vec::new();
    while out.len() < len {
        if rng.below(4) == 0 {
            out.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        } else {
            out.push(ALPHABET[rng.below(ALPHABET.len())]);
        }
    }
    out
}

#[test]
fn no_header_bytes_make_the_origin_check_panic() {
    let allow = OriginPolicy::allow([
        "https://app.example.com",
        "https://*.example.org",
        "http://[::1]:3000",
    ]);
    let policies = [OriginPolicy::SameOrigin, allow, OriginPolicy::Any];
    let forwarded = [
        ForwardedHost::Ignore,
        ForwardedHost::XForwardedHost,
        ForwardedHost::Forwarded,
    ];
    for seed in 0..5000 {
        let mut rng = Rng::new(seed);
        let mut builder = Request::builder("GET", "/ws");
        for name in ["Origin", "Host", "X-Forwarded-Host", "Forwarded", "Origin"] {
            if rng.below(3) > 0 {
                let len = rng.below(40);
                builder = builder.header(name, origin_noise(&mut rng, len));
            }
        }
        let request = builder.build();
        for policy in &policies {
            for forwarded in forwarded {
                let check = OriginCheck { policy, forwarded };
                match check_origin(&request, &check) {
                    Ok(UpgradeOrigin::CrossOrigin(_)) => {
                        assert_eq!(*policy, OriginPolicy::Any, "seed {seed}")
                    }
                    Ok(UpgradeOrigin::Absent) => {
                        assert!(request.header("origin").is_none(), "seed {seed}")
                    }
                    Ok(_) | Err(_) => {}
                }
            }
        }
    }
}

#[test]
fn a_pages_own_origin_is_accepted_however_it_is_written() {
    let check = OriginCheck::DEFAULT;
    for seed in 0..3000 {
        let mut rng = Rng::new(seed);
        let (scheme, default) =
            [("http", 80), ("https", 443), ("ws", 80), ("wss", 443)][rng.below(4)];
        let host = match rng.below(3) {
            0 => "127.0.0.1".to_owned(),
            1 => "[::1]".to_owned(),
            _ => (0..1 + rng.below(3))
                .map(|_| {
                    (0..1 + rng.below(8))
                        .map(|_| (b'a' + rng.below(26) as u8) as char)
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
                .join("."),
        };
        // Both sides name the same port: the default one written or not, or another one.
        let port = if rng.below(2) == 0 {
            default
        } else {
            1024 + rng.below(60_000) as u16
        };
        let written = |rng: &mut Rng| {
            if port == default && rng.below(2) == 0 {
                String::new()
            } else {
                format!(":{port}")
            }
        };
        let shout = |rng: &mut Rng, text: &str| -> String {
            text.chars()
                .map(|c| {
                    if rng.below(2) == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        };
        let origin = format!("{scheme}://{}{}", shout(&mut rng, &host), written(&mut rng));
        let host_field = format!("{}{}", shout(&mut rng, &host), written(&mut rng));
        let request = |origin: &str, host: &str| {
            Request::builder("GET", "/ws")
                .header("Host", host)
                .header("Origin", origin)
                .build()
        };
        assert_eq!(
            check_origin(&request(&origin, &host_field), &check),
            Ok(UpgradeOrigin::SameOrigin(origin.clone())),
            "seed {seed}: {origin} on {host_field}"
        );
        // Another port is another origin.
        let other = format!("{host}:{}", port.wrapping_add(1 + rng.below(100) as u16));
        assert_eq!(
            check_origin(&request(&origin, &other), &check),
            Err(OriginRefusal::NotAllowed),
            "seed {seed}: {origin} on {other}"
        );
    }
}
