//! permessage-deflate (RFC 7692) for the load generator, and the JSON-like text messages it sends
//! with it: the offer, the server's answer, one message through deflate or inflate.

pub use flate2::{Compress, Decompress};
use flate2::{Compression, FlushCompress, FlushDecompress, Status};

/// The offer, as browsers make it: no parameters but `client_max_window_bits` (we accept any
/// client window the server asks for).
pub const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The tail of a sync flush (RFC 7692 §7.2.1): stripped after deflating, put back before
/// inflating.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The parameters of the server's answer (RFC 7692 §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    pub client_max_window_bits: Option<u8>,
}

impl Params {
    /// The window of our compressor: what the server asked for, else the largest.
    pub fn client_window_bits(&self) -> u8 {
        self.client_max_window_bits.unwrap_or(15)
    }

    /// The answer written out canonically, for the JSON line.
    pub fn describe(&self) -> String {
        let mut s = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(b) = self.server_max_window_bits {
            s.push_str(&format!("; server_max_window_bits={b}"));
        }
        if let Some(b) = self.client_max_window_bits {
            s.push_str(&format!("; client_max_window_bits={b}"));
        }
        s
    }
}

/// Parses the server's `Sec-WebSocket-Extensions` header values (all of them). `Ok(None)`: no
/// extension accepted. An extension or parameter we did not offer, a duplicate or a bad value is
/// an error, as is `client_max_window_bits=8` (zlib cannot deflate with a 256-byte window).
pub fn parse_response(values: &[&str]) -> Result<Option<Params>, String> {
    let mut found = None;
    for ext in values.iter().flat_map(|v| v.split(',')) {
        let mut parts = ext.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        if name.is_empty() {
            continue; // empty list element (RFC 9110 §5.6.1)
        }
        if !name.eq_ignore_ascii_case("permessage-deflate") {
            return Err(format!(
                "server accepted extension {name:?}, which was not offered"
            ));
        }
        if found.is_some() {
            return Err("server accepted permessage-deflate twice".into());
        }
        let mut p = Params::default();
        let mut seen = Vec::new();
        for param in parts {
            let (key, value) = match param.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                None => (param, None),
            };
            let key = key.to_ascii_lowercase();
            if seen.contains(&key) {
                return Err(format!("permessage-deflate: duplicate parameter {key}"));
            }
            let bits = |v: Option<&str>| -> Result<u8, String> {
                v.and_then(|v| v.parse().ok())
                    .filter(|b| (8..=15).contains(b))
                    .ok_or(format!(
                        "permessage-deflate: {key} needs a value 8..15, got {v:?}"
                    ))
            };
            match key.as_str() {
                "server_no_context_takeover" | "client_no_context_takeover" if value.is_some() => {
                    return Err(format!("permessage-deflate: {key} takes no value"));
                }
                "server_no_context_takeover" => p.server_no_context_takeover = true,
                "client_no_context_takeover" => p.client_no_context_takeover = true,
                "server_max_window_bits" => p.server_max_window_bits = Some(bits(value)?),
                "client_max_window_bits" => {
                    let b = bits(value)?;
                    if b == 8 {
                        return Err("permessage-deflate: client_max_window_bits=8, which zlib \
                                    cannot compress with (it uses 9)"
                            .into());
                    }
                    p.client_max_window_bits = Some(b);
                }
                _ => return Err(format!("permessage-deflate: unknown parameter {key:?}")),
            }
            seen.push(key);
        }
        found = Some(p);
    }
    Ok(found)
}

/// A raw-deflate compressor for messages to a server with window `bits` (9..=15).
pub fn compressor(level: u32, bits: u8) -> Compress {
    Compress::new_with_window_bits(Compression::new(level), false, bits)
}

/// A raw-inflate decompressor; a 15-bit window reads any server's output.
pub fn decompressor() -> Decompress {
    Decompress::new(false)
}

/// Compresses one message, appending it to `out` without the sync-flush tail (RFC 7692 §7.2.1).
/// The compressor's context carries over to the next message unless the caller resets it.
pub fn deflate_message(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    let in0 = c.total_in();
    loop {
        let done = (c.total_in() - in0) as usize;
        // Deflate can exceed its input by a few bytes per stored block; over-reserve a little.
        out.reserve(input.len() - done + input.len() / 16 + 64);
        c.compress_vec(&input[done..], out, FlushCompress::Sync)
            .map_err(|e| format!("deflate: {e}"))?;
        // The flush is complete once the input is consumed with output space to spare.
        if (c.total_in() - in0) as usize == input.len() && out.len() < out.capacity() {
            break;
        }
    }
    if !out[start..].ends_with(&TAIL) {
        return Err("deflate: sync flush did not end with 00 00 ff ff".into());
    }
    out.truncate(out.len() - TAIL.len());
    Ok(())
}

/// Compresses the part of a text body after its [`JSON_PREFIX`] as a message of its own (fresh
/// compressor, sync flush, tail stripped): see [`push_stored_block`].
pub fn precompress_body(level: u32, bits: u8, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    deflate_message(&mut compressor(level, bits), &body[JSON_PREFIX..], &mut out)?;
    Ok(out)
}

/// Appends `data` (at most 65,535 bytes) as a non-final stored deflate block (RFC 1951 §3.2.4):
/// the header bits and their padding in one byte, LEN, NLEN, the bytes.
///
/// With `client_no_context_takeover` a message is this block with the message's prefix, followed
/// by its body from [`precompress_body`]: a valid deflate stream that references nothing
/// before it, as if compressed on the spot, except that the prefix is not compressed (about 20
/// bytes more). It spares the load generator a compressor reset per message (zlib-rs clears a
/// 128 KiB hash table each time) and the compression itself.
pub fn push_stored_block(out: &mut Vec<u8>, data: &[u8]) {
    let len = u16::try_from(data.len()).expect("stored block of at most 65535 bytes");
    out.push(0x00);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
}

/// Inflates one message (`input`: the payload with [`TAIL`] appended) into `out` (cleared first).
/// More than `limit` bytes of output is an error. A final deflate block (BFINAL) ends the stream:
/// the decompressor is reset so the next message starts a new one.
pub fn inflate_message(
    d: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), String> {
    out.clear();
    out.reserve(limit + 1);
    let in0 = d.total_in();
    loop {
        let done = (d.total_in() - in0) as usize;
        let before = out.len();
        let status = d
            .decompress_vec(&input[done..], out, FlushDecompress::Sync)
            .map_err(|e| format!("inflate: {e}"))?;
        if out.len() > limit {
            return Err(format!("inflated echo longer than {limit} bytes"));
        }
        let now = (d.total_in() - in0) as usize;
        if status == Status::StreamEnd {
            d.reset(false);
            return Ok(());
        }
        if now == input.len() {
            return Ok(());
        }
        if now == done && out.len() == before {
            return Err("inflate: no progress (truncated or corrupt message)".into());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The messages: JSON-like text, each `size` bytes, varied so that the ratio is a plausible one.

/// Bytes at the start of every text message that identify it:
/// `{"seq":"<16 hex digits>","conn":"<8 hex digits>",`.
pub const JSON_PREFIX: usize = 44;
const SEQ_AT: usize = 8;
const CONN_AT: usize = 34;
/// The smallest `--size` for text messages: the prefix, a field and the closing brace.
pub const MIN_JSON_SIZE: usize = 64;

/// Writes the sequence number and connection id into a message's prefix.
pub fn write_json_prefix(msg: &mut [u8], seq: u64, id: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in 0..16 {
        msg[SEQ_AT + i] = HEX[(seq >> (60 - 4 * i)) as usize & 15];
    }
    for i in 0..8 {
        msg[CONN_AT + i] = HEX[(id >> (28 - 4 * i)) as usize & 15];
    }
}

const ADJECTIVES: &[&str] = &[
    "red", "blue", "green", "black", "white", "cotton", "linen", "wool", "small", "large",
    "classic", "modern", "vintage", "organic", "recycled", "premium", "basic",
];
const NOUNS: &[&str] = &[
    "shirt",
    "jacket",
    "scarf",
    "boots",
    "socks",
    "lamp",
    "chair",
    "table",
    "kettle",
    "teapot",
    "mug",
    "plate",
    "phone case",
    "cable",
    "charger",
    "battery",
    "speaker",
    "camera bag",
];
const TAGS: &[&str] = &["sale", "new", "summer", "winter", "gift", "limited", "eco"];
const WAREHOUSES: &[&str] = &["FRA-1", "AMS-2", "WAW-1", "MAD-3"];
/// Words of the free-text note that pads a message to its size.
const WORDS: &[&str] = &[
    "please",
    "deliver",
    "before",
    "noon",
    "leave",
    "it",
    "at",
    "the",
    "door",
    "with",
    "my",
    "neighbour",
    "call",
    "when",
    "arriving",
    "thanks",
    "fragile",
    "handle",
    "care",
    "gift",
    "wrap",
    "no",
    "invoice",
    "in",
    "parcel",
    "ring",
    "twice",
    "back",
    "entrance",
];
const NAMES: &[&str] = &[
    "maria.k", "jdoe", "li.wei", "a.novak", "samir", "olga_p", "tom.h", "yuki", "ines.r", "pieter",
    "fatima", "chen.j", "lucas", "emma.w", "noah", "zoe.b", "ivan", "sara.m",
];
const LOCALES: &[&str] = &[
    "de-DE", "en-GB", "en-US", "fr-FR", "es-ES", "it-IT", "pl-PL", "nl-NL", "ja-JP", "pt-BR",
];
const STATUS: &[&str] = &[
    "created",
    "paid",
    "packed",
    "shipped",
    "delivered",
    "returned",
];
const TYPES: &[&str] = &["order.update", "cart.change", "price.tick", "chat.message"];

/// `count` different JSON objects of exactly `size` bytes (`size` ≥ [`MIN_JSON_SIZE`]), each
/// starting with the [`JSON_PREFIX`] placeholder: an event with a user and a list of items, as a
/// web application would send, padded to the size with a note of words. `next` supplies random
/// numbers.
pub fn json_bodies(size: usize, count: usize, next: &mut dyn FnMut() -> u64) -> Vec<Vec<u8>> {
    assert!(size >= MIN_JSON_SIZE);
    fn choose(next: &mut dyn FnMut() -> u64, list: &[&'static str]) -> &'static str {
        list[(next() >> 33) as usize % list.len()]
    }
    (0..count)
        .map(|_| {
            let mut fields = Vec::new();
            fields.push(format!("\"type\":\"{}\"", choose(next, TYPES)));
            let r = next();
            fields.push(format!(
                "\"ts\":{}",
                1_717_000_000_000 + (r % 90_000_000_000)
            ));
            fields.push(format!(
                "\"user\":{{\"id\":{},\"name\":\"{}\",\"locale\":\"{}\",\"premium\":{}}}",
                (r >> 40) % 100_000,
                choose(next, NAMES),
                choose(next, LOCALES),
                r & 1 == 1
            ));
            fields.push(format!("\"status\":\"{}\"", choose(next, STATUS)));
            let mut items = Vec::new();
            for _ in 0..12 {
                let r = next();
                items.push(format!(
                    "{{\"sku\":\"SKU-{:05}\",\"name\":\"{} {}\",\"qty\":{},\"price\":{}.{:02},\
                     \"currency\":\"EUR\",\"discount\":null,\"in_stock\":{},\
                     \"warehouse\":\"{}\",\"tags\":[\"{}\"]}}",
                    r % 100_000,
                    choose(next, ADJECTIVES),
                    choose(next, NOUNS),
                    1 + (r >> 20) % 5,
                    1 + (r >> 24) % 300,
                    [0, 49, 95, 99][(r >> 36) as usize % 4],
                    !(r >> 40).is_multiple_of(8),
                    choose(next, WAREHOUSES),
                    choose(next, TAGS),
                ));
            }
            // Header fields, then as many items as fit, then a note that pads to `size`.
            let mut s = String::with_capacity(size);
            s.push_str("{\"seq\":\"0000000000000000\",\"conn\":\"00000000\"");
            debug_assert_eq!(s.len() + 1, JSON_PREFIX);
            const NOTE: usize = ",\"note\":\"\"}".len();
            for f in fields {
                if s.len() + 1 + f.len() + NOTE <= size {
                    s.push(',');
                    s.push_str(&f);
                }
            }
            let mut first_item = true;
            for it in items {
                let extra = if first_item { ",\"items\":[".len() } else { 1 };
                if s.len() + extra + it.len() + 1 + NOTE + 16 > size {
                    break;
                }
                s.push_str(if first_item { ",\"items\":[" } else { "," });
                s.push_str(&it);
                first_item = false;
            }
            if !first_item {
                s.push(']');
            }
            s.push_str(",\"note\":\"");
            let room = size - s.len() - 2;
            let mut note = String::with_capacity(room + 16);
            while note.len() < room {
                if !note.is_empty() {
                    note.push(' ');
                }
                note.push_str(choose(next, WORDS));
            }
            note.truncate(room);
            s.push_str(&note);
            s.push_str("\"}");
            debug_assert_eq!(s.len(), size);
            s.into_bytes()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> impl FnMut() -> u64 {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn bodies_have_the_size_and_the_prefix() {
        for size in [64, 100, 1024, 4096] {
            for b in json_bodies(size, 20, &mut rng()) {
                assert_eq!(b.len(), size);
                assert!(b.starts_with(b"{\"seq\":\"0000000000000000\",\"conn\":\"00000000\","));
                assert!(b.ends_with(b"\"}"));
                assert!(b.is_ascii());
            }
        }
        let mut b = json_bodies(64, 1, &mut rng()).remove(0);
        write_json_prefix(&mut b, 0x1234, 0xab);
        assert!(b.starts_with(b"{\"seq\":\"0000000000001234\",\"conn\":\"000000ab\","));
    }

    #[test]
    fn round_trip_with_and_without_context_takeover() {
        let bodies = json_bodies(1024, 64, &mut rng());
        for takeover in [false, true] {
            let mut c = compressor(6, 15);
            let mut d = decompressor();
            let (mut wire, mut plain) = (0, 0);
            for b in &bodies {
                if !takeover {
                    c.reset();
                    d.reset(false);
                }
                let mut z = Vec::new();
                deflate_message(&mut c, b, &mut z).unwrap();
                wire += z.len();
                plain += b.len();
                z.extend_from_slice(&TAIL);
                let mut out = Vec::new();
                inflate_message(&mut d, &z, &mut out, 1024).unwrap();
                assert_eq!(&out, b);
            }
            let ratio = plain as f64 / wire as f64;
            eprintln!("context takeover {takeover}: ratio {ratio:.2}");
            assert!((2.0..8.0).contains(&ratio), "ratio {ratio}");
        }
    }

    #[test]
    fn stored_prefix_and_precompressed_body() {
        let bodies = json_bodies(1024, 8, &mut rng());
        let mut d = decompressor();
        for b in &bodies {
            let mut plain = b.clone();
            write_json_prefix(&mut plain, 0xfeed_beef, 7);
            let mut z = Vec::new();
            push_stored_block(&mut z, &plain[..JSON_PREFIX]);
            z.extend_from_slice(&precompress_body(1, 15, b).unwrap());
            z.extend_from_slice(&TAIL);
            let mut out = Vec::new();
            d.reset(false);
            inflate_message(&mut d, &z, &mut out, 1024).unwrap();
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn inflate_limit() {
        let mut c = compressor(6, 15);
        let mut z = Vec::new();
        deflate_message(&mut c, &[b'a'; 5000], &mut z).unwrap();
        z.extend_from_slice(&TAIL);
        let err = inflate_message(&mut decompressor(), &z, &mut Vec::new(), 4999).unwrap_err();
        assert!(err.contains("longer"), "{err}");
    }

    #[test]
    fn responses() {
        assert_eq!(parse_response(&[]), Ok(None));
        let p = parse_response(&["permessage-deflate; server_no_context_takeover; \
                                  client_no_context_takeover"])
        .unwrap()
        .unwrap();
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        let p = parse_response(&["permessage-deflate;client_max_window_bits=\"10\""])
            .unwrap()
            .unwrap();
        assert_eq!(p.client_window_bits(), 10);
        assert_eq!(
            p.describe(),
            "permessage-deflate; client_max_window_bits=10"
        );
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate; foo",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate, permessage-deflate",
        ] {
            assert!(parse_response(&[bad]).is_err(), "{bad}");
        }
    }
}
