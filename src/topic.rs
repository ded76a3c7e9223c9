//! [`Topic`]: the name of a pub/sub topic, checked once and cheap to share.
//!
//! A name enters from user code (`Context::subscribe`, `Context::publish`,
//! `ServerHandle::publish`) as a `&str`; [`Topic::new`] checks its length against
//! [`MAX_TOPIC_LEN`] and keeps it in an `Arc<str>`, so the loop's registry, every publication in
//! flight and every command sent to another loop share the one copy. The registry
//! (`netpoller/topics.rs`) looks subscribers up by it. A name too long is a [`TopicError`].

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
}
