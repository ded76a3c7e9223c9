//! What clients say and hear: one JSON request per line, `{"id": 7, "cmd": ["GET", "k"]}` (or
//! `"cmd": "GET k"`, split on spaces), and one JSON answer per request, `{"id": 7, "ok": ...}`
//! or `{"id": 7, "error": "KIND", "message": "..."}`.
//!
//! Only the commands in [`COMMANDS`] pass (a gateway never lets a client run `FLUSHALL` or
//! `CONFIG`); each says whether it is idempotent — safe to send again after an attempt that may
//! have reached Redis — which is what allows a retry once a command may have run.

use serde_json::{Value as Json, json};

/// A command the gateway forwards: its name, the fewest arguments it takes, and whether running
/// it twice leaves Redis as running it once.
pub struct CommandSpec {
    pub name: &'static str,
    pub min_args: usize,
    pub idempotent: bool,
}

const fn spec(name: &'static str, min_args: usize, idempotent: bool) -> CommandSpec {
    CommandSpec {
        name,
        min_args,
        idempotent,
    }
}

/// The commands clients may send.
pub const COMMANDS: &[CommandSpec] = &[
    spec("PING", 0, true),
    spec("ECHO", 1, true),
    spec("GET", 1, true),
    spec("MGET", 1, true),
    spec("SET", 2, true),
    spec("DEL", 1, true),
    spec("EXISTS", 1, true),
    spec("STRLEN", 1, true),
    spec("EXPIRE", 2, true),
    spec("TTL", 1, true),
    spec("HGET", 2, true),
    spec("HSET", 3, true),
    spec("HDEL", 2, true),
    spec("HGETALL", 1, true),
    spec("LRANGE", 3, true),
    spec("LLEN", 1, true),
    spec("INCR", 1, false),
    spec("INCRBY", 2, false),
    spec("DECR", 1, false),
    spec("APPEND", 2, false),
    spec("HINCRBY", 3, false),
    spec("LPUSH", 2, false),
    spec("RPUSH", 2, false),
];

/// One request, checked: what goes to Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The client's id, answered as it came (a number or a string).
    pub id: Json,
    /// The command's name, upper case.
    pub name: &'static str,
    pub args: Vec<String>,
    pub idempotent: bool,
}

/// Why a line is not a request: the answer says it, with the id when there was one.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub id: Json,
    pub kind: ErrorKind,
    pub message: String,
}

/// The kinds of error a client can get, as the `error` field spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not a request: not JSON, no id, no command.
    BadRequest,
    /// A command the gateway does not forward.
    Forbidden,
    /// The connection has as many requests unanswered as it may.
    TooManyInFlight,
    /// Every backend thread is busy and the queue in front of them is full.
    Overloaded,
    /// The circuit breaker is open: Redis failed, and is left alone for a while.
    Unavailable,
    /// The request's deadline passed (waiting, or in Redis).
    Timeout,
    /// Redis answered with an error (`WRONGTYPE`, ...).
    Backend,
    /// Redis could not be reached or dropped the connection (after the retries allowed).
    Failed,
    /// The gateway is stopping.
    ShuttingDown,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::TooManyInFlight => "too_many_in_flight",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Backend => "backend",
            ErrorKind::Failed => "failed",
            ErrorKind::ShuttingDown => "shutting_down",
        }
    }
}

impl ErrorKind {
    /// The HTTP status of an answer with this error (`GET /get`).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Forbidden => 403,
            ErrorKind::TooManyInFlight => 429,
            ErrorKind::Overloaded | ErrorKind::Unavailable | ErrorKind::ShuttingDown => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::Backend | ErrorKind::Failed => 502,
        }
    }
}

/// `GET key` as a request whose id is the key (`GET /get?key=K`).
pub fn get_request(key: &str) -> Request {
    Request {
        id: Json::String(key.to_owned()),
        name: "GET",
        args: vec![key.to_owned()],
        idempotent: true,
    }
}

/// The value of `name` in a query string (`a=1&key=x%20y`), percent-decoded (`+` is a
/// space); `None` if it is absent or not UTF-8 once decoded.
pub fn query_value(query: &str, name: &str) -> Option<String> {
    let raw = query
        .split('&')
        .find_map(|pair| pair.split_once('=').filter(|(n, _)| *n == name))?
        .1;
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let hex = |s: &[u8]| {
            std::str::from_utf8(s)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        match byte {
            b'%' if tail.len() >= 2 && hex(&tail[..2]).is_some() => {
                bytes.push(hex(&tail[..2])?);
                rest = &tail[2..];
                continue;
            }
            b'+' => bytes.push(b' '),
            other => bytes.push(other),
        }
        rest = tail;
    }
    String::from_utf8(bytes).ok()
}

/// The requests of one WebSocket message: each non-blank line, parsed.
pub fn parse_lines(text: &str) -> impl Iterator<Item = Result<Request, Refused>> + '_ {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(parse)
}

/// One line, as a request.
pub fn parse(line: &str) -> Result<Request, Refused> {
    let refuse = |id: &Json, kind, message: String| Refused {
        id: id.clone(),
        kind,
        message,
    };
    let value: Json = serde_json::from_str(line)
        .map_err(|e| refuse(&Json::Null, ErrorKind::BadRequest, format!("not JSON: {e}")))?;
    let id = match value.get("id") {
        Some(id @ (Json::Number(_) | Json::String(_))) => id.clone(),
        _ => {
            let why = "a request is {\"id\": number or string, \"cmd\": [...]}".to_owned();
            return Err(refuse(&Json::Null, ErrorKind::BadRequest, why));
        }
    };
    let words: Vec<String> = match value.get("cmd") {
        Some(Json::String(line)) => line.split_whitespace().map(str::to_owned).collect(),
        Some(Json::Array(items)) => items
            .iter()
            .map(|item| match item {
                Json::String(s) => Some(s.clone()),
                Json::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(|| {
                let why = "cmd's items are strings or numbers".to_owned();
                refuse(&id, ErrorKind::BadRequest, why)
            })?,
        _ => {
            let why = "cmd is an array of strings, or a string".to_owned();
            return Err(refuse(&id, ErrorKind::BadRequest, why));
        }
    };
    let Some((name, args)) = words.split_first() else {
        return Err(refuse(
            &id,
            ErrorKind::BadRequest,
            "cmd is empty".to_owned(),
        ));
    };
    let Some(spec) = COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name)) else {
        let why = format!("{name:?} is not a command this gateway forwards");
        return Err(refuse(&id, ErrorKind::Forbidden, why));
    };
    if args.len() < spec.min_args {
        let why = format!("{} takes at least {} arguments", spec.name, spec.min_args);
        return Err(refuse(&id, ErrorKind::BadRequest, why));
    }
    Ok(Request {
        id,
        name: spec.name,
        args: args.to_vec(),
        idempotent: spec.idempotent,
    })
}

/// The answer to a request that Redis answered.
pub fn ok(id: &Json, value: &redis::Value) -> String {
    json!({ "id": id, "ok": to_json(value) }).to_string()
}

/// An error answer.
pub fn error(id: &Json, kind: ErrorKind, message: &str) -> String {
    json!({ "id": id, "error": kind.as_str(), "message": message }).to_string()
}

/// Redis's answer as JSON: nil is `null`, integers numbers, strings strings (bytes that are not
/// UTF-8 replaced), arrays and sets arrays, maps `[[key, value], ...]`.
pub fn to_json(value: &redis::Value) -> Json {
    use redis::Value;
    let text = |bytes: &[u8]| Json::String(String::from_utf8_lossy(bytes).into_owned());
    match value {
        Value::Nil => Json::Null,
        Value::Int(n) => json!(n),
        Value::BulkString(bytes) => text(bytes),
        Value::SimpleString(s) => Json::String(s.clone()),
        Value::Okay => Json::String("OK".to_owned()),
        Value::Array(items) | Value::Set(items) => items.iter().map(to_json).collect(),
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| Json::Array(vec![to_json(k), to_json(v)]))
            .collect(),
        Value::Double(x) => json!(x),
        Value::Boolean(b) => json!(b),
        Value::VerbatimString { text, .. } => Json::String(text.clone()),
        other => Json::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_and_checked() {
        let request = parse(r#"{"id": 7, "cmd": ["get", "k"]}"#).unwrap();
        assert_eq!(
            (request.id, request.name, request.args, request.idempotent),
            (json!(7), "GET", vec!["k".to_owned()], true)
        );
        let request = parse(r#"{"id": "a", "cmd": "INCRBY n 5"}"#).unwrap();
        assert_eq!((request.name, request.idempotent), ("INCRBY", false));
        assert_eq!(request.args, ["n", "5"]);
        let request = parse(r#"{"id": 1, "cmd": ["SET", "k", 5]}"#).unwrap();
        assert_eq!(request.args, ["k", "5"]);
        for (line, kind, message) in [
            (
                "nope",
                ErrorKind::BadRequest,
                "not JSON: expected ident at line 1 column 2",
            ),
            (
                r#"{"cmd": ["GET"]}"#,
                ErrorKind::BadRequest,
                "a request is {\"id\": number or string, \"cmd\": [...]}",
            ),
            (
                r#"{"id": 1, "cmd": []}"#,
                ErrorKind::BadRequest,
                "cmd is empty",
            ),
            (
                r#"{"id": 1, "cmd": [null]}"#,
                ErrorKind::BadRequest,
                "cmd's items are strings or numbers",
            ),
            (
                r#"{"id": 1}"#,
                ErrorKind::BadRequest,
                "cmd is an array of strings, or a string",
            ),
            (
                r#"{"id": 1, "cmd": "FLUSHALL"}"#,
                ErrorKind::Forbidden,
                "\"FLUSHALL\" is not a command this gateway forwards",
            ),
            (
                r#"{"id": 1, "cmd": "GET"}"#,
                ErrorKind::BadRequest,
                "GET takes at least 1 arguments",
            ),
        ] {
            let refused = parse(line).unwrap_err();
            assert_eq!(
                (refused.kind, refused.message.as_str()),
                (kind, message),
                "{line}"
            );
        }
        assert_eq!(
            parse(r#"{"id": 3, "cmd": "FLUSHALL"}"#).unwrap_err().id,
            json!(3)
        );
    }

    #[test]
    fn query_values_are_found_and_percent_decoded() {
        assert_eq!(query_value("key=a", "key").as_deref(), Some("a"));
        assert_eq!(
            query_value("x=1&key=hello%20world+2", "key").as_deref(),
            Some("hello world 2")
        );
        assert_eq!(
            query_value("key=%zz%4", "key").as_deref(),
            Some("%zz%4"),
            "not escapes"
        );
        assert_eq!(query_value("key=%ff", "key"), None, "not UTF-8");
        assert_eq!(query_value("keys=a&k=b", "key"), None);
        assert_eq!(query_value("key=", "key").as_deref(), Some(""));
        assert_eq!(ErrorKind::Timeout.http_status(), 504);
        assert_eq!(get_request("k").args, ["k"]);
    }

    #[test]
    fn answers_are_json() {
        let value = redis::Value::Array(vec![
            redis::Value::Nil,
            redis::Value::Int(-2),
            redis::Value::BulkString(b"v".to_vec()),
            redis::Value::Okay,
        ]);
        let parsed = |text: String| serde_json::from_str::<Json>(&text).unwrap();
        assert_eq!(
            parsed(ok(&json!(1), &value)),
            json!({ "id": 1, "ok": [null, -2, "v", "OK"] })
        );
        assert_eq!(
            parsed(error(&json!("x"), ErrorKind::Unavailable, "open")),
            json!({ "id": "x", "error": "unavailable", "message": "open" })
        );
        assert_eq!(
            parse_lines("\n{\"id\":1,\"cmd\":\"PING\"}\n  \nx").count(),
            2
        );
    }
}
