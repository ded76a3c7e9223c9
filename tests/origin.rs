//! The origin check of WebSocket upgrades (Cross-Site WebSocket Hijacking), over real sockets:
//! exact `403` responses for what the default refuses, `101` for requests without `Origin`, from
//! the server's own origin or from an allowed one, forwarded hosts only when trusted, the count in
//! `Stats` and Prometheus, and — in headless Chromium — a page of another origin refused while
//! the echo's own page works.
//!
//! The Chromium test needs Debian's `chromium`, so it is `#[ignore]`d: `bash .ci/run` installs
//! it and runs the test with `--include-ignored`, where a missing browser fails it
//! (tests/common/tools.rs).

#[path = "../examples/echo/main.rs"]
#[allow(dead_code)]
mod echo;

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

use common::browser::{Browser, Page};
use common::*;
use serde_json::json;
use wsreactor::{
    Config, Context, Error, ForwardedHost, Handler, OriginPolicy, Request, Server, Upgrade,
    UpgradeOffer, UpgradeOrigin,
};

const TEXT: u8 = 0x1;

/// An upgrade request with this `Host` and these extra header lines (`Origin`, ...).
fn upgrade_from(host: &str, fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut request = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    )
    .into_bytes();
    for (name, value) in fields {
        request.extend_from_slice(name.as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request
}

/// The header lines, readable in a failure message.
fn show(fields: &[(&str, &[u8])]) -> String {
    let lines: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value)))
        .collect();
    lines.join(", ")
}

/// Sends an upgrade request on a new connection; the response head and the open stream.
fn send_upgrade(addr: SocketAddr, host: &str, fields: &[(&str, &[u8])]) -> (String, TcpStream) {
    let mut stream = raw(addr);
    stream.write_all(&upgrade_from(host, fields)).unwrap();
    let head = read_http_head(&mut stream).unwrap();
    (head, stream)
}

/// Asserts the upgrade is accepted (`101`) and the WebSocket echoes.
fn assert_upgrades(addr: SocketAddr, host: &str, fields: &[(&str, &[u8])]) {
    let (head, mut stream) = send_upgrade(addr, host, fields);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "Host {host}, {}: {head}",
        show(fields)
    );
    stream.write_all(&masked(true, TEXT, b"in")).unwrap();
    assert_eq!(
        read_frame(&mut stream).unwrap(),
        (true, TEXT, b"in".to_vec())
    );
}

/// Asserts the upgrade is refused with exactly this `403` and the connection is closed.
fn assert_refused(addr: SocketAddr, host: &str, fields: &[(&str, &[u8])], reason: &str) {
    let mut stream = raw(addr);
    stream.write_all(&upgrade_from(host, fields)).unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    let body = String::from_utf8(body).unwrap();
    let expected_body =
        format!("403 Forbidden: cross-origin WebSocket upgrade refused: {reason}\n");
    assert_eq!(
        without_date(&head),
        format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n",
            expected_body.len()
        ),
        "Host {host}, {}",
        show(fields)
    );
    assert_eq!(body, expected_body, "Host {host}, {}", show(fields));
    assert!(
        reaches_eof(&mut stream),
        "open after the 403: {}",
        show(fields)
    );
}

const NOT_ALLOWED: &str =
    "the Origin is neither this server's own (its Host) nor an allowed origin";
const NULL: &str = "Origin null (a sandboxed or file: page) is not allowed";
const MALFORMED: &str = "the Origin header is not an origin (scheme://host[:port])";
const REPEATED: &str = "more than one Origin header";

#[test]
fn by_default_no_origin_and_the_servers_own_upgrade_and_the_rest_get_403() {
    let mut config = config();
    config.metrics_path = Some("/metrics".into());
    let server = start(config, echo());
    let addr = server.local_addr();
    let port = addr.port();
    let own = format!("127.0.0.1:{port}");
    let o = |text: String| text.into_bytes();

    // Accepted: no Origin (a program, not a browser), and the pages of the Host's origin however
    // the browser writes it: any case, the scheme's default port written or not, IPv6 literals.
    assert_upgrades(addr, &own, &[]);
    assert_upgrades(addr, &own, &[("Origin", &o(format!("http://{own}")))]);
    assert_upgrades(addr, &own, &[("Origin", &o(format!("HTTPS://{own}")))]);
    let named = format!("LocalHost:{port}");
    assert_upgrades(
        addr,
        &named,
        &[("Origin", &o(format!("http://localhost:{port}")))],
    );
    let ipv6 = format!("[::1]:{port}");
    assert_upgrades(
        addr,
        &ipv6,
        &[("Origin", &o(format!("http://[0:0::1]:{port}")))],
    );
    assert_upgrades(
        addr,
        "example.com",
        &[("Origin", b"https://example.com:443")],
    );
    assert_upgrades(addr, "example.com:80", &[("Origin", b"http://example.com")]);
    let accepted = 7;

    // Refused: another host or port, null, what is not an origin, two of them.
    // (Host, header lines, reason)
    type Case<'a> = (&'a str, Vec<(&'a str, Vec<u8>)>, &'a str);
    let refused: &[Case<'_>] = &[
        (
            &own,
            vec![("Origin", o(format!("http://localhost:{port}")))],
            NOT_ALLOWED,
        ),
        (
            &own,
            vec![("Origin", o(format!("http://127.0.0.1:{}", port ^ 1)))],
            NOT_ALLOWED,
        ),
        (
            &own,
            vec![("Origin", b"https://evil.example".to_vec())],
            NOT_ALLOWED,
        ),
        (
            "example.com",
            vec![("Origin", b"https://example.com:8443".to_vec())],
            NOT_ALLOWED,
        ),
        (
            "example.com",
            vec![("Origin", b"http://evil.example.com".to_vec())],
            NOT_ALLOWED,
        ),
        (&own, vec![("Origin", b"null".to_vec())], NULL),
        (
            &own,
            vec![("Origin", o(format!("http://{own}/")))],
            MALFORMED,
        ),
        (&own, vec![("Origin", o(own.clone()))], MALFORMED),
        (
            &own,
            vec![("Origin", b"\xff\xfe garbage".to_vec())],
            MALFORMED,
        ),
        (
            &own,
            vec![
                ("Origin", o(format!("http://{own}"))),
                ("Origin", o(format!("http://{own}"))),
            ],
            REPEATED,
        ),
    ];
    for (host, fields, reason) in refused {
        let fields: Vec<(&str, &[u8])> = fields.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        assert_refused(addr, host, &fields, reason);
    }

    let stats = wait_for_stats(&server.handle(), "every refusal counted", |s| {
        s.origin_refused == refused.len() as u64
    });
    assert_eq!(stats.upgrades, accepted, "{stats:?}");
    // And in Prometheus.
    let mut stream = raw(addr);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (_, body) = read_http_response(&mut stream).unwrap();
    let text = String::from_utf8(body).unwrap();
    let line = format!("\nwsreactor_origin_refused_total {}\n", refused.len());
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains("# TYPE wsreactor_origin_refused_total counter\n"),
        "{text}"
    );
    server.shutdown().unwrap();
}

#[test]
fn an_allow_list_adds_exact_origins_and_subdomains() {
    let mut config = config();
    config.allowed_origins =
        OriginPolicy::allow(["https://app.example.com", "https://*.example.org"]);
    let server = start(config, echo());
    let addr = server.local_addr();
    let host = "api.example.com";
    for allowed in [
        &b"https://api.example.com"[..],
        b"https://app.example.com",
        b"https://APP.example.com:443",
        b"https://a.example.org",
        b"https://a.b.example.org",
    ] {
        assert_upgrades(addr, host, &[("Origin", allowed)]);
    }
    for refused in [
        &b"http://app.example.com"[..],
        b"https://app.example.com:8443",
        b"https://example.org",
        b"https://evil-example.org",
        b"https://example.org.evil",
    ] {
        assert_refused(addr, host, &[("Origin", refused)], NOT_ALLOWED);
    }
    assert_refused(addr, host, &[("Origin", b"null")], NULL);
    server.shutdown().unwrap();
}

#[test]
fn forwarded_hosts_count_only_when_trusted() {
    // Behind a proxy that sends its upstream's address as Host: the page's origin is the
    // proxy's public name, which only the forwarded header carries.
    let origin: (&str, &[u8]) = ("Origin", b"https://app.example.com");
    let xfh: (&str, &[u8]) = ("X-Forwarded-Host", b"app.example.com");
    let forwarded: (&str, &[u8]) = (
        "Forwarded",
        b"for=192.0.2.7;proto=https;host=app.example.com",
    );
    let cases = [
        (ForwardedHost::Ignore, [origin, xfh, forwarded], false),
        (
            ForwardedHost::XForwardedHost,
            [origin, xfh, forwarded],
            true,
        ),
        (ForwardedHost::Forwarded, [origin, xfh, forwarded], true),
        // The trusted header is the only one read.
        (
            ForwardedHost::XForwardedHost,
            [origin, forwarded, forwarded],
            false,
        ),
        (ForwardedHost::Forwarded, [origin, xfh, xfh], false),
    ];
    for (trust, fields, accepted) in cases {
        let mut config = config();
        config.forwarded_host = trust;
        let server = start(config, echo());
        let addr = server.local_addr();
        let upstream = addr.to_string();
        if accepted {
            assert_upgrades(addr, &upstream, &fields);
        } else {
            assert_refused(addr, &upstream, &fields, NOT_ALLOWED);
        }
        // Without the header, Host is what counts.
        assert_upgrades(addr, "app.example.com", &[origin]);
        server.shutdown().unwrap();
    }
}

/// Records what `on_upgrade` was told about each request's origin.
struct Recorder {
    origins: Arc<Mutex<Vec<UpgradeOrigin>>>,
}

impl Handler for Recorder {
    type Session = ();

    fn on_upgrade(&self, _request: &Request, offer: &UpgradeOffer) -> Upgrade {
        self.origins.lock().unwrap().push(offer.origin().clone());
        Upgrade::accept()
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: wsreactor::Message) {
        ctx.send(message);
    }
}

#[test]
fn any_lets_every_origin_through_and_tells_the_handler_which() {
    let origins = Arc::new(Mutex::new(Vec::new()));
    let mut config = config();
    config.allowed_origins = OriginPolicy::Any;
    let recorder = Recorder {
        origins: Arc::clone(&origins),
    };
    let server = start(config, recorder);
    let addr = server.local_addr();
    for origin in [
        &b"http://example.com"[..],
        b"https://evil.example",
        b"null",
        b"junk",
    ] {
        assert_upgrades(addr, "example.com", &[("Origin", origin)]);
    }
    assert_upgrades(addr, "example.com", &[]);
    assert_eq!(
        *origins.lock().unwrap(),
        [
            UpgradeOrigin::SameOrigin("http://example.com".into()),
            UpgradeOrigin::CrossOrigin("https://evil.example".into()),
            UpgradeOrigin::CrossOrigin("null".into()),
            UpgradeOrigin::CrossOrigin("junk".into()),
            UpgradeOrigin::Absent,
        ]
    );
    assert_eq!(server.handle().stats().origin_refused, 0);
    server.shutdown().unwrap();
}

#[test]
fn a_malformed_allowed_origin_stops_the_build() {
    let mut config = config();
    config.allowed_origins = OriginPolicy::allow(["https://app.example.com", "https://*.com"]);
    let err = Server::builder().config(config).build(echo()).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid configuration: allowed_origins: \"https://*.com\": *. must be followed by a \
         domain of at least two labels (letters, digits, '-'), as in https://*.example.com"
    );
}

/// The echo example on a free port, with its flags.
fn echo_server(flags: &[String]) -> Server {
    let mut config: Config = echo::flags::parse_config(flags).expect("the echo's flags");
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.workers = 2;
    config.event_loops = 1;
    Server::builder()
        .config(config.clone())
        .build(echo::Echo::new(&config))
        .expect("server starts")
}

/// Opens `url` in `page` and waits until the echo's page there has its own WebSocket open.
fn open_echo_page(page: &mut Page, url: &str) {
    page.call("Page.enable", json!({}));
    page.call("Page.navigate", json!({ "url": url }));
    poll_until("the echo's page connected", || {
        let log = page.text(
            "document.getElementById('log') ? document.getElementById('log').textContent : ''",
        );
        log.starts_with("open\n").then_some(())
    });
}

/// Runs, in `page`, a script that opens a WebSocket to `url` and sends `hi`: `echo hi` if it
/// came back, `closed CODE` if the connection failed.
fn try_websocket(page: &mut Page, url: &str) -> String {
    let script = format!(
        "new Promise((resolve) => {{
           const ws = new WebSocket({url:?});
           ws.onopen = () => ws.send('hi');
           ws.onmessage = (e) => {{ resolve('echo ' + e.data); ws.close(); }};
           ws.onclose = (e) => resolve('closed ' + e.code);
         }})"
    );
    let result = page.call(
        "Runtime.evaluate",
        json!({ "expression": script, "awaitPromise": true, "returnByValue": true }),
    );
    result["result"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
#[ignore = "needs chromium: bash .ci/run installs it"]
fn chromium_a_page_of_another_origin_is_refused_the_echos_own_page_works() {
    let chromium = tools::chromium();
    // The page's server (another port is another origin), the target with the defaults, and a
    // target that allows the page's origin by flag.
    let site = echo_server(&[]);
    let target = echo_server(&[]);
    let page_origin = format!("http://{}", site.local_addr());
    let allowing = echo_server(&["--allow-origin".into(), page_origin.clone()]);
    let browser = Browser::launch(&chromium);
    let mut page = browser.open_page();

    // The site's own page works: its WebSocket (to its own host and port) is open and echoes.
    open_echo_page(&mut page, &format!("{page_origin}/"));
    page.evaluate(
        "document.getElementById('m').value = 'own page';
         document.getElementById('f').requestSubmit(); true",
    );
    poll_until("the echo's page got its echo", || {
        page.text("document.getElementById('log').textContent")
            .contains("< own page\n")
            .then_some(())
    });

    // From that page, a WebSocket to the target: refused before any handler; the page sees the
    // connection fail (1006), the target counts it.
    let url = format!("ws://{}/ws", target.local_addr());
    assert_eq!(try_websocket(&mut page, &url), "closed 1006");
    let stats = target.handle().stats();
    assert_eq!((stats.origin_refused, stats.upgrades), (1, 0), "{stats:?}");

    // The same page and script against a server that lists the page's origin.
    let url = format!("ws://{}/ws", allowing.local_addr());
    assert_eq!(try_websocket(&mut page, &url), "echo hi");
    let stats = allowing.handle().stats();
    assert_eq!((stats.origin_refused, stats.upgrades), (0, 1), "{stats:?}");

    // The target's own page, under a name rather than an address, works too; from there the
    // address is another origin.
    let port = target.local_addr().port();
    open_echo_page(&mut page, &format!("http://localhost:{port}/"));
    let url = format!("ws://127.0.0.1:{port}/ws");
    assert_eq!(try_websocket(&mut page, &url), "closed 1006");
    let stats = target.handle().stats();
    assert_eq!((stats.origin_refused, stats.upgrades), (2, 1), "{stats:?}");

    drop(page);
    drop(browser);
    for server in [site, target, allowing] {
        server.shutdown().expect("clean shutdown");
    }
}

#[test]
fn malformed_allowed_origins_are_rejected_by_entry() {
    let mut config = Config::default();
    config.allowed_origins = OriginPolicy::allow([
        "https://app.example.com",
        "http://localhost:8080",
        "https://*.example.org",
    ]);
    assert!(config.validate().is_ok());
    let table = [
        ("https://app.example.com/", "no path"),
        ("null", "names no one"),
        ("*", "OriginPolicy::Any"),
        ("https://*.com", "two labels"),
        ("app.example.com", "scheme://host[:port]"),
    ];
    for (entry, says) in table {
        let mut config = Config::default();
        config.allowed_origins = OriginPolicy::allow(["https://ok.example", entry]);
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "invalid configuration: allowed_origins: {entry:?}: "
            )),
            "{err}"
        );
        assert!(err.contains(says), "{err}");
    }
}
