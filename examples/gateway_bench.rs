//! A load generator for the gateway example (`examples/gateway/`), for docs/benchmarks.md:
//! `--connections` WebSockets on `/ws`, each keeping `--inflight` requests out (a new one as each
//! answer arrives), for `--duration` after `--warmup`; meanwhile `--echo` connections on `/echo`
//! each send a message every `--echo-every` and time its echo, and `/metrics` is read every
//! 100 ms for the busy WebSocket workers (less the one answering that scrape) and backend
//! threads.
//!
//! ```text
//! cargo run --release --example gateway_bench -- --addr 127.0.0.1:9003 --duration 10s
//! ```
//!
//! It prints one JSON line: requests answered per second, their latency (p50, p99, max) by
//! outcome, the echo latency, the busiest and mean busy counts, and the server's thread count
//! (`--server-pid`). `scripts/gateway_bench.sh` runs it against a healthy, a slow and a dead
//! backend.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tungstenite::Message;

type Client = tungstenite::WebSocket<TcpStream>;

struct Args {
    addr: SocketAddr,
    connections: usize,
    inflight: usize,
    warmup: Duration,
    duration: Duration,
    cmd: Vec<String>,
    echo: usize,
    echo_every: Duration,
    server_pid: Option<u32>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 9003)),
        connections: 64,
        inflight: 4,
        warmup: Duration::from_secs(2),
        duration: Duration::from_secs(10),
        cmd: vec!["GET".into(), "bench-key".into()],
        echo: 4,
        echo_every: Duration::from_millis(10),
        server_pid: None,
    };
    let given: Vec<String> = std::env::args().skip(1).collect();
    let mut it = given.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        let seconds = |v: String| -> Result<Duration, String> {
            let n = v.trim_end_matches("ms").trim_end_matches('s');
            let n: u64 = n.parse().map_err(|_| format!("{flag}: {v:?}"))?;
            Ok(if v.ends_with("ms") {
                Duration::from_millis(n)
            } else {
                Duration::from_secs(n)
            })
        };
        let number = |v: String| v.parse::<usize>().map_err(|_| format!("{flag}: {v:?}"));
        match flag.as_str() {
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--connections" => args.connections = number(value()?)?,
            "--inflight" => args.inflight = number(value()?)?,
            "--warmup" => args.warmup = seconds(value()?)?,
            "--duration" => args.duration = seconds(value()?)?,
            "--cmd" => args.cmd = value()?.split_whitespace().map(str::to_owned).collect(),
            "--echo" => args.echo = number(value()?)?,
            "--echo-every" => args.echo_every = seconds(value()?)?,
            "--server-pid" => args.server_pid = Some(value()?.parse().map_err(|_| "--server-pid")?),
            "--help" | "-h" => return Err("usage: gateway_bench [--addr A] [--connections N] [--inflight K] [--warmup 2s] [--duration 10s] [--cmd 'GET k'] [--echo N] [--echo-every 10ms] [--server-pid PID]".into()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// Latencies by outcome (`ok`, or the error's kind), in microseconds.
type Latencies = BTreeMap<String, Vec<u64>>;

fn connect(addr: SocketAddr, path: &str) -> Client {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    tungstenite::client(format!("ws://{addr}{path}"), stream)
        .expect("handshake")
        .0
}

/// One request connection: keeps `inflight` requests out until `stop`, counting those answered
/// after `measure_from`.
fn requester(args: &Args, stop: &AtomicBool, measure_from: Instant) -> Latencies {
    let mut client = connect(args.addr, "/ws");
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    let mut next = 0u64;
    let mut latencies = Latencies::new();
    let mut ask = |client: &mut Client, sent: &mut HashMap<u64, Instant>| {
        next += 1;
        let line = json!({ "id": next, "cmd": args.cmd }).to_string();
        sent.insert(next, Instant::now());
        client.send(Message::text(line)).expect("send");
    };
    for _ in 0..args.inflight {
        ask(&mut client, &mut sent);
    }
    while !stop.load(Ordering::Relaxed) {
        let Ok(Message::Text(text)) = client.read() else {
            panic!("the gateway closed the connection");
        };
        let answer: Json = serde_json::from_str(text.as_str()).expect("JSON");
        let id = answer["id"].as_u64().expect("an id");
        let asked = sent
            .remove(&id)
            .expect("an answer to a request that was sent, once");
        if asked >= measure_from {
            let kind = answer["error"].as_str().unwrap_or("ok").to_owned();
            let micros = asked.elapsed().as_micros() as u64;
            latencies.entry(kind).or_default().push(micros);
        }
        ask(&mut client, &mut sent);
    }
    latencies
}

/// One echo connection: a message every `every`, each echo timed.
fn echoer(args: &Args, stop: &AtomicBool, measure_from: Instant) -> Vec<u64> {
    let mut client = connect(args.addr, "/echo");
    let mut times = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(next.saturating_duration_since(Instant::now()));
        next += args.echo_every;
        let sent = Instant::now();
        client.send(Message::text("echo probe")).expect("send");
        let echoed = client.read().expect("an echo");
        assert_eq!(echoed, Message::text("echo probe"));
        if sent >= measure_from {
            times.push(sent.elapsed().as_micros() as u64);
        }
    }
    times
}

/// `/metrics` as name → value.
fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return HashMap::new();
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

/// Busy WebSocket workers and backend threads, sampled every 100 ms: (max, mean) of each.
fn sample_busy(addr: SocketAddr, stop: &AtomicBool) -> Json {
    let mut workers = Vec::new();
    let mut backend = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let m = scrape(addr);
        // The worker answering this very scrape counts itself: not the load's.
        let busy = m.get("wsreactor_busy_workers").copied().unwrap_or(1.0);
        workers.push((busy - 1.0).max(0.0));
        backend.push(
            m.get("gateway_backend_threads_busy")
                .copied()
                .unwrap_or(0.0),
        );
        thread::sleep(Duration::from_millis(100));
    }
    let summary = |v: &[f64]| {
        let max = v.iter().copied().fold(0.0, f64::max);
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        json!({ "max": max, "mean": (mean * 10.0).round() / 10.0 })
    };
    json!({ "ws_workers_busy": summary(&workers), "backend_threads_busy": summary(&backend) })
}

fn percentiles(mut micros: Vec<u64>) -> Json {
    if micros.is_empty() {
        return Json::Null;
    }
    micros.sort_unstable();
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    json!({ "count": micros.len(), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0) })
}

fn server_threads(pid: Option<u32>) -> Json {
    let Some(pid) = pid else { return Json::Null };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim().to_owned()))
        })
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(Json::Null, |n| json!(n))
}

fn main() {
    let args = match parse() {
        Ok(args) => Arc::new(args),
        Err(why) => {
            eprintln!("{why}");
            std::process::exit(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let measure_from = Instant::now() + args.warmup;
    let spawn = |f: fn(&Args, &AtomicBool, Instant) -> Json| {
        let (args, stop) = (Arc::clone(&args), Arc::clone(&stop));
        thread::spawn(move || f(&args, &stop, measure_from))
    };
    let requesters: Vec<_> = (0..args.connections)
        .map(|_| spawn(|a, s, m| json!(requester(a, s, m))))
        .collect();
    let echoers: Vec<_> = (0..args.echo)
        .map(|_| spawn(|a, s, m| json!(echoer(a, s, m))))
        .collect();
    thread::sleep(args.warmup);
    let sampling = Arc::new(AtomicBool::new(false));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        let addr = args.addr;
        thread::spawn(move || sample_busy(addr, &sampling))
    };
    thread::sleep(args.duration / 2);
    let threads = server_threads(args.server_pid);
    thread::sleep(args.duration - args.duration / 2);
    stop.store(true, Ordering::Relaxed);
    sampling.store(true, Ordering::Relaxed);
    let all = Mutex::new(Latencies::new());
    for requester in requesters {
        let latencies: Latencies =
            serde_json::from_value(requester.join().expect("requester")).expect("latencies");
        for (kind, mut micros) in latencies {
            all.lock()
                .unwrap()
                .entry(kind)
                .or_default()
                .append(&mut micros);
        }
    }
    let echo: Vec<u64> = echoers
        .into_iter()
        .flat_map(|e| serde_json::from_value::<Vec<u64>>(e.join().expect("echoer")).expect("times"))
        .collect();
    let all = all.into_inner().unwrap();
    let answered: usize = all.values().map(Vec::len).sum();
    let seconds = args.duration.as_secs_f64();
    let outcomes: BTreeMap<String, Json> =
        all.into_iter().map(|(k, v)| (k, percentiles(v))).collect();
    let report = json!({
        "connections": args.connections,
        "inflight": args.inflight,
        "requests_per_s": (answered as f64 / seconds).round(),
        "outcomes": outcomes,
        "echo": percentiles(echo),
        "busy": sampler.join().expect("sampler"),
        "server_threads": threads,
    });
    println!("{report}");
}
