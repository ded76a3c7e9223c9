//! Who joins which room: the `room`, `name` and `since` of a
//! `/ws?room=ROOM&name=NAME&since=POSITION` query, decoded (`+` and `%XX`, as browsers'
//! `URLSearchParams` encode them) and kept short and printable.

/// The most characters of a room or a name; longer ones are cut.
pub const MAX_LEN: usize = 32;

/// The room when the query names none.
pub const DEFAULT_ROOM: &str = "lobby";

/// The room, the name and the position to resume from asked for in `query` (any may be
/// missing or empty).
pub fn parse(query: Option<&str>) -> (Option<String>, Option<String>, Option<String>) {
    let mut room = None;
    let mut name = None;
    let mut since = None;
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = clean(&decode(value));
        match key {
            "room" if !value.is_empty() => room = Some(value),
            "name" if !value.is_empty() => name = Some(value),
            "since" if !value.is_empty() => since = Some(value),
            _ => {}
        }
    }
    (room, name, since)
}

/// `application/x-www-form-urlencoded` decoding; a bad escape is kept as it is.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Printable characters only, trimmed, at most [`MAX_LEN`] of them.
fn clean(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_and_names_are_decoded_and_bounded() {
        assert_eq!(
            parse(Some("room=r%C3%BCbe&name=Ann+Lee")),
            (Some("rübe".into()), Some("Ann Lee".into()), None)
        );
        assert_eq!(parse(None), (None, None, None));
        assert_eq!(
            parse(Some("room=&name=%zz")),
            (None, Some("%zz".into()), None)
        );
        assert_eq!(
            parse(Some("name=%0Aeve%07")),
            (None, Some("eve".into()), None)
        );
        assert_eq!(
            parse(Some("since=0000000000000001-2")),
            (None, None, Some("0000000000000001-2".into()))
        );
        let long = "x".repeat(100);
        assert_eq!(
            parse(Some(&format!("room={long}"))).0.unwrap().len(),
            MAX_LEN
        );
    }
}
