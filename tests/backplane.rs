//! The Redis backplane (feature `redis`): topics across nodes, on a real `redis-server`
//! (tests/common/redis.rs) and real sockets. Every node here is a whole server of its own (its
//! own loops, workers, counters and Redis connections), as a second process would be; the
//! chat's test runs them as processes behind nginx (tests/chat_nodes.rs).
//!
//! - a topic spans two nodes; nobody gets a publication twice, the publisher's own node included;
//! - one publisher's order holds on the other node under load; a loop whose queue is full drops
//!   what comes from Redis and counts every drop;
//! - Redis killed and restarted: local topics keep working, what crossed meanwhile is counted
//!   as lost, a recovery asked meanwhile is refused within `backplane_timeout`, the nodes
//!   reconnect and subscribe again, and cross-node delivery resumes;
//! - a Redis with a password; `rediss://` with a private root (feature `redis-tls`);
//! - recovery: exactly what was missed, in order, then live — also while publications keep
//!   coming; a position too old, of another epoch or ahead gets the "cannot recover" frame.
//!
//! Each needs `redis-server`, so each is `#[ignore]`d (tests/common/tools.rs); `bash .ci/run`
//! installs it and runs them.

#![cfg(feature = "redis")]

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::*;
use tungstenite::Message as TMessage;
use wsreactor::{
    Config, Context, Framing, Handler, Message, Position, RedisBackplane, Server, Stats,
};

/// A room per connection: `/ws?topic=T[&from=POSITION]` subscribes to `T` (from that position:
/// `cannot recover` if it cannot be had); a text `x` is published to `T`, and `others x` to
/// everyone in `T` but the sender.
struct Rooms;

impl Handler for Rooms {
    type Session = String;

    fn on_open(&self, ctx: &mut Context<'_, String>) {
        let query = ctx.query().unwrap_or("").to_owned();
        let mut topic = "t".to_owned();
        let mut from = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("topic", value)) => topic = value.to_owned(),
                Some(("from", value)) => {
                    from = Some(value.parse::<Position>().expect("a position"))
                }
                _ => {}
            }
        }
        match from {
            Some(since) => ctx.subscribe_from(&topic, since, "cannot recover").unwrap(),
            None => ctx.subscribe(&topic).unwrap(),
        }
        *ctx.session_mut() = topic;
    }

    fn on_message(&self, ctx: &mut Context<'_, String>, message: Message) {
        let Message::Text(text) = message else { return };
        let topic = ctx.session().clone();
        match text.strip_prefix("others ") {
            Some(rest) => ctx.publish_to_others(&topic, rest.to_owned()).unwrap(),
            None => ctx.publish(&topic, text.to_string()).unwrap(),
        }
    }
}

/// A node on `redis` with the test config changed by `change`, recovery on for `room/` topics.
fn node(redis: &RedisServer, change: impl FnOnce(&mut Config)) -> Server {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut config = config();
    config.backplane_backoff_max = Duration::from_millis(200);
    change(&mut config);
    let backplane = RedisBackplane::new(&redis.url())
        .expect("a redis URL")
        .recover("room/", Framing::PositionFirst);
    Server::builder()
        .config(config)
        .backplane(backplane)
        .build(Rooms)
        .expect("a node starts")
}

fn member(server: &Server, query: &str) -> Client {
    connect_path(server.local_addr(), &format!("/ws?{query}"))
}

/// The next text message (pongs of earlier probes skipped).
fn text(client: &mut Client) -> String {
    loop {
        match client.read().expect("a message") {
            TMessage::Text(text) => return text.as_str().to_owned(),
            TMessage::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Waits until `server`'s backplane listens to `channels` channels.
fn listening(server: &Server, channels: u64) -> Stats {
    wait_for_stats(&server.handle(), "the backplane subscribed", |s| {
        s.backplane_connected == 1 && s.backplane_channels == channels
    })
}

/// Nothing more arrives on `client` within a short while (a ping's pong comes first).
fn nothing_more(client: &mut Client) {
    client
        .send(TMessage::Ping(b"probe".to_vec().into()))
        .unwrap();
    loop {
        match client.read().expect("the pong") {
            TMessage::Pong(payload) if &payload[..] == b"probe" => return,
            TMessage::Pong(_) => continue,
            other => panic!("unexpected: {other:?}"),
        }
    }
}

/// `(position, text)` of a `PositionFirst` frame.
fn positioned(frame: &str) -> (Position, String) {
    let (position, rest) = frame.split_once(' ').expect("a position first");
    (position.parse().expect("a position"), rest.to_owned())
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn a_topic_spans_two_nodes_and_nobody_gets_a_publication_twice() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, |_| {}), node(&redis, |_| {}));
    let mut ann = member(&a, "topic=news");
    let mut ada = member(&a, "topic=news");
    let mut bob = member(&b, "topic=news");
    let mut other = member(&b, "topic=sport");
    listening(&a, 1);
    listening(&b, 2);

    ann.send(TMessage::text("hello from a")).unwrap();
    for client in [&mut ann, &mut ada, &mut bob] {
        assert_eq!(text(client), "hello from a");
    }
    bob.send(TMessage::text("others hi from b")).unwrap();
    assert_eq!(text(&mut ann), "hi from b");
    assert_eq!(text(&mut ada), "hi from b");
    // From a handle too.
    b.handle().publish("news", "from b's handle").unwrap();
    for client in [&mut ann, &mut ada, &mut bob] {
        assert_eq!(text(client), "from b's handle");
    }
    for client in [&mut ann, &mut ada, &mut bob, &mut other] {
        nothing_more(client);
    }
    // The publisher thread counts a batch once Redis has answered it: maybe just after the
    // delivery.
    let sa = wait_for_stats(&a.handle(), "a's publication counted", |s| {
        s.backplane_published == 1
    });
    let sb = wait_for_stats(&b.handle(), "b's publications counted", |s| {
        s.backplane_published == 2
    });
    assert_eq!((sa.backplane_received, sb.backplane_received), (2, 1));
    assert_eq!(sa.backplane_publish_failed + sb.backplane_publish_failed, 0);
    // Leaving the topic leaves the channel.
    close_client(other);
    listening(&b, 1);
    for client in [ann, ada, bob] {
        close_client(client);
    }
    listening(&a, 0);
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn one_publishers_order_holds_on_the_other_node_under_load() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, |_| {}), node(&redis, |_| {}));
    let mut readers: Vec<Client> = (0..4).map(|_| member(&b, "topic=load")).collect();
    listening(&b, 1);
    let count = 5_000;
    let handle = a.handle();
    let publisher = std::thread::spawn(move || {
        for i in 0..count {
            handle.publish("load", format!("{i}")).unwrap();
        }
    });
    // And a connection of node a publishing under way, with its own order.
    let mut talker = member(&a, "topic=quiet");
    for i in 0..500 {
        talker.send(TMessage::text(format!("x{i}"))).unwrap();
    }
    for reader in &mut readers {
        for i in 0..count {
            assert_eq!(text(reader), i.to_string());
        }
    }
    publisher.join().unwrap();
    for i in 0..500 {
        assert_eq!(text(&mut talker), format!("x{i}"));
    }
    let stats = a.handle().stats();
    assert_eq!(
        stats.backplane_publish_dropped + stats.backplane_publish_failed,
        0
    );
    assert_eq!(b.handle().stats().backplane_delivery_dropped, 0);
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn redis_killed_and_restarted_local_topics_go_on_losses_are_counted_and_delivery_resumes() {
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis, |_| {}), node(&redis, |_| {}));
    let mut ann = member(&a, "topic=news");
    let mut ada = member(&a, "topic=news");
    let mut bob = member(&b, "topic=news");
    listening(&a, 1);
    listening(&b, 1);
    ann.send(TMessage::text("before")).unwrap();
    for client in [&mut ann, &mut ada, &mut bob] {
        assert_eq!(text(client), "before");
    }

    redis.kill();
    wait_for_stats(&a.handle(), "node a sees Redis gone", |s| {
        s.backplane_connected == 0
    });
    for i in 0..5 {
        ann.send(TMessage::text(format!("during {i}"))).unwrap();
        assert_eq!(
            text(&mut ada),
            format!("during {i}"),
            "local delivery goes on"
        );
        assert_eq!(text(&mut ann), format!("during {i}"));
    }
    // A recovery while Redis is away is refused once `backplane_timeout` has passed: nothing
    // hangs on Redis.
    let nowhere = Position {
        epoch: 1,
        offset: 1,
    };
    let mut late = member(&a, &format!("topic=room/away&from={nowhere}"));
    assert_eq!(text(&mut late), "cannot recover");
    close_client(late);
    let lost = wait_for_stats(&a.handle(), "node a counts what did not cross", |s| {
        s.backplane_publish_failed >= 5
    });
    assert_eq!(lost.backplane_published, 1);

    redis.restart();
    listening(&a, 1);
    listening(&b, 1);
    // The publisher's first batch may find its old connection dead (counted too): probe until
    // one crosses, then everything does, in order.
    poll_until("a publication crosses again", || {
        ann.send(TMessage::text("probe")).unwrap();
        assert_eq!(text(&mut ann), "probe");
        assert_eq!(text(&mut ada), "probe");
        bob.send(TMessage::Ping(b"p".to_vec().into())).unwrap();
        match bob.read().unwrap() {
            TMessage::Text(t) => {
                assert_eq!(t.as_str(), "probe", "nothing from the outage arrives late");
                Some(())
            }
            TMessage::Pong(_) => None,
            other => panic!("{other:?}"),
        }
    });
    // Drain any other probe that crossed, then the flow is whole again.
    ann.send(TMessage::text("after")).unwrap();
    for client in [&mut ann, &mut ada] {
        assert_eq!(text(client), "after");
    }
    loop {
        let got = text(&mut bob);
        if got == "after" {
            break;
        }
        assert_eq!(got, "probe");
    }
    let (sa, sb) = (a.handle().stats(), b.handle().stats());
    assert!(
        sa.backplane_reconnects >= 1 && sb.backplane_reconnects >= 1,
        "{sa:?}"
    );
    assert!(sa.backplane_publish_failed >= 5);
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn a_redis_with_a_password() {
    let redis = RedisServer::with_password("s3cret pass");
    assert!(redis.url().starts_with("redis://:s3cret pass@"));
    let redis_url_ok = RedisBackplane::new(&redis.url()).is_ok();
    assert!(redis_url_ok);
    let (a, b) = (node(&redis, |_| {}), node(&redis, |_| {}));
    let mut bob = member(&b, "topic=t");
    listening(&b, 1);
    a.handle().publish("t", "through a password").unwrap();
    assert_eq!(text(&mut bob), "through a password");
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn recovery_gives_exactly_what_was_missed_in_order_then_the_live_publications() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, |_| {}), node(&redis, |_| {}));
    let mut ann = member(&a, "topic=room/1");
    let mut bob = member(&b, "topic=room/1");
    listening(&a, 1);
    listening(&b, 1);
    for i in 1..=3 {
        ann.send(TMessage::text(format!("m{i}"))).unwrap();
    }
    // One order for everyone, the publisher's node included, each with its position.
    let seen: Vec<(Position, String)> = (0..3).map(|_| positioned(&text(&mut bob))).collect();
    let mine: Vec<(Position, String)> = (0..3).map(|_| positioned(&text(&mut ann))).collect();
    assert_eq!(seen, mine);
    let epoch = seen[0].0.epoch;
    for (i, (position, body)) in seen.iter().enumerate() {
        assert_eq!((position.epoch, position.offset), (epoch, i as u64 + 1));
        assert_eq!(body, &format!("m{}", i + 1));
    }
    close_client(bob);
    for i in 4..=6 {
        ann.send(TMessage::text(format!("m{i}"))).unwrap();
        assert_eq!(positioned(&text(&mut ann)).1, format!("m{i}"));
    }
    // Bob comes back with the last position he saw; Cy joins a from m1.
    let mut bob = member(&b, &format!("topic=room/1&from={}", seen[2].0));
    let mut cy = member(&a, &format!("topic=room/1&from={}", seen[0].0));
    let missed: Vec<String> = (0..3).map(|_| text(&mut bob)).collect();
    let expected: Vec<String> = (4..=6).map(|i| format!("{epoch:016x}-{i} m{i}")).collect();
    assert_eq!(missed, expected, "exactly what was missed, in order");
    for i in 2..=6 {
        assert_eq!(text(&mut cy), format!("{epoch:016x}-{i} m{i}"));
    }
    ann.send(TMessage::text("m7")).unwrap();
    for client in [&mut ann, &mut bob, &mut cy] {
        assert_eq!(
            text(client),
            format!("{epoch:016x}-7 m7"),
            "then live, once"
        );
    }
    for client in [&mut ann, &mut bob, &mut cy] {
        nothing_more(client);
    }
    let stats = wait_for_stats(&b.handle(), "b's recovery counted", |s| {
        s.backplane_recovered == 3
    });
    assert_eq!(stats.backplane_recovery_refused, 0);
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn a_position_too_old_of_another_epoch_or_ahead_cannot_be_recovered() {
    let redis = RedisServer::start();
    let a = node(&redis, |config| config.history_max_len = 3);
    let mut ann = member(&a, "topic=room/2");
    listening(&a, 1);
    let positions: Vec<Position> = (1..=6)
        .map(|i| {
            ann.send(TMessage::text(format!("m{i}"))).unwrap();
            positioned(&text(&mut ann)).0
        })
        .collect();
    let epoch = positions[0].epoch;
    // The history keeps m4..m6: from m3 is fine, from m2 is too old.
    let mut ok = member(&a, &format!("topic=room/2&from={}", positions[2]));
    for i in 4..=6 {
        assert_eq!(text(&mut ok), format!("{epoch:016x}-{i} m{i}"));
    }
    let other_epoch = Position {
        epoch: epoch ^ 1,
        offset: 5,
    };
    let ahead = Position { epoch, offset: 9 };
    for from in [positions[1], other_epoch, ahead] {
        let mut refused = member(&a, &format!("topic=room/2&from={from}"));
        assert_eq!(text(&mut refused), "cannot recover", "from {from}");
        // Subscribed all the same: the live publications follow.
        ann.send(TMessage::text("live")).unwrap();
        assert_eq!(positioned(&text(&mut refused)).1, "live");
        close_client(refused);
    }
    // A topic without history cannot be recovered either.
    let mut plain = member(&a, &format!("topic=plain&from={}", positions[0]));
    assert_eq!(text(&mut plain), "cannot recover");
    let stats = wait_for_stats(&a.handle(), "refusals counted", |s| {
        s.backplane_recovery_refused == 4
    });
    assert_eq!(stats.backplane_recovered, 3);
    a.shutdown().unwrap();
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn a_recovery_while_publications_keep_coming_has_no_gap_and_no_duplicate() {
    let redis = RedisServer::start();
    let roomy = |config: &mut Config| {
        config.history_max_len = 10_000;
        config.recovery_buffer = 10_000;
    };
    let (a, b) = (node(&redis, roomy), node(&redis, roomy));
    let mut watcher = member(&b, "topic=room/busy");
    listening(&b, 1);
    let count = 3_000u64;
    let handle = a.handle();
    let publisher = std::thread::spawn(move || {
        for i in 1..=count {
            handle.publish("room/busy", format!("{i}")).unwrap();
            if i % 100 == 0 {
                std::thread::yield_now();
            }
        }
    });
    // Join late, from a position the watcher saw, while the publisher goes on.
    let mut from = None;
    for i in 1..=count {
        let (position, body) = positioned(&text(&mut watcher));
        assert_eq!((position.offset, body), (i, i.to_string()));
        if i == 300 {
            from = Some(position);
            break;
        }
    }
    let from = from.expect("300 seen");
    let mut late = member(&b, &format!("topic=room/busy&from={from}"));
    for i in from.offset + 1..=count {
        let (position, body) = positioned(&text(&mut late));
        assert_eq!(
            (position.offset, body),
            (i, i.to_string()),
            "in order, no gap, no duplicate"
        );
    }
    publisher.join().unwrap();
    nothing_more(&mut late);
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

/// `rediss://` (feature `redis-tls`): two nodes through a Redis that speaks TLS only, whose
/// self-signed certificate the nodes trust through `RedisBackplane::tls_root`; a node that does
/// not trust it never connects, and says so in its counters.
#[cfg(feature = "redis-tls")]
#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn rediss_with_a_private_root() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("a certificate");
    let dir = std::env::temp_dir().join(format!("wsreactor-rediss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let (cert, key) = (dir.join("redis.crt"), dir.join("redis.key"));
    let cert_pem = certified.cert.pem();
    std::fs::write(&cert, &cert_pem).expect("write the certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write the key");
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let (cert_path, key_path) = (cert.display().to_string(), key.display().to_string());
    let redis = RedisServer::with(
        None,
        &[
            ("tls-port", &tls_port),
            ("tls-cert-file", &cert_path),
            ("tls-key-file", &key_path),
            ("tls-auth-clients", "no"),
        ],
    );
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let tls_node = |root: Option<&str>| {
        let mut backplane = RedisBackplane::new(&url).expect("a rediss URL");
        if let Some(pem) = root {
            backplane = backplane.tls_root(pem.as_bytes()).expect("a PEM root");
        }
        let mut config = config();
        config.backplane_backoff_max = Duration::from_millis(200);
        Server::builder()
            .config(config)
            .backplane(backplane)
            .build(Rooms)
            .expect("a node starts")
    };
    let (a, b) = (tls_node(Some(&cert_pem)), tls_node(Some(&cert_pem)));
    let stranger = tls_node(None);
    let mut bob = member(&b, "topic=t");
    listening(&b, 1);
    a.handle().publish("t", "over TLS").unwrap();
    assert_eq!(text(&mut bob), "over TLS");
    // The system's roots do not know this certificate: what the stranger publishes cannot
    // reach Redis, and is counted.
    stranger.handle().publish("t", "not over TLS").unwrap();
    let stats = wait_for_stats(&stranger.handle(), "the stranger's loss counted", |s| {
        s.backplane_publish_failed == 1
    });
    assert_eq!(
        (stats.backplane_connected, stats.backplane_published),
        (0, 0)
    );
    nothing_more(&mut bob);
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
    for node in [a, b, stranger] {
        node.shutdown().unwrap();
    }
}

/// A loop whose command queue is full drops what comes from Redis for it, never waits for it,
/// and counts each drop: what its subscriber got plus what was counted is everything, and what
/// it got came in order.
#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn a_full_loop_queue_drops_from_the_backplane_and_counts_each_drop() {
    let redis = RedisServer::start();
    let a = node(&redis, |_| {});
    let b = node(&redis, |config| {
        config.event_loops = 1;
        config.command_queue_capacity = 1;
    });
    let mut bob = member(&b, "topic=flood");
    listening(&b, 1);
    let count = 3_000u64;
    for i in 0..count {
        a.handle().publish("flood", i.to_string()).unwrap();
    }
    let (tx, got) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(TMessage::Text(text)) = bob.read() {
            if tx
                .send(text.as_str().parse::<u64>().expect("a number"))
                .is_err()
            {
                return;
            }
        }
    });
    let mut received = Vec::new();
    wait_until("every publication delivered or counted", || {
        received.extend(got.try_iter());
        let stats = b.handle().stats();
        received.len() as u64 + stats.backplane_delivery_dropped == count
    });
    assert!(received.windows(2).all(|w| w[0] < w[1]), "in order");
    let stats = b.handle().stats();
    assert_eq!(
        stats.backplane_received, count,
        "every one reached the node"
    );
    assert!(
        stats.backplane_delivery_dropped > 0,
        "a queue of one overflowed"
    );
    assert_eq!(
        b.handle().backplane_drops_per_loop(),
        [stats.backplane_delivery_dropped],
        "counted for its loop"
    );
    let drops = a.handle().backplane_drops_per_loop();
    assert!(
        !drops.is_empty() && drops.iter().all(|&d| d == 0),
        "{drops:?}"
    );
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}
