//! What a publication looks like on a Redis channel: a one-line text head, then the WebSocket
//! frame exactly as the publisher encoded it (so a node that receives it queues those bytes on
//! its subscribers without encoding them again).
//!
//! ```text
//! L <node> <except>\n<frame>                     live: delivered at once where it was made
//! P <node> <except> <epoch> <offset>\n<frame>    positioned: its place in the topic's history
//! ```
//!
//! `<node>` is the publishing node's id (16 hex digits): a node drops its own live publications,
//! which it delivered itself. `<except>` is the connection the publication must not reach (a
//! `publish_to_others`), as `LOOP.INDEX.GENERATION`, or `-`. The positioned head is completed
//! by the publish script in Redis, which alone knows the offset (`history.rs`). A message that
//! does not parse, or whose frame is not one complete unmasked text or binary frame, is dropped
//! and logged: nothing from Redis reaches a client unchecked.

use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::topic::Position;
use crate::ws::OpCode;

/// A publication as it came from Redis.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub node: u64,
    pub except: Option<ConnId>,
    /// Its place in the topic's history (recovery topics only).
    pub position: Option<Position>,
    pub frame: Arc<[u8]>,
}

/// The head of a live publication (`L ...\n`), or of a positioned one before Redis adds its
/// epoch and offset (`P <node> <except>`, then the script appends ` <epoch> <offset>\n`).
pub(crate) fn head(positioned: bool, node: u64, except: Option<ConnId>) -> String {
    let except = match except {
        Some(id) => format!("{}.{}.{}", id.event_loop(), id.index(), id.generation()),
        None => "-".to_owned(),
    };
    if positioned {
        format!("P {node:016x} {except}")
    } else {
        format!("L {node:016x} {except}\n")
    }
}

/// A live publication's whole message.
pub(crate) fn live(node: u64, except: Option<ConnId>, frame: &[u8]) -> Vec<u8> {
    let head = head(false, node, except);
    let mut message = Vec::with_capacity(head.len() + frame.len());
    message.extend_from_slice(head.as_bytes());
    message.extend_from_slice(frame);
    message
}

/// The publication in `message`, or `None` if it is not one.
pub(crate) fn parse(message: &[u8]) -> Option<Envelope> {
    let newline = message.iter().take(128).position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(&message[..newline]).ok()?;
    let frame = &message[newline + 1..];
    if !is_frame(frame) {
        return None;
    }
    let mut words = head.split(' ');
    let kind = words.next()?;
    let node = u64::from_str_radix(words.next()?, 16).ok()?;
    let except = match words.next()? {
        "-" => None,
        id => Some(conn_id(id)?),
    };
    let position = match kind {
        "L" => None,
        "P" => Some(Position {
            epoch: u64::from_str_radix(words.next()?, 16).ok()?,
            offset: words.next()?.parse().ok()?,
        }),
        _ => return None,
    };
    if words.next().is_some() {
        return None;
    }
    Some(Envelope {
        node,
        except,
        position,
        frame: frame.into(),
    })
}

fn conn_id(text: &str) -> Option<ConnId> {
    let mut parts = text.split('.');
    let event_loop = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    let generation = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then(|| ConnId::new(event_loop, index, generation))
}

/// Is `frame` one complete, final, unmasked text or binary frame (what `encode_shared_frame`
/// makes), and nothing else?
pub(crate) fn is_frame(frame: &[u8]) -> bool {
    let [first, second, rest @ ..] = frame else {
        return false;
    };
    if !matches!(first, 0x81 | 0x82) || second & 0x80 != 0 {
        return false;
    }
    let (len, rest) = match second & 0x7f {
        126 => match rest {
            [a, b, rest @ ..] => (u64::from(u16::from_be_bytes([*a, *b])), rest),
            _ => return false,
        },
        127 => match rest.split_first_chunk::<8>() {
            Some((bytes, rest)) => (u64::from_be_bytes(*bytes), rest),
            None => return false,
        },
        len => (u64::from(len), rest),
    };
    rest.len() as u64 == len
}

/// The opcode and payload of a frame [`is_frame`] takes.
pub(crate) fn payload(frame: &[u8]) -> Option<(OpCode, &[u8])> {
    if !is_frame(frame) {
        return None;
    }
    let opcode = if frame[0] == 0x81 {
        OpCode::Text
    } else {
        OpCode::Binary
    };
    let header = match frame[1] {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    Some((opcode, &frame[header..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::encode_shared_frame;

    #[test]
    fn a_live_publication_reads_back() {
        let frame = encode_shared_frame(OpCode::Text, b"hello");
        let except = Some(ConnId::new(1, 7, 12));
        let message = live(0xabc, except, &frame);
        assert!(message.starts_with(b"L 0000000000000abc 1.7.12\n"));
        let envelope = parse(&message).expect("parses");
        assert_eq!(envelope.node, 0xabc);
        assert_eq!(envelope.except, except);
        assert_eq!(envelope.position, None);
        assert_eq!(&*envelope.frame, &*frame);
    }

    #[test]
    fn a_positioned_publication_reads_back() {
        let frame = encode_shared_frame(OpCode::Binary, &[7; 300]);
        let mut message = head(true, 5, None).into_bytes();
        message.extend_from_slice(b" 00000000000000ff 42\n");
        message.extend_from_slice(&frame);
        let envelope = parse(&message).expect("parses");
        let position = Position {
            epoch: 0xff,
            offset: 42,
        };
        assert_eq!(envelope.position, Some(position));
        assert_eq!(envelope.frame.len(), 304);
    }

    #[test]
    fn anything_else_is_refused() {
        let frame = encode_shared_frame(OpCode::Text, b"x");
        let big = encode_shared_frame(OpCode::Text, &[b'a'; 70_000]);
        assert!(is_frame(&frame) && is_frame(&big));
        assert!(!is_frame(&big[..big.len() - 1]), "short");
        assert!(!is_frame(&[0x81, 0x81, 0, 0, 0, 0, b'x']), "masked");
        assert!(!is_frame(&[0x01, 0x01, b'x']), "not final");
        assert!(!is_frame(&[0x88, 0x00]), "a close frame");
        for message in [
            &b"hello"[..],
            b"X 0000000000000001 -\n\x81\x01x",
            b"L zz -\n\x81\x01x",
            b"L 1 1.2\n\x81\x01x",
            b"L 1 - extra\n\x81\x01x",
            b"P 1 - 2\n\x81\x01x",
            b"L 1 -\n\x81\x02x",
        ] {
            assert_eq!(
                parse(message),
                None,
                "{:?}",
                String::from_utf8_lossy(message)
            );
        }
        assert!(parse(&live(1, None, &frame)).is_some());
        assert_eq!(payload(&big).map(|(_, p)| p.len()), Some(70_000));
        assert_eq!(payload(&frame), Some((OpCode::Text, &b"x"[..])));
    }
}
