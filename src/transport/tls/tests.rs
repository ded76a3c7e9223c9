//! The TLS transport's own unit tests; the wire behaviour is tested over real sockets in
//! tests/tls.rs.

use super::*;

/// What an idle TLS connection costs beyond a plain one is this box (rustls's state inline)
/// plus what rustls allocates for its keys: no buffer of ours.
#[test]
fn the_tls_state_is_a_few_kib() {
    let size = std::mem::size_of::<TlsStream>();
    eprintln!("size_of::<TlsStream>() = {size}");
    assert!(size <= 2048, "TlsStream grew to {size} bytes");
}
