//! The test application's commands beyond echo: topics (`sub:T`, `unsub:T`, `pub:T:text`,
//! `others:T:text`) and timers (`timer:K:MS`, `cancel:K`), carried out into a job's output as
//! a handler's `Context` would.

use std::time::Duration;

use crate::dispatch::Output;
use crate::topic::Topic;
use crate::ws::{OpCode, encode_shared_frame};

/// Carries out `text` if it is one of the test application's topic commands.
pub(super) fn topic_command(output: &mut Output, text: &[u8]) -> bool {
    let Some((verb, rest)) = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.split_once(':'))
    else {
        return false;
    };
    let (name, body) = match verb {
        "sub" | "unsub" => (rest, ""),
        "pub" | "others" => match rest.split_once(':') {
            Some(split) => split,
            None => return false,
        },
        _ => return false,
    };
    let Ok(topic) = Topic::new(name) else {
        return false;
    };
    match verb {
        "sub" => output.subscribe(topic),
        "unsub" => output.unsubscribe(topic),
        _ => {
            let frame = encode_shared_frame(OpCode::Text, body.as_bytes());
            output.publish(topic, frame, verb == "pub");
        }
    }
    true
}

/// Carries out `text` if it is a timer command the connection may make: `timer:K:MS` arms
/// timer `K` for `MS` milliseconds (false, nothing armed, past `limit`), `cancel:K` disarms it.
pub(super) fn timer_command(output: &mut Output, text: &[u8], limit: usize) -> bool {
    let Some(text) = std::str::from_utf8(text).ok() else {
        return false;
    };
    if let Some(key) = text.strip_prefix("cancel:") {
        return match key.parse() {
            Ok(key) => {
                output.timers(limit).cancel(key);
                true
            }
            Err(_) => false,
        };
    }
    let Some((key, ms)) = text
        .strip_prefix("timer:")
        .and_then(|rest| rest.split_once(':'))
    else {
        return false;
    };
    let (Ok(key), Ok(ms)) = (key.parse(), ms.parse()) else {
        return false;
    };
    let after = Duration::from_millis(ms);
    output.timers(limit).set(key, after).is_ok()
}

/// The key of a `timer:K:MS` command.
pub(super) fn timer_key(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?.strip_prefix("timer:")?;
    text.split_once(':')?.0.parse().ok()
}
