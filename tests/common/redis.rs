//! A real `redis-server` for the tests that need one (the Redis backplane, the gateway's
//! backend): started on a free loopback port with nothing saved to disk, stopped — by its PID —
//! when the value is dropped, and killable and restartable on the same port mid-test.
//!
//! ```ignore
//! #[test]
//! #[ignore = "needs redis-server: bash .ci/run installs it"]
//! fn it_talks_to_redis() {
//!     let redis = common::redis::RedisServer::start();
//!     let url = redis.url(); // redis://127.0.0.1:PORT
//!     // ...
//!     redis.kill();          // the server dies at once (SIGKILL), as in a crash
//!     redis.restart();       // same port, empty
//! }
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tools;

/// How long a `redis-server` may take to start answering.
const STARTUP: Duration = Duration::from_secs(10);

/// One `redis-server` process on 127.0.0.1, owned by the test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    password: Option<String>,
    /// Extra `--name value` settings, kept for restarts.
    settings: Vec<(String, String)>,
    child: Option<Child>,
}

impl RedisServer {
    /// A server on a free port, answering `PING` before this returns.
    #[track_caller]
    pub fn start() -> RedisServer {
        RedisServer::with(None, &[])
    }

    /// A server that requires `password` (`redis://:password@host:port`).
    #[track_caller]
    pub fn with_password(password: &str) -> RedisServer {
        RedisServer::with(Some(password), &[])
    }

    /// A server with extra settings, each given as on the command line without its dashes:
    /// `[("client-output-buffer-limit", "pubsub 64kb 32kb 1")]`.
    #[track_caller]
    pub fn with(password: Option<&str>, settings: &[(&str, &str)]) -> RedisServer {
        let port = free_port();
        let mut server = RedisServer {
            port,
            password: password.map(str::to_owned),
            settings: settings
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            child: None,
        };
        server.spawn();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`, with the password if there is one.
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Kills the server at once (SIGKILL: no goodbye to its clients, as in a crash) and waits
    /// for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing is saved), after [`kill`](Self::kill).
    #[track_caller]
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends one command and returns the first line of its answer (`+OK`, `:1`, `-ERR …`).
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(STARTUP))
            .expect("read timeout");
        let mut request = String::new();
        if let Some(password) = &self.password {
            request.push_str(&resp(&["AUTH", password]));
        }
        request.push_str(&resp(args));
        stream.write_all(request.as_bytes()).expect("send to redis");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if self.password.is_some() {
            reader.read_line(&mut line).expect("AUTH answer");
            line.clear();
        }
        reader.read_line(&mut line).expect("an answer");
        line.trim_end().to_owned()
    }

    #[track_caller]
    fn spawn(&mut self) {
        let program = tools::program("redis-server", "apt-get install redis-server");
        let mut command = Command::new(program);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        for (name, value) in &self.settings {
            command.arg(format!("--{name}")).arg(value);
        }
        self.child = Some(command.spawn().expect("start redis-server"));
        let end = Instant::now() + STARTUP;
        while !self.answers_ping() {
            assert!(
                Instant::now() < end,
                "redis-server did not start on {}",
                self.port
            );
            std::thread::yield_now();
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut request = String::new();
        if let Some(password) = &self.password {
            request.push_str(&resp(&["AUTH", password]));
        }
        request.push_str(&resp(&["PING"]));
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let answers = if self.password.is_some() { 2 } else { 1 };
        (0..answers).all(|_| {
            line.clear();
            reader.read_line(&mut line).is_ok()
        }) && line.starts_with("+PONG")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on now (the kernel's pick for port 0).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// One command in RESP, Redis's protocol: an array of bulk strings.
fn resp(args: &[&str]) -> String {
    let mut out = format!("*{}\r\n", args.len());
    for arg in args {
        out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    out
}
