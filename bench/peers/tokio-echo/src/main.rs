//! tokio-echo: the "what a Rust user picks" WebSocket echo peer for the
//! wsreactor benchmark.
//!
//! tokio's multi-thread runtime with its default settings and
//! tokio-tungstenite's `accept_async` with its default `WebSocketConfig`; each
//! connection is one task doing `ws.next().await` -> `ws.send(msg).await` for
//! text and binary messages (tungstenite answers pings and closes itself).
//! Plain HTTP gets no answer: the handshake fails and the connection is dropped.
//!
//! Usage: `tokio-echo --addr 127.0.0.1:PORT [--threads N] [--read-buffer BYTES]
//! [--tls-cert PEM --tls-key PEM]`
//!
//! * `--threads N`: the runtime's worker threads (default: tokio's default,
//!   one per core).
//! * `--read-buffer BYTES`: set `WebSocketConfig::read_buffer_size` (default:
//!   tungstenite's default, 128 KiB); e.g. 4096 for the ~4 KiB variant.
//!
//! * `--tls-cert PEM --tls-key PEM`: `wss://`. Each accepted socket goes
//!   through tokio-rustls's `TlsAcceptor` (rustls 0.23, `aws-lc-rs` provider,
//!   rustls's default `ServerConfig`: TLS 1.3 and 1.2, key exchange
//!   X25519MLKEM768 first, its default session cache and tickets) before the
//!   same `accept_async`; the echo is the same.
//!   The certificate file may hold a chain (leaf first); the key is PKCS#8,
//!   SEC1 or PKCS#1 PEM.
//!
//! Accepted sockets get `TCP_NODELAY`, as wsreactor and Go's net package set
//! it on theirs, so that Nagle's algorithm is not what the comparison measures.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const USAGE: &str = "usage: tokio-echo --addr HOST:PORT [--threads N] [--read-buffer BYTES] \
                     [--tls-cert PEM --tls-key PEM]";

struct Args {
    addr: SocketAddr,
    threads: Option<usize>,
    read_buffer: Option<usize>,
    tls: Option<(String, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut addr = None;
    let mut threads = None;
    let mut read_buffer = None;
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
            "--read-buffer" => {
                let v = value()?;
                let n: usize = v.parse().map_err(|e| format!("--read-buffer {v}: {e}"))?;
                if n == 0 {
                    return Err("--read-buffer must be at least 1".into());
                }
                read_buffer = Some(n);
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
        read_buffer,
        tls,
    })
}

/// The TLS acceptor of `--tls-cert`/`--tls-key`: rustls's default server config with the
/// `aws-lc-rs` provider, as the echo example's (its key exchange prefers X25519MLKEM768).
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
            eprintln!("tokio-echo: {err}\n{USAGE}");
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
            eprintln!("tokio-echo: runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let config = args
        .read_buffer
        .map(|n| WebSocketConfig::default().read_buffer_size(n));
    let tls = match args.tls.as_ref().map(|(c, k)| acceptor(c, k)).transpose() {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("tokio-echo: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(args.addr, config, tls)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tokio-echo: {}: {err}", args.addr);
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    addr: SocketAddr,
    config: Option<WebSocketConfig>,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                match &tls {
                    None => tokio::spawn(plain_echo(stream, config)),
                    // The TLS handshake runs in the connection's own task, as the WebSocket
                    // handshake does: the accept loop only accepts.
                    Some(tls) => tokio::spawn(tls_echo(tls.clone(), stream, config)),
                };
            }
            // E.g. EMFILE: back off briefly instead of spinning.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
}

async fn plain_echo(stream: TcpStream, config: Option<WebSocketConfig>) {
    let _ = stream.set_nodelay(true);
    echo(stream, config).await;
}

async fn tls_echo(tls: TlsAcceptor, stream: TcpStream, config: Option<WebSocketConfig>) {
    let _ = stream.set_nodelay(true);
    if let Ok(stream) = tls.accept(stream).await {
        echo(stream, config).await;
    }
}

async fn echo<S>(stream: S, config: Option<WebSocketConfig>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ws = match config {
        None => match tokio_tungstenite::accept_async(stream).await {
            Ok(ws) => ws,
            Err(_) => return,
        },
        Some(config) => {
            match tokio_tungstenite::accept_async_with_config(stream, Some(config)).await {
                Ok(ws) => ws,
                Err(_) => return,
            }
        }
    };
    // tokio-tungstenite's own echo example (examples/echo-server.rs): `forward` feeds each
    // message to the sink and flushes only when no more input is ready, so a burst of pipelined
    // messages is answered with one write. (Calling `send` per message instead flushes each one
    // on its own: about 7 µs of server CPU per message here instead of about 1.3.)
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|msg| std::future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
