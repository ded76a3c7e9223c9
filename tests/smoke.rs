mod common;

use common::*;
use tungstenite::Message;

#[test]
fn echoes_text_and_binary() {
    let server = start(config(), echo());
    let mut client = connect(server.local_addr());
    client.send(Message::text("hello")).unwrap();
    assert_eq!(client.read().unwrap(), Message::text("hello"));
    client.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(client.read().unwrap(), Message::binary(vec![1u8, 2, 3]));
    client.close(None).unwrap();
    server.shutdown().unwrap();
}
