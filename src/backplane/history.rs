//! A topic's history in Redis, for the topics with recovery on: a capped stream of its
//! publications, each at its offset, and the stream's epoch.
//!
//! Per topic `T` (under the key prefix, `wsreactor:` by default):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `h:T` | stream | one entry per publication, id `OFFSET-0`, fields `t` (Redis time, ms) and `f` (the frame) |
//! | `m:T` | hash | `e`: the epoch (16 hex digits), `s`: the last offset given |
//! | `T` | pub/sub channel | the publications, live ([`envelope`](super::envelope)) |
//!
//! **Publishing** runs [`PUBLISH_SCRIPT`] (`EVALSHA`, pipelined by the publisher thread): in one
//! atomic step it starts a new epoch if the topic has none (its history expired, or Redis
//! restarted empty: the stream is deleted with it), takes the next offset, appends the frame
//! to the stream capped at `history_max_len` (`XADD MAXLEN`), makes both keys expire
//! `history_max_age` after this publication, and publishes the envelope with the epoch and
//! offset. So every node receives a topic's publications in offset order, and the offsets of
//! one epoch have no holes: a node that sees one skipped knows it missed a publication.
//!
//! **Reading** runs [`READ_SCRIPT`]: the epoch, the last offset and the entries after a
//! position, at one instant. [`read`] checks them against the position asked for and gives
//! exactly what followed it — or why it cannot ([`Unrecoverable`]): the epoch changed, the
//! position is older than what the stream keeps (by length or by age), or it is ahead of the
//! stream.

use std::sync::{Arc, LazyLock};

use redis::{Connection, Pipeline, RedisResult, Script, Value};

use crate::topic::{Position, Topic};

/// Publishes one frame with its position. KEYS: stream, meta. ARGV: channel, envelope head,
/// frame, max length, max age in ms (0: none), an epoch to start with if the topic has none.
const PUBLISH_LUA: &str = r"
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 's', 0)
end
local offset = redis.call('HINCRBY', KEYS[2], 's', 1)
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], offset .. '-0', 't', ms, 'f', ARGV[3])
if ARGV[5] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. epoch .. ' ' .. offset .. '\n' .. ARGV[3])
return offset
";

pub(crate) static PUBLISH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(PUBLISH_LUA));

/// The epoch, the last offset, the time and the entries from an offset on. KEYS: stream, meta.
/// ARGV: the first offset wanted, the most entries to return.
const READ_LUA: &str = r"
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then return {} end
local top = redis.call('HGET', KEYS[2], 's')
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local entries = redis.call('XRANGE', KEYS[1], ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])
return {epoch, top, tostring(ms), entries}
";

static READ_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(READ_LUA));

/// Loads both scripts (after every connect: Redis may have restarted without them).
pub(crate) fn load_scripts(connection: &mut Connection) -> RedisResult<()> {
    for source in [PUBLISH_LUA, READ_LUA] {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(source)
            .exec(connection)?;
    }
    Ok(())
}

/// The names of a topic's channel and keys.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub prefix: String,
}

impl Keys {
    pub(crate) fn channel(&self, topic: &Topic) -> String {
        format!("{}{topic}", self.prefix)
    }

    fn stream(&self, topic: &Topic) -> String {
        format!("{}h:{topic}", self.prefix)
    }

    fn meta(&self, topic: &Topic) -> String {
        format!("{}m:{topic}", self.prefix)
    }

    /// The topic a channel name stands for, if it is one of ours.
    pub(crate) fn topic_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(&self.prefix)
    }
}

/// How much history a topic keeps (`Config::history_max_len`, `history_max_age`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_len: usize,
    /// In milliseconds; 0: no limit.
    pub max_age_ms: u64,
}

/// Epochs for topics whose history starts (again): a different one every time.
#[derive(Debug)]
pub(crate) struct Epochs {
    pub state: u64,
}

impl Epochs {
    /// The next epoch: splitmix64 over the state (never 0).
    pub(crate) fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).max(1)
    }
}

/// Adds the publication of `frame` to `topic`, with its envelope `head`, to `pipe`.
pub(crate) fn publish(
    pipe: &mut Pipeline,
    keys: &Keys,
    (topic, frame): (&Topic, &[u8]),
    head: &str,
    limits: &Limits,
    epoch: u64,
) {
    pipe.cmd("EVALSHA")
        .arg(PUBLISH_SCRIPT.get_hash())
        .arg(2)
        .arg(keys.stream(topic))
        .arg(keys.meta(topic))
        .arg(keys.channel(topic))
        .arg(head)
        .arg(frame)
        .arg(limits.max_len)
        .arg(limits.max_age_ms)
        .arg(format!("{epoch:016x}"))
        .ignore();
}

/// Why a position cannot be recovered (logged; the connection gets its "cannot recover" frame,
/// and `Stats::backplane_recovery_refused` counts it). The registry refuses two more cases
/// itself: a topic without history, and live publications past `recovery_buffer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unrecoverable {
    /// The topic's history has another epoch (it expired, or Redis lost it), or none.
    EpochChanged,
    /// The position is older than the history keeps (`history_max_len`, `history_max_age`).
    TooOld,
    /// The position is ahead of the history: it was never given.
    Ahead,
    /// The history could not be read within `backplane_timeout` (Redis is down or slow), or
    /// its subscription could not be made.
    Unavailable,
    /// What was missed is more bytes than a connection may have queued
    /// (`Config::max_outbound_bytes`): sent at once, it would drop the client as a slow
    /// consumer.
    TooLarge,
}

impl std::fmt::Display for Unrecoverable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unrecoverable::EpochChanged => "the topic's history was lost (its epoch changed)",
            Unrecoverable::TooOld => "the position is older than the topic's history",
            Unrecoverable::Ahead => "the position is ahead of the topic's history",
            Unrecoverable::Unavailable => "the topic's history could not be read in time",
            Unrecoverable::TooLarge => "what was missed is more than max_outbound_bytes",
        })
    }
}

/// What a recovery gives: the publications after the position, in order, and the position of
/// the last one the history had when it was read (live publications up to it are duplicates).
#[derive(Debug)]
pub(crate) struct Recovered {
    pub entries: Vec<(Position, Arc<[u8]>)>,
    pub top: Position,
}

/// Reads what was published to `topic` after `since`, at most `max_age_ms` old (0: any age),
/// and at most `max_len` publications.
pub(crate) fn read(
    connection: &mut Connection,
    keys: &Keys,
    topic: &Topic,
    since: Position,
    limits: &Limits,
) -> RedisResult<Result<Recovered, Unrecoverable>> {
    let value: Value = READ_SCRIPT
        .key(keys.stream(topic))
        .key(keys.meta(topic))
        .arg(since.offset.saturating_add(1))
        .arg(limits.max_len.saturating_add(1))
        .invoke(connection)?;
    Ok(check(value, since, limits))
}

/// The read script's answer, checked against `since`.
fn check(value: Value, since: Position, limits: &Limits) -> Result<Recovered, Unrecoverable> {
    let Value::Array(parts) = value else {
        return Err(Unrecoverable::EpochChanged);
    };
    let [epoch, top, now, entries] =
        <[Value; 4]>::try_from(parts).map_err(|_| Unrecoverable::EpochChanged)?;
    let number = |value: &Value| text(value).and_then(|t| t.parse::<u64>().ok());
    let epoch = text(&epoch).and_then(|t| u64::from_str_radix(&t, 16).ok());
    let (Some(epoch), Some(top), Some(now)) = (epoch, number(&top), number(&now)) else {
        return Err(Unrecoverable::EpochChanged);
    };
    if epoch != since.epoch {
        return Err(Unrecoverable::EpochChanged);
    }
    if since.offset > top {
        return Err(Unrecoverable::Ahead);
    }
    let Value::Array(entries) = entries else {
        return Err(Unrecoverable::TooOld);
    };
    let oldest = now.saturating_sub(limits.max_age_ms);
    let mut recovered = Vec::with_capacity(entries.len());
    for (expected, entry) in (since.offset + 1..=top).zip(&entries) {
        let (offset, time, frame) = parse_entry(entry).ok_or(Unrecoverable::TooOld)?;
        if offset != expected || (limits.max_age_ms > 0 && time < oldest) {
            return Err(Unrecoverable::TooOld);
        }
        recovered.push((Position { epoch, offset }, frame));
    }
    if recovered.len() as u64 != top - since.offset {
        return Err(Unrecoverable::TooOld);
    }
    Ok(Recovered {
        entries: recovered,
        top: Position { epoch, offset: top },
    })
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `[id, [t, ms, f, frame]]` → (offset, ms, frame).
fn parse_entry(entry: &Value) -> Option<(u64, u64, Arc<[u8]>)> {
    let Value::Array(pair) = entry else {
        return None;
    };
    let [id, Value::Array(fields)] = pair.as_slice() else {
        return None;
    };
    let offset = text(id)?.strip_suffix("-0")?.parse().ok()?;
    let [t, time, f, Value::BulkString(frame)] = fields.as_slice() else {
        return None;
    };
    if text(t)? != "t" || text(f)? != "f" {
        return None;
    }
    let time = text(time)?.parse().ok()?;
    super::envelope::is_frame(frame).then(|| (offset, time, frame.as_slice().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::{OpCode, encode_shared_frame};

    const EPOCH: u64 = 0xabc;
    /// Redis's time in the answers below (ms).
    const NOW: u64 = 1_000_000;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    /// An entry at `offset`, `age` ms old.
    fn entry(offset: u64, age: u64) -> Value {
        let frame = encode_shared_frame(OpCode::Text, format!("m{offset}").as_bytes());
        Value::Array(vec![
            bulk(&format!("{offset}-0")),
            Value::Array(vec![
                bulk("t"),
                bulk(&(NOW - age).to_string()),
                bulk("f"),
                Value::BulkString(frame.to_vec()),
            ]),
        ])
    }

    /// The read script's answer: the epoch, the last offset, the time, the entries.
    fn answer(top: u64, entries: Vec<Value>) -> Value {
        Value::Array(vec![
            bulk(&format!("{EPOCH:016x}")),
            bulk(&top.to_string()),
            bulk(&NOW.to_string()),
            Value::Array(entries),
        ])
    }

    fn since(offset: u64) -> Position {
        Position {
            epoch: EPOCH,
            offset,
        }
    }

    const LIMITS: Limits = Limits {
        max_len: 100,
        max_age_ms: 60_000,
    };

    #[test]
    fn exactly_what_followed_the_position() {
        let entries = (4..=6).map(|o| entry(o, 10)).collect();
        let recovered = check(answer(6, entries), since(3), &LIMITS).expect("recovered");
        let offsets: Vec<u64> = recovered.entries.iter().map(|(p, _)| p.offset).collect();
        assert_eq!(offsets, [4, 5, 6]);
        assert_eq!(recovered.top, since(6));
        let nothing = check(answer(6, Vec::new()), since(6), &LIMITS).expect("up to date");
        assert!(nothing.entries.is_empty());
    }

    #[test]
    fn what_cannot_be_recovered_says_why() {
        let trimmed = (5..=6).map(|o| entry(o, 10)).collect();
        assert_eq!(
            check(answer(6, trimmed), since(3), &LIMITS).err(),
            Some(Unrecoverable::TooOld),
            "offset 4 was trimmed"
        );
        let old = vec![entry(4, 61_000), entry(5, 10)];
        assert_eq!(
            check(answer(5, old), since(3), &LIMITS).err(),
            Some(Unrecoverable::TooOld),
            "older than history_max_age"
        );
        let other = Position {
            epoch: EPOCH + 1,
            offset: 3,
        };
        assert_eq!(
            check(answer(6, Vec::new()), other, &LIMITS).err(),
            Some(Unrecoverable::EpochChanged)
        );
        assert_eq!(
            check(Value::Array(Vec::new()), since(3), &LIMITS).err(),
            Some(Unrecoverable::EpochChanged),
            "no history at all"
        );
        assert_eq!(
            check(answer(6, Vec::new()), since(9), &LIMITS).err(),
            Some(Unrecoverable::Ahead)
        );
        let no_age = Limits {
            max_age_ms: 0,
            ..LIMITS
        };
        assert!(check(answer(4, vec![entry(4, 999_999)]), since(3), &no_age).is_ok());
    }

    #[test]
    fn epochs_differ_and_are_never_zero() {
        let mut epochs = Epochs { state: 0 };
        let drawn: std::collections::HashSet<u64> = (0..1000).map(|_| epochs.next()).collect();
        assert_eq!(drawn.len(), 1000);
        assert!(!drawn.contains(&0));
    }
}
