//! hyper-http: the tokio + hyper HTTP/1.1 peer of the wsreactor benchmark's
//! `http` scenario (keep-alive `GET /`).
//!
//! It answers `GET /` and `HEAD /` with the very page the echo example serves
//! there (`examples/echo/page.html`, built in with `include_str!`, so the body
//! is the same bytes) and the same `Content-Type: text/html; charset=utf-8`;
//! anything else gets the echo example's `404 Not Found\n` as
//! `text/plain; charset=utf-8`. hyper adds `Content-Length` and `Date`, as the
//! echo example does (hyper with a cached date, wsreactor with its own).
//!
//! tokio's multi-thread runtime with its default settings (one worker per CPU
//! of the affinity mask; `--threads N` to set it) and hyper's
//! `server::conn::http1` with its defaults (keep-alive, pipelined requests
//! answered in order); one task per connection.
//!
//! Accepted sockets get `TCP_NODELAY`, as wsreactor and Go's net package set
//! it on theirs.
//!
//! Usage: `hyper-http --addr 127.0.0.1:PORT [--threads N]`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const USAGE: &str = "usage: hyper-http --addr HOST:PORT [--threads N]";

/// The echo example's `GET /` page, byte for byte.
const PAGE: &str = include_str!("../../../../examples/echo/page.html");
/// The echo example's 404 body (`Response::not_found`).
const NOT_FOUND: &str = "404 Not Found\n";

struct Args {
    addr: SocketAddr,
    threads: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut addr = None;
    let mut threads = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => {
                let v = value()?;
                addr = Some(v.parse().map_err(|e| format!("--addr {v}: {e}"))?);
            }
            "--threads" => {
                let v = value()?;
                let n: usize = v.parse().map_err(|e| format!("--threads {v}: {e}"))?;
                if n == 0 {
                    return Err("--threads must be at least 1".into());
                }
                threads = Some(n);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        addr: addr.ok_or("--addr is required")?,
        threads,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("hyper-http: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.threads {
        builder.worker_threads(n);
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("hyper-http: runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args.addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hyper-http: {}: {err}", args.addr);
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    // A client that goes away mid-request only ends its connection.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(page))
                        .await;
                });
            }
            // E.g. EMFILE: back off briefly instead of spinning.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
}

/// `GET /` and `HEAD /`: the page (hyper sends no body for `HEAD`, `Content-Length` still
/// the page's); anything else: 404.
async fn page(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let get_or_head = matches!(*req.method(), Method::GET | Method::HEAD);
    let (status, content_type, body) = if get_or_head && req.uri().path() == "/" {
        (StatusCode::OK, "text/html; charset=utf-8", PAGE)
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            NOT_FOUND,
        )
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
