//! The gateway example (`examples/gateway/`) against a real `redis-server` (tests/common/redis.rs),
//! with real WebSocket clients: requests are served and refused with their reasons; the breaker
//! opens within its threshold when Redis is killed mid-load, errors then come back at once, and a
//! half-open probe closes it when Redis returns; connections older than `max_lifetime` are
//! replaced; a pooled connection Redis dropped is caught on checkout and never reaches a request;
//! 1,000 clients at once lose no request and get none answered twice; while a slow backend
//! saturates the pool, echo traffic on one WebSocket worker still flows; the binary's `--help`,
//! its refusals and its graceful SIGTERM; `GET /get?key=K` answered later over plain HTTP.
//!
//! Every test needs `redis-server` and is `#[ignore]`d like the other tests that need a program
//! from outside Rust; `bash .ci/run` installs it and runs them.

#[path = "../examples/gateway/main.rs"]
#[allow(dead_code)]
mod gateway;

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use gateway::breaker::BreakerState;
use gateway::flags::Options;
use serde_json::{Value as Json, json};
use tungstenite::Message as TMessage;

/// A gateway for tests: small pool, short timeouts, a quick breaker.
fn options(redis: &RedisServer) -> Options {
    Options {
        addr: "127.0.0.1:0".parse().expect("literal"),
        redis: redis.url(),
        workers: 2,
        pool_size: 4,
        pool_min_idle: 1,
        connection_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(5),
        breaker_failures: 3,
        breaker_backoff: Duration::from_millis(300),
        breaker_max_backoff: Duration::from_secs(2),
        backend_threads: 8,
        ..Options::default()
    }
}

fn start(options: &Options) -> gateway::Started {
    let _ = env_logger::builder().is_test(true).try_init();
    gateway::start(options).expect("the gateway starts")
}

/// Sends one request line and returns the next answer.
fn ask(client: &mut Client, id: impl Into<Json>, cmd: Json) -> Json {
    let id = id.into();
    send(client, &json!({ "id": id, "cmd": cmd }).to_string());
    let answer = answer(client);
    assert_eq!(answer["id"], id, "{answer}");
    answer
}

fn send(client: &mut Client, text: &str) {
    client.send(TMessage::text(text)).expect("send");
}

fn answer(client: &mut Client) -> Json {
    match client.read().expect("an answer") {
        TMessage::Text(text) => serde_json::from_str(text.as_str()).expect("JSON"),
        other => panic!("expected text, got {other:?}"),
    }
}

/// The error kind of an answer (`"ok"` for a success).
fn outcome(answer: &Json) -> String {
    match &answer["error"] {
        Json::String(kind) => kind.clone(),
        _ => "ok".to_owned(),
    }
}

/// `GET path`: the status and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = raw(addr);
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("request");
    let (head, body) = read_http_response(&mut stream).expect("a response");
    (status(&head), String::from_utf8_lossy(&body).into_owned())
}

/// Every sample of `/metrics`, by name with labels.
fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn sample(addr: SocketAddr, name: &str) -> f64 {
    scrape(addr).get(name).copied().unwrap_or(f64::NAN)
}

/// A Redis command's whole answer, bulk strings included (`CLIENT LIST`).
fn redis_text(port: u16, args: &[&str]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).expect("send");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("answer");
    let Some(len) = line.strip_prefix('$') else {
        return line.trim_end().to_owned();
    };
    let len: usize = len.trim_end().parse().expect("a length");
    let mut body = vec![0; len];
    reader.read_exact(&mut body).expect("the bulk string");
    String::from_utf8(body).expect("UTF-8")
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn requests_are_served_and_refused_with_their_reasons() {
    let redis = RedisServer::start();
    let gateway = start(&options(&redis));
    let addr = gateway.server.local_addr();
    let mut client = connect_path(addr, "/ws");
    assert_eq!(
        ask(&mut client, 1, json!(["SET", "greeting", "hello"]))["ok"],
        "OK"
    );
    assert_eq!(
        ask(&mut client, "two", json!("GET greeting"))["ok"],
        "hello"
    );
    assert_eq!(ask(&mut client, 3, json!(["INCRBY", "n", 5]))["ok"], 5);
    assert_eq!(
        ask(&mut client, 4, json!(["GET", "missing"]))["ok"],
        Json::Null
    );
    let wrongtype = ask(&mut client, 5, json!(["INCR", "greeting"]));
    assert_eq!(outcome(&wrongtype), "backend", "{wrongtype}");
    assert!(
        wrongtype["message"]
            .as_str()
            .unwrap()
            .contains("not an integer")
    );
    let forbidden = ask(&mut client, 6, json!("FLUSHALL"));
    assert_eq!(outcome(&forbidden), "forbidden");
    send(&mut client, "this is not JSON");
    let bad = answer(&mut client);
    assert_eq!(
        (outcome(&bad), &bad["id"]),
        ("bad_request".to_owned(), &Json::Null)
    );
    client.send(TMessage::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(outcome(&answer(&mut client)), "bad_request");
    // Two requests in one message, answered by id.
    send(
        &mut client,
        "{\"id\": 7, \"cmd\": \"PING\"}\n{\"id\": 8, \"cmd\": [\"ECHO\", \"x\"]}",
    );
    let mut both: Vec<Json> = (0..2).map(|_| answer(&mut client)["ok"].clone()).collect();
    both.sort_by_key(Json::to_string);
    assert_eq!(both, [json!("PONG"), json!("x")]);
    assert_eq!(redis.command(&["GET", "n"]), "$1");

    let mut echo = connect_path(addr, "/echo");
    echo_text(
        &mut echo,
        "{\"id\": 1, \"cmd\": \"PING\"} is only echoed here",
    );
    let (code, page) = get(addr, "/");
    assert_eq!(code, 200);
    assert!(page.contains("gateway to Redis"));
    assert_eq!(get(addr, "/debug").0, 200);
    let metrics = scrape(addr);
    assert_eq!(metrics["gateway_requests_total{outcome=\"ok\"}"], 6.0);
    assert_eq!(
        metrics["gateway_requests_total{outcome=\"forbidden\"}"],
        1.0
    );
    assert_eq!(metrics["gateway_requests_total{outcome=\"backend\"}"], 1.0);
    assert_eq!(
        metrics["gateway_requests_total{outcome=\"bad_request\"}"],
        2.0
    );
    assert_eq!(metrics["gateway_breaker_state{state=\"closed\"}"], 1.0);
    assert_eq!(metrics["gateway_pool_max_connections"], 4.0);
    assert!(metrics["wsreactor_connections_accepted_total"] >= 2.0);
    assert!(metrics["gateway_backend_latency_seconds_count"] >= 7.0);
    let mut other = raw(addr);
    other
        .write_all(upgrade_request("/elsewhere").as_bytes())
        .unwrap();
    assert_eq!(status(&read_http_head(&mut other).unwrap()), 404);
    drop((client, echo, other));
    gateway.server.shutdown().unwrap();
}

/// What the load clients saw: each answer's outcome, when it was asked, how long it took.
type Seen = Arc<Mutex<Vec<(String, Instant, Duration)>>>;

/// A client that asks `GET k` until `stop`, one request at a time.
fn load(addr: SocketAddr, stop: &Arc<AtomicBool>, seen: &Seen) -> thread::JoinHandle<()> {
    let (stop, seen) = (Arc::clone(stop), Arc::clone(seen));
    thread::spawn(move || {
        let mut client = connect_path(addr, "/ws");
        let mut id = 0u64;
        while !stop.load(Ordering::Relaxed) {
            id += 1;
            let asked = Instant::now();
            let answer = ask(&mut client, id, json!(["GET", "k"]));
            seen.lock()
                .unwrap()
                .push((outcome(&answer), asked, asked.elapsed()));
        }
    })
}

fn count(seen: &Seen, kind: &str) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(k, ..)| k == kind)
        .count()
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn the_breaker_opens_when_redis_dies_and_a_probe_closes_it_when_redis_returns() {
    let mut redis = RedisServer::start();
    let mut options = options(&redis);
    options.connection_timeout = Duration::from_secs(1);
    options.breaker_backoff = Duration::from_secs(2);
    options.retries = 1;
    let gateway = start(&options);
    let addr = gateway.server.local_addr();
    let metrics = Arc::clone(&gateway.metrics);
    let (stop, seen) = (Arc::new(AtomicBool::new(false)), Seen::default());
    let clients = 4;
    let loaders: Vec<_> = (0..clients).map(|_| load(addr, &stop, &seen)).collect();
    wait_until("load flowing", || count(&seen, "ok") >= 200);

    let killed = Instant::now();
    redis.kill();
    wait_until("the breaker opens", || {
        metrics.breaker_state() == BreakerState::Open
    });
    let opened = Instant::now();
    eprintln!("open {:?} after the kill", opened - killed);
    wait_until("100 refusals", || count(&seen, "unavailable") >= 100);
    let down: Vec<(String, Instant, Duration)> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, asked, took)| *asked + *took >= killed)
        .cloned()
        .collect();
    let failed = down
        .iter()
        .filter(|(k, ..)| k != "unavailable" && k != "ok")
        .count();
    assert!(
        failed <= options.breaker_failures as usize + clients,
        "at most the threshold's failures (plus those already in flight) before it opens: {down:?}"
    );
    // Asked once it was open: refused at once, never after a wait for Redis.
    let mut refused: Vec<Duration> = down
        .iter()
        .filter(|(k, asked, _)| k == "unavailable" && *asked >= opened)
        .map(|(.., took)| *took)
        .collect();
    refused.sort();
    let (median, worst) = (refused[refused.len() / 2], refused[refused.len() - 1]);
    eprintln!(
        "while open: {} refusals, median {median:?}, worst {worst:?}",
        refused.len()
    );
    assert!(median < Duration::from_millis(50), "median {median:?}");
    assert!(
        worst < options.connection_timeout,
        "worst {worst:?}: no refusal waited for Redis"
    );

    redis.restart();
    let oks = count(&seen, "ok");
    wait_until("traffic resumes", || count(&seen, "ok") >= oks + 100);
    assert_eq!(metrics.breaker_state(), BreakerState::Closed);
    let transitions: Vec<u64> = metrics
        .breaker_transitions
        .iter()
        .map(|t| t.load(Ordering::Relaxed))
        .collect();
    // [closed, open, half-open]: it may have probed a dead Redis once or more before.
    assert!(
        transitions[0] >= 1 && transitions[1] >= 1 && transitions[2] >= 1,
        "{transitions:?}"
    );
    assert_eq!(
        transitions[1], transitions[2],
        "every open period ended in a probe"
    );
    stop.store(true, Ordering::Relaxed);
    for loader in loaders {
        loader.join().expect("a load client");
    }
    gateway.server.shutdown().unwrap();
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn connections_older_than_max_lifetime_are_replaced() {
    let redis = RedisServer::start();
    let mut options = options(&redis);
    options.pool_size = 2;
    options.pool_min_idle = 2;
    options.backend_threads = 2;
    options.max_lifetime = Some(Duration::from_secs(1));
    let gateway = start(&options);
    let addr = gateway.server.local_addr();
    let (stop, seen) = (Arc::new(AtomicBool::new(false)), Seen::default());
    let loaders: Vec<_> = (0..2).map(|_| load(addr, &stop, &seen)).collect();
    let recycled = || {
        gateway.metrics.recycled[0].load(Ordering::Relaxed) // lifetime
    };
    wait_until("four connections replaced", || recycled() >= 4);
    // The pool opens a replacement after it retires a connection, not at the same moment (a
    // CI run saw 5 opened just after the fourth retirement).
    let retired = recycled();
    let opened = || gateway.metrics.connections_opened.load(Ordering::Relaxed);
    wait_until("a connection opened for each retired", || {
        opened() >= 2 + retired
    });
    stop.store(true, Ordering::Relaxed);
    for loader in loaders {
        loader.join().expect("a load client");
    }
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().all(|(kind, ..)| kind == "ok"),
        "no request noticed"
    );
    let opened = opened();
    assert!(
        opened >= 6,
        "{opened} opened: two, and one for each replaced"
    );
    // Redis's view: every gateway connection is younger than two seconds (`age` counts whole
    // seconds), the test's own `CLIENT LIST` connection aside.
    let list = redis_text(redis.port(), &["CLIENT", "LIST"]);
    let ages: Vec<u64> = list
        .lines()
        .filter(|line| !line.contains("cmd=client|list"))
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("age=")))
        .map(|age| age.parse().expect("age"))
        .collect();
    assert!(
        !ages.is_empty() && ages.iter().all(|&age| age <= 1),
        "{list}"
    );
    gateway.server.shutdown().unwrap();
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn a_connection_redis_dropped_is_caught_on_checkout_and_never_used() {
    let redis = RedisServer::start();
    let mut options = options(&redis);
    options.pool_size = 2;
    options.pool_min_idle = 2;
    options.retries = 0;
    let gateway = start(&options);
    let addr = gateway.server.local_addr();
    let mut client = connect_path(addr, "/ws");
    assert_eq!(ask(&mut client, 0, json!("PING"))["ok"], "PONG");
    wait_until("two idle connections", || {
        sample(addr, "gateway_pool_connections_idle") == 2.0
    });
    assert_eq!(redis.command(&["CLIENT", "KILL", "TYPE", "normal"]), ":2");
    for id in 1..=3 {
        assert_eq!(
            ask(&mut client, id, json!("PING"))["ok"],
            "PONG",
            "request {id}"
        );
    }
    let metrics = &gateway.metrics;
    assert_eq!(
        metrics.recycled[3].load(Ordering::Relaxed),
        2,
        "both failed their check"
    );
    assert_eq!(
        metrics.retries.load(Ordering::Relaxed),
        0,
        "no request needed a retry"
    );
    assert_eq!(metrics.requests("ok"), 4);
    assert_eq!(metrics.requests("failed"), 0);
    drop(client);
    gateway.server.shutdown().unwrap();
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn a_thousand_clients_lose_no_request_and_get_none_answered_twice() {
    const THREADS: usize = 20;
    const PER_THREAD: usize = 50;
    const REQUESTS: usize = 5;
    let redis = RedisServer::start();
    let mut options = options(&redis);
    options.pool_size = 8;
    options.backend_threads = 16;
    options.backend_queue = 8192;
    let gateway = start(&options);
    let addr = gateway.server.local_addr();
    let all_open = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let all_open = Arc::clone(&all_open);
            thread::spawn(move || {
                let mut clients: Vec<Client> =
                    (0..PER_THREAD).map(|_| connect_path(addr, "/ws")).collect();
                all_open.wait();
                for (c, client) in clients.iter_mut().enumerate() {
                    let lines: Vec<String> = (0..REQUESTS)
                        .map(|r| {
                            json!({ "id": format!("{t}-{c}-{r}"), "cmd": ["INCR", "counter"] })
                                .to_string()
                        })
                        .collect();
                    send(client, &lines.join("\n"));
                }
                let mut values = Vec::new();
                for (c, client) in clients.iter_mut().enumerate() {
                    let mut ids = HashSet::new();
                    for _ in 0..REQUESTS {
                        let answer = answer(client);
                        assert_eq!(outcome(&answer), "ok", "{answer}");
                        assert!(
                            ids.insert(answer["id"].to_string()),
                            "answered twice: {answer}"
                        );
                        values.push(answer["ok"].as_u64().expect("a count"));
                    }
                    let expected: HashSet<String> = (0..REQUESTS)
                        .map(|r| json!(format!("{t}-{c}-{r}")).to_string())
                        .collect();
                    assert_eq!(ids, expected);
                    // Nothing else is on its way: the next answer is this marker's.
                    assert_eq!(ask(client, "end", json!("PING"))["ok"], "PONG");
                }
                values
            })
        })
        .collect();
    let mut values: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a client thread"))
        .collect();
    values.sort_unstable();
    let total = (THREADS * PER_THREAD * REQUESTS) as u64;
    assert_eq!(
        values,
        (1..=total).collect::<Vec<_>>(),
        "each INCR ran exactly once"
    );
    assert_eq!(
        redis.command(&["GET", "counter"]),
        format!("${}", total.to_string().len())
    );
    assert_eq!(
        redis_text(redis.port(), &["GET", "counter"]),
        total.to_string()
    );
    assert_eq!(
        gateway.metrics.requests("ok"),
        total + (THREADS * PER_THREAD) as u64
    );
    gateway.server.shutdown().unwrap();
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn echo_flows_on_one_worker_while_a_slow_backend_saturates_the_pool() {
    let redis = RedisServer::start();
    let mut options = options(&redis);
    options.workers = 1;
    options.pool_size = 2;
    options.pool_min_idle = 2;
    options.backend_threads = 2;
    options.backend_queue = 2;
    options.max_in_flight = 4;
    options.test_on_check_out = false;
    options.connection_timeout = Duration::from_secs(10);
    options.request_timeout = Duration::from_secs(30);
    options.backend_delay = Some(Duration::from_secs(2));
    let gateway = start(&options);
    let addr = gateway.server.local_addr();
    let metrics = Arc::clone(&gateway.metrics);
    wait_until("two pooled connections", || {
        sample(addr, "gateway_pool_connections_idle") == 2.0
    });
    let mut client = connect_path(addr, "/ws");
    let ping = |id: u64| json!({ "id": id, "cmd": "PING" }).to_string();
    // Two for the backend threads, then two for the queue in front of them.
    send(&mut client, &format!("{}\n{}", ping(0), ping(1)));
    wait_until("both backend threads busy", || {
        metrics.busy_threads.load(Ordering::Relaxed) == 2
    });
    send(&mut client, &format!("{}\n{}", ping(2), ping(3)));
    wait_until("two queued", || {
        sample(addr, "gateway_backend_queue_depth") == 2.0
    });
    // Refused at once while saturated: this connection's fifth, another's first.
    assert_eq!(
        outcome(&ask(&mut client, 4, json!("PING"))),
        "too_many_in_flight"
    );
    let mut other = connect_path(addr, "/ws");
    assert_eq!(outcome(&ask(&mut other, 0, json!("PING"))), "overloaded");

    let mut echoes: Vec<Client> = (0..4).map(|_| connect_path(addr, "/echo")).collect();
    let mut worst = Duration::ZERO;
    for round in 0..50 {
        for echo in &mut echoes {
            let sent = Instant::now();
            echo_text(echo, &format!("round {round}"));
            worst = worst.max(sent.elapsed());
        }
    }
    eprintln!("200 echoes on one worker while the backend was saturated; slowest {worst:?}");
    assert!(
        metrics.requests("ok") < 4 && metrics.busy_threads.load(Ordering::Relaxed) >= 1,
        "the echoes were done while the backend was still saturated"
    );
    let mut ids: Vec<u64> = (0..4)
        .map(|_| {
            let answer = answer(&mut client);
            assert_eq!(answer["ok"], "PONG", "{answer}");
            answer["id"].as_u64().expect("an id")
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2, 3]);
    drop((client, other, echoes));
    gateway.server.shutdown().unwrap();
}

/// The gateway binary `cargo test` built next to this test's own.
fn gateway_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    dir.join("examples").join("gateway")
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn the_binary_helps_refuses_and_stops_gracefully_on_sigterm() {
    use std::process::{Command, Stdio};
    let help = Command::new(gateway_binary())
        .arg("--help")
        .output()
        .expect("runs");
    assert!(help.status.success());
    let help_text = String::from_utf8_lossy(&help.stdout);
    assert!(help_text.contains("--breaker-failures"));
    assert!(help_text.contains("GET /get?key=K"), "{help_text}");
    let refused = Command::new(gateway_binary())
        .args(["--pool-size", "0"])
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with("gateway: --pool-size must be between 1 and 1024, not 0\n"),
        "{stderr}"
    );

    let redis = RedisServer::start();
    let mut child = Command::new(gateway_binary())
        .args(["--addr", "127.0.0.1:0", "--redis", &redis.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the gateway starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the address line");
    let addr: SocketAddr = line
        .strip_prefix("gateway on http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .expect("an address");
    let mut client = connect_path(addr, "/ws");
    assert_eq!(ask(&mut client, 1, json!("PING"))["ok"], "PONG");
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    match client.read() {
        Ok(TMessage::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    let status = child.wait().expect("the gateway exits");
    assert!(status.success(), "{status}");
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn with_deferred_answers_each_request_completes_its_call_and_the_next_waits_for_it() {
    let redis = RedisServer::start();
    let gateway = start(&Options {
        deferred: true,
        ..options(&redis)
    });
    let addr = gateway.server.local_addr();
    let mut client = connect_path(addr, "/ws");
    assert_eq!(ask(&mut client, 1, json!(["SET", "k", "v"]))["ok"], "OK");
    // Two messages back to back: the second's call waits for the first's completion, so the
    // answers come in order (pushes could pass each other).
    send(
        &mut client,
        &json!({ "id": 2, "cmd": ["INCR", "n"] }).to_string(),
    );
    send(
        &mut client,
        &json!({ "id": 3, "cmd": ["GET", "k"] }).to_string(),
    );
    let (second, third) = (answer(&mut client), answer(&mut client));
    assert_eq!((&second["id"], &second["ok"]), (&json!(2), &json!(1)));
    assert_eq!((&third["id"], &third["ok"]), (&json!(3), &json!("v")));
    let forbidden = ask(&mut client, 4, json!("FLUSHALL"));
    assert_eq!(
        outcome(&forbidden),
        "forbidden",
        "refused at once, nothing deferred"
    );
    let stats = gateway.server.handle().stats();
    assert_eq!(
        stats.deferred_calls, 3,
        "one per request the backend served"
    );
    assert_eq!(stats.deferred_abandoned + stats.deferred_late, 0);
    assert_eq!(sample(addr, "wsreactor_deferred_calls_total"), 3.0);
    // Two requests in one message are pushed, as without --deferred.
    let both = format!(
        "{}\n{}",
        json!({ "id": 5, "cmd": ["GET", "k"] }),
        json!({ "id": 6, "cmd": ["GET", "n"] })
    );
    send(&mut client, &both);
    let mut ids = vec![
        answer(&mut client)["id"].clone(),
        answer(&mut client)["id"].clone(),
    ];
    ids.sort_by_key(|id| id.as_i64());
    assert_eq!(ids, [json!(5), json!(6)]);
    assert_eq!(gateway.server.handle().stats().deferred_calls, 3);
}

/// Reads one `GET /get` answer from `stream`: its status, `Content-Type` and JSON body.
fn http_answer(stream: &mut TcpStream) -> (u16, String, Json) {
    let (head, body) = read_http_response(stream).expect("a response");
    let content_type = common::http::header(&head, "content-type");
    let body = serde_json::from_slice(&body).expect("JSON");
    (status(&head), content_type, body)
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn http_get_is_answered_later_from_the_bulkhead_in_request_order() {
    let redis = RedisServer::start();
    let gateway = start(&options(&redis));
    let addr = gateway.server.local_addr();
    let mut client = connect_path(addr, "/ws");
    assert_eq!(
        ask(&mut client, 1, json!(["SET", "greeting", "hello world"]))["ok"],
        "OK"
    );
    assert_eq!(ask(&mut client, 2, json!(["SET", "n", "7"]))["ok"], "OK");
    // Three requests pipelined in one write, two answered later: in request order.
    let mut stream = raw(addr);
    let pipelined = "GET /get?key=greeting HTTP/1.1\r\nHost: x\r\n\r\n\
                     GET /get?key=n HTTP/1.1\r\nHost: x\r\n\r\n\
                     GET /get HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(pipelined.as_bytes()).expect("requests");
    let json_type = "application/json".to_owned();
    let first = http_answer(&mut stream);
    assert_eq!(
        first,
        (
            200,
            json_type.clone(),
            json!({"id": "greeting", "ok": "hello world"})
        )
    );
    assert_eq!(
        http_answer(&mut stream),
        (200, json_type.clone(), json!({"id": "n", "ok": "7"}))
    );
    let (status, _, missing) = http_answer(&mut stream);
    assert_eq!((status, outcome(&missing)), (400, "bad_request".to_owned()));
    // A key that needs percent-decoding, and one Redis does not have.
    stream
        .write_all(b"GET /get?key=hello%20world HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let absent = http_answer(&mut stream);
    assert_eq!(
        absent,
        (200, json_type, json!({"id": "hello world", "ok": null}))
    );
    let stats = gateway.server.handle().stats();
    assert_eq!(
        stats.deferred_calls, 3,
        "one per request the bulkhead served"
    );
    assert_eq!(
        stats.deferred_abandoned + stats.deferred_late + stats.deferred_expired,
        0
    );
    // Redis gone: the breaker's answer comes with its status, at once once it is open.
    let mut redis = redis;
    redis.kill();
    let statuses: Vec<u16> = (0..6)
        .map(|_| http_answer(&mut get_stream(addr, "/get?key=n")).0)
        .collect();
    assert!(
        statuses.iter().all(|s| [502, 503].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&503),
        "the breaker is open: {statuses:?}"
    );
}

/// A connection that sent `GET path`, for its answer.
fn get_stream(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = raw(addr);
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("request");
    stream
}

#[test]
#[ignore = "needs redis-server: bash .ci/run installs it"]
fn with_unordered_a_fast_request_overtakes_a_slow_one_and_none_is_lost_or_doubled() {
    let redis = RedisServer::start();
    let gateway = start(&Options {
        unordered: 4,
        ..options(&redis)
    });
    let addr = gateway.server.local_addr();
    let mut client = connect_path(addr, "/ws");
    assert_eq!(ask(&mut client, 1, json!(["SET", "k", "v"]))["ok"], "OK");
    // Redis holds writes (the slow request) and serves reads (the fast one) until unpaused.
    assert_eq!(
        redis_text(redis.port(), &["CLIENT", "PAUSE", "20000", "WRITE"]),
        "+OK"
    );
    send(
        &mut client,
        &json!({ "id": 2, "cmd": ["SET", "k", "w"] }).to_string(),
    );
    send(
        &mut client,
        &json!({ "id": 3, "cmd": ["GET", "k"] }).to_string(),
    );
    let fast = answer(&mut client);
    assert_eq!((&fast["id"], &fast["ok"]), (&json!(3), &json!("v")));
    assert_eq!(redis_text(redis.port(), &["CLIENT", "UNPAUSE"]), "+OK");
    let slow = answer(&mut client);
    assert_eq!((&slow["id"], &slow["ok"]), (&json!(2), &json!("OK")));
    // A hundred requests, one per message, four at a time: each answered exactly once.
    for id in 100..200 {
        let cmd = if id % 2 == 0 {
            json!(["INCR", "n"])
        } else {
            json!(["GET", "k"])
        };
        send(&mut client, &json!({ "id": id, "cmd": cmd }).to_string());
    }
    let mut ids: Vec<i64> = (0..100)
        .map(|_| {
            let answer = answer(&mut client);
            assert_eq!(outcome(&answer), "ok", "{answer}");
            answer["id"].as_i64().expect("a numeric id")
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (100..200).collect::<Vec<_>>());
    assert_eq!(redis_text(redis.port(), &["GET", "n"]), "50");
    let stats = wait_for_stats(&gateway.server.handle(), "every completion in", |s| {
        s.unordered_outstanding == 0
    });
    assert_eq!(
        stats.unordered_calls, 103,
        "one per request the backend served"
    );
    assert_eq!(stats.deferred_abandoned + stats.deferred_late, 0);
    assert_eq!(sample(addr, "wsreactor_unordered_calls_total"), 103.0);
}
