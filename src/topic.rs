//! [`Topic`]: the name of a pub/sub topic, checked once and cheap to share.
//!
//! A name enters from user code (`Context::subscribe`, `Context::publish`,
//! `ServerHandle::publish`) as a `&str`; [`Topic::new`] checks its length against
//! [`MAX_TOPIC_LEN`] and keeps it in an `Arc<str>`, so the loop's registry, every publication in
//! flight and every command sent to another loop share the one copy. The registry
//! (`netpoller/topics.rs`) looks subscribers up by it. A name too long is a [`TopicError`].
//!
//! [`Position`]: where a publication stands in its topic's history, when the Redis backplane
//! keeps one (`src/backplane/`); it travels with the publication to the loops and, through the
//! application, to the client, which gives it back to resume.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// The longest topic name, in bytes. Names are map keys held by every subscription and sent with
/// every publication to the other event loops, so they are bounded like every other input; 256
/// bytes fits any sensible room, channel or user name.
pub const MAX_TOPIC_LEN: usize = 256;

/// Why a handler's topic request was refused at once by its
/// [`Context`](crate::Context) (`subscribe`, `unsubscribe`, `publish`).
///
/// A subscription past [`Config::max_subscriptions`](crate::Config::max_subscriptions) is not
/// an error here: it is refused later, by the event loop, which logs it and counts it in
/// [`Stats::subscriptions_refused`](crate::Stats::subscriptions_refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// The name has this many bytes, more than [`MAX_TOPIC_LEN`].
    TooLong(usize),
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::TooLong(len) => write!(
                f,
                "a topic name of {len} bytes is longer than {} bytes",
                MAX_TOPIC_LEN
            ),
        }
    }
}

impl std::error::Error for TopicError {}

/// A topic name of at most [`MAX_TOPIC_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Topic(Arc<str>);

impl Topic {
    /// The topic `name`, or [`TopicError::TooLong`].
    pub(crate) fn new(name: &str) -> Result<Self, TopicError> {
        if name.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong(name.len()));
        }
        Ok(Topic(name.into()))
    }
}

impl Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a publication stands in its topic's history, with the backplane's recovery on
/// (`RedisBackplane::recover`): its `offset` in the topic's stream (1, 2, 3, ... with no gaps)
/// and the `epoch` of that stream, which changes whenever the history is lost (it expired, or
/// Redis restarted empty) and the offsets start again.
///
/// A client keeps the position of the last publication it saw (the application frames it, see
/// [`Context::subscribe_from`](crate::Context::subscribe_from)) and gives it back when it
/// reconnects. Its text form, [`Display`](fmt::Display) and [`FromStr`](std::str::FromStr), is
/// `EPOCH-OFFSET` (`9f86d081884c7d65-42`): the epoch in 16 hex digits, the offset in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// The stream's epoch.
    pub epoch: u64,
    /// The publication's offset in the stream (the first is 1; 0 is "before the first").
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.epoch, self.offset)
    }
}

/// A text that is not a [`Position`] (`EPOCH-OFFSET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionError;

impl fmt::Display for PositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a position: EPOCH-OFFSET, 16 hex digits then a decimal offset")
    }
}

impl std::error::Error for PositionError {}

impl std::str::FromStr for Position {
    type Err = PositionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (epoch, offset) = text.split_once('-').ok_or(PositionError)?;
        if epoch.len() != 16 || offset.is_empty() || !offset.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PositionError);
        }
        Ok(Position {
            epoch: u64::from_str_radix(epoch, 16).map_err(|_| PositionError)?,
            offset: offset.parse().map_err(|_| PositionError)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded() {
        assert_eq!(
            Topic::new("room/1").map(|t| t.to_string()),
            Ok("room/1".into())
        );
        assert!(Topic::new("").is_ok(), "the empty name is a name");
        assert!(Topic::new(&"x".repeat(MAX_TOPIC_LEN)).is_ok());
        assert_eq!(
            Topic::new(&"x".repeat(MAX_TOPIC_LEN + 1)),
            Err(TopicError::TooLong(MAX_TOPIC_LEN + 1))
        );
    }

    #[test]
    fn positions_read_back_what_they_print() {
        let position = Position {
            epoch: 0x9f86_d081_884c_7d65,
            offset: 42,
        };
        assert_eq!(position.to_string(), "9f86d081884c7d65-42");
        assert_eq!("9f86d081884c7d65-42".parse(), Ok(position));
        for bad in [
            "",
            "42",
            "9f86d081884c7d65-",
            "9f86d081884c7d6-1",
            "9f86d081884c7d65-+1",
            "zz86d081884c7d65-1",
        ] {
            assert_eq!(bad.parse::<Position>(), Err(PositionError), "{bad:?}");
        }
    }
}
