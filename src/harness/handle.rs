//! What a `ServerHandle` (or another loop) sends the loop, as commands on its queue: pushes,
//! closes, broadcasts and publications, each drained as the event loop drains its queue.

use crate::dispatch::{Command, Push};
use crate::harness::Harness;
use crate::topic::Topic;
use crate::ws::{CloseCode, Message, OpCode, encode_frame, encode_shared_frame};

/// One command a `ServerHandle` sends, for [`Harness::drain_commands`].
#[derive(Debug, Clone, Copy)]
pub enum Sent<'a> {
    /// `publish(topic, text)`.
    Publish(&'a str, &'a str),
    /// `broadcast(text)`.
    Broadcast(&'a str),
    /// `send(peer's connection, text)`.
    Push(usize, &'a str),
}

impl Harness {
    /// Commands from handles, in this order, all drained from the command queue in one turn.
    pub fn drain_commands(&mut self, sent: &[Sent<'_>]) {
        for &one in sent {
            let command = match one {
                Sent::Publish(topic, text) => {
                    let Ok(topic) = Topic::new(topic) else {
                        continue; // refused by the handle before it reaches a loop
                    };
                    let frame = encode_shared_frame(OpCode::Text, text.as_bytes());
                    Command::Publish { topic, frame }
                }
                Sent::Broadcast(text) => {
                    let bytes = encode_shared_frame(OpCode::Text, text.as_bytes());
                    Command::Broadcast { bytes }
                }
                Sent::Push(peer, text) => {
                    let mut bytes = Vec::new();
                    encode_frame(&mut bytes, OpCode::Text, text.as_bytes());
                    let conn = self.peers[peer].id;
                    let push = Push::Send(bytes);
                    Command::Push { conn, push }
                }
            };
            self.table.command(command, self.now);
        }
        self.table.commands_done(self.now);
        self.turn();
    }

    /// A push from a `ServerHandle` to peer `peer`'s connection.
    pub fn push(&mut self, peer: usize, text: &str) {
        let mut bytes = Vec::new();
        let message = Message::from(text);
        encode_frame(&mut bytes, message.opcode(), message.as_bytes());
        let conn = self.peers[peer].id;
        let push = Push::Send(bytes);
        self.table.command(Command::Push { conn, push }, self.now);
        self.table.commands_done(self.now);
        self.turn();
    }

    /// A broadcast from a `ServerHandle`.
    pub fn broadcast(&mut self, text: &str) {
        let mut bytes = Vec::new();
        let message = Message::from(text);
        encode_frame(&mut bytes, message.opcode(), message.as_bytes());
        let bytes = bytes.into();
        self.table.command(Command::Broadcast { bytes }, self.now);
        self.table.commands_done(self.now);
        self.turn();
    }

    /// A publication from a `ServerHandle` (or forwarded by another loop) to `topic`.
    pub fn publish(&mut self, topic: &str, text: &str) {
        let Ok(topic) = Topic::new(topic) else {
            return; // refused by the handle before it reaches a loop
        };
        let frame = encode_shared_frame(OpCode::Text, text.as_bytes());
        self.table
            .command(Command::Publish { topic, frame }, self.now);
        self.table.commands_done(self.now);
        self.turn();
    }

    /// Publications from a `ServerHandle` to `topic`, then a push of `then` to peer `to`, all
    /// drained from the command queue in one turn.
    pub fn publish_burst_then_push(&mut self, topic: &str, texts: &[&str], to: usize, then: &str) {
        let Ok(topic) = Topic::new(topic) else {
            return;
        };
        for text in texts {
            let frame = encode_shared_frame(OpCode::Text, text.as_bytes());
            let topic = topic.clone();
            self.table
                .command(Command::Publish { topic, frame }, self.now);
        }
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, OpCode::Text, then.as_bytes());
        let conn = self.peers[to].id;
        let push = Push::Send(bytes);
        self.table.command(Command::Push { conn, push }, self.now);
        self.table.commands_done(self.now);
        self.turn();
    }

    /// `ServerHandle::close` for peer `peer`'s connection.
    pub fn close(&mut self, peer: usize, code: CloseCode) {
        let conn = self.peers[peer].id;
        let frame = crate::ws::CloseFrame {
            code,
            reason: "closed by the server".into(),
        };
        let push = Push::Close(frame);
        self.table.command(Command::Push { conn, push }, self.now);
        self.table.commands_done(self.now);
        self.turn();
    }
}
