//! What the user configures: [`RedisBackplane`] (the URL, the key prefix, which topics keep a
//! history and how their frames carry positions), checked when it is made; the running
//! backplane (`mod.rs`) takes it when the server starts.

use std::fmt;
use std::sync::Arc;

use super::envelope;
use crate::topic::{Position, Topic};
use crate::ws::encode_shared_frame;

/// A Redis to share topics with the other nodes started with the same one:
/// [`ServerBuilder::backplane`](crate::ServerBuilder::backplane).
///
/// ```no_run
/// # use wsreactor::{RedisBackplane, Server, Framing};
/// let backplane = RedisBackplane::new("redis://127.0.0.1:6379")?
///     .recover("room/", Framing::PositionFirst);
/// # let handler = |ctx: &mut wsreactor::Context<'_>, m: wsreactor::Message| ctx.send(m);
/// let server = Server::builder().backplane(backplane).build(handler)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The URL is `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (`redis://:secret@10.0.0.5`).
/// `rediss://` (TLS) needs the feature `redis-tls` (the `redis` crate's rustls, on the same
/// aws-lc-rs provider as the server's TLS) and verifies Redis's certificate against the
/// system's roots, or against [`tls_root`](Self::tls_root). The server starts whether or not Redis
/// answers; it connects (and reconnects) in the background, and its local topics work
/// meanwhile.
#[derive(Clone)]
pub struct RedisBackplane {
    pub(crate) client: redis::Client,
    /// The URL without its password, for the log.
    pub(crate) shown: String,
    pub(crate) prefix: String,
    pub(crate) recovery: Recovery,
}

/// How the frames of a recovery topic reach its subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// As they were published: the client cannot know their positions (the application
    /// frames them some other way, or only uses recovery through the server).
    AsPublished,
    /// Each payload begins with its position's text and a space (`9f86d081884c7d65-42 `),
    /// text and binary frames alike: the client keeps the last one it saw, and gives it back
    /// when it reconnects ([`Position`]'s `FromStr` reads it). The frame is made once per node
    /// and shared by the node's subscribers.
    PositionFirst,
}

/// Why a [`RedisBackplane`] cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackplaneError {
    /// The URL is not a Redis URL this build can use; the text says why.
    Url(String),
}

impl fmt::Display for BackplaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackplaneError::Url(why) => write!(f, "bad Redis URL: {why}"),
        }
    }
}

impl std::error::Error for BackplaneError {}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("url", &self.shown)
            .field("prefix", &self.prefix)
            .field("recovery", &self.recovery)
            .finish()
    }
}

impl RedisBackplane {
    /// The Redis at `url`; nothing is connected until the server starts.
    pub fn new(url: &str) -> Result<Self, BackplaneError> {
        if url.starts_with("rediss://") && !cfg!(feature = "redis-tls") {
            return Err(BackplaneError::Url(
                "rediss:// (TLS to Redis) needs the feature redis-tls".into(),
            ));
        }
        if !url.starts_with("redis://") && !url.starts_with("rediss://") {
            return Err(BackplaneError::Url(format!(
                "{:?} does not start with redis:// or rediss://",
                shown(url)
            )));
        }
        let client =
            redis::Client::open(url).map_err(|err| BackplaneError::Url(err.to_string()))?;
        Ok(RedisBackplane {
            client,
            shown: shown(url),
            prefix: "wsreactor:".to_owned(),
            recovery: Recovery::default(),
        })
    }

    /// Verifies the certificate of a `rediss://` Redis against the CA certificates of `pem`
    /// (PEM text) instead of the system's roots: a private CA, or a self-signed Redis.
    #[cfg(feature = "redis-tls")]
    pub fn tls_root(mut self, pem: &[u8]) -> Result<Self, BackplaneError> {
        let info = self.client.get_connection_info().clone();
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.to_vec()),
        };
        self.client = redis::Client::build_with_tls(info, certificates)
            .map_err(|err| BackplaneError::Url(err.to_string()))?;
        Ok(self)
    }

    /// Names every channel and key under `prefix` (default `wsreactor:`): servers with another
    /// prefix share the Redis but no topic.
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Keeps a history of every topic whose name starts with `prefix` (`""`: every topic), and
    /// delivers its publications in one order on every node — the publishing node too, once
    /// Redis has given each its position. A connection can then be subscribed from a position
    /// ([`Context::subscribe_from`](crate::Context::subscribe_from)). Each call adds a prefix;
    /// the first that matches a topic decides its framing.
    pub fn recover(mut self, prefix: &str, framing: Framing) -> Self {
        self.recovery.prefixes.push((prefix.to_owned(), framing));
        self
    }
}

/// `url` without its password.
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Which topics keep a history, and how their frames are framed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recovery {
    prefixes: Vec<(String, Framing)>,
}

impl Recovery {
    /// How `topic` is framed, if it keeps a history.
    pub(crate) fn framing(&self, topic: &str) -> Option<Framing> {
        self.prefixes
            .iter()
            .find(|(prefix, _)| topic.starts_with(prefix.as_str()))
            .map(|(_, framing)| *framing)
    }

    /// `frame` as the subscribers of `topic` get it at `position`.
    pub(crate) fn frame(&self, topic: &Topic, position: Position, frame: Arc<[u8]>) -> Arc<[u8]> {
        if self.framing(&topic.to_string()) != Some(Framing::PositionFirst) {
            return frame;
        }
        let Some((opcode, payload)) = envelope::payload(&frame) else {
            return frame;
        };
        let mut prefixed = format!("{position} ").into_bytes();
        prefixed.extend_from_slice(payload);
        encode_shared_frame(opcode, &prefixed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::OpCode;

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        let backplane = RedisBackplane::new("redis://:secret@127.0.0.1:6379/2").expect("valid");
        assert!(
            !format!("{backplane:?}").contains("secret"),
            "{backplane:?}"
        );
        assert_eq!(shown("redis://u:pw@h:1"), "redis://***@h:1");
        for bad in ["http://h", "redis://", "h:6379"] {
            assert!(RedisBackplane::new(bad).is_err(), "{bad}");
        }
        let tls = RedisBackplane::new("rediss://:pw@h:6380");
        assert_eq!(tls.is_ok(), cfg!(feature = "redis-tls"), "{tls:?}");
    }

    #[test]
    fn the_first_matching_prefix_decides_and_frames_get_their_position() {
        let recovery = RedisBackplane::new("redis://h")
            .expect("valid")
            .recover("room/", Framing::PositionFirst)
            .recover("", Framing::AsPublished)
            .recovery;
        assert_eq!(recovery.framing("room/1"), Some(Framing::PositionFirst));
        assert_eq!(recovery.framing("other"), Some(Framing::AsPublished));
        assert_eq!(Recovery::default().framing("room/1"), None);
        let frame = encode_shared_frame(OpCode::Text, b"hi");
        let position = Position {
            epoch: 1,
            offset: 2,
        };
        let topic = Topic::new("room/1").expect("short");
        let framed = recovery.frame(&topic, position, Arc::clone(&frame));
        assert_eq!(&*framed, b"\x81\x150000000000000001-2 hi");
        let other = Topic::new("other").expect("short");
        assert!(Arc::ptr_eq(
            &recovery.frame(&other, position, Arc::clone(&frame)),
            &frame
        ));
    }
}
