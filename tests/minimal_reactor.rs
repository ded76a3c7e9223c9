//! The one-screen reactor of `examples/minimal_reactor.rs` (walked through in
//! docs/netpoller.md) really is a WebSocket echo: a tungstenite client upgrades, gets its text
//! and binary messages back, and completes the close handshake.

#[path = "../examples/minimal_reactor.rs"]
#[allow(dead_code)]
mod minimal_reactor;

use std::net::TcpStream;
use std::time::Duration;

use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn the_minimal_reactor_echoes_and_closes() {
    let listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || minimal_reactor::serve(listener));
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (mut client, response) =
        tungstenite::client(format!("ws://{addr}/ws"), stream).expect("handshake");
    assert_eq!(response.status(), 101);
    client.send(Message::text("hello")).unwrap();
    assert_eq!(client.read().unwrap(), Message::text("hello"));
    let bytes = vec![7u8; 300]; // a 16-bit length
    client.send(Message::binary(bytes.clone())).unwrap();
    assert_eq!(client.read().unwrap(), Message::binary(bytes));
    client
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .unwrap();
    loop {
        match client.read() {
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(frame.code, CloseCode::Normal);
                assert_eq!(frame.reason, "bye");
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(err) => panic!("{err}"),
        }
    }
}
