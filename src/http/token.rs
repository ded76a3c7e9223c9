//! Comma-separated token lists, as used by `Connection`, `Upgrade`, `Sec-WebSocket-Protocol`, ...
//!
//! Input is a raw header value (bytes, possibly not UTF-8); output is the list elements with the
//! optional whitespace around them removed. RFC 9110 §5.6.1: "a recipient MUST parse and ignore
//! a reasonable number of empty list elements", so empty elements are skipped.

/// Optional whitespace (RFC 9110 §5.6.3): `OWS = *( SP / HTAB )`.
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Strips leading and trailing SP / HTAB.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = v {
        if !is_ows(*first) {
            break;
        }
        v = rest;
    }
    while let [rest @ .., last] = v {
        if !is_ows(*last) {
            break;
        }
        v = rest;
    }
    v
}

/// The non-empty, trimmed elements of a comma-separated list.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Does the list `value` contain `token` (ASCII case-insensitive)?
pub(crate) fn list_contains(value: &[u8], token: &str) -> bool {
    list_elements(value).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_skips_empty_elements() {
        let got: Vec<&[u8]> = list_elements(b" a ,, \tb\t,c,").collect();
        assert_eq!(got, vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(trim_ows(b" \t "), b"");
    }

    #[test]
    fn contains_is_case_insensitive() {
        assert!(list_contains(b"keep-alive, Upgrade", "upgrade"));
        assert!(!list_contains(b"keep-alive, Upgraded", "upgrade"));
        assert!(!list_contains(b"", "close"));
    }
}
