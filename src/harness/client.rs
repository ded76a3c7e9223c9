//! The bytes a test client sends: upgrade requests and masked frames.

/// A valid upgrade request for `path`.
pub fn upgrade_request(path: &str) -> Vec<u8> {
    upgrade_request_offering(path, None)
}

/// An upgrade request for `path` with `Sec-WebSocket-Extensions: extensions`, if given.
pub fn upgrade_request_offering(path: &str, extensions: Option<&str>) -> Vec<u8> {
    let extensions = extensions.map_or_else(String::new, |offer| {
        format!("Sec-WebSocket-Extensions: {offer}\r\n")
    });
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         {extensions}\r\n"
    )
    .into_bytes()
}

/// "Hello" compressed without context takeover (RFC 7692 §7.2.3.1), as one masked frame with
/// RSV1 set.
pub fn compressed_hello() -> Vec<u8> {
    let mut frame = client_frame(0x1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    frame[0] |= 0x40;
    frame
}

/// A masked client frame (FIN set) with `opcode` and `payload`.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_fragment(true, opcode, payload)
}

/// A masked client frame with FIN as given.
pub fn client_fragment(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    masked_frame(fin, opcode, payload, [0x37, 0xfa, 0x21, 0x3d])
}

/// A client frame with FIN as given, masked with `mask`, in the shortest length encoding.
pub fn masked_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}
