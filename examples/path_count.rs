//! Which files of `src/` one WebSocket message runs through, counted from a run: the server and a
//! client in one process, built with coverage instrumentation (`scripts/path_count.sh` builds and
//! runs it). After a warm-up (connect, upgrade, one echo), once every thread is idle, the
//! coverage counters are reset; then one text message goes to the echo handler and its echo is
//! read back; the counters are written out and the script lists every file of `src/` whose code
//! ran in between — the event loop's readiness, read and decode, the hand-off to the worker, the
//! handler, the reply and the write, on every thread.
//!
//! ```text
//! scripts/path_count.sh            # worker mode (the default server)
//! scripts/path_count.sh --inline   # the handler on the loop thread
//! scripts/path_count.sh --tls      # worker mode over TLS
//! ```
//!
//! Built without the script's flags (`--cfg wsreactor_path_count` and coverage), it only says so.

#[cfg(wsreactor_path_count)]
mod counted {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::Path;
    use std::time::Duration;

    use wsreactor::{Context, Handler, Message, Server};

    unsafe extern "C" {
        fn __llvm_profile_reset_counters();
        fn __llvm_profile_write_file() -> i32;
    }

    struct Echo;

    impl Handler for Echo {
        type Session = ();

        fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
            ctx.send(message);
        }
    }

    /// What the client side of the run needs: a byte stream to the server.
    trait Wire: Read + Write {}
    impl<T: Read + Write> Wire for T {}

    /// A masked text frame, as a client sends it.
    fn text_frame(text: &str) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x81, 0x80 | text.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        frame
    }

    /// Reads until the echo of `text` (an unmasked text frame) has arrived.
    fn read_echo(wire: &mut dyn Wire, text: &str) {
        let mut expected = vec![0x81, text.len() as u8];
        expected.extend_from_slice(text.as_bytes());
        let mut got = vec![0; expected.len()];
        wire.read_exact(&mut got).expect("echo");
        assert_eq!(got, expected, "the echo");
    }

    /// Upgrades and reads the `101` head.
    fn upgrade(wire: &mut dyn Wire) {
        let request = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
                       Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                       Sec-WebSocket-Version: 13\r\n\r\n";
        wire.write_all(request.as_bytes()).expect("upgrade request");
        let mut head = Vec::new();
        let mut byte = [0];
        while !head.ends_with(b"\r\n\r\n") {
            wire.read_exact(&mut byte).expect("101");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
    }

    /// A self-signed certificate for the server, and a client that trusts it.
    #[cfg(feature = "tls")]
    fn tls_setup() -> (
        wsreactor::tls::TlsConfig,
        Box<dyn FnOnce(TcpStream) -> Box<dyn Wire>>,
    ) {
        use std::sync::Arc;

        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
        let der = CertificateDer::from(made.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        let tls = wsreactor::tls::TlsConfig::from_der(vec![der.clone()], key).expect("TLS");
        let client = move |socket| -> Box<dyn Wire> {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(der).expect("root");
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = ServerName::try_from("localhost").expect("name");
            let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
            Box::new(rustls::StreamOwned::new(conn, socket))
        };
        (tls, Box::new(client))
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let inline = args.iter().any(|a| a == "--inline");
        let tls = args.iter().any(|a| a == "--tls");
        #[allow(unused_mut)]
        let mut builder = Server::builder()
            .addr("127.0.0.1:0".parse().expect("address"))
            .configure(|config| {
                config.event_loops = 1;
                config.workers = 1;
                config.inline_handlers = inline;
            });
        let wrap: Box<dyn FnOnce(TcpStream) -> Box<dyn Wire>> = if tls {
            #[cfg(feature = "tls")]
            {
                let (config, client) = tls_setup();
                builder = builder.tls(config);
                client
            }
            #[cfg(not(feature = "tls"))]
            panic!("--tls needs the `tls` feature")
        } else {
            Box::new(|socket| Box::new(socket))
        };
        let server = builder.build(Echo).expect("server");
        let socket = TcpStream::connect(server.local_addr()).expect("connect");
        socket.set_nodelay(true).expect("nodelay");
        let mut wire = wrap(socket);

        // Warm-up: the upgrade and a first echo, then every thread goes idle.
        upgrade(&mut *wire);
        wire.write_all(&text_frame("warm")).expect("send");
        read_echo(&mut *wire, "warm");
        std::thread::sleep(Duration::from_millis(200));

        // The measured message: from the client's send to its echo, and the end of the step
        // that wrote it.
        unsafe { __llvm_profile_reset_counters() };
        wire.write_all(&text_frame("hi")).expect("send");
        read_echo(&mut *wire, "hi");
        std::thread::sleep(Duration::from_millis(200));
        unsafe { __llvm_profile_write_file() };

        // Keep this profile: the one written at exit would add the shutdown.
        let written = std::env::var("LLVM_PROFILE_FILE").expect("LLVM_PROFILE_FILE");
        let kept = std::env::var("PATH_COUNT_PROFILE").expect("PATH_COUNT_PROFILE");
        std::fs::rename(Path::new(&written), Path::new(&kept)).expect("keep the profile");
        drop(wire);
        server.shutdown().expect("shutdown");
    }
}

fn main() {
    #[cfg(wsreactor_path_count)]
    counted::main();
    #[cfg(not(wsreactor_path_count))]
    eprintln!("path_count counts nothing unless built by scripts/path_count.sh");
}
