//! The transport seam: a transport with buffered state of its own (as TLS has) works with the
//! same state machine — its held bytes count as output, keep WRITABLE interest, and are flushed
//! when the socket has room.

use super::*;

#[test]
fn a_buffering_transport_is_flushed_on_writable_without_a_change_to_the_session() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.set_buffering_transport(peer);
    h.set_write_room(peer, 3);
    h.send(peer, &text("held by the transport"));
    h.run_all_jobs();
    let mut received = h.take_output(peer);
    assert_eq!(received.len(), 3, "the socket took 3 bytes");
    assert!(
        h.interest(peer).is_some_and(|i| i.is_writable()),
        "the transport's held bytes keep WRITABLE interest"
    );
    assert_eq!(
        h.stats().pending_outbound_bytes,
        0,
        "the session's own queue is empty"
    );
    h.set_write_room(peer, usize::MAX);
    received.extend(h.take_output(peer));
    assert_eq!(texts(&received), ["held by the transport"]);
    assert!(h.interest(peer).is_some_and(|i| !i.is_writable()));
    h.check_invariants().unwrap();
}

#[test]
fn a_buffering_transport_holds_back_a_close_until_its_bytes_are_out() {
    let mut h = harness(config());
    let peer = h.connect();
    h.set_buffering_transport(peer);
    h.set_write_room(peer, 0);
    h.send(
        peer,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    h.run_jobs(1);
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert!(
        !h.fin_received(peer),
        "no FIN while the transport still holds the response"
    );
    h.set_write_room(peer, usize::MAX);
    assert!(h.fin_received(peer));
    assert!(h.take_output(peer).starts_with(b"HTTP/1.1 200 OK\r\n"));
}
