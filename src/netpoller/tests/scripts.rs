//! Random scripts (`harness/script.rs`, what the `connection_core` fuzz target runs), seeded so a
//! failure names a seed that reproduces it: nothing may panic, every invariant holds after every
//! step, and every connection ends closed with its `on_close` delivered.

use crate::netpoller::harness::{fuzz_config, run_script};

/// xorshift64*: a small, seeded, reproducible source of bytes.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// A random script in the language of `harness/script.rs`, weighted towards the busy paths
/// (upgrades, messages, jobs) so that a few thousand scripts reach deep states; the fuzzer
/// needs no weights, it follows coverage.
fn random_script(seed: u64) -> Vec<u8> {
    // (op, weight): see `run_script` for what each op does.
    const OPS: &[(u8, u32)] = &[
        (0, 5),   // connect
        (1, 4),   // raw bytes
        (2, 10),  // upgrade request
        (3, 8),   // a frame with any opcode
        (4, 20),  // a text message
        (5, 5),   // an HTTP request
        (6, 3),   // read chunking
        (7, 3),   // EOF
        (8, 2),   // reset
        (9, 1),   // socket error
        (10, 5),  // write room
        (11, 6),  // a short clock jump
        (12, 1),  // a long clock jump
        (13, 15), // run jobs
        (14, 2),  // steal a job
        (15, 2),  // finish a stolen job
        (16, 3),  // push
        (17, 2),  // broadcast
        (18, 2),  // close from a handle
        (19, 1),  // shutdown or a buffering transport
    ];
    let total: u32 = OPS.iter().map(|(_, w)| w).sum();
    let bytes = random_bytes(seed, 1200);
    let mut words = bytes
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let mut script = vec![0, 0, 0, 1];
    // Topic steps come from a stream of their own, between the others, so that the scripts
    // above stay what they were: 20 subscribes or unsubscribes, 21 publishes.
    let mut topic_steps = random_bytes(!seed, 600).into_iter();
    let steps = 20 + (seed as usize % 120);
    for _ in 0..steps {
        if let (Some(pick), Some(arg)) = (topic_steps.next(), topic_steps.next())
            && pick < 64
        {
            script.extend([20 + pick % 2, arg]);
        }
        let (Some(pick), Some(arg)) = (words.next(), words.next()) else {
            break;
        };
        let mut left = pick % total;
        let op = OPS
            .iter()
            .find(|(_, w)| {
                let hit = left < *w;
                left = left.saturating_sub(*w);
                hit
            })
            .map_or(4, |(op, _)| *op);
        let [arg, a, b, c] = arg.to_le_bytes();
        script.extend([op, arg]);
        // The ops that read more than their argument (see `run_script`).
        match op {
            1 => {
                let len = usize::from(a % 64);
                script.push(len as u8);
                script.extend(random_bytes(u64::from(b) << 8 | u64::from(c), len));
            }
            3 => {
                let len = usize::from(b % 40);
                script.extend([a, len as u8]);
                script.extend(random_bytes(u64::from(c), len * 4));
            }
            6 => script.push(a),
            _ => {}
        }
    }
    script
}

#[test]
fn random_scripts_keep_every_invariant() {
    let mut total = crate::metrics::Stats::default();
    for seed in 0..3000u64 {
        match run_script(fuzz_config(), &random_script(seed)) {
            Ok(stats) => {
                total.upgrades += stats.upgrades;
                total.messages_in += stats.messages_in;
                total.http_requests += stats.http_requests;
                total.closed_protocol_error += stats.closed_protocol_error;
                total.closed_timeout += stats.closed_timeout;
                total.closed_clean += stats.closed_clean;
                total.backpressure_pauses += stats.backpressure_pauses;
                total.stale_replies_dropped += stats.stale_replies_dropped;
                total.pings_sent += stats.pings_sent;
                total.deflate_upgrades += stats.deflate_upgrades;
                total.compressed_in += stats.compressed_in;
                total.compressed_out += stats.compressed_out;
                total.monitoring_served += stats.monitoring_served;
                total.connections_rejected += stats.connections_rejected;
                total.budget_pauses += stats.budget_pauses;
                total.budget_drops += stats.budget_drops;
                total.topic_deliveries += stats.topic_deliveries;
                total.subscriptions_refused += stats.subscriptions_refused;
            }
            Err(broken) => panic!("seed {seed}: {broken}"),
        }
    }
    // The scripts reach the paths they are meant to: not a test of nothing.
    eprintln!("{total:?}");
    assert!(total.upgrades > 1000, "{total:?}");
    assert!(total.messages_in > 1000, "{total:?}");
    assert!(total.http_requests > 1000, "{total:?}");
    assert!(total.closed_protocol_error > 100, "{total:?}");
    assert!(total.closed_timeout > 100, "{total:?}");
    assert!(total.closed_clean > 100, "{total:?}");
    assert!(total.backpressure_pauses > 10, "{total:?}");
    assert!(total.deflate_upgrades > 100, "{total:?}");
    assert!(total.compressed_in > 50, "{total:?}");
    assert!(total.stale_replies_dropped > 10, "{total:?}");
    assert!(total.pings_sent > 10, "{total:?}");
    // Reserve connections: served a monitoring request, or refused with 503.
    assert!(total.monitoring_served > 10, "{total:?}");
    assert!(total.connections_rejected > 10, "{total:?}");
    // The memory budget: connections paused near it, slow consumers dropped past it.
    assert!(total.budget_pauses > 10, "{total:?}");
    assert!(total.budget_drops > 10, "{total:?}");
    // Topics: publications delivered, subscriptions refused at the limit.
    assert!(total.topic_deliveries > 100, "{total:?}");
    assert!(total.subscriptions_refused > 10, "{total:?}");
}

#[test]
fn the_final_check_finds_an_on_close_that_never_came() {
    // The checker itself must be able to fail: a connection removed while its job runs owes
    // `on_close` until that job's reply; if the reply never comes, the check says so.
    let mut h = crate::netpoller::harness::Harness::new(fuzz_config());
    let peer = h.connect();
    h.send(peer, &crate::netpoller::harness::upgrade_request("/ws"));
    h.run_jobs(1);
    h.send(peer, &crate::netpoller::harness::client_frame(0x1, b"x"));
    let _never_finished = h.steal_job();
    h.fail(peer);
    assert!(h.check_every_close_delivered().is_err());
}
