//! Reading the rest of a large payload straight into the message it belongs to.
//!
//! Once a data frame's header has been decoded and part of its payload is still to come, the
//! caller may ask for [`MessageDecoder::payload_space`]: room at the end of the message being
//! assembled, up to the rest of the frame, within the room reserved for it, at most
//! `RESERVE_AHEAD` (64 KiB) a read. Bytes read into it are handed back with
//! [`MessageDecoder::payload_filled`], which unmasks them in place; the next
//! [`decode`](MessageDecoder::decode) call — with no input, if
//! [`MessageDecoder::payload_waiting`] says so — checks their UTF-8 and ends the frame. So a
//! 64 KiB message read this way is copied once, by the kernel, instead of twice.
//!
//! The room lent is initialized memory (no `unsafe`): the assembly buffer's room after the
//! message, zeroed only where that buffer never held a byte — a payload written out earlier and
//! reused holds its old bytes there (`assembly_buffer.rs`). Bytes a read did not bring never
//! join the message: room not filled is simply not lent any more after the next call.

use super::{AssemblyBuffer, MessageDecoder, PendingData, RESERVE_AHEAD};
use crate::ws::frame::apply_mask;

impl MessageDecoder {
    /// Room for the next payload bytes of the data frame in progress, if at least `min` of them
    /// are still to come and no control frame is partial; `None` otherwise (read into a buffer
    /// and [`decode`](Self::decode) it). It lends the room already reserved for the message,
    /// reserving more as [`decode`](Self::decode) would: never past what the frame announced,
    /// and at most `RESERVE_AHEAD` at a time.
    pub fn payload_space(&mut self, min: usize) -> Option<&mut [u8]> {
        self.reclaim_lent();
        let remaining = self.payload_expected(min)?;
        let message = self.state.as_deref_mut()?.message.as_mut()?;
        let frame = message.frame.as_mut()?;
        let data = &mut message.data;
        if data.capacity() - data.len() < min.max(1) {
            // Grown as `continue_frame` grows it: by at most RESERVE_AHEAD past what arrived
            // for the first reserve, then by doubling.
            data.reserve(remaining.min(RESERVE_AHEAD));
        }
        // At most RESERVE_AHEAD a read: the loop's fairness budget counts reads.
        let lend = remaining
            .min(data.capacity() - data.len())
            .min(RESERVE_AHEAD);
        frame.lent = lend;
        Some(data.room(lend))
    }

    /// How many payload bytes of the data frame in progress are still to come, if at least
    /// `min` (and one) are and no control frame is partial: whether
    /// [`payload_space`](Self::payload_space) would lend room.
    pub fn payload_expected(&self, min: usize) -> Option<usize> {
        let state = self.state.as_deref()?;
        if state.control.is_some() {
            return None;
        }
        let frame = state.message.as_ref()?.frame.as_ref()?;
        let remaining = frame.len - frame.received;
        (remaining > 0 && remaining >= min).then_some(remaining)
    }

    /// `n` bytes were read into the room [`payload_space`](Self::payload_space) lent: they are
    /// unmasked and become part of the message; the room not filled is taken back. Returns how
    /// many of them were the room's (at most what it lent: a vectored read puts the rest in the
    /// read buffer).
    pub fn payload_filled(&mut self, n: usize) -> usize {
        let Some((data, frame)) = self.lent_frame() else {
            return 0;
        };
        let filled = data.commit(n.min(frame.lent));
        let n = filled.len();
        apply_mask(filled, frame.mask, frame.received);
        frame.received += n;
        frame.lent = 0;
        frame.unseen |= n > 0;
        n
    }

    /// Payload bytes arrived through [`payload_filled`](Self::payload_filled) that
    /// [`decode`](Self::decode) has not looked at yet: call it, even with no input.
    pub fn payload_waiting(&self) -> bool {
        self.state
            .as_deref()
            .and_then(|state| state.message.as_ref())
            .and_then(|message| message.frame.as_ref())
            .is_some_and(|frame| frame.unseen)
    }

    /// Is room lent by [`payload_space`](Self::payload_space) waiting to be filled?
    pub fn payload_lent(&self) -> bool {
        self.state
            .as_deref()
            .and_then(|state| state.message.as_ref())
            .and_then(|message| message.frame.as_ref())
            .is_some_and(|frame| frame.lent > 0)
    }

    /// Takes back room lent and never filled (the read would have blocked, or failed).
    pub(super) fn reclaim_lent(&mut self) {
        if let Some((_, frame)) = self.lent_frame() {
            frame.lent = 0;
        }
    }

    /// The assembly and its pending frame, if room is lent.
    fn lent_frame(&mut self) -> Option<(&mut AssemblyBuffer, &mut PendingData)> {
        let message = self.state.as_deref_mut()?.message.as_mut()?;
        let frame = message.frame.as_mut().filter(|frame| frame.lent > 0)?;
        Some((&mut message.data, frame))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Decoded, DecoderLimits, MessageDecoder};
    use crate::ws::{Message, WsError};

    /// A masked client frame with `opcode` and `payload`, FIN set.
    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    /// Feeds `wire` to `decoder` as a reader would: the first `first` bytes through `decode`,
    /// the rest into the room it lends, `chunk` bytes per read (a read that brings nothing
    /// every other time). Returns the item decoded.
    fn read_directly(
        decoder: &mut MessageDecoder,
        wire: &[u8],
        first: usize,
        chunk: usize,
    ) -> Result<Option<Decoded>, WsError> {
        read_into(decoder, wire, first, chunk, &mut Vec::with_capacity)
    }

    /// [`read_directly`], the message assembled in a vector from `allocate`.
    fn read_into(
        decoder: &mut MessageDecoder,
        wire: &[u8],
        first: usize,
        chunk: usize,
        allocate: &mut dyn FnMut(usize) -> Vec<u8>,
    ) -> Result<Option<Decoded>, WsError> {
        let limits = DecoderLimits::default();
        let (used, item) = decoder.decode_with(&wire[..first], &limits, allocate)?;
        assert_eq!(
            (used, item),
            (first, None),
            "the header and a part consumed"
        );
        let mut at = first;
        let mut blocked = false;
        while let Some(room) = decoder.payload_space(1) {
            assert!(room.len() <= 64 * 1024, "at most RESERVE_AHEAD a read");
            let n = chunk.min(room.len()).min(wire.len() - at);
            room[..n].copy_from_slice(&wire[at..at + n]);
            assert!(decoder.payload_lent());
            if blocked {
                decoder.payload_filled(0); // WouldBlock: nothing came
            } else {
                decoder.payload_filled(n);
                at += n;
                assert!(decoder.payload_waiting());
                if let (0, Some(item)) = decoder.decode(&[], &limits)? {
                    assert_eq!(at, wire.len(), "the item came with the last byte");
                    return Ok(Some(item));
                }
            }
            assert!(!decoder.payload_lent() && !decoder.payload_waiting());
            blocked = !blocked;
        }
        Ok(None)
    }

    #[test]
    fn a_large_payload_read_straight_into_the_message_is_unmasked_and_whole() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let wire = masked(0x2, &payload);
        for (first, chunk) in [(14, 70_000), (1000, 4093), (16_384, 65_536), (14, 200_000)] {
            let mut decoder = MessageDecoder::new();
            let item = read_directly(&mut decoder, &wire, first, chunk).expect("valid");
            assert_eq!(
                item,
                Some(Decoded::Message(Message::Binary(payload.clone())))
            );
            assert!(decoder.is_idle(), "nothing held after the message");
        }
    }

    /// A vector reused from written payloads lends its old bytes as room: none of them ends
    /// up in the message, whether reads fill the room or stop short of it.
    #[test]
    fn a_message_assembled_in_a_reused_vector_holds_none_of_its_old_bytes() {
        let payload: Vec<u8> = (0..150_000u32).map(|i| (i % 13) as u8).collect();
        let wire = masked(0x2, &payload);
        let mut stale = |capacity: usize| {
            let mut old = Vec::with_capacity(capacity + 5000);
            old.resize(capacity + 5000, 0xee);
            old
        };
        for (first, chunk) in [(14, 70_000), (2000, 4093), (14, 1)] {
            let mut decoder = MessageDecoder::new();
            let item = read_into(&mut decoder, &wire, first, chunk, &mut stale).expect("valid");
            assert_eq!(
                item,
                Some(Decoded::Message(Message::Binary(payload.clone())))
            );
        }
        // A whole message in the input is copied into the reused vector from its start.
        let small = masked(0x1, b"hello");
        let item = MessageDecoder::new()
            .decode_with(&small, &DecoderLimits::default(), &mut stale)
            .expect("valid");
        let hello = Decoded::Message(Message::Text("hello".into()));
        assert_eq!(item, (small.len(), Some(hello)));
    }

    #[test]
    fn text_read_straight_in_is_checked_for_utf8_as_it_arrives() {
        let text = "é".repeat(50_000); // two bytes each: chunks split the characters
        let wire = masked(0x1, text.as_bytes());
        let mut decoder = MessageDecoder::new();
        let item = read_directly(&mut decoder, &wire, 100, 3001).expect("valid");
        assert_eq!(item, Some(Decoded::Message(Message::Text(text.clone()))));

        let mut bad = text.into_bytes();
        bad[60_001] = 0xff;
        let wire = masked(0x1, &bad);
        let mut decoder = MessageDecoder::new();
        let err = read_directly(&mut decoder, &wire, 100, 4096).expect_err("invalid UTF-8");
        assert_eq!(err, WsError::InvalidUtf8);
    }

    #[test]
    fn room_is_lent_only_for_the_rest_of_a_data_frame_and_never_past_it() {
        let limits = DecoderLimits::default();
        let mut decoder = MessageDecoder::new();
        assert!(decoder.payload_space(1).is_none(), "nothing in progress");
        let wire = masked(0x2, &[7; 100_000]);
        decoder
            .decode(&wire[..4], &limits)
            .expect("an incomplete header");
        assert!(decoder.payload_space(1).is_none(), "no header yet");
        decoder
            .decode(&wire[..1014], &limits)
            .expect("header and 1000 bytes");
        assert!(
            decoder.payload_space(100_000).is_none(),
            "under the minimum"
        );
        let room = decoder.payload_space(1).map(|room| room.len());
        assert_eq!(
            room,
            Some(64 * 1024 - 1000),
            "the room reserved: RESERVE_AHEAD"
        );
        // Unfilled room is taken back; what is held is the room reserved, no more.
        decoder.decode(&[], &limits).expect("nothing new");
        assert!(!decoder.payload_lent());
        assert_eq!(decoder.buffered_bytes(), 64 * 1024);

        let ping = masked(0x9, b"ping");
        let mut decoder = MessageDecoder::new();
        decoder.decode(&ping[..7], &limits).expect("a partial ping");
        assert!(
            decoder.payload_space(1).is_none(),
            "control frames are small: no room"
        );
    }
}
