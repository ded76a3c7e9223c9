//! The echo example's live loop dashboard (`GET /debug`) in a real browser: headless Chromium,
//! driven through its DevTools protocol, loads the page while clients echo, and the numbers on
//! the page move — messages per second above zero, the open-connection count right, the
//! message counter growing from one sample to the next.
//!
//! Needs Debian's `chromium`, so the test is `#[ignore]`d: `bash .ci/run` installs it and runs
//! the test with `--include-ignored`, where a missing browser fails it (tests/common/tools.rs).
//! `WSREACTOR_DASHBOARD_SCREENSHOT=out.png` also saves a screenshot of the page.

#[path = "../examples/echo/main.rs"]
#[allow(dead_code)]
mod echo;

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::browser::Browser;
use serde_json::json;
use wsreactor::Server;

const CLIENTS: usize = 5;

#[test]
#[ignore = "needs chromium: bash .ci/run installs it"]
fn the_dashboard_shows_the_loop_moving_under_traffic() {
    let chromium = common::tools::chromium();
    let mut config = echo::flags::parse_config(&[]).expect("the echo's defaults");
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.workers = 2;
    config.event_loops = 1;
    let server = Server::builder()
        .config(config.clone())
        .build(echo::Echo::new(&config))
        .expect("server starts");
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = start_traffic(addr, Arc::clone(&stop));

    let browser = Browser::launch(&chromium);
    let mut page = browser.open_page();
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://{addr}/debug") }),
    );

    // Two samples in, then the next two: the counters must have moved between them.
    let first = page.wait_for_samples(2);
    let first_total =
        page.number("document.getElementById('value-messages_received_total').textContent");
    let later = page.wait_for_samples(first + 2);
    assert!(later >= first + 2);
    let later_total =
        page.number("document.getElementById('value-messages_received_total').textContent");
    assert!(
        later_total > first_total,
        "the message counter moved: {first_total} -> {later_total}"
    );
    let rate = page.number("document.getElementById('cur-messages-0').textContent");
    assert!(rate > 0.0, "messages per second shown: {rate}");
    let open = page.number("document.getElementById('cur-phases-2').textContent");
    assert_eq!(open, CLIENTS as f64, "open WebSockets by phase");
    // The handlers' timers and the deferred completions have their charts and their rows.
    for id in [
        "cur-timers-1",
        "cur-deferred-0",
        "cur-deferred-3",
        "cur-deferred-4",
        "cur-deferred-5",
    ] {
        let shown = page.number(&format!("document.getElementById('{id}').textContent"));
        assert_eq!(
            shown, 0.0,
            "{id}: the echo sets no timer and defers nothing"
        );
    }
    for name in [
        "connection_timers",
        "connection_timers_fired_total",
        "deferred_calls_total",
        "deferred_expired_total",
        "deferred_abandoned_total",
        "deferred_late_total",
        "unordered_calls_total",
        "unordered_outstanding",
    ] {
        let row = format!("document.getElementById('value-{name}').textContent");
        assert_eq!(page.number(&row), 0.0, "{name} in the table");
    }
    let status = page.text("document.getElementById('status').textContent");
    assert!(status.contains("updated"), "{status}");
    if let Ok(path) = std::env::var("WSREACTOR_DASHBOARD_SCREENSHOT") {
        page.screenshot(Path::new(&path));
    }

    stop.store(true, Ordering::Relaxed);
    for client in traffic {
        client.join().expect("a traffic client");
    }
    drop(page);
    drop(browser);
    server.shutdown().expect("clean shutdown");
}

/// Clients that echo small messages until `stop`.
fn start_traffic(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|n| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut client = common::connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    let text = format!("client {n}");
                    client
                        .send(tungstenite::Message::text(text.clone()))
                        .unwrap();
                    assert_eq!(client.read().unwrap(), tungstenite::Message::text(text));
                    std::thread::sleep(Duration::from_millis(5)); // a steady trickle
                }
                let _ = client.close(None);
                while client.read().is_ok() {}
            })
        })
        .collect()
}
