//! Arbitrary bytes, in arbitrary chunkings, into the HTTP/1.1 request parser, then the upgrade
//! check (with its origin check: same origin only, and an allow-list that trusts
//! `X-Forwarded-Host`) on every request it accepts. Nothing may panic; every `consumed` must be within the
//! buffer; a decoded body stays within `max_body_size`. The first byte picks the chunk size (its
//! low 7 bits) and, with its high bit set, starts the stream with the head of a chunked request,
//! so that the rest goes straight into the chunked-body decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

use wsreactor::http::{
    ForwardedHost, HttpLimits, OriginCheck, OriginPolicy, Parsed, RequestParser, check_upgrade,
};

const CHUNKED_HEAD: &[u8] =
    b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n";

static ALLOW: LazyLock<OriginPolicy> =
    LazyLock::new(|| OriginPolicy::allow(["https://app.example.com", "https://*.example.org"]));

fuzz_target!(|data: &[u8]| {
    let allow = OriginCheck {
        policy: &ALLOW,
        forwarded: ForwardedHost::XForwardedHost,
    };
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first & 0x7f).max(1);
    let mut input = Vec::with_capacity(CHUNKED_HEAD.len() + rest.len());
    if first & 0x80 != 0 {
        input.extend_from_slice(CHUNKED_HEAD);
    }
    input.extend_from_slice(rest);
    let limits = HttpLimits {
        max_header_bytes: 4096,
        max_headers: 32,
        max_body_size: 4096,
    };
    let mut parser = RequestParser::new();
    let mut buffer = Vec::new();
    for piece in input.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            match parser.parse(&buffer, &limits) {
                Ok(Parsed::Complete { request, consumed }) => {
                    assert!(consumed > 0 && consumed <= buffer.len());
                    assert!(request.body().len() <= limits.max_body_size);
                    let _ = check_upgrade(&request, &OriginCheck::DEFAULT);
                    let _ = check_upgrade(&request, &allow);
                    let _ = request.keep_alive();
                    buffer.drain(..consumed);
                }
                Ok(Parsed::Partial { consumed }) => {
                    assert!(consumed <= buffer.len());
                    buffer.drain(..consumed);
                    let _ = parser.take_continue();
                    break;
                }
                Err(_) => return,
            }
        }
    }
});
