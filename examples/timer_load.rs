//! What per-connection timers cost the event loop: N WebSocket connections, each with a
//! heartbeat timer (`Context::set_timer`) that fires every `--interval-ms` and is set again
//! from `on_timer`, on a server with one event loop and one worker (or `--inline`).
//!
//! ```text
//! cargo run --release --example timer_load -- --connections 10000 --interval-ms 1000 --seconds 20
//! ```
//!
//! The program is both ends. It starts the server in this process and runs itself again as a
//! child process for the clients (`--clients ADDR N`: raw `TcpStream`s that do the upgrade and
//! then only send what they are told; each process stays well under 15,000 descriptors). Then:
//!
//! 1. all N connections are upgraded and idle, no timer armed: the server's RSS growth per
//!    connection, and the loop thread's CPU over the window (what an idle table costs);
//! 2. every client sends `start`: its handler arms timer 1 for a random part of the interval
//!    (so the firings spread), and each `on_timer` arms it again for `--interval-ms` — with
//!    `--ping`, it also sends a ping of 8 bytes, the shape of an application keepalive; after a
//!    warm-up of one interval, the loop thread's CPU time (utime + stime of the thread named
//!    `wsreactor-loop-0`, from `/proc/self/task/*/stat`, 10 ms ticks) and the workers' over the
//!    window, divided by the timers that fired in it (`Stats::timers_fired`), and the RSS
//!    growth per connection with one timer armed.
//!
//! It prints one JSON line (and a summary on stderr). The machine's other load shows up in
//! these numbers: quote medians of a few runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wsreactor::{Config, Context, Handler, Message, Server, ServerHandle, Stats};

struct Options {
    connections: usize,
    interval: Duration,
    seconds: u64,
    inline: bool,
    ping: bool,
}

const USAGE: &str =
    "usage: timer_load [--connections N] [--interval-ms MS] [--seconds S] [--inline] [--ping]\n";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        connections: 10_000,
        interval: Duration::from_secs(1),
        seconds: 20,
        inline: false,
        ping: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--connections" => options.connections = value()? as usize,
            "--interval-ms" => options.interval = Duration::from_millis(value()?.max(1)),
            "--seconds" => options.seconds = value()?.max(1),
            "--inline" => options.inline = true,
            "--ping" => options.ping = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

/// Each connection's heartbeat: armed by `start`, set again by every firing.
struct Heartbeat {
    interval: Duration,
    ping: bool,
    /// A cheap spread of the first firing over the interval.
    next_phase: AtomicU64,
}

impl Handler for Heartbeat {
    type Session = ();

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        if message.as_bytes() == b"start" {
            let step = self.next_phase.fetch_add(7_919, Ordering::Relaxed);
            let millis = self.interval.as_millis().max(1) as u64;
            let first = Duration::from_millis(step % millis);
            if let Err(err) = ctx.set_timer(1, first) {
                eprintln!("timer_load: set_timer: {err}");
            }
        }
    }

    fn on_timer(&self, ctx: &mut Context<'_>, key: u64) {
        if let Err(err) = ctx.set_timer(key, self.interval) {
            eprintln!("timer_load: set_timer: {err}");
        }
        if self.ping {
            let _ = ctx.ping(b"heartbt!");
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--clients") {
        return clients(&args[1..]);
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(why) => {
            eprint!("timer_load: {why}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("timer_load: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    let mut config = Config::default();
    config.addr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    config.event_loops = 1;
    config.workers = 1;
    config.inline_handlers = options.inline;
    config.max_connections = options.connections + 100;
    config.ping_interval = None;
    let handler = Heartbeat {
        interval: options.interval,
        ping: options.ping,
        next_phase: AtomicU64::new(0),
    };
    let rss_empty = rss_kib();
    let server = Server::builder()
        .config(config)
        .build(handler)
        .map_err(|e| format!("server: {e}"))?;
    let handle = server.handle();
    let mut child = spawn_clients(server.local_addr(), options.connections)?;
    let n = options.connections as u64;
    wait_for(&handle, "every connection upgraded", |s| {
        s.websocket_open >= n
    })?;
    let window = Duration::from_secs(options.seconds);
    let idle = measure(&handle, window);
    let rss_idle = settled_rss();
    tell(&mut child, "start")?;
    wait_for(&handle, "every timer armed", |s| s.connection_timers >= n)?;
    std::thread::sleep(options.interval); // warm-up: one round of firings
    let ticking = measure(&handle, window);
    let rss_timers = settled_rss();
    tell(&mut child, "stop")?;
    let _ = child.wait();
    server.shutdown().map_err(|e| format!("shutdown: {e}"))?;
    report(options, idle, ticking, [rss_empty, rss_idle, rss_timers]);
    Ok(())
}

/// CPU of the loop and worker threads, and timers fired, over one window.
struct Window {
    seconds: f64,
    loop_ms: f64,
    workers_ms: f64,
    fired: u64,
}

fn measure(handle: &ServerHandle, window: Duration) -> Window {
    let (loop0, workers0) = thread_cpu_ms();
    let fired0 = handle.stats().timers_fired;
    let started = Instant::now();
    std::thread::sleep(window);
    let (loop1, workers1) = thread_cpu_ms();
    Window {
        seconds: started.elapsed().as_secs_f64(),
        loop_ms: loop1 - loop0,
        workers_ms: workers1 - workers0,
        fired: handle.stats().timers_fired - fired0,
    }
}

fn report(options: &Options, idle: Window, ticking: Window, rss: [u64; 3]) {
    let n = options.connections as f64;
    let per_conn = |from: u64, to: u64| (to.saturating_sub(from)) as f64 / n;
    let per_fire = |ms: f64| ms * 1000.0 / ticking.fired.max(1) as f64;
    println!(
        "{{\"connections\":{},\"interval_ms\":{},\"mode\":\"{}\",\"ping\":{},\"seconds\":{:.1},\
         \"fired\":{},\"fired_per_sec\":{:.0},\"loop_cpu_ms\":{:.0},\"worker_cpu_ms\":{:.0},\
         \"loop_us_per_fire\":{:.2},\"worker_us_per_fire\":{:.2},\"idle_loop_cpu_ms\":{:.0},\
         \"idle_kib_per_conn\":{:.3},\"timer_kib_per_conn\":{:.3}}}",
        options.connections,
        options.interval.as_millis(),
        if options.inline { "inline" } else { "workers" },
        options.ping,
        ticking.seconds,
        ticking.fired,
        ticking.fired as f64 / ticking.seconds,
        ticking.loop_ms,
        ticking.workers_ms,
        per_fire(ticking.loop_ms),
        per_fire(ticking.workers_ms),
        idle.loop_ms,
        per_conn(rss[0], rss[1]),
        per_conn(rss[1], rss[2]),
    );
    eprintln!(
        "timer_load: {} firings in {:.1} s; loop {:.2} µs per firing (idle window: {:.0} ms of \
         loop CPU), workers {:.2} µs; RSS {:.3} KiB per idle connection, {:.3} KiB more with a \
         timer",
        ticking.fired,
        ticking.seconds,
        per_fire(ticking.loop_ms),
        idle.loop_ms,
        per_fire(ticking.workers_ms),
        per_conn(rss[0], rss[1]),
        per_conn(rss[1], rss[2]),
    );
}

/// CPU time (ms) of this process's loop thread and of its worker threads.
fn thread_cpu_ms() -> (f64, f64) {
    let tick_ms = 1000.0 / clock_ticks() as f64;
    let (mut loops, mut workers) = (0.0, 0.0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0.0, 0.0);
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let ms = (ticks(11) + ticks(12)) * tick_ms;
        if comm.starts_with("wsreactor-loop") {
            loops += ms;
        } else if comm.starts_with("wsreactor-work") {
            workers += ms;
        }
    }
    (loops, workers)
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// RSS once two readings 250 ms apart agree (5 s at most), as the bench's idle scenario reads it.
fn settled_rss() -> u64 {
    let mut last = rss_kib();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(250));
        let now = rss_kib();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

fn wait_for(
    handle: &ServerHandle,
    what: &str,
    done: impl Fn(&Stats) -> bool,
) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(120);
    while !done(&handle.stats()) {
        if Instant::now() > end {
            return Err(format!(
                "timed out waiting for {what}: {:?}",
                handle.stats()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn spawn_clients(addr: SocketAddr, n: usize) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .args(["--clients", &addr.to_string(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn the clients: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("the clients: {e}"))?;
    if line.trim() != "ready" {
        return Err(format!("the clients said {line:?}"));
    }
    Ok(child)
}

fn tell(child: &mut Child, what: &str) -> Result<(), String> {
    let stdin = child.stdin.as_mut().ok_or("no stdin")?;
    writeln!(stdin, "{what}").map_err(|e| format!("tell the clients {what}: {e}"))
}

/// The child: N upgraded connections; on `start` each sends a text message `start`; on `stop`
/// (or the end of stdin) it exits, and its connections go with it.
fn clients(args: &[String]) -> ExitCode {
    let (Some(addr), Some(n)) = (
        args.first().and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(1).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("timer_load --clients ADDR N");
        return ExitCode::from(2);
    };
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        match upgrade(addr) {
            Ok(stream) => streams.push(stream),
            Err(err) => {
                eprintln!("timer_load: client {i}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    let start = masked_text(b"start");
    for line in std::io::stdin().lock().lines() {
        match line.as_deref() {
            Ok("start") => {
                for stream in &mut streams {
                    let _ = stream.write_all(&start);
                }
            }
            _ => break,
        }
    }
    ExitCode::SUCCESS
}

fn upgrade(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    // The server sends nothing after its `101` until asked: read until the head's end.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    if !head.starts_with(b"HTTP/1.1 101 ") {
        let head = String::from_utf8_lossy(&head).into_owned();
        return Err(std::io::Error::other(format!("no 101: {head}")));
    }
    Ok(stream)
}

/// A masked text frame (RFC 6455 §5.3: a client masks everything it sends).
fn masked_text(payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}
