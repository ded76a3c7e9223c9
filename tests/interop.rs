//! Real clients against the echo example's handler and defaults, with compression on (their
//! default): the Python `websockets` client and headless Chromium both negotiate
//! permessage-deflate, send compressed messages and get their echoes back compressed; so does
//! Node `ws` when it is installed.
//!
//! Each test needs a program from outside Rust, so each is `#[ignore]`d: plain `cargo test`
//! counts them as ignored, `bash .ci/run` installs the clients and runs them with
//! `--include-ignored`, and a test that runs without its client fails saying how to install it
//! (tests/common/tools.rs: the Python comes from `WSREACTOR_PYTHON`, Node's `ws` from
//! `WSREACTOR_NODE_MODULES`, Chromium is Debian's package).

#[path = "../examples/echo/main.rs"]
#[allow(dead_code)]
mod echo;

mod common;

use std::process::Command;

use common::browser::Browser;
use common::tools;
use serde_json::{Value, json};
use wsreactor::Server;

/// The echo example's handler with its own defaults (compression on), on a free port.
/// The echo with its defaults, compressing at `level`: 1, the default (fixed codes), or 2 (codes
/// made for each message): both levels are the library's own encoder, which each client here
/// must read.
fn echo_server(level: u32) -> Server {
    let mut config = echo::flags::parse_config(&[]).expect("the echo's defaults");
    assert!(config.compression, "the echo example compresses by default");
    config.compression_level = level;
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.workers = 2;
    config.event_loops = 1;
    Server::builder()
        .config(config.clone())
        .build(echo::Echo::new(&config))
        .expect("server starts")
}

/// Connects with the `websockets` defaults (permessage-deflate offered), sends text of several
/// sizes and a binary message, checks each echo, and prints what it saw as JSON.
const PYTHON_CLIENT: &str = r#"
import asyncio, json, sys
import websockets

async def main(url):
    seen = {"echoed": 0}
    async with websockets.connect(url, max_size=None) as ws:
        seen["extensions"] = ws.response.headers.get("Sec-WebSocket-Extensions")
        record = '{"id": %d, "user": "ada", "event": "move", "x": %d, "y": %d},'
        big = "".join(record % (i, i * 3 % 101, i * 7 % 53) for i in range(400))
        for message in ["hello", big, big * 10, big.encode(), b""]:
            await ws.send(message)
            echo = await ws.recv()
            assert echo == message, (len(echo), len(message))
            seen["echoed"] += 1
    print(json.dumps(seen))

asyncio.run(main(sys.argv[1]))
"#;

#[test]
#[ignore = "needs a Python with websockets: bash .ci/run installs it"]
fn python_websockets_negotiates_compression_and_round_trips() {
    let python = tools::python_websockets();
    for level in [1, 2] {
        let server = echo_server(level);
        let url = format!("ws://{}/ws", server.local_addr());
        let seen = common::run_python_json(&python, PYTHON_CLIENT, &url);
        assert_eq!(
            seen["extensions"],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(seen["echoed"], 5, "level {level}");
        let stats = server.handle().stats();
        assert_eq!(stats.deflate_upgrades, 1);
        // websockets compresses every message; the echo compresses those of 1 KiB and more.
        assert_eq!(stats.compressed_in, 5);
        assert_eq!(stats.compressed_out, 3, "level {level}");
        server.shutdown().expect("clean shutdown");
    }
}

/// Node `ws` with `perMessageDeflate` (its client default): compressed text and binary, each
/// echo checked; prints what it saw as JSON.
const NODE_CLIENT: &str = r#"
const WebSocket = require("ws");
const ws = new WebSocket(process.argv[1], { perMessageDeflate: true });
const record = (i) => JSON.stringify({ id: i, user: "ada", event: "move", x: (i * 3) % 101 });
const text = Array.from({ length: 300 }, (_, i) => record(i)).join(",");
const messages = [text, Buffer.from(text.repeat(3)), "short"];
const seen = { echoed: 0 };
ws.on("open", () => {
  seen.extensions = ws.extensions;
  ws.send(messages[0]);
});
ws.on("message", (data, isBinary) => {
  const sent = messages[seen.echoed];
  const same = isBinary ? Buffer.compare(data, sent) === 0 : data.toString() === sent;
  if (!same) { console.error("echo differs"); process.exit(1); }
  seen.echoed += 1;
  if (seen.echoed < messages.length) ws.send(messages[seen.echoed]);
  else ws.close(1000, "done");
});
ws.on("close", (code) => { seen.code = code; console.log(JSON.stringify(seen)); });
ws.on("error", (err) => { console.error(String(err)); process.exit(1); });
"#;

#[test]
#[ignore = "needs node with the ws package: bash .ci/run installs it"]
fn node_ws_negotiates_compression_and_round_trips() {
    let modules = tools::node_ws();
    for level in [1, 2] {
        let server = echo_server(level);
        let url = format!("ws://{}/ws", server.local_addr());
        let output = Command::new("node")
            .args(["-e", NODE_CLIENT, &url])
            .env("NODE_PATH", &modules)
            .output()
            .expect("node runs");
        assert!(
            output.status.success(),
            "level {level}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seen: Value = serde_json::from_slice(&output.stdout).expect("the client's JSON");
        // `ws.extensions` names what was agreed.
        assert_eq!(seen["extensions"], "permessage-deflate", "{seen}");
        assert_eq!(seen["echoed"], 3, "level {level}: {seen}");
        assert_eq!(seen["code"], 1000, "{seen}");
        let stats = server.handle().stats();
        assert_eq!(stats.deflate_upgrades, 1);
        // Node compresses messages of 1 KiB and more (its threshold), like the echo.
        assert_eq!(stats.compressed_in, 2, "{stats:?}");
        assert_eq!(stats.compressed_out, 2, "level {level}: {stats:?}");
        server.shutdown().expect("clean shutdown");
    }
}

/// Runs in the page: opens a WebSocket to the echo, sends a large text and a binary message,
/// and resolves with what the browser saw.
const BROWSER_CLIENT: &str = r#"
new Promise((resolve) => {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  const text = Array.from({ length: 300 }, (_, i) =>
    JSON.stringify({ id: i, user: "ada", event: "move", x: (i * 3) % 101 })).join(",");
  const binary = new TextEncoder().encode(text.repeat(3));
  const seen = { extensions: null, text: false, binary: false };
  ws.onopen = () => { seen.extensions = ws.extensions; ws.send(text); };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") {
      seen.text = event.data === text;
      ws.send(binary);
    } else {
      const echoed = new Uint8Array(event.data);
      seen.binary = echoed.length === binary.length && echoed.every((b, i) => b === binary[i]);
      ws.close(1000, "done");
    }
  };
  ws.onclose = (event) => { seen.code = event.code; resolve(seen); };
  ws.onerror = () => { seen.error = true; };
})
"#;

#[test]
#[ignore = "needs chromium: bash .ci/run installs it"]
fn chromium_negotiates_compression_and_round_trips() {
    let chromium = tools::chromium();
    for level in [1, 2] {
        let server = echo_server(level);
        let addr = server.local_addr();
        let browser = Browser::launch(&chromium);
        let mut page = browser.open_page();
        page.call("Page.enable", json!({}));
        page.call("Page.navigate", json!({ "url": format!("http://{addr}/") }));
        // The page is served by the echo; wait until it is the document, then run the client.
        common::poll_until("the echo's page", || {
            let href = page.text("location.href");
            href.starts_with(&format!("http://{addr}/")).then_some(())
        });
        let result = page.call(
            "Runtime.evaluate",
            json!({ "expression": BROWSER_CLIENT, "awaitPromise": true, "returnByValue": true }),
        );
        let seen = &result["result"]["value"];
        assert_eq!(
            seen["extensions"],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "level {level}: {seen}"
        );
        assert_eq!(seen["text"], true, "level {level}: {seen}");
        assert_eq!(seen["binary"], true, "level {level}: {seen}");
        assert_eq!(seen["code"], 1000, "{seen}");
        let stats = server.handle().stats();
        assert!(stats.deflate_upgrades >= 1, "{stats:?}");
        assert!(stats.compressed_in >= 2, "{stats:?}");
        assert!(stats.compressed_out >= 2, "{stats:?}");
        drop(page);
        drop(browser);
        server.shutdown().expect("clean shutdown");
    }
}
