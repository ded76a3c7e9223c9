//! Incremental HTTP/1.1 request parsing on top of `httparse`.
//!
//! Bytes enter as the connection's receive buffer, which starts at the first byte of the current
//! request the parser has not used up yet and only grows between calls. A [`Parsed::Complete`]
//! leaves with an owned [`Request`] and the number of bytes it used (the caller drops them;
//! pipelined bytes after it are the next request). A [`Parsed::Partial`] says how many leading
//! bytes the parser has already used up — none while it waits for a head or a `Content-Length`
//! body, all of them inside a chunked body, whose framing is decoded as it arrives (the parser
//! then holds the head and the decoded data) — and the caller drops those too. Errors leave as
//! [`HttpError`]s; the caller answers and closes.
//!
//! Cost model (the point of this file): `httparse` re-parses from the start on every call, so
//! calling it after each read of a dribbled request is O(n²) (CVE-2023-43669). Instead the
//! parser remembers how far it has scanned for the blank line ending the header block and runs
//! `httparse` only once that line is present: once per request, plus once more if a
//! `Content-Length` body had to be waited for. Scanning never goes past `max_header_bytes`. A
//! chunked body is decoded by a push decoder (`chunked.rs`) that sees every byte once.
//!
//! Every complete head is checked before its body is awaited, in this order: the `Host` rules of
//! RFC 9112 §3.2 (`host.rs`: missing in HTTP/1.1, repeated, or invalid → 400), the framing
//! (`framing.rs`: `Content-Length` or chunked; 400/413/501), and `Expect` (`expect.rs`: 417 for
//! anything but `100-continue`). A head that expects `100-continue` and whose body has not fully
//! arrived makes a `100 Continue` owed, which the caller collects once with
//! [`RequestParser::take_continue`] when it is its turn to write.

use super::chunked::ChunkedBody;
use super::error::HttpError;
use super::expect::expects_continue;
use super::framing::{self, Framing};
use super::head::{self, find_head_end, to_owned_request, with_parsed_head};
use super::host::check_host;
use super::request::Request;

/// Size limits applied while parsing a request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Request line + headers incl. the final CRLFCRLF (and any leading empty lines);
    /// over → 431 ([`HttpError::HeadersTooLarge`]). The chunk extensions and trailer fields of
    /// a chunked body count against it too, together with the head.
    pub max_header_bytes: usize,
    /// Number of header fields; over → 431 ([`HttpError::TooManyHeaders`]).
    pub max_headers: usize,
    /// `Content-Length` above this → 413 ([`HttpError::PayloadTooLarge`]), decided before any
    /// of the body is buffered; a chunked body's decoded size, checked at each chunk's size.
    pub max_body_size: usize,
}

/// Outcome of one [`RequestParser::parse`] call.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request is in the buffer.
    Complete {
        /// The parsed request; a chunked body is already decoded.
        request: Request,
        /// How many bytes of the buffer belong to it (leading empty lines, head and body, or
        /// what was left of them after earlier `Partial { consumed }`s).
        consumed: usize,
    },
    /// More bytes are needed. The first `consumed` bytes of the buffer are used up (held by
    /// the parser): drop them, then call again with the rest and what arrives next.
    Partial {
        /// Bytes at the front of the buffer the parser is done with (0 unless a chunked body
        /// is being decoded).
        consumed: usize,
    },
}

/// A chunked request whose head has been parsed and used up: its body is being decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChunkedRequest {
    /// The request without its body.
    request: Request,
    body: ChunkedBody,
    /// A `100 Continue` is owed and not yet taken.
    continue_owed: bool,
}

/// Where the parser is within the current request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Looking for the end of the header block. `start` is the first byte after the leading
    /// empty lines seen so far (RFC 9112 §2.2: a server "SHOULD ignore at least one empty line
    /// (CRLF) received prior to the request-line"); `scanned` is where the scan resumes, or 0
    /// while still skipping those lines.
    Head { start: usize, scanned: usize },
    /// The head is valid and `head_len` bytes long; waiting for `body_len` body bytes.
    /// `continue_owed`: a `100 Continue` is owed and not yet taken.
    Body {
        head_len: usize,
        body_len: usize,
        continue_owed: bool,
    },
    /// The head of a chunked request is parsed; its body is being decoded (boxed: rare, and it
    /// keeps the parser three words).
    Chunked(Box<ChunkedRequest>),
}

impl Default for State {
    fn default() -> State {
        State::Head {
            start: 0,
            scanned: 0,
        }
    }
}

/// Per-connection incremental parser state: three words, no allocation until a chunked body.
#[derive(Debug, Default, Clone)]
pub struct RequestParser {
    state: State,
}

impl RequestParser {
    /// A parser at the start of a request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the request at the start of `buf`.
    ///
    /// `buf` holds the bytes received for this request that the parser has not used up yet;
    /// after [`Parsed::Partial`] drop its `consumed` bytes and call again with the rest plus
    /// what arrived since. After [`Parsed::Complete`] the caller drops `consumed` bytes and this
    /// parser is already reset for the next request. After an error the connection should be
    /// answered with [`HttpError::to_response`] and closed; the parser is reset too.
    ///
    /// Policy (see also `host.rs`, `framing.rs`, `chunked.rs`, `expect.rs`): HTTP/1.1 without
    /// `Host`, repeated or invalid `Host` → 400. `Content-Length` bodies are awaited in full;
    /// `Transfer-Encoding: chunked` bodies are decoded as they arrive; other transfer codings →
    /// 501 (or 400 if `chunked` is not last); `Transfer-Encoding` + `Content-Length` → 400; bad
    /// or conflicting `Content-Length` → 400; a body over the limit → 413 at once. An
    /// expectation other than `100-continue` → 417. `HTTP/x.y` other than 1.0/1.1 → 505; other
    /// malformed versions → 400.
    pub fn parse(&mut self, buf: &[u8], limits: &HttpLimits) -> Result<Parsed, HttpError> {
        let result = self.step(buf, limits);
        if !matches!(result, Ok(Parsed::Partial { .. })) {
            self.state = State::default();
        }
        result
    }

    /// True once per request, when a `100 Continue` is owed: the head is complete and valid,
    /// it expects `100-continue` (HTTP/1.1), and the body has not fully arrived. The caller
    /// sends the interim response when it is its turn to write (after the responses to every
    /// earlier request); later calls for the same request return false.
    pub fn take_continue(&mut self) -> bool {
        let owed = match &mut self.state {
            State::Body { continue_owed, .. } => continue_owed,
            State::Chunked(chunked) => &mut chunked.continue_owed,
            State::Head { .. } => return false,
        };
        std::mem::take(owed)
    }

    /// Has the current request begun: is part of it with the parser, beyond what is still in
    /// the caller's buffer? (A chunked request's used-up head and chunks, or leading empty lines
    /// and a scan in progress.) The request deadline keeps running while it has.
    pub fn has_begun(&self) -> bool {
        !matches!(
            self.state,
            State::Head {
                start: 0,
                scanned: 0
            }
        )
    }

    /// One parse attempt; `parse` resets the state after anything but `Partial`.
    fn step(&mut self, buf: &[u8], limits: &HttpLimits) -> Result<Parsed, HttpError> {
        match std::mem::take(&mut self.state) {
            State::Chunked(chunked) => self.chunked(chunked, buf, limits),
            State::Body {
                head_len,
                body_len,
                continue_owed,
            } => self.body(buf, limits, head_len, body_len, continue_owed),
            // A caller that handed us a shorter buffer than before broke the contract; start
            // over rather than index out of bounds.
            State::Head { start, scanned } if start.max(scanned) > buf.len() => {
                self.head(buf, limits, 0, 0)
            }
            State::Head { start, scanned } => self.head(buf, limits, start, scanned),
        }
    }

    /// The `body_len` bytes of a `Content-Length` body after a head of `head_len` bytes,
    /// already checked: the request once they are all in `buf`, else the parser waits on.
    fn body(
        &mut self,
        buf: &[u8],
        limits: &HttpLimits,
        head_len: usize,
        body_len: usize,
        continue_owed: bool,
    ) -> Result<Parsed, HttpError> {
        // Cannot overflow: checked before entering this state.
        let total = head_len.saturating_add(body_len);
        if buf.len() < total {
            return Ok(self.await_body(head_len, body_len, continue_owed));
        }
        let request = with_parsed_head(&buf[..head_len], limits.max_headers, |parsed, _| {
            Ok(to_owned_request(parsed, &buf[head_len..total]))
        })?;
        Ok(Parsed::Complete {
            request,
            consumed: total,
        })
    }

    /// Looks for the end of the head, the scan resuming at `start` and `scanned` (as in
    /// `State::Head`); then parses and checks it, and takes its body as far as `buf` holds it.
    fn head(
        &mut self,
        buf: &[u8],
        limits: &HttpLimits,
        start: usize,
        scanned: usize,
    ) -> Result<Parsed, HttpError> {
        let window = &buf[..buf.len().min(limits.max_header_bytes)];
        let Some(end) = self.scan_head(window, start, scanned) else {
            // RFC 6585 §5: 431 "indicates that the server is unwilling to process the request
            // because its header fields are too large". The end was not within the limit.
            return if buf.len() >= limits.max_header_bytes {
                Err(HttpError::HeadersTooLarge)
            } else {
                Ok(Parsed::Partial { consumed: 0 })
            };
        };
        with_parsed_head(&buf[..end], limits.max_headers, |parsed, head_len| {
            let version = head::version(parsed);
            check_host(parsed.headers, version)?;
            let framing = framing::body_framing(parsed.headers, version, limits.max_body_size)?;
            let continue_owed = expects_continue(parsed.headers, version)?;
            let body_len = match framing {
                Framing::Length(body_len) => body_len,
                Framing::Chunked => {
                    // What the head leaves of max_header_bytes is the budget of the body's
                    // chunk extensions and trailer fields.
                    let budget = limits.max_header_bytes.saturating_sub(head_len);
                    let chunked = ChunkedRequest {
                        request: to_owned_request(parsed, &[]),
                        body: ChunkedBody::new(budget),
                        continue_owed,
                    };
                    return self.chunked_after_head(Box::new(chunked), head_len, buf, limits);
                }
            };
            let total = head_len
                .checked_add(body_len)
                .ok_or(HttpError::PayloadTooLarge {
                    limit: limits.max_body_size,
                })?;
            match buf.get(head_len..total) {
                Some(body) => Ok(Parsed::Complete {
                    request: to_owned_request(parsed, body),
                    consumed: total,
                }),
                None => Ok(self.await_body(head_len, body_len, continue_owed)),
            }
        })
    }

    /// The head is valid, its `Content-Length` body not all here: the parser waits for it.
    fn await_body(&mut self, head_len: usize, body_len: usize, continue_owed: bool) -> Parsed {
        self.state = State::Body {
            head_len,
            body_len,
            continue_owed,
        };
        Parsed::Partial { consumed: 0 }
    }

    /// A valid head of `head_len` bytes announcing a chunked body: decodes what `buf` holds of
    /// the body after it. The head counts as used up either way.
    #[inline]
    fn chunked_after_head(
        &mut self,
        chunked: Box<ChunkedRequest>,
        head_len: usize,
        buf: &[u8],
        limits: &HttpLimits,
    ) -> Result<Parsed, HttpError> {
        Ok(match self.chunked(chunked, &buf[head_len..], limits)? {
            Parsed::Complete { request, consumed } => Parsed::Complete {
                request,
                consumed: head_len + consumed,
            },
            Parsed::Partial { consumed } => Parsed::Partial {
                consumed: head_len + consumed,
            },
        })
    }

    /// Decodes what `buf` holds of a chunked body. Every byte is used until the body ends:
    /// then the request is complete; until then the parser keeps it.
    fn chunked(
        &mut self,
        mut chunked: Box<ChunkedRequest>,
        buf: &[u8],
        limits: &HttpLimits,
    ) -> Result<Parsed, HttpError> {
        match chunked.body.decode(buf, limits.max_body_size)? {
            Some(consumed) => {
                let ChunkedRequest { request, body, .. } = *chunked;
                Ok(Parsed::Complete {
                    request: request.with_body(body.into_body()),
                    consumed,
                })
            }
            None => {
                self.state = State::Chunked(chunked);
                Ok(Parsed::Partial {
                    consumed: buf.len(),
                })
            }
        }
    }

    /// Skips leading empty lines, then scans for the end of the header block within `window`,
    /// resuming where the previous call stopped. Records progress in `self.state` when the end
    /// is not found yet.
    fn scan_head(&mut self, window: &[u8], mut start: usize, mut scanned: usize) -> Option<usize> {
        if scanned == 0 {
            while let Some(b'\r' | b'\n') = window.get(start) {
                start += 1;
            }
            if start == window.len() {
                self.state = State::Head { start, scanned: 0 };
                return None;
            }
            // window[start] begins the request line, so a terminator starts after it.
            scanned = start + 1;
        }
        match find_head_end(window, scanned) {
            Ok(end) => Some(end),
            Err(resume) => {
                self.state = State::Head {
                    start,
                    scanned: resume.max(start + 1),
                };
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
