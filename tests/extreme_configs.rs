//! Configurations at their extremes. Every field of `Config` (but `addr`) is drawn from its
//! extremes: numbers from {0, 1, their maximum}, durations from {0, 1 ns, 1 ms,
//! `Duration::MAX`}, optional ones also `None`, switches both ways, paths valid or not. Either
//! `Config::validate` refuses the configuration with `Error::InvalidConfig` naming a field, or
//! the server works with it and never panics:
//!
//! - on the sans-I/O connection core (`wsreactor::fuzzing::Harness`): a tour of every kind of
//!   event — HTTP requests (one with half its body), an upgrade, a message, a message left
//!   in part (a first fragment and half a frame) while the clock jumps by up to
//!   `Duration::MAX`, pushes, broadcasts, publications, a close from a handle, the monitoring
//!   reserve, shutdown — and seeded random scripts of the `connection_core` fuzz target, with
//!   the core's invariants checked after every step;
//! - on real servers (`ServerBuilder`, sockets on 127.0.0.1): every field alone at each of its
//!   extremes, built, sent a request, an upgrade, a message and a message in part, and shut
//!   down: no thread may panic, and shutdown ends.
//!
//! And the regression that started it: `message_timeout = Duration::MAX` panicked the loop
//! thread (`Instant + Duration` overflow) on the first partial message.

mod common;

use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use wsreactor::fuzzing::{
    Harness, client_fragment, client_frame, fuzz_config, random_script, run_script,
    upgrade_request as core_upgrade,
};
use wsreactor::{CloseCode, Config, Error, ForwardedHost, OriginPolicy, Server};

/// The extremes a field of type `Self` is drawn from, smallest first, largest last.
trait Extremes: Sized + Clone {
    fn extremes() -> Vec<Self>;
}

impl Extremes for usize {
    fn extremes() -> Vec<Self> {
        vec![0, 1, usize::MAX]
    }
}

impl Extremes for u32 {
    fn extremes() -> Vec<Self> {
        vec![0, 1, u32::MAX]
    }
}

impl Extremes for bool {
    fn extremes() -> Vec<Self> {
        vec![false, true]
    }
}

impl Extremes for Duration {
    fn extremes() -> Vec<Self> {
        vec![
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(1),
            Duration::MAX,
        ]
    }
}

impl Extremes for Option<Duration> {
    fn extremes() -> Vec<Self> {
        let mut all = vec![None];
        all.extend(Duration::extremes().into_iter().map(Some));
        all
    }
}

impl Extremes for Option<String> {
    fn extremes() -> Vec<Self> {
        vec![None, Some("metrics".into()), Some("/metrics".into())]
    }
}

impl Extremes for OriginPolicy {
    fn extremes() -> Vec<Self> {
        vec![
            OriginPolicy::SameOrigin,
            OriginPolicy::allow(Vec::<String>::new()),
            OriginPolicy::allow(["https://*.example.com", "http://127.0.0.1:1"]),
            OriginPolicy::allow(["not an origin"]),
            OriginPolicy::Any,
        ]
    }
}

impl Extremes for ForwardedHost {
    fn extremes() -> Vec<Self> {
        vec![
            ForwardedHost::Ignore,
            ForwardedHost::XForwardedHost,
            ForwardedHost::Forwarded,
        ]
    }
}

/// One field of `Config`: its name, how many extremes it has, how to set the `i`th, and how to
/// copy it from another configuration.
struct Field {
    name: &'static str,
    choices: usize,
    set: fn(&mut Config, usize),
    copy: fn(&mut Config, &Config),
}

fn choices<T: Extremes>(_: &T) -> usize {
    T::extremes().len()
}

fn pick<T: Extremes>(i: usize) -> T {
    let all = T::extremes();
    all[i % all.len()].clone()
}

macro_rules! fields {
    ($($name:ident),* $(,)?) => {
        vec![$(Field {
            name: stringify!($name),
            choices: choices(&Config::default().$name),
            set: |config, i| config.$name = pick(i),
            copy: |config, from| config.$name = from.$name.clone(),
        }),*]
    };
}

/// Every field of `Config` but `addr`.
fn fields() -> Vec<Field> {
    fields![
        workers,
        event_loops,
        inline_handlers,
        backlog,
        max_connections,
        max_header_bytes,
        max_headers,
        max_body_size,
        max_message_size,
        max_frame_size,
        max_fragments,
        compression,
        compression_threshold,
        compression_level,
        read_buffer_size,
        max_pooled_buffers,
        max_read_per_turn,
        job_queue_capacity,
        command_queue_capacity,
        max_pending_messages,
        max_pending_bytes,
        max_outbound_bytes,
        max_buffered_bytes,
        high_water_bytes,
        low_water_bytes,
        release_memory_after,
        request_timeout,
        keep_alive_timeout,
        ping_interval,
        pong_timeout,
        max_lifetime,
        message_timeout,
        write_stall_timeout,
        deferred_timeout,
        metrics_path,
        health_path,
        close_timeout,
        shutdown_timeout,
        accept_backoff,
        max_events,
        monitoring_reserve,
        monitoring_timeout,
        max_subscriptions,
        max_timers_per_connection,
        max_unordered_per_connection,
        allowed_origins,
        forwarded_host,
        backplane_queue_capacity,
        backplane_timeout,
        backplane_backoff_max,
        history_max_len,
        history_max_age,
        recovery_buffer,
    ]
}

/// A field added to `Config` must be drawn here too (or the test says so): the names come from
/// `Config`'s `Debug` output.
#[test]
fn every_field_is_drawn() {
    let debug = format!("{:#?}", Config::default());
    let drawn: Vec<&str> = fields().iter().map(|f| f.name).collect();
    for line in debug.lines() {
        let Some((name, _)) = line.strip_prefix("    ").and_then(|l| l.split_once(": ")) else {
            continue;
        };
        if name.starts_with(' ') || name == "addr" {
            continue;
        }
        assert!(
            drawn.contains(&name),
            "Config::{name} is not drawn from its extremes: add it to `fields()`"
        );
    }
}

/// Does a refusal begin with the name of a field (`max_events must be…`, `allowed_origins: …`)?
fn names_a_field(why: &str, names: &[&str]) -> bool {
    names.iter().any(|name| {
        why.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with(':'))
    })
}

/// What `validate` says: `Ok`, or the refusal, which must be `InvalidConfig` and start with
/// the name of a field.
fn verdict(config: &Config, names: &[&str]) -> Result<(), String> {
    match config.validate() {
        Ok(()) => Ok(()),
        Err(Error::InvalidConfig(why)) => {
            assert!(
                names_a_field(&why, names),
                "the refusal names no field: {why}"
            );
            Err(why)
        }
        Err(other) => panic!("validate failed with something else than InvalidConfig: {other}"),
    }
}

/// xorshift64*, seeded.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

/// The configurations to try: from the default and from the fuzz target's small limits, each
/// field alone at each extreme; every field at once at its first, second or last extreme
/// wherever `validate` takes it (greedily, in field order); and random mixes.
fn cases(fields: &[Field]) -> Vec<(String, Config)> {
    let bases = [("default", Config::default()), ("fuzz", fuzz_config())];
    let mut cases = Vec::new();
    for (base_name, base) in &bases {
        for field in fields {
            for i in 0..field.choices {
                let mut config = base.clone();
                (field.set)(&mut config, i);
                cases.push((format!("{base_name}, {} #{i}", field.name), config));
            }
        }
        for (which, index) in [("first", 0), ("second", 1), ("last", usize::MAX)] {
            let mut config = base.clone();
            for field in fields {
                let mut tried = config.clone();
                (field.set)(&mut tried, index.min(field.choices - 1));
                if tried.validate().is_ok() {
                    config = tried;
                }
            }
            cases.push((format!("{base_name}, every field {which}"), config));
        }
    }
    // Random mixes, as drawn; then the same mix with each field `validate` names put back to
    // the base's value until it is taken, so that most mixes run.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for n in 0..300 {
        let (base_name, base) = &bases[n % 2];
        let mut config = base.clone();
        let mut changed = Vec::new();
        for field in fields {
            if rng.below(3) == 0 {
                let i = rng.below(field.choices);
                (field.set)(&mut config, i);
                changed.push(format!("{} #{i}", field.name));
            }
        }
        let what = format!("{base_name}, mix {n}: {}", changed.join(", "));
        cases.push((what.clone(), config.clone()));
        while let Err(Error::InvalidConfig(why)) = config.validate() {
            let named = fields.iter().find(|f| names_a_field(&why, &[f.name]));
            let Some(field) = named else {
                panic!("the refusal names no field: {why}");
            };
            (field.copy)(&mut config, base);
        }
        cases.push((format!("{what}, repaired"), config));
    }
    cases
}

/// Every kind of event once, on a core with `config`, with the invariants checked on the way;
/// true if the WebSocket opened (so its message in part was held by an open connection).
fn tour(config: Config) -> Result<bool, String> {
    let mut h = Harness::new(config);
    let http = h.connect();
    h.send(http, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    h.send(
        http,
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel",
    );
    h.run_all_jobs();
    let ws = h.connect();
    h.send(ws, &core_upgrade("/ws"));
    h.run_all_jobs();
    let opened = h.phase(ws) == Some("Open");
    h.send(ws, &client_frame(0x1, b"hello"));
    // Timers: one due at once, one a century away (refused where none are allowed).
    h.send(ws, &client_frame(0x1, b"timer:1:0"));
    h.send(ws, &client_frame(0x1, b"timer:2:18446744073709551615"));
    h.run_all_jobs();
    // A message left in part: its first fragment, then half of the next frame.
    h.send(ws, &client_fragment(false, 0x1, b"hel"));
    let rest = client_fragment(true, 0x0, &[b'o'; 200]);
    h.send(ws, &rest[..100]);
    h.check_invariants()?;
    let reserve = h.connect_to_reserve();
    h.send(reserve, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let century = Duration::from_secs(200 * 365 * 24 * 60 * 60);
    for jump in [
        Duration::from_nanos(1),
        Duration::from_millis(1),
        Duration::from_secs(1),
        Duration::from_secs(3600),
        century,
        Duration::MAX,
    ] {
        h.advance(jump);
        h.push(ws, "pushed");
        h.broadcast("to everyone");
        h.publish("t0", "published");
        h.run_all_jobs();
        h.check_invariants()?;
    }
    h.send(ws, &rest[100..]);
    h.run_all_jobs();
    // Far in the future now: another connection, a message in part again, a close.
    let late = h.connect();
    h.send(late, &core_upgrade("/ws"));
    h.run_all_jobs();
    h.send(late, &rest[..50]);
    h.close(late, CloseCode::Normal);
    h.check_invariants()?;
    h.shutdown();
    h.advance(Duration::MAX);
    h.run_all_jobs();
    h.finish();
    h.check_invariants()?;
    h.check_every_close_delivered()?;
    Ok(opened)
}

/// Random scripts of the `connection_core` fuzz target run for each configuration taken.
const SCRIPTS_PER_CONFIG: u64 = 3;

/// The property: each configuration is refused with `InvalidConfig` naming a field, or the
/// connection core runs the tour and random scripts with it, with no panic and no broken
/// invariant.
#[test]
fn an_extreme_config_is_refused_or_runs_without_a_panic() {
    let fields = fields();
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let (mut taken, mut refused, mut partial_forever) = (0, 0, 0);
    for (n, (what, config)) in cases(&fields).into_iter().enumerate() {
        if verdict(&config, &names).is_err() {
            refused += 1;
            continue;
        }
        taken += 1;
        let forever = config.message_timeout == Duration::MAX;
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let opened = tour(config.clone()).map_err(|broken| format!("tour: {broken}"))?;
            for seed in 0..SCRIPTS_PER_CONFIG {
                let seed = n as u64 * SCRIPTS_PER_CONFIG + seed;
                run_script(config.clone(), &random_script(seed))
                    .map_err(|broken| format!("script of seed {seed}: {broken}"))?;
            }
            Ok::<bool, String>(opened)
        }));
        match ran {
            Ok(Ok(opened)) => partial_forever += usize::from(opened && forever),
            Ok(Err(broken)) => panic!("{what}: {broken}\n{config:#?}"),
            Err(_) => panic!("{what}: the core panicked (message above)\n{config:#?}"),
        }
    }
    eprintln!(
        "{taken} configurations taken, {refused} refused; {partial_forever} held a message in \
         part with message_timeout = Duration::MAX"
    );
    // Not a test of nothing: many are taken, and among them an open WebSocket held a message
    // in part with `message_timeout = Duration::MAX` (which used to panic).
    assert!(
        taken > 300 && refused > 100,
        "{taken} taken, {refused} refused"
    );
    assert!(partial_forever >= 5, "{partial_forever}");
}

/// A client that sends a request, an upgrade, a message, and a message in part (with a ping
/// in the middle, whose pong says the loop got that far), whatever the server answers: an
/// extreme configuration may refuse any of it, or be silent (then a read times out). True if
/// the pong came.
fn poke(server: &Server) -> bool {
    let addr = server.local_addr();
    let patience = Some(Duration::from_secs(1));
    let mut http = raw(addr);
    http.set_read_timeout(patience).expect("timeout");
    let _ = http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let _ = http.read_to_end(&mut Vec::new());
    let mut ws = raw(addr);
    ws.set_read_timeout(patience).expect("timeout");
    let _ = ws.write_all(upgrade_request("/ws").as_bytes());
    if !read_http_head(&mut ws).is_ok_and(|head| head.starts_with("HTTP/1.1 101 ")) {
        return false;
    }
    let _ = ws.write_all(&masked(true, 0x1, b"hello"));
    let _ = ws.write_all(&masked(false, 0x1, b"hel"));
    let _ = ws.write_all(&masked(true, 0x9, b"p"));
    while let Ok((first, _)) = read_raw_frame(&mut ws) {
        if first & 0x0f == 0xA {
            let _ = ws.write_all(&masked(true, 0x0, &[b'o'; 100])[..50]);
            return true;
        }
    }
    false
}

/// Shuts `server` down; `Err` if a thread panicked or the shutdown did not end in time.
fn stop(server: Server) -> Result<(), String> {
    let (done, stopped) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(server.shutdown());
    });
    match stopped.recv_timeout(DEADLINE) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("shutdown did not end".into()),
    }
}

/// Real servers, each field alone at each extreme: refused with `InvalidConfig`, or built
/// through `ServerBuilder`, poked by a client, and shut down without a panic.
#[test]
fn a_real_server_with_one_extreme_field_is_refused_or_serves() {
    let fields = fields();
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let mut base = Config::default();
    base.addr = "127.0.0.1:0".parse().expect("literal address");
    base.workers = 1;
    base.event_loops = 1;
    let (mut served, mut ponged) = (0, 0);
    for field in &fields {
        for i in 0..field.choices {
            let what = format!("{} #{i}", field.name);
            let built = Server::builder()
                .config(base.clone())
                .configure(|config| (field.set)(config, i))
                .build(echo());
            let server = match built {
                Ok(server) => server,
                Err(Error::InvalidConfig(why)) => {
                    assert!(names_a_field(&why, &names), "{why}");
                    continue;
                }
                Err(err) => panic!("{what}: {err}"),
            };
            ponged += usize::from(poke(&server));
            stop(server).unwrap_or_else(|err| panic!("{what}: {err}"));
            served += 1;
        }
    }
    eprintln!("{served} servers served, {ponged} got as far as the pong");
    assert!(
        served > 60 && ponged > 50,
        "{served} served, {ponged} got as far as the pong"
    );
}

/// `ServerBuilder` setters take the same checks: a thread count or a queue the server cannot
/// have is refused by name before anything starts.
#[test]
fn builder_setters_are_validated() {
    fn refused<T>(result: Result<T, Error>) -> String {
        match result {
            Err(Error::InvalidConfig(why)) => why,
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("built"),
        }
    }
    let why = refused(Server::builder().workers(usize::MAX).build(echo()));
    assert!(why.starts_with("workers must be at most 65536"), "{why}");
    let why = refused(
        Server::builder()
            .configure(|c| c.job_queue_capacity = usize::MAX)
            .build(echo()),
    );
    assert!(why.starts_with("job_queue_capacity is too large"), "{why}");
    let why = refused(
        Server::builder()
            .configure(|c| c.read_buffer_size = usize::MAX)
            .build_driven(echo()),
    );
    assert!(why.starts_with("read_buffer_size must be between"), "{why}");
}

/// The regression: with `message_timeout = Duration::MAX`, the first message in part made the
/// loop compute `Instant + Duration::MAX`, which panics, and the loop thread died. Now the
/// deadline is "never": the loop answers a ping sent in the middle of the message, serves
/// another client (exact echo), and shuts down cleanly.
#[test]
fn message_timeout_at_its_maximum_keeps_the_server_serving() {
    let mut config = common::config();
    config.event_loops = 1;
    config.message_timeout = Duration::MAX;
    let server = start(config, echo());
    let mut first = raw_websocket(server.local_addr());
    first
        .write_all(&masked(false, 0x1, b"hel"))
        .expect("a first fragment");
    first.write_all(&masked(true, 0x9, b"p")).expect("a ping");
    // The pong proves the loop handled the fragment (and scheduled its deadline) and lives.
    let (fin, opcode, payload) = read_frame(&mut first).expect("a pong");
    assert_eq!((fin, opcode, payload.as_slice()), (true, 0xA, &b"p"[..]));
    // Half of the next frame: a frame in part, too.
    let rest = masked(true, 0x0, b"lo, world");
    first.write_all(&rest[..5]).expect("half a frame");
    let mut second = raw_websocket(server.local_addr());
    second
        .write_all(&masked(true, 0x1, b"hello"))
        .expect("send");
    let (fin, opcode, payload) = read_frame(&mut second).expect("the echo");
    assert_eq!(
        (fin, opcode, payload.as_slice()),
        (true, 0x1, &b"hello"[..])
    );
    // The first message completes, and comes back whole.
    first.write_all(&rest[5..]).expect("the rest");
    let (fin, opcode, payload) = read_frame(&mut first).expect("the echo");
    assert_eq!(
        (fin, opcode, payload.as_slice()),
        (true, 0x1, &b"hello, world"[..])
    );
    assert_eq!(server.handle().stats().closed_timeout, 0);
    drop((first, second));
    stop(server).expect("no thread panicked");
}
