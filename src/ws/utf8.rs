//! Incremental UTF-8 validation of a text message that arrives in pieces.
//!
//! The decoder appends unmasked payload bytes to a message buffer and passes the whole buffer to
//! [`Utf8Validator::feed`], which checks only the bytes not yet validated (plus at most 3 bytes
//! of an incomplete trailing sequence), so validation is O(n) over a message. An error leaves as
//! [`WsError::InvalidUtf8`] as soon as the bytes so far cannot be the prefix of valid UTF-8.

use crate::ws::error::WsError;

/// How much of a growing buffer is known to be valid UTF-8.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Utf8Validator {
    /// `data[..valid_up_to]` is valid UTF-8 and ends on a character boundary.
    valid_up_to: usize,
}

impl Utf8Validator {
    /// Checks the bytes of `data` after the validated prefix. `data` must be the same buffer as in
    /// earlier calls, only grown at the end.
    ///
    /// When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is
    /// not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_.
    /// (RFC 6455 §8.1)
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<(), WsError> {
        let tail = data.get(self.valid_up_to..).unwrap_or_default();
        match std::str::from_utf8(tail) {
            Ok(_) => self.valid_up_to = data.len(),
            // An incomplete sequence at the end: the next bytes may complete it.
            Err(err) if err.error_len().is_none() => self.valid_up_to += err.valid_up_to(),
            Err(_) => return Err(WsError::InvalidUtf8),
        }
        Ok(())
    }

    /// Checks that a complete message does not end inside a multi-byte sequence.
    pub(crate) fn finish(&self, data: &[u8]) -> Result<(), WsError> {
        if self.valid_up_to == data.len() {
            Ok(())
        } else {
            Err(WsError::InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` one after another into a growing buffer; returns the outcome after each
    /// piece and of `finish`.
    fn run(pieces: &[&[u8]]) -> (Vec<bool>, bool) {
        let mut validator = Utf8Validator::default();
        let mut data = Vec::new();
        let mut steps = Vec::new();
        for piece in pieces {
            data.extend_from_slice(piece);
            steps.push(validator.feed(&data).is_ok());
        }
        (steps, validator.finish(&data).is_ok())
    }

    #[test]
    fn table() {
        let crab = "🦀".as_bytes(); // F0 9F A6 80
        type Case<'a> = (&'a [&'a [u8]], &'a [bool], bool);
        let table: [Case<'_>; 8] = [
            (&[b"hello", b" world"], &[true, true], true),
            (&[b""], &[true], true),
            (
                &[&crab[..1], &crab[1..3], &crab[3..]],
                &[true, true, true],
                true,
            ),
            // Dangling incomplete sequence: fine while streaming, an error at the end.
            (&[b"ab", &crab[..2]], &[true, true], false),
            // Invalid bytes fail on the piece that brings them.
            (&[b"ok", &[0xFF], b"more"], &[true, false, false], false),
            // A lead byte followed by a non-continuation byte, split across pieces.
            (&[&[0xE2], &[0x41]], &[true, false], false),
            // Overlong encoding and a surrogate are invalid on the first piece.
            (&[&[0xC0, 0x80]], &[false], false),
            (&[&[0xED, 0xA0, 0x80]], &[false], false),
        ];
        for (pieces, steps, finished) in table {
            assert_eq!(run(pieces), (steps.to_vec(), finished), "{pieces:?}");
        }
    }

    #[test]
    fn byte_by_byte_matches_whole() {
        let text = "aé€🦀z".as_bytes();
        let pieces: Vec<&[u8]> = text.chunks(1).collect();
        let (steps, finished) = run(&pieces);
        assert!(steps.iter().all(|&ok| ok) && finished);
    }
}
