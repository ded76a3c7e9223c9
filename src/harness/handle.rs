//! What a `ServerHandle` (or another loop) sends the loop, as commands on its queue: pushes,
//! closes, broadcasts and publications, each drained as the event loop drains its queue.

use crate::dispatch::{Command, Push};
use crate::harness::Harness;
use crate::topic::Topic;
use crate::ws::{CloseCode, OpCode, encode_frame, encode_shared_frame};

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
    /// Commands from handles, in this order, all drained from the command queue in one turn
    /// (none if every one was refused before it reached the loop).
    pub fn drain_commands(&mut self, sent: &[Sent<'_>]) {
        let mut drained = false;
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
            drained = true;
        }
        if drained {
            self.table.commands_done(self.now);
            self.turn();
        }
    }

    /// A push from a `ServerHandle` to peer `peer`'s connection.
    pub fn push(&mut self, peer: usize, text: &str) {
        self.drain_commands(&[Sent::Push(peer, text)]);
    }

    /// A broadcast from a `ServerHandle`.
    pub fn broadcast(&mut self, text: &str) {
        self.drain_commands(&[Sent::Broadcast(text)]);
    }

    /// A publication from a `ServerHandle` (or forwarded by another loop) to `topic`.
    pub fn publish(&mut self, topic: &str, text: &str) {
        self.drain_commands(&[Sent::Publish(topic, text)]);
    }

    /// Publications from a `ServerHandle` to `topic`, then a push of `then` to peer `to`, all
    /// drained from the command queue in one turn.
    pub fn publish_burst_then_push(&mut self, topic: &str, texts: &[&str], to: usize, then: &str) {
        if Topic::new(topic).is_err() {
            return;
        }
        let mut sent: Vec<Sent<'_>> = texts
            .iter()
            .map(|text| Sent::Publish(topic, text))
            .collect();
        sent.push(Sent::Push(to, then));
        self.drain_commands(&sent);
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
