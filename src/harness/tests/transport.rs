//! The transport seam: a transport with buffered state of its own (as TLS has) works with the
//! same state machine — its held bytes count as output, keep WRITABLE interest, and are flushed
//! when the socket has room. And reading under edge-triggered readiness: a short read drains
//! the socket, unless the peer has closed its side.

use super::*;
use crate::ws::Message;

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

#[test]
fn a_short_read_waits_for_the_next_event_instead_of_reading_again() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    let before = h.empty_reads(peer);
    h.send(peer, &text("one"));
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["one"]);
    assert_eq!(
        h.empty_reads(peer),
        before,
        "the short read said drained: no read to find WouldBlock"
    );
    // Bytes that arrive raise an event; until it comes, they wait.
    h.put(peer, &text("two"));
    h.turn();
    assert_eq!(h.unread(peer), text("two").len());
    h.readable(peer);
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["two"]);
    h.check_invariants().unwrap();
}

#[test]
fn reads_cut_short_by_the_transport_go_on_until_would_block() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.set_read_chunk(peer, 4);
    let before = h.empty_reads(peer);
    h.send(peer, &text("in chunks of four bytes"));
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["in chunks of four bytes"]);
    assert_eq!(h.unread(peer), 0);
    assert_eq!(h.empty_reads(peer), before + 1);
}

#[test]
fn bytes_and_eof_in_one_event_are_read_to_the_end() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.put(peer, &text("last words"));
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["last words"]);
    assert_eq!(h.open_connections(), 0, "the EOF behind the bytes was read");
    h.check_invariants().unwrap();
}

/// The rest of a large payload is read straight into its message: one read brings the header
/// and the start of the payload into the read buffer, the next one the rest; a message cut into
/// pieces, with reads that find nothing between them, still arrives whole and unmasked.
#[test]
fn the_rest_of_a_large_payload_is_read_straight_into_its_message() {
    let mut h = harness(Config {
        read_buffer_size: 4096,
        ..config()
    });
    let peer = upgraded(&mut h);
    let payload: Vec<u8> = (0..65_536u32).map(|i| (i % 253) as u8).collect();
    let frame = client_frame(0x2, &payload);
    let before = h.reads(peer);
    h.send(peer, &frame);
    assert_eq!(
        h.reads(peer) - before,
        2,
        "the read buffer's 4,096 bytes, then the rest"
    );
    h.send(peer, &frame[..5000]);
    h.send(peer, &frame[5000..30_000]);
    h.send(peer, &frame[30_000..]);
    h.run_all_jobs();
    let received = h.messages_handled(peer);
    assert!(
        received == [Message::Binary(payload.clone()), Message::Binary(payload)],
        "both whole, in order"
    );
    assert_eq!(h.stats().buffers_in_use, 0, "nothing held after");
    h.check_invariants().unwrap();
}

/// A burst of large messages that arrives at once is read whole, with jobs run as a worker
/// would, and nothing stalls (written while looking into a `tests/chat_nodes.rs` failure with a
/// `readv` for the rest of a payload: docs/benchmarks.md, rounds five and six).
#[test]
fn a_burst_of_large_messages_is_read_whole() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    let big = "z".repeat(32 * 1024);
    let mut bytes = Vec::new();
    for i in 0..400 {
        bytes.extend(client_frame(0x1, format!("{i} {big}").as_bytes()));
    }
    bytes.extend(client_frame(0x1, b"after the burst"));
    h.send(peer, &bytes);
    for _ in 0..10_000 {
        if h.run_jobs(usize::MAX) == 0 && h.unread(peer) == 0 {
            break;
        }
    }
    let texts: Vec<String> = h
        .messages_handled(peer)
        .into_iter()
        .filter_map(|message| match message {
            Message::Text(text) => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(h.unread(peer), 0, "all read");
    assert_eq!(texts.len(), 401, "all decoded");
    assert_eq!(texts.last().map(String::as_str), Some("after the burst"));
    h.check_invariants().unwrap();
}

/// The read that brings the rest of a large payload asks for the read buffer's room too
/// (`readv`): what follows the payload comes in the same call, and a read that comes back short
/// says the socket is empty, with no more read to find it so.
#[test]
fn the_read_that_ends_a_large_payload_takes_what_follows_it_too() {
    let mut h = harness(Config {
        read_buffer_size: 4096,
        ..config()
    });
    let peer = upgraded(&mut h);
    let payload: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let mut bytes = client_frame(0x2, &payload);
    bytes.extend(client_frame(0x1, b"next"));
    let (reads, empty) = (h.reads(peer), h.empty_reads(peer));
    h.send(peer, &bytes);
    assert_eq!(
        h.reads(peer) - reads,
        2,
        "the read buffer's 4,096 bytes, then the rest with the next frame"
    );
    assert_eq!(h.empty_reads(peer), empty, "no read finds the socket empty");
    h.send(peer, &client_frame(0x2, &payload));
    assert_eq!(h.reads(peer) - reads, 4, "a payload alone: two reads");
    assert_eq!(h.empty_reads(peer), empty, "its short read says it all");
    h.run_all_jobs();
    let received = h.messages_handled(peer);
    assert!(
        received
            == [
                Message::Binary(payload.clone()),
                Message::Text("next".into()),
                Message::Binary(payload),
            ],
        "whole, in order"
    );
    assert_eq!(h.stats().buffers_in_use, 0, "nothing held after");
    h.check_invariants().unwrap();
}

/// The read that ends a payload can fill the read buffer with the first bytes of the next,
/// large, message while the inbox is full. When a reply makes room, decoding those bytes
/// completes no message and empties the buffer; with no reply to write and no job out, nothing
/// else will drive the connection, and the socket's bytes raise no new event: the pump must
/// read on at once. (Found by `tests/chat_nodes.rs`, whose handler publishes and replies
/// nothing: a burst of 32 KiB lines stalled until a timer fired.)
#[test]
fn a_read_buffer_full_of_a_partial_message_is_read_on_after_the_decode() {
    let mut h = harness(Config {
        read_buffer_size: 4096,
        max_pending_messages: 1,
        ..config()
    });
    let peer = upgraded(&mut h);
    // Published to a topic nobody follows: the replies write nothing.
    let mut lines = vec!["others:t:first".to_owned()];
    for n in 0..4 {
        lines.push(format!("others:t:{n}{}", "z".repeat(8182)));
    }
    let mut bytes = Vec::new();
    for line in &lines {
        bytes.extend(client_frame(0x1, line.as_bytes()));
    }
    h.send(peer, &bytes);
    for _ in 0..100 {
        if h.run_jobs(usize::MAX) == 0 {
            break;
        }
    }
    assert_eq!(h.unread(peer), 0, "all read, with no other readiness event");
    let received = h.messages_handled(peer);
    let expected: Vec<Message> = lines.into_iter().map(Message::Text).collect();
    assert!(received == expected, "whole, in order");
    assert_eq!(h.stats().buffers_in_use, 0, "nothing held after");
    h.check_invariants().unwrap();
}
