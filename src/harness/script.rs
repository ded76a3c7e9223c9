//! Arbitrary bytes as a script of everything that can happen to a loop's connections — peers
//! connecting (now and then on the monitoring reserve) and sending (well-formed or not, in any chunking), EOFs, resets, socket errors,
//! peers that stop reading, clock jumps, jobs run early, late or in bursts, pushes, closes,
//! subscriptions to topics and publications (from handlers and from handles), timers,
//! out-of-order completions coming or dropped, shutdown — with
//! the core's invariants checked after every step and at the end.
//!
//! [`run_script`] is what the `connection_core` fuzz target runs (millions of times; see
//! docs/fuzzing.md) and what property tests in `cargo test` run on seeded random scripts
//! ([`random_script`]: `src/harness/tests/scripts.rs`, and under extreme configurations
//! `tests/extreme_configs.rs`).

use std::time::Duration;

use super::handle::Sent;
use super::{
    Harness, PendingJob, client_fragment, client_frame, compressed_hello, upgrade_request_offering,
};
use crate::config::Config;
use crate::metrics::Stats;
use crate::ws::CloseCode;

/// Small limits, so that scripts reach every bound quickly.
pub fn fuzz_config() -> Config {
    Config {
        max_pending_messages: 3,
        max_pending_bytes: 200,
        max_outbound_bytes: 400,
        read_buffer_size: 256,
        max_read_per_turn: 300,
        job_queue_capacity: 2,
        max_message_size: 1000,
        max_frame_size: 600,
        max_fragments: 4,
        max_header_bytes: 300,
        max_body_size: 200,
        // A few connections' worth: scripts reach the pressure level and the drops.
        max_buffered_bytes: 768,
        ping_interval: Some(Duration::from_secs(30)),
        max_lifetime: Some(Duration::from_secs(600)),
        metrics_path: Some("/metrics".into()),
        health_path: Some("/healthz".into()),
        monitoring_timeout: Duration::from_secs(1),
        // Scripts use two topics, mostly the first: a second subscription is refused.
        max_subscriptions: 1,
        // Scripts use three timer keys: a third timer is refused.
        max_timers_per_connection: 2,
        // Scripts start out-of-order completions with four tags: a third outstanding waits.
        max_unordered_per_connection: 2,
        ..Config::default()
    }
}

/// How many kinds of step a script has (`op % OPS`).
const OPS: u8 = 23;

/// The topic a subscription or publication of the script names.
fn topic(arg: u8) -> &'static str {
    if arg % 4 == 3 { "t1" } else { "t0" }
}

/// A message that sets (or, now and then, cancels) one of three timers, due within seconds.
fn timer_command(arg: u8) -> Vec<u8> {
    let key = (arg >> 3) % 3;
    let command = match arg >> 5 {
        7 => format!("cancel:{key}"),
        ms => format!("timer:{key}:{}", u64::from(ms) * 700),
    };
    client_frame(0x1, command.as_bytes())
}

/// Most connections open at once in one script, and most peers it may connect in all.
const MAX_OPEN: usize = 8;
const MAX_PEERS: usize = 64;

/// Reads a script off a byte string.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

/// Runs `data` as a script against a fresh core with `config`; `Err` names the first broken
/// invariant, `Ok` returns the counters at the end (what the script exercised). A script never
/// panics the core: a panic is a bug the fuzzer reports.
pub fn run_script(config: Config, data: &[u8]) -> Result<Stats, String> {
    let mut play = Play {
        h: Harness::new(config),
        script: Script(data),
        stolen: Vec::new(),
    };
    while let Some(op) = play.script.byte() {
        let arg = play.script.byte().unwrap_or(0);
        play.step(op % OPS, arg);
        if let Err(broken) = play.h.check_invariants() {
            // The jobs the script took out end here: the broken invariant is the report.
            play.stolen.into_iter().for_each(PendingJob::abandon);
            return Err(broken);
        }
    }
    wind_down(&mut play.h, play.stolen)
}

/// A script being played: the core, what is left of the script, and the jobs it took out of
/// the queue to finish later.
struct Play<'a> {
    h: Harness,
    script: Script<'a>,
    stolen: Vec<PendingJob>,
}

impl Play<'_> {
    /// One step: `op` (already `% OPS`) with its argument, on the peer it picks if it needs one.
    fn step(&mut self, op: u8, arg: u8) {
        let open: Vec<usize> = (0..self.h.peers())
            .filter(|&p| self.h.phase(p).is_some())
            .collect();
        let peer = self.pick_peer(op, arg, &open);
        if self.core_step(op, arg, open.len()) {
            return;
        }
        let Some(p) = peer else {
            return;
        };
        match op {
            1..=5 | 20 | 21 => self.peer_sends(op, arg, p),
            _ => self.peer_step(op, arg, p),
        }
    }

    /// The peer `op` acts on: one in the phase the op makes sense in, if there is one; else any
    /// open peer; else any peer at all (events for connections that are gone must be harmless
    /// too); `None` before the first peer.
    fn pick_peer(&self, op: u8, arg: u8, open: &[usize]) -> Option<usize> {
        let h = &self.h;
        let in_phase = |phase: &str| -> Vec<usize> {
            let mut peers = open.to_vec();
            peers.retain(|&p| h.phase(p) == Some(phase));
            peers
        };
        let fitting: Vec<usize> = match op {
            2 | 5 => in_phase("Http"),
            3 | 4 | 16 | 21 => in_phase("Open"),
            // A subscriber: an open WebSocket, else a connection that will upgrade first.
            20 => {
                let sockets = in_phase("Open");
                if sockets.is_empty() {
                    in_phase("Http")
                } else {
                    sockets
                }
            }
            _ => Vec::new(),
        };
        let pick = |from: &[usize]| from[usize::from(arg) % from.len()];
        match (fitting.len(), open.len(), h.peers()) {
            (0, 0, 0) => None,
            (0, 0, all) => Some(usize::from(arg) % all),
            (0, _, _) => Some(pick(open)),
            (_, _, _) => Some(pick(&fitting)),
        }
    }

    /// The steps that need no peer — connecting, the clock, the workers, what a handle does to
    /// every connection, shutdown — with `open` connections; false if `op` is none of them (or
    /// its condition does not hold).
    fn core_step(&mut self, op: u8, arg: u8, open: usize) -> bool {
        let h = &mut self.h;
        let room = open < MAX_OPEN && h.peers() < MAX_PEERS;
        match op {
            // Now and then the server is full and the peer lands on the monitoring reserve.
            0 if room && arg & 0x0f == 0x0f => {
                h.connect_to_reserve();
            }
            0 if room => {
                h.connect();
            }
            11 => h.advance(Duration::from_millis(u64::from(arg) * 250)),
            12 => h.advance(Duration::from_secs(u64::from(arg) * 10)),
            13 => {
                h.run_jobs(usize::from(arg % 4) + 1);
            }
            14 if self.stolen.len() < 4 => self.stolen.extend(h.steal_job()),
            15 if !self.stolen.is_empty() => {
                let job = self.stolen.remove(usize::from(arg) % self.stolen.len());
                h.finish_job(job);
            }
            // Now and then a handle's run of broadcasts, a publication among them.
            17 if arg & 0x80 != 0 => h.drain_commands(&[
                Sent::Broadcast("b1"),
                Sent::Broadcast("b2"),
                Sent::Publish(topic(arg), "p"),
                Sent::Broadcast("b3"),
            ]),
            17 => h.broadcast("to everyone"),
            // An out-of-order completion comes (or its handle is dropped), if one is started.
            22 if arg & 0x80 == 0 => {
                h.complete_unordered(u64::from(arg % 4), "u");
            }
            22 => {
                h.drop_unordered(u64::from(arg % 4));
            }
            19 if arg & 0x0f == 0 => h.shutdown(),
            // A handle's publication, now and then large enough to be shared by reference.
            21 if arg & 0x40 != 0 => {
                let text = "h".repeat(usize::from(arg & 0x3f) * 32);
                h.publish(topic(arg), &text);
            }
            _ => return false,
        }
        true
    }

    /// What peer `p` sends: raw bytes, an upgrade request, a frame, a message, an HTTP request,
    /// a subscription or a publication.
    fn peer_sends(&mut self, op: u8, arg: u8, p: usize) {
        let bytes = match op {
            1 => {
                let len = usize::from(self.script.byte().unwrap_or(0));
                self.script.bytes(len).to_vec()
            }
            2 => {
                let path = if arg & 0x80 == 0 { "/ws" } else { "/reject" };
                let offer = (arg & 0x40 != 0).then_some("permessage-deflate");
                upgrade_request_offering(path, offer)
            }
            3 => self.any_frame(),
            4 if arg & 7 == 7 => compressed_hello(),
            4 if arg & 7 == 6 => timer_command(arg),
            4 if arg & 7 == 5 => {
                client_frame(0x1, format!("unordered:{}", (arg >> 3) % 4).as_bytes())
            }
            4 => client_frame(0x1, b"hello"),
            5 => http_request(arg).to_vec(),
            20 => return self.subscription(arg, p),
            21 => {
                let verb = if arg & 0x80 == 0 { "pub" } else { "others" };
                let command = format!("{verb}:{}:{}", topic(arg), "m".repeat(usize::from(arg)));
                client_frame(0x1, command.as_bytes())
            }
            _ => return,
        };
        self.h.send(p, &bytes);
    }

    /// A frame with any opcode and FIN, read off the script: its head, then its length in
    /// 4-byte steps, then its payload.
    fn any_frame(&mut self) -> Vec<u8> {
        let head = self.script.byte().unwrap_or(0);
        let len = usize::from(self.script.byte().unwrap_or(0)) * 4;
        let payload = self.script.bytes(len).to_vec();
        let (fin, opcode) = (head & 0x80 != 0, head & 0x0f);
        let mut frame = client_fragment(fin, opcode, &payload);
        // Now and then RSV1 (a compressed message, or an error around one) or RSV2.
        match head & 0x7f {
            0x41 | 0x42 => frame[0] |= 0x40,
            0x70 => frame[0] |= 0x20,
            _ => {}
        }
        frame
    }

    /// Peer `p` subscribes to a topic or unsubscribes from it.
    fn subscription(&mut self, arg: u8, p: usize) {
        let h = &mut self.h;
        let verb = if arg & 0x80 == 0 { "sub" } else { "unsub" };
        let command = format!("{verb}:{}", topic(arg));
        let mut bytes = match h.phase(p) {
            // Its first frame right behind the upgrade request.
            Some("Http") => upgrade_request_offering("/ws", None),
            _ => Vec::new(),
        };
        bytes.extend(client_frame(0x1, command.as_bytes()));
        h.send(p, &bytes);
        // Most of the time a worker takes it at once (else it waits like any message).
        if arg & 0x60 != 0 {
            h.run_jobs(2);
        }
    }

    /// What happens to peer `p`'s socket (chunking, EOF, reset, an error, the room it leaves,
    /// a transport that buffers), or what a handle does to its connection.
    fn peer_step(&mut self, op: u8, arg: u8, p: usize) {
        let h = &mut self.h;
        match op {
            6 => h.set_read_chunk(p, usize::from(self.script.byte().unwrap_or(1))),
            7 => h.peer_eof(p),
            8 => h.reset(p),
            9 => h.fail(p),
            10 => {
                let room = [0, 1, 7, 64, 1000, usize::MAX][usize::from(arg >> 5) % 6];
                h.set_write_room(p, room);
            }
            16 => h.push(p, &"p".repeat(usize::from(arg))),
            18 => h.close(p, CloseCode::from_u16(1000 + u16::from(arg % 16))),
            19 => h.set_buffering_transport(p),
            _ => {}
        }
    }
}

/// The HTTP request of op 5, by `arg`.
fn http_request(arg: u8) -> &'static [u8] {
    match arg % 4 {
        // What a scraper asks (any connection may; one on the reserve may only
        // ask this, or for the health path).
        1 if arg & 0x80 != 0 => b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        1 if arg & 0x40 != 0 => b"HEAD /healthz?probe HTTP/1.1\r\nHost: x\r\n\r\n",
        // A chunked body, whole; or a head that expects 100-continue, whose body
        // (two bytes) is whatever the script sends next.
        2 => {
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
               3;x\r\nabc\r\n0\r\n\r\n"
        }
        3 => {
            b"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
               Content-Length: 2\r\n\r\n"
        }
        _ => b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    }
}

/// Ends everything the way a real shutdown would, and checks that nothing is left: every
/// connection closed and removed, every `on_close` owed delivered exactly once.
fn wind_down(h: &mut Harness, stolen: Vec<PendingJob>) -> Result<Stats, String> {
    h.shutdown();
    for job in stolen {
        h.finish_job(job);
    }
    for _ in 0..4 {
        h.run_all_jobs();
        for p in 0..h.peers() {
            h.set_write_room(p, usize::MAX);
            h.peer_eof(p);
        }
        h.advance(Duration::from_secs(60));
        h.check_invariants()?;
    }
    h.finish();
    if h.open_connections() != 0 {
        return Err(format!(
            "{} connections left after shutdown",
            h.open_connections()
        ));
    }
    let stats = h.stats();
    if stats.connections_open != 0
        || stats.monitoring_open != 0
        || stats.websocket_open != 0
        || stats.pending_outbound_bytes != 0
        || stats.buffered_bytes != 0
    {
        return Err(format!("gauges not back to zero: {stats:?}"));
    }
    if stats.buffers_in_use != 0 {
        return Err(format!("{} buffers still lent", stats.buffers_in_use));
    }
    h.check_invariants()?;
    h.check_every_close_delivered()?;
    Ok(stats)
}

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

/// How often [`random_script`] picks each op, as (op, weight): see [`run_script`] for what
/// each op does. Topic steps (ops 20 and 21) come from a stream of their own.
const OP_WEIGHTS: &[(u8, u32)] = &[
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

/// A random script in the language of `harness/script.rs`, weighted towards the busy paths
/// (upgrades, messages, jobs) so that a few thousand scripts reach deep states; the fuzzer
/// needs no weights, it follows coverage.
pub fn random_script(seed: u64) -> Vec<u8> {
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
        let op = weighted_op(pick);
        let [arg, a, b, c] = arg.to_le_bytes();
        script.extend([op, arg]);
        push_operands(&mut script, op, [a, b, c]);
    }
    script
}

/// The op `pick` lands on when each op of [`OP_WEIGHTS`] takes its weight's share.
fn weighted_op(pick: u32) -> u8 {
    let total: u32 = OP_WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut left = pick % total;
    OP_WEIGHTS
        .iter()
        .find(|(_, w)| {
            let hit = left < *w;
            left = left.saturating_sub(*w);
            hit
        })
        .map_or(4, |(op, _)| *op)
}

/// What the ops that read more than their argument read next (see [`run_script`]), drawn from
/// the random bytes `[a, b, c]`.
fn push_operands(script: &mut Vec<u8>, op: u8, [a, b, c]: [u8; 3]) {
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
