//! Negotiating permessage-deflate (RFC 7692 §5, §7.1): from the client's offers to the one
//! agreement the server answers with.
//!
//! The offers enter [`negotiate`] as parsed `Sec-WebSocket-Extensions` elements; the first
//! acceptable `permessage-deflate` offer leaves as a [`PerMessageDeflate`], whose
//! [`response_header`](PerMessageDeflate::response_header) goes into the `101`. An offer with an
//! unknown or repeated parameter, or a value out of range, is declined (RFC 7692 §5.1) and the
//! next one is considered; none acceptable means no compression, never a failed upgrade.
//!
//! The server always answers with `server_no_context_takeover` and `client_no_context_takeover`
//! (both allowed in any response, RFC 7692 §7.1.1): each message is compressed on its own, so
//! no connection keeps a compressor or a window between messages, and an idle connection costs
//! no zlib memory at all. The threads that compress keep one codec each (`codec.rs`).

use crate::ws::extension::{ExtensionOffer, parse_offers};

/// The extension's registered name.
const NAME: &str = "permessage-deflate";

/// The window zlib compresses with when the client sets no `server_max_window_bits`.
pub(crate) const MAX_WINDOW_BITS: u8 = 15;

/// The smallest window the server compresses with. zlib cannot produce a raw deflate stream for
/// an 8-bit window (it silently uses 9), so an offer that demands 8 is declined.
const MIN_SERVER_WINDOW_BITS: u8 = 9;

/// A permessage-deflate agreement for one connection: both directions without context takeover,
/// and the window the server compresses with. Two bytes; it travels with each batch of messages
/// to whoever runs the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerMessageDeflate {
    /// `server_max_window_bits`, if the client set it (9..=15).
    server_max_window_bits: Option<u8>,
}

impl PerMessageDeflate {
    /// The base-2 logarithm of the window the server compresses with (9..=15).
    pub fn server_window_bits(&self) -> u8 {
        self.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS)
    }

    /// The value of the `Sec-WebSocket-Extensions` header of the `101` response: exactly the
    /// parameters chosen.
    pub fn response_header(&self) -> String {
        let mut value = format!("{NAME}; server_no_context_takeover; client_no_context_takeover");
        // A server accepts an offer with server_max_window_bits by including it in the
        // response with the same or a smaller value. (RFC 7692 §7.1.2.1)
        if let Some(bits) = self.server_max_window_bits {
            value.push_str(&format!("; server_max_window_bits={bits}"));
        }
        // client_max_window_bits is never sent: the server inflates with the largest window,
        // which reads any smaller one, and "the server MUST NOT include it if the offer did not
        // have it" (RFC 7692 §7.1.2.2) cannot be broken this way.
        value
    }
}

/// Why an offer was declined (for the log and the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declined {
    /// A parameter this extension does not define.
    UnknownParameter,
    /// A parameter given twice (RFC 7692 §7: the offer is then invalid).
    DuplicateParameter,
    /// A value where none is allowed, none where one is required, or out of 8..=15.
    BadValue,
    /// `server_max_window_bits=8`, which zlib cannot honour.
    WindowTooSmall,
}

/// The first acceptable permessage-deflate offer among `extension_headers` (the raw values of
/// every `Sec-WebSocket-Extensions` header), or `None`.
pub fn negotiate<'a>(
    extension_headers: impl IntoIterator<Item = &'a [u8]>,
) -> Option<PerMessageDeflate> {
    parse_offers(extension_headers)
        .into_iter()
        .find_map(|offer| {
            let offer = match offer {
                Ok(offer) if offer.name.eq_ignore_ascii_case(NAME) => offer,
                // Another extension: not ours to judge.
                Ok(_) => return None,
                Err(why) => {
                    log::debug!("a Sec-WebSocket-Extensions element is not understood: {why:?}");
                    return None;
                }
            };
            match accept(&offer) {
                Ok(agreement) => Some(agreement),
                Err(why) => {
                    log::debug!("permessage-deflate offer declined: {why:?}");
                    None
                }
            }
        })
}

/// Accepts one permessage-deflate offer, or says why not.
fn accept(offer: &ExtensionOffer) -> Result<PerMessageDeflate, Declined> {
    let mut seen = Seen::default();
    let mut server_max_window_bits = None;
    for (name, value) in &offer.params {
        let name = name.to_ascii_lowercase();
        let flag = match name.as_str() {
            "server_no_context_takeover" => &mut seen.server_no_context_takeover,
            "client_no_context_takeover" => &mut seen.client_no_context_takeover,
            "server_max_window_bits" => &mut seen.server_max_window_bits,
            "client_max_window_bits" => &mut seen.client_max_window_bits,
            _ => return Err(Declined::UnknownParameter),
        };
        if std::mem::replace(flag, true) {
            return Err(Declined::DuplicateParameter);
        }
        match (name.as_str(), value.as_deref()) {
            // The context-takeover parameters have no value. (RFC 7692 §7.1.1)
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            ("server_no_context_takeover" | "client_no_context_takeover", Some(_)) => {
                return Err(Declined::BadValue);
            }
            // server_max_window_bits has a value; client_max_window_bits may have one.
            // (RFC 7692 §7.1.2)
            ("server_max_window_bits", Some(value)) => {
                let bits = window_bits(value)?;
                if bits < MIN_SERVER_WINDOW_BITS {
                    return Err(Declined::WindowTooSmall);
                }
                server_max_window_bits = Some(bits);
            }
            ("client_max_window_bits", Some(value)) => {
                window_bits(value)?;
            }
            ("client_max_window_bits", None) => {}
            _ => return Err(Declined::BadValue),
        }
    }
    Ok(PerMessageDeflate {
        server_max_window_bits,
    })
}

/// Which parameters an offer has named so far.
#[derive(Default)]
struct Seen {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: bool,
    client_max_window_bits: bool,
}

/// A window-bits value: "a decimal integer value without leading zeroes between 8 to 15,
/// inclusive" (RFC 7692 §7.1.2.1).
fn window_bits(value: &str) -> Result<u8, Declined> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Declined::BadValue);
    }
    value
        .parse::<u8>()
        .ok()
        .filter(|bits| (8..=15).contains(bits))
        .ok_or(Declined::BadValue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agree(header: &str) -> Option<String> {
        negotiate([header.as_bytes()]).map(|a| a.response_header())
    }

    const PLAIN: &str =
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn what_real_clients_offer_is_accepted() {
        // Chromium, Firefox, Python websockets, Node ws: all offer this.
        assert_eq!(
            agree("permessage-deflate; client_max_window_bits").as_deref(),
            Some(PLAIN)
        );
        assert_eq!(agree("permessage-deflate").as_deref(), Some(PLAIN));
        assert_eq!(
            agree("permessage-deflate; client_no_context_takeover; server_no_context_takeover")
                .as_deref(),
            Some(PLAIN)
        );
        assert_eq!(
            agree("Permessage-Deflate; Server_Max_Window_Bits=\"10\"; client_max_window_bits=12")
                .as_deref(),
            Some(format!("{PLAIN}; server_max_window_bits=10").as_str())
        );
        let agreement = negotiate([&b"permessage-deflate; server_max_window_bits=9"[..]]);
        assert_eq!(agreement.map(|a| a.server_window_bits()), Some(9));
        assert_eq!(
            negotiate([&b"permessage-deflate"[..]]).map(|a| a.server_window_bits()),
            Some(15)
        );
    }

    #[test]
    fn the_first_acceptable_offer_wins_and_bad_ones_are_declined() {
        // Autobahn 13.7: three offers, the first acceptable.
        let header = "permessage-deflate; client_no_context_takeover; client_max_window_bits; \
                      server_no_context_takeover; server_max_window_bits=9, permessage-deflate; \
                      client_no_context_takeover, permessage-deflate";
        assert_eq!(
            agree(header).as_deref(),
            Some(format!("{PLAIN}; server_max_window_bits=9").as_str())
        );
        // Each bad offer is skipped for the plain one after it.
        for bad in [
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits=+9",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; unknown_parameter",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(agree(bad), None, "{bad}");
            let with_fallback = format!("{bad}, permessage-deflate; client_max_window_bits");
            assert_eq!(agree(&with_fallback).as_deref(), Some(PLAIN), "{bad}");
        }
        // An unterminated quote runs to the end of the header: nothing after it is an offer.
        assert_eq!(agree("permessage-deflate; x=\"a, permessage-deflate"), None);
        assert_eq!(negotiate(std::iter::empty::<&[u8]>()), None);
        assert_eq!(agree(""), None);
    }

    #[test]
    fn several_headers_are_one_list() {
        let agreement = negotiate([
            &b"foo"[..],
            b"permessage-deflate; server_max_window_bits=12",
        ]);
        assert_eq!(agreement.map(|a| a.server_window_bits()), Some(12));
    }
}
