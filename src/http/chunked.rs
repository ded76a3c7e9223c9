//! The chunked transfer coding of a request body (RFC 9112 §7.1), decoded as it arrives.
//!
//! RFC 9112 §7.1: "A recipient MUST be able to parse and decode the chunked transfer coding."
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! Bytes enter as whatever part of the body the connection has received, each byte exactly once:
//! [`ChunkedBody::decode`] is a push decoder that keeps its place between calls (which line it
//! is in, how much of the current chunk is left), so a body dribbled byte by byte costs the same
//! as one that arrives whole — no rescanning, the discipline `head.rs` keeps for heads. It uses
//! every byte it is given until the body ends, so the caller drops them at once: the read buffer
//! only ever holds bytes not yet decoded. Chunk data leaves, copied in bulk, into the decoded
//! body ([`ChunkedBody::into_body`]), which is what the handler's `Request::body` holds.
//!
//! Limits and errors:
//! - The decoded size counts against `max_body_size`: a chunk size that would take the body past
//!   it is answered with **413** ([`HttpError::PayloadTooLarge`]) as soon as the size line's
//!   digits are read, before any of that chunk is buffered. A chunked body therefore never holds
//!   more than `max_body_size` decoded bytes, plus the undecoded bytes of one read.
//! - A chunk size that is not hex, has more than 16 digits (more than a `u64` holds: an overflow
//!   by construction), or whose line, data or trailer lines do not end in CRLF → **400**. Bare
//!   LF and bare CR are refused everywhere in the framing: a lenient line ending is where
//!   request-smuggling parsers disagree.
//! - Chunk extensions (`;name=value` after the size) are skipped: they mean nothing to this
//!   server (§7.1.1: a recipient "MUST ignore unrecognized chunk extensions"). Control
//!   characters in them → 400.
//! - Trailer fields (§7.1.2) are checked for field syntax (a token name, `:`, a value without
//!   control characters) and discarded; none is merged into the request's headers.
//! - Extensions and trailer fields share one budget with the request head: together with it
//!   they may take `max_header_bytes`. Past it: extensions → 400, trailers → **431**
//!   ([`HttpError::HeadersTooLarge`]).

use super::error::HttpError;

/// At most this many hex digits in a chunk size: 16 digits always fit a `u64`, so the size
/// cannot overflow while it is read. (Leading zeros count.)
const MAX_SIZE_DIGITS: u8 = 16;

/// Where the decoder is within the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// In the chunk-size digits: `digits` read so far, worth `size`.
    Size { digits: u8, size: u64 },
    /// Whitespace after the size (`BWS`): only a `;` may follow.
    ExtensionBws { size: usize },
    /// In the chunk extensions after the size, up to the CR.
    Extension { size: usize },
    /// The CR ending the chunk-size line was read; its LF must follow.
    SizeLf { size: usize },
    /// In chunk data, `left` bytes to go.
    Data { left: usize },
    /// Chunk data done: its CR must follow.
    DataCr,
    /// Its LF must follow.
    DataLf,
    /// At the start of a trailer field line, or of the CRLF that ends the body.
    TrailerStart,
    /// In a trailer field's name.
    TrailerName,
    /// In a trailer field's value, up to the CR.
    TrailerValue,
    /// A trailer line's CR was read; its LF must follow.
    TrailerLf,
    /// The final CR was read; the final LF ends the body.
    EndLf,
}

/// An incremental decoder of one chunked body, and the body decoded so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkedBody {
    step: Step,
    body: Vec<u8>,
    /// Bytes of chunk extensions and trailer fields still allowed.
    meta_left: usize,
}

/// Is `b` a `tchar` (RFC 9110 §5.6.2), a character of a field name?
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// May `b` appear in a field value or a chunk extension: `VCHAR`, `obs-text`, SP or HTAB
/// (RFC 9110 §5.5) — anything but the control characters.
fn is_text(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// The value of a hex digit.
fn hex_value(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}

impl ChunkedBody {
    /// A decoder at the start of a chunked body, whose extensions and trailer fields may take
    /// `meta_budget` bytes (what `max_header_bytes` leaves after the head).
    pub(crate) fn new(meta_budget: usize) -> Self {
        ChunkedBody {
            step: Step::Size { digits: 0, size: 0 },
            body: Vec::new(),
            meta_left: meta_budget,
        }
    }

    /// Decoded bytes so far.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.body.len()
    }

    /// The decoded body.
    pub(crate) fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Spends one byte of the extension/trailer budget, or fails with `err`.
    fn spend(&mut self, err: HttpError) -> Result<(), HttpError> {
        match self.meta_left.checked_sub(1) {
            Some(left) => {
                self.meta_left = left;
                Ok(())
            }
            None => Err(err),
        }
    }

    /// Decodes the next bytes of the body. `Ok(None)`: every byte of `input` was used and the
    /// body goes on (drop them all, call again with what arrives next). `Ok(Some(n))`: the body
    /// ended after `n` bytes of `input`; the rest belongs to the next request. The decoded body
    /// stays within `max_body_size` (module docs for every error).
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        max_body_size: usize,
    ) -> Result<Option<usize>, HttpError> {
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            i += 1;
            self.step = match self.step {
                Step::Data { left } => {
                    // The one bulk step: as much of this chunk as has arrived, in one copy.
                    let start = i - 1;
                    let take = left.min(input.len() - start);
                    self.body.extend_from_slice(&input[start..start + take]);
                    i = start + take;
                    match left - take {
                        0 => Step::DataCr,
                        left => Step::Data { left },
                    }
                }
                Step::Size { digits, size } => match hex_value(b) {
                    Some(_) if digits == MAX_SIZE_DIGITS => {
                        return Err(HttpError::BadRequest(
                            "chunk size has more than 16 hex digits",
                        ));
                    }
                    Some(value) => Step::Size {
                        digits: digits + 1,
                        size: (size << 4) | value,
                    },
                    None if digits == 0 => {
                        return Err(HttpError::BadRequest("invalid chunk size"));
                    }
                    None => {
                        let size = self.admit(size, max_body_size)?;
                        match b {
                            b'\r' => Step::SizeLf { size },
                            // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS
                            // chunk-ext-val ] ): from its ";", skipped up to the CR.
                            b';' => {
                                self.spend(HttpError::BadRequest("chunk extensions too long"))?;
                                Step::Extension { size }
                            }
                            b' ' | b'\t' => {
                                self.spend(HttpError::BadRequest("chunk extensions too long"))?;
                                Step::ExtensionBws { size }
                            }
                            b'\n' => {
                                return Err(HttpError::BadRequest(
                                    "chunk size line not ended by CRLF",
                                ));
                            }
                            _ => return Err(HttpError::BadRequest("invalid chunk size")),
                        }
                    }
                },
                Step::ExtensionBws { size } => match b {
                    b' ' | b'\t' | b';' => {
                        self.spend(HttpError::BadRequest("chunk extensions too long"))?;
                        if b == b';' {
                            Step::Extension { size }
                        } else {
                            Step::ExtensionBws { size }
                        }
                    }
                    // Anything else after the size is not framing this decoder can trust:
                    // parsers that disagree here are how requests get smuggled.
                    _ => return Err(HttpError::BadRequest("invalid chunk extension")),
                },
                Step::Extension { size } => match b {
                    b'\r' => Step::SizeLf { size },
                    b if is_text(b) => {
                        self.spend(HttpError::BadRequest("chunk extensions too long"))?;
                        Step::Extension { size }
                    }
                    _ => return Err(HttpError::BadRequest("invalid chunk extension")),
                },
                Step::SizeLf { size } => match (b, size) {
                    (b'\n', 0) => Step::TrailerStart,
                    (b'\n', left) => Step::Data { left },
                    _ => {
                        return Err(HttpError::BadRequest("chunk size line not ended by CRLF"));
                    }
                },
                Step::DataCr if b == b'\r' => Step::DataLf,
                Step::DataLf if b == b'\n' => Step::Size { digits: 0, size: 0 },
                Step::DataCr | Step::DataLf => {
                    return Err(HttpError::BadRequest("chunk data not followed by CRLF"));
                }
                Step::TrailerStart if b == b'\r' => Step::EndLf,
                Step::TrailerStart if b == b'\n' => {
                    return Err(HttpError::BadRequest("chunked body not ended by CRLF"));
                }
                Step::TrailerStart | Step::TrailerName if is_tchar(b) => {
                    self.spend(HttpError::HeadersTooLarge)?;
                    Step::TrailerName
                }
                Step::TrailerName if b == b':' => {
                    self.spend(HttpError::HeadersTooLarge)?;
                    Step::TrailerValue
                }
                Step::TrailerStart | Step::TrailerName => {
                    return Err(HttpError::BadRequest("invalid trailer field"));
                }
                Step::TrailerValue => {
                    self.spend(HttpError::HeadersTooLarge)?;
                    match b {
                        b'\r' => Step::TrailerLf,
                        b if is_text(b) => Step::TrailerValue,
                        _ => return Err(HttpError::BadRequest("invalid trailer field")),
                    }
                }
                Step::TrailerLf if b == b'\n' => {
                    self.spend(HttpError::HeadersTooLarge)?;
                    Step::TrailerStart
                }
                Step::TrailerLf => {
                    return Err(HttpError::BadRequest("trailer field not ended by CRLF"));
                }
                Step::EndLf if b == b'\n' => return Ok(Some(i)),
                Step::EndLf => {
                    return Err(HttpError::BadRequest("chunked body not ended by CRLF"));
                }
            };
        }
        Ok(None)
    }

    /// A chunk of `size` bytes is announced: its size if the body stays within
    /// `max_body_size`, else 413 before any of it is read.
    fn admit(&self, size: u64, max_body_size: usize) -> Result<usize, HttpError> {
        let too_large = HttpError::PayloadTooLarge {
            limit: max_body_size,
        };
        let room = max_body_size.saturating_sub(self.body.len());
        match usize::try_from(size) {
            Ok(size) if size <= room => Ok(size),
            _ => Err(too_large),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 100;

    /// Decodes `input` in one call.
    fn whole(input: &[u8]) -> Result<(Vec<u8>, usize), HttpError> {
        let mut body = ChunkedBody::new(64);
        match body.decode(input, LIMIT)? {
            Some(used) => Ok((body.into_body(), used)),
            None => panic!("incomplete: {:?}", String::from_utf8_lossy(input)),
        }
    }

    /// Decodes `input` one byte per call: the same outcome, every byte used exactly once.
    fn dribbled(input: &[u8]) -> Result<(Vec<u8>, usize), HttpError> {
        let mut body = ChunkedBody::new(64);
        for (i, byte) in input.iter().enumerate() {
            if let Some(used) = body.decode(std::slice::from_ref(byte), LIMIT)? {
                assert_eq!(used, 1);
                return Ok((body.into_body(), i + 1));
            }
        }
        panic!("incomplete: {:?}", String::from_utf8_lossy(input))
    }

    #[test]
    fn valid_bodies() {
        let table: &[(&[u8], &[u8])] = &[
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            // Hex, either case; leading zeros; a last-chunk of several zeros.
            (b"A\r\n0123456789\r\n000\r\n\r\n", b"0123456789"),
            (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"0005\r\nhello\r\n0\r\n\r\n", b"hello"),
            // Chunk data is opaque: CR, LF and "0\r\n\r\n" inside it are data.
            (b"6\r\n0\r\n\r\nx\r\n0\r\n\r\n", b"0\r\n\r\nx"),
            // Extensions, with and without values, quoted, with BWS: skipped.
            (b"5;name=value\r\nhello\r\n0;last\r\n\r\n", b"hello"),
            (b"5 ; a = \"b;c\"\r\nhello\r\n0\r\n\r\n", b"hello"),
            // Trailers: checked and dropped.
            (b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Empty:\r\n\r\n", b"hello"),
        ];
        for (input, body) in table {
            let expected = Ok((body.to_vec(), input.len()));
            assert_eq!(
                whole(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                dribbled(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn the_next_request_is_left_alone() {
        let input = b"2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        assert_eq!(whole(input), Ok((b"hi".to_vec(), 12)));
    }

    #[test]
    fn errors() {
        let bad = HttpError::BadRequest;
        let table: &[(&[u8], HttpError)] = &[
            (b"\r\n", bad("invalid chunk size")),
            (b"x\r\n", bad("invalid chunk size")),
            (b"-1\r\n", bad("invalid chunk size")),
            (b"0x5\r\n", bad("invalid chunk size")),
            (b"5x\r\nhello", bad("invalid chunk size")),
            (
                b"00000000000000001\r\n",
                bad("chunk size has more than 16 hex digits"),
            ),
            (
                b"FFFFFFFFFFFFFFFFF\r\n",
                bad("chunk size has more than 16 hex digits"),
            ),
            // Bare LF, bare CR, anything but CRLF after the size line.
            (b"5\nhello\r\n", bad("chunk size line not ended by CRLF")),
            (b"5\rhello\r\n", bad("chunk size line not ended by CRLF")),
            (b"5;a\nhello\r\n", bad("invalid chunk extension")),
            (b"5;a\x00\r\nhello\r\n", bad("invalid chunk extension")),
            (b"5;a\x7f\r\nhello\r\n", bad("invalid chunk extension")),
            // Whitespace after the size may only lead to a ";".
            (b"5 junk\r\nhello\r\n", bad("invalid chunk extension")),
            (b"5 \r\nhello\r\n", bad("invalid chunk extension")),
            // Data longer or shorter than its size, or not ended by CRLF.
            (b"3\r\nhello\r\n", bad("chunk data not followed by CRLF")),
            (
                b"5\r\nhello\n0\r\n\r\n",
                bad("chunk data not followed by CRLF"),
            ),
            (
                b"5\r\nhello\r0\r\n\r\n",
                bad("chunk data not followed by CRLF"),
            ),
            // Trailers.
            (b"0\r\nX-A 1\r\n\r\n", bad("invalid trailer field")),
            (b"0\r\n: 1\r\n\r\n", bad("invalid trailer field")),
            (b"0\r\n X-Fold: 1\r\n\r\n", bad("invalid trailer field")),
            (b"0\r\nX-A: 1\n\r\n", bad("invalid trailer field")),
            (b"0\r\nX-A: \x01\r\n\r\n", bad("invalid trailer field")),
            (b"0\r\nX-A: 1\r\r\n", bad("trailer field not ended by CRLF")),
            (b"0\r\n\n", bad("chunked body not ended by CRLF")),
            (b"0\r\n\rX", bad("chunked body not ended by CRLF")),
        ];
        for (input, expected) in table {
            let mut body = ChunkedBody::new(64);
            assert_eq!(
                &body.decode(input, LIMIT).unwrap_err(),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn the_decoded_size_is_limited_before_the_data_arrives() {
        let too_large = Err(HttpError::PayloadTooLarge { limit: LIMIT });
        // Exactly the limit is fine, over it is not, also when spread over chunks.
        let hundred = format!("64\r\n{}\r\n0\r\n\r\n", "x".repeat(100));
        assert!(whole(hundred.as_bytes()).is_ok());
        let mut body = ChunkedBody::new(64);
        assert_eq!(body.decode(b"65\r", LIMIT), too_large);
        let mut body = ChunkedBody::new(64);
        let first = format!("60\r\n{}\r\n", "x".repeat(96));
        assert_eq!(body.decode(first.as_bytes(), LIMIT), Ok(None));
        assert_eq!(body.len(), 96);
        assert_eq!(body.decode(b"4\r\nxxxx\r\n", LIMIT), Ok(None));
        assert_eq!(body.decode(b"1;", LIMIT), too_large);
        // Sixteen digits fit a u64 and are simply too large.
        let mut body = ChunkedBody::new(64);
        assert_eq!(body.decode(b"FFFFFFFFFFFFFFFF\r\n", LIMIT), too_large);
    }

    #[test]
    fn extensions_and_trailers_share_one_budget() {
        // 5 bytes of budget: ";abcd" fits, ";abcde" does not.
        let mut body = ChunkedBody::new(5);
        assert_eq!(body.decode(b"1;abcd\r\nx\r\n", LIMIT), Ok(None));
        let mut body = ChunkedBody::new(5);
        assert_eq!(
            body.decode(b"1;abcde\r\n", LIMIT),
            Err(HttpError::BadRequest("chunk extensions too long"))
        );
        // Trailer lines count with their CRLF; the final CRLF is free.
        let mut body = ChunkedBody::new(6);
        assert_eq!(body.decode(b"0\r\nA: 1\r\n\r\n", LIMIT), Ok(Some(11)));
        let mut body = ChunkedBody::new(5);
        assert_eq!(
            body.decode(b"0\r\nA: 1\r\n\r\n", LIMIT),
            Err(HttpError::HeadersTooLarge)
        );
        let mut body = ChunkedBody::new(0);
        assert_eq!(body.decode(b"0\r\n\r\n", LIMIT), Ok(Some(5)));
    }

    #[test]
    fn a_large_body_in_small_chunks_is_linear() {
        // 64 KiB in 1-byte chunks, fed 7 bytes at a time: one pass over 384 KiB of framing.
        let mut input = Vec::new();
        for i in 0..65_536u32 {
            input.extend_from_slice(b"1\r\n");
            input.push(b'a' + (i % 26) as u8);
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b"0\r\n\r\n");
        let mut body = ChunkedBody::new(0);
        let start = std::time::Instant::now();
        let mut done = None;
        for piece in input.chunks(7) {
            if let Some(used) = body.decode(piece, 1 << 20).unwrap() {
                done = Some(used);
            }
        }
        assert!(done.is_some());
        assert_eq!(body.len(), 65_536);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
