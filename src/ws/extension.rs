//! The `Sec-WebSocket-Extensions` header's grammar (RFC 6455 §9.1): a comma-separated list of
//! extensions, each a name with `;`-separated parameters, whose values may be quoted.
//!
//! Header values enter [`parse_offers`]; a list of [`ExtensionOffer`]s leaves, one per element,
//! in the client's order. An element that breaks the grammar leaves as `Err` in its place, so the
//! caller declines that offer and still considers the others: a bad offer never fails the
//! upgrade. What the parameters mean is the extension's business (`deflate/negotiate.rs`).

/// One element of the list: an extension name and its parameters, as the client wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// The extension's name (a token), e.g. `permessage-deflate`; compared case-insensitively.
    pub name: String,
    /// The parameters in order: name, and the value (unquoted) if one was given.
    pub params: Vec<(String, Option<String>)>,
}

/// Why an element of the list was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxError {
    /// An extension or parameter name is empty or not a token.
    BadName,
    /// A parameter value is empty, not a token, or an unterminated quoted string.
    BadValue,
}

/// Parses every `Sec-WebSocket-Extensions` header value, in order, into offers. Empty elements
/// (`a, , b`) are skipped, as the `#rule` list syntax allows.
pub fn parse_offers<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Result<ExtensionOffer, SyntaxError>> {
    values
        .into_iter()
        .flat_map(|value| split_outside_quotes(value, b','))
        .filter(|element| !trim(element).is_empty())
        .map(parse_element)
        .collect()
}

/// `name *( ";" param )`.
fn parse_element(element: &[u8]) -> Result<ExtensionOffer, SyntaxError> {
    let mut parts = split_outside_quotes(element, b';').into_iter();
    let name = token(parts.next().unwrap_or_default()).ok_or(SyntaxError::BadName)?;
    let params = parts.map(parse_param).collect::<Result<_, _>>()?;
    Ok(ExtensionOffer { name, params })
}

/// `name [ "=" ( token / quoted-string ) ]`.
fn parse_param(param: &[u8]) -> Result<(String, Option<String>), SyntaxError> {
    let (name, value) = match param.iter().position(|&b| b == b'=') {
        Some(at) => (&param[..at], Some(&param[at + 1..])),
        None => (param, None),
    };
    let name = token(name).ok_or(SyntaxError::BadName)?;
    let value = value.map(parse_value).transpose()?;
    Ok((name, value))
}

/// A token, or a quoted string whose content, once unescaped, is a token: "When using the
/// quoted-string syntax variant, the value after quoted-string unescaping MUST conform to the
/// 'token' ABNF." (RFC 6455 §9.1)
fn parse_value(value: &[u8]) -> Result<String, SyntaxError> {
    let value = trim(value);
    let unquoted = match value {
        [b'"', inner @ .., b'"'] => unescape(inner).ok_or(SyntaxError::BadValue)?,
        _ => value.to_vec(),
    };
    token(&unquoted).ok_or(SyntaxError::BadValue)
}

/// The content of a quoted string with its `\x` escapes resolved; `None` if it ends inside an
/// escape or holds an unescaped quote.
fn unescape(inner: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'\\' => out.push(*bytes.next()?),
            b'"' => return None,
            _ => out.push(byte),
        }
    }
    Some(out)
}

/// `bytes`, trimmed, as a string if it is a non-empty token (RFC 9110 §5.6.2).
fn token(bytes: &[u8]) -> Option<String> {
    let bytes = trim(bytes);
    let is_tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if bytes.is_empty() || !bytes.iter().all(is_tchar) {
        return None;
    }
    // All tchars are ASCII.
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// Optional whitespace (spaces and tabs) removed from both ends.
fn trim(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |at| at + 1);
    &bytes[start..end]
}

/// Splits at `separator` wherever it is not inside a quoted string (a backslash escapes the next
/// byte inside quotes).
fn split_outside_quotes(bytes: &[u8], separator: u8) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, &byte) in bytes.iter().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if byte == separator && !quoted => {
                parts.push(&bytes[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&bytes[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(name: &str, params: &[(&str, Option<&str>)]) -> Result<ExtensionOffer, SyntaxError> {
        Ok(ExtensionOffer {
            name: name.to_owned(),
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_owned)))
                .collect(),
        })
    }

    #[test]
    fn offers_with_parameters_and_quoted_values() {
        let parsed = parse_offers([
            &b"permessage-deflate; client_max_window_bits, permessage-deflate ; server_max_window_bits=\"10\" ;client_no_context_takeover"[..],
            b"x-webkit-deflate-frame",
        ]);
        assert_eq!(
            parsed,
            [
                offer("permessage-deflate", &[("client_max_window_bits", None)]),
                offer(
                    "permessage-deflate",
                    &[
                        ("server_max_window_bits", Some("10")),
                        ("client_no_context_takeover", None)
                    ]
                ),
                offer("x-webkit-deflate-frame", &[]),
            ]
        );
    }

    #[test]
    fn commas_and_semicolons_inside_quotes_do_not_split() {
        let parsed = parse_offers([&b"foo; a=\"x\\\"y\", bar; b=\"1,2\""[..]]);
        // `x"y` and `1,2` are not tokens, so both elements are bad values, but there are two.
        assert_eq!(
            parsed,
            [Err(SyntaxError::BadValue), Err(SyntaxError::BadValue)]
        );
        let parsed = parse_offers([&b"foo; a=\"b\\c\""[..]]);
        assert_eq!(parsed, [offer("foo", &[("a", Some("bc"))])]);
    }

    #[test]
    fn a_bad_element_does_not_hide_the_others() {
        let parsed = parse_offers([&b"a;=1, , b; c=, d; e=\"unterminated, f"[..]]);
        assert_eq!(
            parsed,
            [
                Err(SyntaxError::BadName),
                Err(SyntaxError::BadValue),
                // The unterminated quote swallows the rest of the header into one bad element.
                Err(SyntaxError::BadValue),
            ]
        );
        let parsed = parse_offers([&b"x y, ok"[..], b""]);
        assert_eq!(parsed, [Err(SyntaxError::BadName), offer("ok", &[])]);
    }
}
