//! Headless Chromium for the browser tests, driven through its DevTools protocol: launch it
//! (with its own profile directory, on a DevTools port it picks), open a tab, send commands,
//! evaluate JavaScript, take screenshots. The browser is killed, by its own PID, when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A number for each browser this process starts, so their profiles never collide.
fn next_profile() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A headless Chromium this test started (and kills, by its own PID, when dropped).
pub struct Browser {
    child: Child,
    profile: PathBuf,
    port: u16,
}

impl Browser {
    pub fn launch(chromium: &Path) -> Browser {
        Browser::launch_with(chromium, &[])
    }

    /// A browser launched with `extra` flags besides the usual ones (e.g.
    /// `--ignore-certificate-errors` for a test's self-signed certificate).
    pub fn launch_with(chromium: &Path, extra: &[&str]) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "wsreactor-browser-{}-{}",
            std::process::id(),
            next_profile()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1400,1100",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes the port it chose to DevToolsActivePort once it listens.
        let file = profile.join("DevToolsActivePort");
        let port = super::poll_until("chromium's DevTools port", || {
            let text = std::fs::read_to_string(&file).ok()?;
            text.lines().next()?.trim().parse::<u16>().ok()
        });
        Browser {
            child,
            profile,
            port,
        }
    }

    /// A new tab, and a DevTools connection to it.
    pub fn open_page(&self) -> Page {
        let body = http(self.port, "PUT", "/json/new?about:blank");
        let target: Value = serde_json::from_str(&body).expect("a JSON target");
        let url = target["webSocketDebuggerUrl"]
            .as_str()
            .expect("a debugger URL");
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(super::DEADLINE)).unwrap();
        let (socket, _) = tungstenite::client(url, stream).expect("DevTools WebSocket");
        Page { socket, next_id: 1 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium's helper processes can still write into the profile for a moment after the
        // browser is gone, and then one removal leaves it behind: remove it until it is gone.
        let end = Instant::now() + super::DEADLINE;
        while std::fs::remove_dir_all(&self.profile).is_err()
            && self.profile.exists()
            && Instant::now() < end
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One plain HTTP/1.1 request to Chromium's DevTools endpoint; returns the body.
fn http(port: u16, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(super::DEADLINE)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut length = None;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).unwrap();
        }
        None => {
            reader.read_to_end(&mut body).unwrap();
        }
    }
    String::from_utf8(body).unwrap()
}

/// A DevTools protocol session with one tab.
pub struct Page {
    socket: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
}

impl Page {
    /// Sends a command and returns its result (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(tungstenite::Message::text(command.to_string()))
            .unwrap();
        loop {
            let message = self.socket.read().expect("a DevTools message");
            let Ok(text) = message.to_text() else {
                continue;
            };
            let value: Value = serde_json::from_str(text).unwrap();
            if value["id"].as_u64() == Some(id) {
                assert!(value.get("error").is_none(), "{method}: {value}");
                return value["result"].clone();
            }
        }
    }

    pub fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        result["result"]["value"].clone()
    }

    pub fn text(&mut self, expression: &str) -> String {
        self.evaluate(expression)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A number the page shows (`1,234` and `12.5k` are read as such).
    pub fn number(&mut self, expression: &str) -> f64 {
        let text = self.text(expression).replace(',', "");
        let (digits, scale) = match text.strip_suffix('k') {
            Some(digits) => (digits, 1e3),
            None => match text.strip_suffix('M') {
                Some(digits) => (digits, 1e6),
                None => (text.as_str(), 1.0),
            },
        };
        digits
            .parse::<f64>()
            .map(|n| n * scale)
            .unwrap_or_else(|_| panic!("not a number: {text:?}"))
    }

    /// Waits until the page has taken at least `n` samples of `/metrics`; returns how many.
    pub fn wait_for_samples(&mut self, n: u64) -> u64 {
        let deadline = Instant::now() + super::DEADLINE;
        loop {
            let samples = self
                .text("document.body ? (document.body.dataset.samples || '0') : '0'")
                .parse::<u64>()
                .unwrap_or(0);
            if samples >= n {
                return samples;
            }
            assert!(
                Instant::now() < deadline,
                "the page took {samples} of {n} samples"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn screenshot(&mut self, path: &Path) {
        let result = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let data = result["data"].as_str().expect("base64 PNG");
        std::fs::write(path, base64_decode(data)).expect("write the screenshot");
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    digits
        .chunks(4)
        .flat_map(|chunk| {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
            let bytes = n.to_be_bytes();
            bytes[1..chunk.len()].to_vec()
        })
        .collect()
}
