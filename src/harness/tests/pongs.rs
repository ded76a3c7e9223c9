//! Pongs for the handler: a pong that answers a ping the handler sent goes to `on_pong`, in
//! order with the messages around it; one pong per ping; unsolicited pongs (and those past the
//! count) make no work.

use super::*;
use crate::harness::AppEvent;

/// The events of peer `peer`'s connection after its `on_open`, messages and pongs only.
fn calls(h: &Harness, peer: usize) -> Vec<String> {
    let id = h.id(peer);
    h.app_events()
        .into_iter()
        .filter_map(|event| match event {
            AppEvent::Message(conn, message) if conn == id => {
                Some(String::from_utf8_lossy(message.as_bytes()).into_owned())
            }
            AppEvent::Pong(conn, payload) if conn == id => {
                Some(format!("pong {}", String::from_utf8_lossy(&payload)))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_pong_to_the_handlers_ping_goes_to_on_pong_in_order_with_the_messages() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("ping:t=42"));
    h.run_jobs(1);
    assert_eq!(frames(&h.take_output(peer)), [(0x9, b"t=42".to_vec())]);
    let mut bytes = text("a");
    bytes.extend(client_frame(0xA, b"t=42"));
    bytes.extend(text("b"));
    h.send(peer, &bytes);
    assert_eq!(h.queued_jobs(), 1, "one batch");
    h.run_jobs(1);
    assert_eq!(calls(&h, peer), ["ping:t=42", "a", "pong t=42", "b"]);
    h.check_invariants().unwrap();
}

#[test]
fn one_pong_per_ping_and_unsolicited_pongs_make_no_work() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &client_frame(0xA, b"unasked"));
    assert_eq!(h.queued_jobs(), 0, "no ping of the handler: no job");
    let mut pings = text("ping:1");
    pings.extend(text("ping:2"));
    h.send(peer, &pings);
    h.run_jobs(1);
    h.take_output(peer);
    for payload in [b"1", b"2", b"3"] {
        h.send(peer, &client_frame(0xA, payload));
        h.run_all_jobs();
    }
    assert_eq!(calls(&h, peer), ["ping:1", "ping:2", "pong 1", "pong 2"]);
    assert_eq!(h.queued_jobs(), 0);
    h.check_invariants().unwrap();
}
