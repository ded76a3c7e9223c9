//! fastwebsockets-echo: the fastwebsockets WebSocket echo peer of the
//! wsreactor benchmark, as the crate's own `examples/echo_server.rs` is.
//!
//! tokio's current-thread runtime (the example's; `--threads N` for the
//! multi-thread runtime with N workers instead); each accepted socket is served
//! by hyper's HTTP/1.1 server with upgrades, and the service answers the
//! upgrade with `fastwebsockets::upgrade::upgrade`. The WebSocket then runs in
//! a task of its own inside `tokio::task::unconstrained`, as in the example: a
//! `FragmentCollector` reads whole messages and `write_frame` sends each text
//! or binary message back as it came. fastwebsockets answers pings and close
//! frames itself (`auto_pong`, `auto_close`); a close ends the task. A request
//! that is not an upgrade gets no answer: the service fails and hyper drops
//! the connection.
//!
//! Usage: `fastwebsockets-echo --addr 127.0.0.1:PORT [--threads N]
//! [--tls-cert PEM --tls-key PEM]`
//!
//! * `--tls-cert PEM --tls-key PEM`: `wss://`. Each accepted socket goes
//!   through tokio-rustls's `TlsAcceptor` (rustls 0.23, `aws-lc-rs` provider,
//!   rustls's default `ServerConfig`, as tokio-echo's) before the same hyper
//!   server; as in the crate's `examples/tls_server.rs`, `writev` is off over
//!   TLS (the TLS stream has no vectored write, so each frame is one write).
//!
//! Accepted sockets get `TCP_NODELAY`, as wsreactor, tokio-echo and Go's net
//! package set it on theirs, so that Nagle's algorithm is not what the
//! comparison measures (the example leaves it off).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use fastwebsockets::upgrade::{UpgradeFut, upgrade};
use fastwebsockets::{FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

const USAGE: &str =
    "usage: fastwebsockets-echo --addr HOST:PORT [--threads N] [--tls-cert PEM --tls-key PEM]";

struct Args {
    addr: SocketAddr,
    threads: Option<usize>,
    tls: Option<(String, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut addr = None;
    let mut threads = None;
    let mut tls_cert = None;
    let mut tls_key = None;
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
            "--tls-cert" => tls_cert = Some(value()?),
            "--tls-key" => tls_key = Some(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(Args {
        addr: addr.ok_or("--addr is required")?,
        threads,
        tls,
    })
}

/// The TLS acceptor of `--tls-cert`/`--tls-key`: rustls's default server config with the
/// `aws-lc-rs` provider, as tokio-echo's and the echo example's.
fn acceptor(cert: &str, key: &str) -> Result<TlsAcceptor, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {cert}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("--tls-cert {cert}: no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--tls-key {key}: {e}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS config: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("fastwebsockets-echo: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = match args.threads {
        None => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("fastwebsockets-echo: runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let tls = match args.tls.as_ref().map(|(c, k)| acceptor(c, k)).transpose() {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("fastwebsockets-echo: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(args.addr, tls)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fastwebsockets-echo: {}: {err}", args.addr);
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr, tls: Option<TlsAcceptor>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                match &tls {
                    None => tokio::spawn(http(stream, true)),
                    Some(tls) => tokio::spawn(tls_http(tls.clone(), stream)),
                };
            }
            // E.g. EMFILE: back off briefly instead of spinning.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
}

async fn tls_http(tls: TlsAcceptor, stream: TcpStream) {
    if let Ok(stream) = tls.accept(stream).await {
        http(stream, false).await;
    }
}

/// hyper's HTTP/1.1 server on one connection, with upgrades. Its error (a request that was
/// not an upgrade, a peer that went away) only ends the connection.
async fn http<S>(stream: S, writev: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| upgrade_to_echo(req, writev));
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

async fn upgrade_to_echo(
    mut req: Request<Incoming>,
    writev: bool,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade(&mut req)?;
    tokio::spawn(async move {
        // A peer that goes away without a close handshake ends the echo with an error: not
        // reported, as tokio-echo does not report it (the load generator counts its errors).
        let _ = tokio::task::unconstrained(echo(fut, writev)).await;
    });
    Ok(response)
}

async fn echo(fut: UpgradeFut, writev: bool) -> Result<(), WebSocketError> {
    let mut ws = fut.await?;
    ws.set_writev(writev);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}
