//! Arbitrary bytes, in arbitrary chunkings, into the HTTP/1.1 request parser, then the upgrade
//! check on every request it accepts. Nothing may panic; every `consumed` must be within the
//! buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsreactor::http::{HttpLimits, Parsed, RequestParser, check_upgrade};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
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
                    let _ = check_upgrade(&request);
                    let _ = request.keep_alive();
                    buffer.drain(..consumed);
                }
                Ok(Parsed::Partial) => break,
                Err(_) => return,
            }
        }
    }
});
