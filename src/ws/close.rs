//! Close status codes (RFC 6455 §7.4), the payload of a close frame, and how a connection ended.
//!
//! Codes enter as `u16` from the wire (through the decoder's close-payload parser, in
//! `control.rs`) or from the application and the session; they leave as `u16` through
//! [`encode_close`](crate::ws::encode_close).

use std::fmt;

/// A close status code (RFC 6455 §7.4.1).
///
/// [`CloseCode::from_u16`] maps every code that has a named variant to it, so `Other` only ever
/// holds codes without one when built through `from_u16` / `From<u16>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: normal closure, the purpose of the connection is fulfilled.
    Normal,
    /// 1001: the endpoint is going away (server shutdown, page navigated away).
    Away,
    /// 1002: the peer broke the protocol.
    Protocol,
    /// 1003: the endpoint received a type of data it cannot accept.
    Unsupported,
    /// 1005: no status code was present. Never on the wire: only reported locally.
    Status,
    /// 1006: the connection dropped without a close frame. Never on the wire: only reported locally.
    Abnormal,
    /// 1007: data inconsistent with the message type (e.g. a text message that is not UTF-8).
    Invalid,
    /// 1008: a message violates the endpoint's policy.
    Policy,
    /// 1009: a message is too big to process.
    Size,
    /// 1010: the client expected an extension the server did not negotiate.
    Extension,
    /// 1011: the server met an unexpected condition (internal error).
    Error,
    /// 1012: the service is restarting.
    Restart,
    /// 1013: try again later (temporary overload).
    Again,
    /// Any other code: 1014 and 3000-4999 (registered and application codes) are valid on the
    /// wire; everything else is not (see [`CloseCode::is_allowed_on_wire`]).
    Other(u16),
}

impl CloseCode {
    /// Maps a numeric code to its variant; codes without a named variant become `Other`.
    pub fn from_u16(code: u16) -> CloseCode {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::Away,
            1002 => CloseCode::Protocol,
            1003 => CloseCode::Unsupported,
            1005 => CloseCode::Status,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::Invalid,
            1008 => CloseCode::Policy,
            1009 => CloseCode::Size,
            1010 => CloseCode::Extension,
            1011 => CloseCode::Error,
            1012 => CloseCode::Restart,
            1013 => CloseCode::Again,
            other => CloseCode::Other(other),
        }
    }

    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::Away => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::Status => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::Invalid => 1007,
            CloseCode::Policy => 1008,
            CloseCode::Size => 1009,
            CloseCode::Extension => 1010,
            CloseCode::Error => 1011,
            CloseCode::Restart => 1012,
            CloseCode::Again => 1013,
            CloseCode::Other(code) => code,
        }
    }

    /// May this code appear in a close frame received from a peer? RFC 6455 §7.4:
    /// allowed: 1000-1003, 1007-1014, 3000-4999. Not allowed: <1000, 1004, 1005, 1006, 1015,
    /// 1016-2999, >=5000.
    pub fn is_allowed_on_wire(self) -> bool {
        // 1004 is reserved; 1005, 1006 and 1015 MUST NOT be set as a status code in a Close
        // control frame by an endpoint. (RFC 6455 §7.4.1) 1012-1014 are registered in the IANA
        // "WebSocket Close Code Number Registry" (RFC 6455 §11.7). 0-999 are not used, 1016-2999
        // are reserved for future revisions and 5000+ are outside every range. (RFC 6455 §7.4.2)
        matches!(self.as_u16(), 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    fn name(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal",
            CloseCode::Away => "going away",
            CloseCode::Protocol => "protocol error",
            CloseCode::Unsupported => "unsupported data",
            CloseCode::Status => "no status code",
            CloseCode::Abnormal => "abnormal closure",
            CloseCode::Invalid => "invalid payload data",
            CloseCode::Policy => "policy violation",
            CloseCode::Size => "message too big",
            CloseCode::Extension => "mandatory extension",
            CloseCode::Error => "internal error",
            CloseCode::Restart => "service restart",
            CloseCode::Again => "try again later",
            CloseCode::Other(3000..=4999) => "application",
            CloseCode::Other(_) => "other",
        }
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode::from_u16(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.as_u16()
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_u16(), self.name())
    }
}

/// The payload of a close frame that carried a status code: the code and a UTF-8 reason (possibly
/// empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code; always [`CloseCode::is_allowed_on_wire`] when decoded from a peer.
    pub code: CloseCode,
    /// The reason text (at most 123 bytes on the wire).
    pub reason: String,
}

/// How a WebSocket connection ended, given to [`Handler::on_close`](crate::Handler::on_close).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code: the peer's (when it closed first), the server's (when it did), `1005`
    /// for a close frame without a code, `1006` when the TCP connection ended without one.
    pub code: CloseCode,
    /// The close reason that went with the code (may be empty).
    pub reason: String,
}

impl CloseInfo {
    pub(crate) fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        CloseInfo {
            code,
            reason: reason.into(),
        }
    }

    /// The connection ended without a close frame (reset, EOF, timeout): code `1006`.
    pub(crate) fn abnormal() -> Self {
        CloseInfo::new(CloseCode::Abnormal, "")
    }
}

impl From<CloseFrame> for CloseInfo {
    fn from(frame: CloseFrame) -> Self {
        CloseInfo::new(frame.code, frame.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_and_as_round_trip() {
        for code in 0..=u16::MAX {
            let close = CloseCode::from_u16(code);
            assert_eq!(close.as_u16(), code);
            assert_eq!(u16::from(CloseCode::from(code)), code);
            // Named codes never come back as Other.
            if let CloseCode::Other(_) = close {
                assert!(!matches!(code, 1000..=1003 | 1005..=1013), "{code}");
            }
        }
    }

    #[test]
    fn allowed_on_wire_table() {
        let table = [
            (0, false),
            (999, false),
            (1000, true),
            (1003, true),
            (1004, false),
            (1005, false),
            (1006, false),
            (1007, true),
            (1011, true),
            (1012, true),
            (1014, true),
            (1015, false),
            (1016, false),
            (2999, false),
            (3000, true),
            (4999, true),
            (5000, false),
            (65535, false),
        ];
        for (code, allowed) in table {
            assert_eq!(
                CloseCode::from_u16(code).is_allowed_on_wire(),
                allowed,
                "{code}"
            );
        }
    }

    #[test]
    fn display() {
        assert_eq!(CloseCode::Normal.to_string(), "1000 (normal)");
        assert_eq!(CloseCode::Size.to_string(), "1009 (message too big)");
        assert_eq!(CloseCode::Other(4000).to_string(), "4000 (application)");
    }
}
