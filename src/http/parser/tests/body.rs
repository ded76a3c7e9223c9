//! Request bodies through the parser: chunked bodies decoded as they arrive (whole, split at
//! every point, byte by byte; the bytes they use up; their limits), and the `100 Continue` a
//! request expecting it is owed while its body has not arrived.

use super::*;

/// A chunked POST of `hello world` in two chunks, with an extension and a trailer.
const CHUNKED: &[u8] = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
    5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";

/// What the parser makes of [`CHUNKED`]: its head's fields, the decoded body; no trailer.
fn chunked_request() -> Request {
    Request::builder("POST", "/up")
        .header("Host", "x")
        .header("Transfer-Encoding", "chunked")
        .body("hello world")
        .build()
}

/// Feeds `input` to one parser `piece` bytes at a time through a buffer that drops whatever
/// the parser used up, as the session's read buffer does; returns the requests, and the bytes
/// left in the buffer at the end.
fn feed(
    parser: &mut RequestParser,
    input: &[u8],
    piece: usize,
    limits: &HttpLimits,
) -> Result<(Vec<Request>, Vec<u8>), HttpError> {
    let mut buffer = Vec::new();
    let mut requests = Vec::new();
    for bytes in input.chunks(piece) {
        buffer.extend_from_slice(bytes);
        loop {
            match parser.parse(&buffer, limits)? {
                Parsed::Complete { request, consumed } => {
                    assert!(consumed <= buffer.len());
                    buffer.drain(..consumed);
                    requests.push(request);
                }
                Parsed::Partial { consumed } => {
                    assert!(consumed <= buffer.len());
                    buffer.drain(..consumed);
                    break;
                }
            }
        }
    }
    Ok((requests, buffer))
}

#[test]
fn a_chunked_body_is_decoded_whole_split_and_byte_by_byte() {
    let (request, consumed) = one_shot(CHUNKED, &LIMITS).unwrap();
    assert_eq!((request, consumed), (chunked_request(), CHUNKED.len()));
    for piece in [1, 2, 3, 7, 16, 61, 62, 63] {
        let before = calls();
        let mut parser = RequestParser::new();
        let (requests, left) = feed(&mut parser, CHUNKED, piece, &LIMITS).unwrap();
        assert_eq!(requests, [chunked_request()], "pieces of {piece}");
        assert!(left.is_empty());
        assert_eq!(calls() - before, 1, "httparse runs once, on the head");
        assert_eq!(parser.state, State::default());
    }
}

#[test]
fn at_every_split_the_head_and_the_chunks_are_used_up_at_once() {
    let head_len = CHUNKED.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    for i in 0..CHUNKED.len() {
        let mut parser = RequestParser::new();
        let Ok(Parsed::Partial { consumed }) = parser.parse(&CHUNKED[..i], &LIMITS) else {
            panic!("prefix {i} is not partial");
        };
        // Nothing is used up before the head is complete; everything after.
        let expected = if i < head_len { 0 } else { i };
        assert_eq!(consumed, expected, "prefix {i}");
        assert_eq!(parser.has_begun(), i > 0, "prefix {i}");
        let rest = &CHUNKED[consumed..];
        let complete = parser.parse(rest, &LIMITS);
        assert_eq!(
            complete,
            Ok(Parsed::Complete {
                request: chunked_request(),
                consumed: rest.len()
            }),
            "split at {i}"
        );
    }
}

#[test]
fn requests_pipelined_around_a_chunked_one_are_parsed_in_order() {
    let mut input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    input.extend_from_slice(CHUNKED);
    input.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c");
    for piece in [1, 5, 64, input.len()] {
        let mut parser = RequestParser::new();
        let (requests, left) = feed(&mut parser, &input, piece, &LIMITS).unwrap();
        let paths: Vec<&str> = requests.iter().map(Request::path).collect();
        assert_eq!(paths, ["/a", "/up", "/b"], "pieces of {piece}");
        assert_eq!(requests[1].body(), b"hello world");
        assert_eq!(left, b"GET /c");
    }
}

#[test]
fn a_chunked_body_is_held_to_max_body_size_decoded() {
    let limits = HttpLimits {
        max_body_size: 10,
        ..LIMITS
    };
    let head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    // Exactly the limit in three chunks; framing bytes do not count.
    let ten = format!("{head}3\r\nabc\r\n3\r\ndef\r\n4\r\nghij\r\n0\r\n\r\n");
    let (request, _) = one_shot(ten.as_bytes(), &limits).unwrap();
    assert_eq!(request.body(), b"abcdefghij");
    // One more byte: 413 as soon as the size line says so, before its data has arrived.
    let mut parser = RequestParser::new();
    let eleven = format!("{head}3\r\nabc\r\n3\r\ndef\r\n5\r\n");
    assert_eq!(
        feed(&mut parser, eleven.as_bytes(), 1, &limits),
        Err(HttpError::PayloadTooLarge { limit: 10 })
    );
    assert_eq!(parser.state, State::default());
}

#[test]
fn extensions_and_trailers_count_against_max_header_bytes_with_the_head() {
    let head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let limits = HttpLimits {
        max_header_bytes: head.len() + 8,
        ..LIMITS
    };
    // Eight bytes left: a trailer line of 8 bytes (with its CRLF) fits, one of 9 does not.
    let fits = format!("{head}0\r\nX-A: 1\r\n\r\n");
    assert!(one_shot(fits.as_bytes(), &limits).is_ok());
    let over = format!("{head}0\r\nX-Ab: 1\r\n\r\n");
    assert_eq!(
        one_shot(over.as_bytes(), &limits),
        Err(HttpError::HeadersTooLarge)
    );
    let extension = format!("{head}1;123456789\r\nx\r\n0\r\n\r\n");
    assert_eq!(
        one_shot(extension.as_bytes(), &limits),
        Err(HttpError::BadRequest("chunk extensions too long"))
    );
}

#[test]
fn a_bad_chunk_is_a_bad_request_and_resets_the_parser() {
    let mut parser = RequestParser::new();
    let bad =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n";
    assert_eq!(
        feed(&mut parser, bad, 4, &LIMITS),
        Err(HttpError::BadRequest("chunk data not followed by CRLF"))
    );
    assert_eq!(parser.state, State::default());
    assert!(!parser.has_begun());
}

/// What `take_continue` says after each byte of `input`, fed one byte at a time.
fn continue_owed_at_each_byte(input: &[u8]) -> Vec<bool> {
    let mut parser = RequestParser::new();
    let mut buffer = Vec::new();
    let mut owed = Vec::new();
    for byte in input {
        buffer.push(*byte);
        match parser.parse(&buffer, &LIMITS) {
            Ok(Parsed::Partial { consumed }) => {
                buffer.drain(..consumed);
            }
            Ok(Parsed::Complete { consumed, .. }) => {
                buffer.drain(..consumed);
            }
            Err(err) => panic!("{err}"),
        }
        owed.push(parser.take_continue());
    }
    owed
}

#[test]
fn a_100_continue_is_owed_once_when_the_head_is_in_and_the_body_is_not() {
    let content_length =
        b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc";
    let chunked = b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    for input in [&content_length[..], chunked] {
        let owed = continue_owed_at_each_byte(input);
        let head_len = input.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        // Exactly once: at the byte that completes the head.
        let at: Vec<usize> = (0..owed.len()).filter(|&i| owed[i]).collect();
        assert_eq!(at, [head_len - 1], "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn no_100_continue_when_the_body_is_in_or_none_is_expected() {
    let cases: &[&[u8]] = &[
        // The whole request at once: nothing to invite.
        b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        // No body at all.
        b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
        b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    ];
    for input in cases {
        let mut parser = RequestParser::new();
        assert!(matches!(
            parser.parse(input, &LIMITS),
            Ok(Parsed::Complete { .. })
        ));
        assert!(!parser.take_continue());
    }
    // A body that is not there yet, but no expectation, or HTTP/1.0 (which ignores it).
    for head in [
        &b"PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"[..],
        b"PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    ] {
        let mut parser = RequestParser::new();
        assert_eq!(
            parser.parse(head, &LIMITS),
            Ok(Parsed::Partial { consumed: 0 })
        );
        assert!(!parser.take_continue());
    }
}

#[test]
fn a_body_too_large_gets_413_instead_of_100() {
    let head =
        b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1025\r\n\r\n";
    let mut parser = RequestParser::new();
    assert_eq!(
        parser.parse(head, &LIMITS),
        Err(HttpError::PayloadTooLarge { limit: 1024 })
    );
    assert!(!parser.take_continue());
    let unknown = b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n";
    assert_eq!(
        RequestParser::new().parse(unknown, &LIMITS),
        Err(HttpError::ExpectationFailed)
    );
}
