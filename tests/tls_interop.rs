//! The echo example binary with TLS (feature `tls`) against real clients that are not ours:
//! the Python `websockets` client over `wss://` with an `ssl.SSLContext` that trusts the test's
//! certificate, curl over `https://` (ALPN `http/1.1`, also when it offers `h2`; plain
//! `http://` on the TLS port gets the 400 hint), the page in headless Chromium over `https://`
//! opening `wss://`, the PEM that `--tls-self-signed` writes verifying a real connection, and a
//! certificate rotated by SIGHUP while a connection from before goes on.
//!
//! The binary is `target/<profile>/examples/echo`, which `cargo test --features tls` builds. The
//! tests that drive Python, curl or Chromium are `#[ignore]`d, as every test that needs a
//! program from outside Rust: `bash .ci/run` installs them and runs those tests with
//! `--include-ignored`, where a missing one fails its test (tests/common/tools.rs). The
//! certificate printed by `--tls-self-signed` and SIGHUP rotation are checked with rustls
//! clients, which need nothing outside.

#![cfg(feature = "tls")]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use common::browser::Browser;
use common::tls::{TlsClient, client_config, peer_leaf, tls_connect};
use common::{DEADLINE, poll_until, run_python_json, tools};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection};
use serde_json::json;
use tungstenite::Message as TMessage;
use tungstenite::protocol::frame::coding::CloseCode as TCloseCode;

/// The page the echo serves on `GET /`.
const PAGE: &str = include_str!("../examples/echo/page.html");
/// The plaintext answer to plain HTTP on the TLS port.
const PLAINTEXT_HINT: &str = "This port speaks TLS: use https:// or wss://\n";

/// A directory of this test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wsreactor-tls-interop-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, made by rcgen.
struct TestCert {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl TestCert {
    fn new() -> TestCert {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("rcgen");
        TestCert {
            der: CertificateDer::from(made.cert.der().to_vec()),
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
        }
    }

    /// Writes `cert.pem` and `key.pem` into `dir` (over what was there); returns their paths.
    fn write(&self, dir: &TempDir) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
        std::fs::write(&cert, &self.cert_pem).expect("write cert.pem");
        std::fs::write(&key, &self.key_pem).expect("write key.pem");
        (cert, key)
    }
}

/// The example binary `cargo test` built next to this test's own.
fn echo_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    dir.join("examples").join("echo")
}

/// The echo example running as a child process with TLS (killed, by its own PID, when
/// dropped). Its stdout is read line by line on a thread; its stderr (the log) goes to a file.
struct Echo {
    child: Child,
    addr: SocketAddr,
    /// What it printed up to and including the "listening" line.
    printed: Vec<String>,
    log: PathBuf,
}

impl Echo {
    /// Starts `echo --addr 127.0.0.1:0 ARGS` with `TMPDIR` set to `dir` (where
    /// `--tls-self-signed` writes its PEM) and waits until it says it listens on `wss://`.
    fn start(dir: &TempDir, args: &[&str]) -> Echo {
        let binary = echo_binary();
        assert!(
            binary.is_file(),
            "no {}: build it with `cargo test --features tls` (or `cargo build --features tls \
             --example echo`)",
            binary.display()
        );
        let log = dir.path("echo.log");
        let mut child = Command::new(&binary)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("TMPDIR", &dir.0)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("the echo example starts");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, received) = mpsc::channel();
        // Reads to EOF, so the pipe never fills; the receiver may be gone by then.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let mut echo = Echo {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            printed: Vec::new(),
            log,
        };
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = match received.recv_timeout(left) {
                Ok(line) => line,
                Err(err) => panic!(
                    "the echo did not say it listens ({err}); it printed {:?}; its log:\n{}",
                    echo.printed,
                    echo.log_text()
                ),
            };
            echo.printed.push(line.clone());
            if let Some(rest) = line.strip_prefix("echo server listening on wss://") {
                let (addr, dashboard) = rest.split_once("/ws ").expect("the listening line");
                echo.addr = addr.parse().expect("the address it listens on");
                assert_eq!(dashboard, format!("(dashboard: https://{addr}/debug)"));
                return echo;
            }
        }
    }

    /// Starts the echo with `cert` written to `dir` as its `--tls-cert` and `--tls-key` files;
    /// the echo, and the certificate's path (for clients to trust).
    fn with_files(dir: &TempDir, cert: &TestCert) -> (Echo, PathBuf) {
        let (cert_path, key_path) = cert.write(dir);
        let (cert, key) = (cert_path.to_str().unwrap(), key_path.to_str().unwrap());
        let echo = Echo::start(dir, &["--tls-cert", cert, "--tls-key", key]);
        (echo, cert_path)
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn child_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn https(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    fn wss(&self) -> String {
        format!("wss://127.0.0.1:{}/ws", self.addr.port())
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl with `args` (silent, errors shown, a deadline of its own).
fn curl(args: &[&str]) -> Output {
    let max_time = DEADLINE.as_secs().to_string();
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", &max_time])
        .args(args)
        .output()
        .expect("curl runs")
}

/// Runs curl, which must succeed; returns its stdout and stderr.
fn curl_ok(args: &[&str]) -> (String, String) {
    let output = curl(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "curl {args:?}: {stderr}");
    (String::from_utf8_lossy(&output.stdout).into_owned(), stderr)
}

/// Runs a Python script (one JSON argument) and returns the JSON it printed.
fn python_json(python: &str, script: &str, arg: serde_json::Value) -> serde_json::Value {
    run_python_json(python, script, &arg.to_string())
}

/// Over `wss://` with an SSLContext that trusts the test's certificate only: text, binary, an
/// empty message, 1 MiB text and 1 MiB of incompressible binary, each echo compared exactly,
/// then close 1000. Before that, a default context (system roots) must refuse the certificate,
/// and a `ws://` handshake on the TLS port must get the plaintext 400.
const PYTHON_WSS: &str = r#"
import asyncio, json, random, ssl, sys
import websockets

async def main(args):
    seen = {}
    try:
        async with websockets.connect(args["url"]):
            seen["untrusted"] = "connected"
    except ssl.SSLCertVerificationError as err:
        seen["untrusted"] = err.verify_message
    try:
        async with websockets.connect(args["plain_url"]):
            seen["plain"] = "connected"
    except websockets.exceptions.InvalidStatus as err:
        seen["plain"] = [err.response.status_code, err.response.body.decode()]

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=args["cafile"])
    big_text = "".join(chr(0x20 + i % 95) for i in range(1 << 20))
    big_binary = random.Random(7).randbytes(1 << 20)
    messages = ["hello over tls", "h\u00e9llo \u2713", b"\x00\x01\xfe\xff", b"", "", big_text,
                big_binary]
    async with websockets.connect(args["url"], ssl=context, max_size=None) as ws:
        tls = ws.transport.get_extra_info("ssl_object")
        seen["tls_version"] = tls.version()
        seen["peer_names"] = [v for k, v in tls.getpeercert()["subjectAltName"]]
        seen["echoed"] = []
        for message in messages:
            await ws.send(message)
            echo = await ws.recv()
            assert type(echo) is type(message), (type(echo), type(message))
            assert echo == message, (len(echo), len(message))
            seen["echoed"].append([type(message).__name__, len(message)])
        await ws.close(1000, "done")
        seen["close_code"] = ws.close_code
        seen["close_reason"] = ws.close_reason
    print(json.dumps(seen))

asyncio.run(main(json.loads(sys.argv[1])))
"#;

#[test]
#[ignore = "needs a Python with websockets: bash .ci/run installs it"]
fn python_websockets_over_wss_echoes_exactly_and_closes_1000() {
    let python = tools::python_websockets();
    let dir = TempDir::new();
    let cert = TestCert::new();
    let (echo, cert_path) = Echo::with_files(&dir, &cert);
    let seen = python_json(
        &python,
        PYTHON_WSS,
        json!({
            "url": echo.wss(),
            "plain_url": format!("ws://127.0.0.1:{}/ws", echo.addr.port()),
            "cafile": cert_path,
        }),
    );
    assert_eq!(seen["untrusted"], "self-signed certificate", "{seen}");
    assert_eq!(seen["plain"], json!([400, PLAINTEXT_HINT]), "{seen}");
    assert_eq!(seen["tls_version"], "TLSv1.3", "{seen}");
    assert_eq!(
        seen["peer_names"],
        json!(["localhost", "127.0.0.1"]),
        "{seen}"
    );
    assert_eq!(
        seen["echoed"],
        json!([
            ["str", 14],
            ["str", 7],
            ["bytes", 4],
            ["bytes", 0],
            ["str", 0],
            ["str", 1 << 20],
            ["bytes", 1 << 20]
        ]),
        "{seen}"
    );
    assert_eq!(seen["close_code"], 1000, "{seen}");
    // The server answers with the code alone (RFC 6455 §5.5.1 asks it to echo the code).
    assert_eq!(seen["close_reason"], "", "{seen}");
}

#[test]
#[ignore = "needs curl: bash .ci/run installs it"]
fn curl_over_https_negotiates_http_1_1_and_plain_http_gets_the_hint() {
    tools::curl();
    let dir = TempDir::new();
    let cert = TestCert::new();
    let (echo, cert_path) = Echo::with_files(&dir, &cert);
    let cacert = cert_path.to_str().unwrap();
    let body = dir.path("body");
    let body_arg = body.to_str().unwrap();

    // GET / with curl's defaults (it offers h2 and http/1.1): the page, over HTTP/1.1.
    let (out, err) = curl_ok(&[
        "--verbose",
        "--cacert",
        cacert,
        "--output",
        body_arg,
        "--write-out",
        "%{http_code} %{http_version} %{content_type}",
        &echo.https("/"),
    ]);
    assert_eq!(out, "200 1.1 text/html; charset=utf-8");
    assert_eq!(std::fs::read_to_string(&body).unwrap(), PAGE);
    assert!(err.contains("* ALPN: offers h2,http/1.1\n"), "{err}");
    assert!(err.contains("* ALPN: server accepted http/1.1\n"), "{err}");
    assert!(err.contains("SSL connection using TLSv1.3"), "{err}");

    // Asking for HTTP/2 outright still gets HTTP/1.1, the one protocol the server names.
    let (out, err) = curl_ok(&[
        "--verbose",
        "--http2",
        "--cacert",
        cacert,
        "--write-out",
        "\n%{http_code} %{http_version}",
        &echo.https("/healthz"),
    ]);
    assert_eq!(out, "ok\n\n200 1.1");
    assert!(err.contains("* ALPN: server accepted http/1.1\n"), "{err}");
    // Only http/1.1 offered: the same.
    let (out, err) = curl_ok(&[
        "--verbose",
        "--http1.1",
        "--cacert",
        cacert,
        "--write-out",
        "%{http_code} %{http_version}",
        "--output",
        body_arg,
        &echo.https("/metrics"),
    ]);
    assert_eq!(out, "200 1.1");
    assert!(err.contains("* ALPN: offers http/1.1\n"), "{err}");
    assert!(err.contains("* ALPN: server accepted http/1.1\n"), "{err}");
    let metrics = std::fs::read_to_string(&body).unwrap();
    let handshakes = metric(&metrics, "wsreactor_tls_handshakes_total");
    // Three curl connections so far, the third of which is asking.
    assert_eq!(handshakes, 3.0, "{metrics}");

    // Without the certificate to trust, curl refuses (60: the peer's certificate).
    let refused = curl(&[&echo.https("/healthz")]);
    assert_eq!(refused.status.code(), Some(60), "{refused:?}");

    // Plain http:// on the TLS port: the plaintext 400, exactly.
    let (out, _) = curl_ok(&[
        "--include",
        &format!("http://127.0.0.1:{}/", echo.addr.port()),
    ]);
    assert_eq!(
        out,
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{PLAINTEXT_HINT}",
            PLAINTEXT_HINT.len()
        )
    );
    let (metrics, _) = curl_ok(&["--cacert", cacert, &echo.https("/metrics")]);
    assert_eq!(
        metric(&metrics, "wsreactor_tls_plaintext_refused_total"),
        1.0
    );
    assert_eq!(metric(&metrics, "wsreactor_tls_handshakes_total"), 4.0);
}

/// The value of the metric `name` (no labels) in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number"))
}

#[test]
#[ignore = "needs chromium: bash .ci/run installs it"]
fn chromium_loads_the_page_over_https_and_it_echoes_over_wss() {
    let chromium = tools::chromium();
    let dir = TempDir::new();
    let echo = Echo::start(&dir, &["--tls-self-signed"]);
    let browser = Browser::launch_with(&chromium, &["--ignore-certificate-errors"]);
    let mut page = browser.open_page();
    page.call("Page.enable", json!({}));
    let url = echo.https("/");
    let navigated = page.call("Page.navigate", json!({ "url": url }));
    assert!(navigated.get("errorText").is_none(), "{navigated}");
    let log = |page: &mut common::browser::Page| {
        page.text(
            "document.getElementById('log') ? document.getElementById('log').textContent : ''",
        )
    };
    poll_until("the page's WebSocket opened", || {
        (log(&mut page) == "open\n").then_some(())
    });
    assert_eq!(page.text("location.href"), url);
    assert_eq!(page.text("document.title"), "wsreactor echo");
    assert_eq!(page.text("ws.url"), echo.wss());
    // Chromium offers h2 and http/1.1; the server names http/1.1 and the page came over it.
    assert_eq!(
        page.text("performance.getEntriesByType('navigation')[0].nextHopProtocol"),
        "http/1.1"
    );
    page.evaluate(
        "document.getElementById('m').value = 'hello over wss';
         document.getElementById('f').requestSubmit(); true",
    );
    poll_until("the page shows the echo", || {
        log(&mut page).contains("< ").then_some(())
    });
    assert_eq!(log(&mut page), "open\n> hello over wss\n< hello over wss\n");
    if let Ok(path) = std::env::var("WSREACTOR_SCREENSHOT") {
        page.screenshot(Path::new(&path));
    }
    // Close from the page: the server answers 1000 (the code alone) and the page says so.
    page.evaluate("ws.close(1000, 'bye'); true");
    poll_until("the page shows the close", || {
        log(&mut page).contains("closed").then_some(())
    });
    assert_eq!(
        log(&mut page),
        "open\n> hello over wss\n< hello over wss\nclosed 1000 \n"
    );
    drop(page);
    drop(browser);
}

/// Starts the echo with `--tls-self-signed` and checks what it printed and wrote: the line
/// naming the PEM, which holds the certificate alone. Returns the echo and the PEM's path.
fn self_signed_echo(dir: &TempDir) -> (Echo, PathBuf) {
    let echo = Echo::start(dir, &["--tls-self-signed"]);
    let pem = dir.path(&format!("wsreactor-echo-{}.pem", echo.pid()));
    assert_eq!(
        echo.printed[0],
        format!(
            "self-signed certificate for localhost in {} (trust it, or accept the warning)",
            pem.display()
        )
    );
    assert_eq!(echo.printed.len(), 2, "{:?}", echo.printed);
    let text = std::fs::read_to_string(&pem).expect("the PEM it named");
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"), "{text}");
    assert_eq!(
        text.matches("-----BEGIN ").count(),
        1,
        "one certificate: {text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "the key stays in memory");
    (echo, pem)
}

/// The rustls error of a handshake with `addr` for the server name `name`.
fn handshake_error(addr: SocketAddr, name: &str, config: Arc<ClientConfig>) -> rustls::Error {
    let server_name = ServerName::try_from(name.to_owned()).expect("server name");
    let mut conn = ClientConnection::new(config, server_name).expect("client");
    let mut sock = common::raw(addr);
    while conn.is_handshaking() {
        if let Err(err) = conn.complete_io(&mut sock) {
            let inner = err.into_inner().expect("an error from rustls");
            return *inner.downcast::<rustls::Error>().expect("a rustls::Error");
        }
    }
    panic!("the handshake for {name} succeeded");
}

#[test]
fn the_self_signed_pem_is_printed_verifies_a_connection_and_is_removed_at_exit() {
    let dir = TempDir::new();
    let (echo, pem) = self_signed_echo(&dir);
    let der = CertificateDer::from_pem_file(&pem).expect("the PEM's certificate");
    let trusting = client_config(&[&der]);
    // By name (localhost) and by IP address, each echoing over wss://.
    for name in ["localhost", "127.0.0.1"] {
        let stream = tls_connect(echo.addr, name, Arc::clone(&trusting));
        assert_eq!(peer_leaf(&stream), der);
    }
    echo_text(&mut wss(echo.addr, Arc::clone(&trusting)), "trusted");
    // Another name is refused, as is no trust at all.
    match handshake_error(echo.addr, "other.test", Arc::clone(&trusting)) {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected,
            ..
        }) => assert_eq!(expected, ServerName::try_from("other.test").unwrap()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        handshake_error(echo.addr, "localhost", client_config(&[])),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );

    // SIGTERM: a graceful exit, and the PEM it wrote is gone with it.
    let mut echo = echo;
    assert_eq!(unsafe { libc::kill(echo.pid(), libc::SIGTERM) }, 0);
    let status = poll_until("the echo exits", || {
        echo.child.try_wait().expect("try_wait")
    });
    assert!(status.success(), "{status:?}");
    assert!(!pem.exists(), "{} left behind", pem.display());
}

#[test]
#[ignore = "needs curl: bash .ci/run installs it"]
fn curl_trusts_the_self_signed_pem_by_name_and_address() {
    tools::curl();
    let dir = TempDir::new();
    let (echo, pem) = self_signed_echo(&dir);
    let cacert = pem.to_str().unwrap();
    let port = echo.addr.port();
    // By name (localhost, pinned to the address it listens on) and by IP address.
    let resolve = format!("localhost:{port}:127.0.0.1");
    let (out, _) = curl_ok(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve,
        "--write-out",
        "%{http_code}",
        &format!("https://localhost:{port}/healthz"),
    ]);
    assert_eq!(out, "ok\n200");
    let (out, _) = curl_ok(&["--cacert", cacert, &echo.https("/healthz")]);
    assert_eq!(out, "ok\n");
    // Another name is refused, as is no trust at all (curl exits 60 for both: the peer's
    // certificate did not verify, its names matching none asked for in the first case).
    let other = format!("other.test:{port}:127.0.0.1");
    let wrong_name = curl(&[
        "--cacert",
        cacert,
        "--resolve",
        &other,
        &format!("https://other.test:{port}/healthz"),
    ]);
    assert_eq!(wrong_name.status.code(), Some(60), "{wrong_name:?}");
    let untrusted = curl(&[&echo.https("/healthz")]);
    assert_eq!(untrusted.status.code(), Some(60), "{untrusted:?}");
}

/// A `wss://` client over a rustls connection.
fn wss(addr: SocketAddr, config: Arc<ClientConfig>) -> tungstenite::WebSocket<TlsClient> {
    let stream = tls_connect(addr, "127.0.0.1", config);
    let (client, response) =
        tungstenite::client(format!("wss://127.0.0.1:{}/ws", addr.port()), stream)
            .expect("websocket handshake over TLS");
    assert_eq!(response.status(), 101);
    client
}

/// Whether process `pid` catches `signal` (its `SigCgt` mask in /proc).
fn catches(pid: i32, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

fn sighup(echo: &Echo) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(echo.pid(), libc::SIGHUP) }, 0);
}

/// Echoes `text` on a tungstenite client.
fn echo_text(client: &mut tungstenite::WebSocket<TlsClient>, text: &str) {
    client.send(TMessage::text(text)).unwrap();
    assert_eq!(client.read().unwrap(), TMessage::text(text));
}

#[test]
fn sighup_rotates_the_certificate_files_for_new_connections_while_old_ones_go_on() {
    let dir = TempDir::new();
    let (first, second) = (TestCert::new(), TestCert::new());
    let (cert_path, key_path) = first.write(&dir);
    let mut echo = Echo::start(
        &dir,
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    // The handler is in place before the address is printed (it was once installed after,
    // and a SIGHUP sent at once killed the echo).
    assert!(catches(echo.pid(), libc::SIGHUP), "no SIGHUP handler yet");
    let trust_both = client_config(&[&first.der, &second.der]);
    let mut old = wss(echo.addr, Arc::clone(&trust_both));
    assert_eq!(peer_leaf(old.get_ref()), first.der);
    echo_text(&mut old, "before the rotation");

    // A renewal: the same files, new contents, then SIGHUP.
    second.write(&dir);
    sighup(&echo);
    poll_until("a new connection is shown the second certificate", || {
        let probe = tls_connect(echo.addr, "127.0.0.1", Arc::clone(&trust_both));
        (peer_leaf(&probe) == second.der).then_some(())
    });
    let mut new = wss(echo.addr, client_config(&[&second.der]));
    echo_text(&mut new, "after the rotation");
    // The connection from before goes on, with the first certificate.
    echo_text(&mut old, "still the first certificate");
    assert_eq!(peer_leaf(old.get_ref()), first.der);
    // It says so in its log (just after it swaps the certificate: wait for the line).
    let reloaded = format!(
        "SIGHUP: {} reloaded for new connections",
        cert_path.display()
    );
    poll_until("the echo logs the reload", || {
        echo.log_text().contains(&reloaded).then_some(())
    });
    let log = echo.log_text();
    assert_eq!(log.matches(&reloaded).count(), 1, "{log}");

    // A file that does not load keeps the certificate in use.
    std::fs::write(&cert_path, "not a certificate\n").unwrap();
    sighup(&echo);
    poll_until("the echo reports the bad file", || {
        echo.log_text()
            .contains("keeping the certificate in use")
            .then_some(())
    });
    let probe = tls_connect(echo.addr, "127.0.0.1", Arc::clone(&trust_both));
    assert_eq!(peer_leaf(&probe), second.der);
    echo_text(&mut old, "after a failed reload");
    echo_text(&mut new, "after a failed reload");

    for mut client in [old, new] {
        let frame = tungstenite::protocol::CloseFrame {
            code: TCloseCode::Normal,
            reason: "done".into(),
        };
        client.close(Some(frame)).unwrap();
        let code = loop {
            match client.read() {
                Ok(TMessage::Close(frame)) => break frame.map(|f| f.code),
                Ok(_) => continue,
                Err(err) => panic!("before the close frame: {err}"),
            }
        };
        assert_eq!(code, Some(TCloseCode::Normal));
    }
    assert!(
        echo.child_running(),
        "the echo is still running after both SIGHUPs"
    );
}
