//! Streaming decoder for one connection's client→server byte stream: frames in, messages out.
//!
//! The reactor pushes whatever bytes it has read into [`MessageDecoder::decode`], which parses
//! and checks frame headers (module `header`), unmasks payloads ([`apply_mask`]),
//! reassembles fragmented messages, validates UTF-8 incrementally (module `utf8`) and
//! parses close payloads ([`CloseFrame`]). Each call returns how many bytes it consumed and at
//! most one [`Decoded`] item; a rule violation leaves as a [`WsError`].
//!
//! Partial payloads are kept inside the decoder, so the caller only ever keeps back an incomplete
//! frame header (under 14 bytes). When nothing is partial the decoder holds no heap memory.
//! The rest of a large payload can also be read straight into the message it belongs to, with
//! no copy out of a read buffer (`direct.rs`: [`MessageDecoder::payload_space`]).

use std::fmt;

use crate::ws::close::CloseFrame;
use crate::ws::control::{ControlPayload, parse_close};
use crate::ws::deflate::Compressed;
use crate::ws::error::WsError;
use crate::ws::frame::{MAX_CONTROL_PAYLOAD, OpCode, apply_mask};
use crate::ws::header::{FrameHeader, parse_client_header};
use crate::ws::message::Message;
use crate::ws::utf8::Utf8Validator;
use assembly_buffer::AssemblyBuffer;

/// Most bytes reserved up front for a frame whose payload has not arrived yet. The buffer then
/// grows with the bytes that actually arrive, so a peer that announces a large frame and sends
/// it slowly (or never) cannot make the server allocate memory it did not send.
const RESERVE_AHEAD: usize = 64 * 1024;

/// One item decoded from the client's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete (reassembled, validated, unmasked) data message.
    Message(Message),
    /// A complete data message that was sent compressed (reassembled and unmasked, not yet
    /// inflated nor checked for UTF-8): only with [`DecoderLimits::deflate`].
    Compressed(Compressed),
    /// A ping; the caller should answer with a pong carrying the same payload (RFC 6455 §5.5.2).
    Ping(ControlPayload),
    /// A pong (solicited or not).
    Pong(ControlPayload),
    /// A close frame: `None` when its payload was empty, else its code and reason.
    Close(Option<CloseFrame>),
}

/// Streaming, push-style decoder for ONE connection's client→server byte stream.
///
/// Idle, it is one pointer wide; the state of a partial frame or fragmented message lives behind
/// a `Box` that is allocated when a frame does not fit in one `decode` call and freed when it
/// completes.
#[derive(Debug, Default)]
pub struct MessageDecoder {
    state: Option<Box<State>>,
}

/// Everything a decoder holds between calls.
#[derive(Debug, Default)]
struct State {
    /// The data message being assembled (fragmented, or one frame whose payload is partial).
    message: Option<Assembly>,
    /// A control frame whose payload is partial. It can only be pending between data frames, so
    /// `message.frame` is `None` whenever this is `Some`.
    control: Option<PendingControl>,
}

/// A data message being assembled.
struct Assembly {
    /// [`OpCode::Text`] or [`OpCode::Binary`].
    opcode: OpCode,
    /// RSV1 was set on the first frame: the payload is deflated.
    compressed: bool,
    /// Unmasked payload received so far, and room after it.
    data: AssemblyBuffer,
    /// UTF-8 progress over `data` (text messages only).
    utf8: Option<Utf8Validator>,
    /// Frames of this message seen so far, including the current one.
    fragments: usize,
    /// The data frame whose payload is being received, if any.
    frame: Option<PendingData>,
}

/// Progress through the payload of a data frame.
#[derive(Debug, Clone, Copy)]
struct PendingData {
    fin: bool,
    mask: [u8; 4],
    received: usize,
    len: usize,
    /// Bytes at the end of the assembly lent to a reader (`direct.rs`) and not filled yet.
    lent: usize,
    /// Payload read straight into the assembly that `continue_frame` has not seen yet (not
    /// checked for UTF-8, the frame's end not acted on).
    unseen: bool,
}

/// A control frame whose payload is being received.
#[derive(Debug, Clone, Copy)]
struct PendingControl {
    opcode: OpCode,
    mask: [u8; 4],
    len: usize,
    payload: ControlPayload,
}

/// What one step of decoding achieved.
enum Step {
    /// An item is complete.
    Item(Decoded),
    /// A frame is complete but produced no item (a non-final fragment): keep going.
    FrameDone,
    /// All input is consumed and the current frame still needs more.
    NeedMore,
}

impl fmt::Debug for Assembly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payload itself can be megabytes: show its size only.
        f.debug_struct("Assembly")
            .field("opcode", &self.opcode)
            .field("compressed", &self.compressed)
            .field("len", &self.data.len())
            .field("utf8", &self.utf8)
            .field("fragments", &self.fragments)
            .field("frame", &self.frame)
            .finish()
    }
}

impl MessageDecoder {
    /// An idle decoder.
    pub fn new() -> Self {
        MessageDecoder::default()
    }

    /// True when no partial frame or message is held (no heap memory retained).
    pub fn is_idle(&self) -> bool {
        self.state.is_none()
    }

    /// Heap bytes the decoder holds for a partial message (the capacity of its assembly
    /// buffer): what the server's memory budget charges to the connection.
    pub fn buffered_bytes(&self) -> usize {
        self.state
            .as_deref()
            .and_then(|state| state.message.as_ref())
            .map_or(0, |message| message.data.capacity())
    }

    /// Consumes bytes from `input` and returns (bytes consumed, maybe one decoded item).
    /// The caller calls it repeatedly, advancing by `consumed`, until it returns (0, None).
    /// Contract: it consumes everything it can: the only bytes it may leave unconsumed are an
    /// incomplete frame header (fewer bytes than that header needs, so < 14 bytes). Partial
    /// payloads (of data AND control frames) are consumed and kept internally, so the caller never
    /// needs a buffer larger than its read buffer. It returns as soon as one item is complete
    /// (so consumed may be < input.len() together with Some(item)).
    ///
    /// After an `Err` the connection must be failed with [`WsError::close_code`]; the decoder's
    /// state is then unspecified (but feeding it more never panics).
    pub fn decode(
        &mut self,
        input: &[u8],
        limits: &DecoderLimits,
    ) -> Result<(usize, Option<Decoded>), WsError> {
        self.decode_with(input, limits, &mut Vec::with_capacity)
    }

    /// [`decode`](Self::decode), taking the buffer a new message is assembled in from
    /// `allocate` (given the capacity wanted): a caller that recycles written payloads hands
    /// one back here instead of the allocator. The vector may hold bytes: they are not the
    /// message's but initialized room, which a read straight into the message reuses instead of
    /// zeroing it ([`payload_space`](Self::payload_space)).
    pub fn decode_with(
        &mut self,
        input: &[u8],
        limits: &DecoderLimits,
        allocate: &mut dyn FnMut(usize) -> Vec<u8>,
    ) -> Result<(usize, Option<Decoded>), WsError> {
        if !self.is_idle() {
            self.reclaim_lent();
        }
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            let (used, step) = if self.frame_pending() {
                self.continue_frame(rest)?
            } else {
                let Some((header, header_len)) = parse_client_header(rest, limits.deflate)? else {
                    return Ok((consumed, None));
                };
                consumed += header_len;
                let payload = rest.get(header_len..).unwrap_or_default();
                self.begin_frame(header, payload, limits, allocate)?
            };
            consumed += used;
            match step {
                Step::Item(item) => return Ok((consumed, Some(item))),
                Step::NeedMore => return Ok((consumed, None)),
                Step::FrameDone => {}
            }
        }
    }

    fn frame_pending(&self) -> bool {
        self.state.as_deref().is_some_and(|state| {
            state.control.is_some()
                || state
                    .message
                    .as_ref()
                    .is_some_and(|message| message.frame.is_some())
        })
    }

    /// Frees the state once nothing is partial any more.
    fn release_if_idle(&mut self) {
        if self
            .state
            .as_deref()
            .is_some_and(|state| state.message.is_none() && state.control.is_none())
        {
            self.state = None;
        }
    }

    /// Handles a freshly parsed header; `payload` is the input after it. Returns the payload
    /// bytes consumed.
    fn begin_frame(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
        limits: &DecoderLimits,
        allocate: &mut dyn FnMut(usize) -> Vec<u8>,
    ) -> Result<(usize, Step), WsError> {
        if header.opcode.is_control() {
            self.begin_control(header, payload)
        } else {
            self.begin_data(header, payload, limits, allocate)
        }
    }

    fn begin_control(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
    ) -> Result<(usize, Step), WsError> {
        // The header parser guarantees payload_len <= 125 for control frames.
        let len = usize::try_from(header.payload_len)
            .ok()
            .filter(|&len| len <= MAX_CONTROL_PAYLOAD)
            .ok_or(WsError::Protocol(
                "control frame payload longer than 125 bytes",
            ))?;
        if let Some(mut bytes) = payload.get(..len).and_then(ControlPayload::new) {
            apply_mask(&mut bytes.bytes[..len], header.mask, 0);
            return Ok((len, Step::Item(control_item(header.opcode, bytes)?)));
        }
        // Control frames MAY be injected in the middle of a fragmented message. (RFC 6455 §5.4)
        // They are kept apart from the message being assembled.
        let state = self.state.get_or_insert_with(Box::default);
        state.control = Some(PendingControl {
            opcode: header.opcode,
            mask: header.mask,
            len,
            payload: ControlPayload::empty(),
        });
        self.continue_frame(payload)
    }

    /// A data frame: checked against the message in progress and the limits, then decoded
    /// whole at once if it can be, else made the pending frame.
    fn begin_data(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
        limits: &DecoderLimits,
        allocate: &mut dyn FnMut(usize) -> Vec<u8>,
    ) -> Result<(usize, Step), WsError> {
        let current = self
            .state
            .as_deref()
            .and_then(|state| state.message.as_ref());
        check_sequence(header.opcode, current.is_some())?;
        let (already, fragments) = current.map_or((0, 0), |m| (m.data.len(), m.fragments));
        let len = admit_data(&header, already, fragments, limits)?;

        // Fast path: a whole unfragmented message in the input costs one allocation and one
        // unmasking pass.
        if current.is_none()
            && header.fin
            && let Some(whole) = payload.get(..len)
        {
            let mut data = allocate(len);
            data.clear(); // a pooled vector's old bytes
            data.extend_from_slice(whole);
            apply_mask(&mut data, header.mask, 0);
            let item = into_item(header.opcode, header.compressed, data, None)?;
            return Ok((len, Step::Item(item)));
        }
        self.assemble(&header, len, payload.len(), allocate);
        self.continue_frame(payload)
    }

    /// Makes a data frame of `len` payload bytes, `arrived` of them in this input, the pending
    /// frame of the message being assembled (which it starts if it is the first).
    fn assemble(
        &mut self,
        header: &FrameHeader,
        len: usize,
        arrived: usize,
        allocate: &mut dyn FnMut(usize) -> Vec<u8>,
    ) {
        // Reserve what is already here, or at most RESERVE_AHEAD for bytes still to come.
        let reserve = len.min(arrived.max(RESERVE_AHEAD));
        let state = self.state.get_or_insert_with(Box::default);
        let message = state.message.get_or_insert_with(|| Assembly {
            opcode: header.opcode,
            compressed: header.compressed,
            data: AssemblyBuffer::new(allocate(reserve)),
            // Compressed text is checked once inflated, by whoever inflates it.
            utf8: (header.opcode == OpCode::Text && !header.compressed)
                .then(Utf8Validator::default),
            fragments: 0,
            frame: None,
        });
        message.fragments += 1;
        message.data.reserve(reserve);
        message.frame = Some(PendingData {
            fin: header.fin,
            mask: header.mask,
            received: 0,
            len,
            lent: 0,
            unseen: false,
        });
    }

    /// Feeds payload bytes to the pending frame. Returns the bytes consumed.
    fn continue_frame(&mut self, input: &[u8]) -> Result<(usize, Step), WsError> {
        let Some(state) = self.state.as_deref_mut() else {
            return Ok((0, Step::FrameDone));
        };

        if let Some(control) = state.control.as_mut() {
            let start = usize::from(control.payload.len);
            let take = (control.len - start).min(input.len());
            let chunk = &mut control.payload.bytes[start..start + take];
            chunk.copy_from_slice(&input[..take]);
            apply_mask(chunk, control.mask, start);
            // start + take <= control.len <= 125, so this fits in a u8.
            control.payload.len = (start + take) as u8;
            if start + take < control.len {
                return Ok((take, Step::NeedMore));
            }
            let (opcode, payload) = (control.opcode, control.payload);
            state.control = None;
            self.release_if_idle();
            return Ok((take, Step::Item(control_item(opcode, payload)?)));
        }

        let Some(message) = state.message.as_mut() else {
            return Ok((0, Step::FrameDone));
        };
        let Some(frame) = message.frame.as_mut() else {
            return Ok((0, Step::FrameDone));
        };
        frame.unseen = false;
        let take = (frame.len - frame.received).min(input.len());
        let appended = message.data.append(&input[..take]);
        apply_mask(appended, frame.mask, frame.received);
        frame.received += take;
        if let Some(utf8) = message.utf8.as_mut() {
            utf8.feed(message.data.filled())?;
        }
        if frame.received < frame.len {
            return Ok((take, Step::NeedMore));
        }
        if !frame.fin {
            message.frame = None;
            return Ok((take, Step::FrameDone));
        }
        let Some(done) = state.message.take() else {
            return Ok((take, Step::FrameDone));
        };
        self.release_if_idle();
        let item = into_item(
            done.opcode,
            done.compressed,
            done.data.into_vec(),
            done.utf8,
        )?;
        Ok((take, Step::Item(item)))
    }
}

/// Does a data frame of `opcode` fit where it comes: a continuation only inside a fragmented
/// message (`in_message`), a new message only outside one?
#[inline]
fn check_sequence(opcode: OpCode, in_message: bool) -> Result<(), WsError> {
    match (opcode, in_message) {
        // A fragmented message consists of a single frame with the FIN bit clear and an
        // opcode other than 0, followed by zero or more frames with the FIN bit clear and the
        // opcode set to 0, and terminated by a single frame with the FIN bit set and an opcode
        // of 0. (RFC 6455 §5.4)
        (OpCode::Continue, false) => Err(WsError::Protocol(
            "continuation frame without a message in progress",
        )),
        (OpCode::Text | OpCode::Binary, true) => Err(WsError::Protocol(
            "new data frame while a fragmented message is in progress",
        )),
        _ => Ok(()),
    }
}

/// Checks a data frame's announced length against the limits, before anything is allocated
/// for it: the frame size, the room the message has left after the `already` bytes of its
/// earlier `fragments`, and the number of fragments. Returns the length.
#[inline]
fn admit_data(
    header: &FrameHeader,
    already: usize,
    fragments: usize,
    limits: &DecoderLimits,
) -> Result<usize, WsError> {
    if header.payload_len > u64::try_from(limits.max_frame_size).unwrap_or(u64::MAX) {
        return Err(WsError::MessageTooBig {
            limit: limits.max_frame_size,
        });
    }
    let too_big = WsError::MessageTooBig {
        limit: limits.max_message_size,
    };
    let room = limits.max_message_size.saturating_sub(already);
    if header.payload_len > u64::try_from(room).unwrap_or(u64::MAX) {
        return Err(too_big);
    }
    let len = usize::try_from(header.payload_len).map_err(|_| too_big)?;
    if fragments >= limits.max_fragments {
        return Err(WsError::MessageTooBig {
            limit: limits.max_fragments,
        });
    }
    Ok(len)
}

/// Turns a complete, unmasked payload into the item it is: a compressed message, or a message
/// whose text is checked for UTF-8 (`utf8` is the incremental progress, if any was made).
fn into_item(
    opcode: OpCode,
    compressed: bool,
    data: Vec<u8>,
    utf8: Option<Utf8Validator>,
) -> Result<Decoded, WsError> {
    if compressed {
        let text = opcode == OpCode::Text;
        return Ok(Decoded::Compressed(Compressed {
            text,
            payload: data,
        }));
    }
    into_message(opcode, data, utf8).map(Decoded::Message)
}

/// A complete, unmasked, uncompressed payload as a message.
fn into_message(
    opcode: OpCode,
    data: Vec<u8>,
    utf8: Option<Utf8Validator>,
) -> Result<Message, WsError> {
    if opcode != OpCode::Text {
        return Ok(Message::Binary(data));
    }
    if let Some(utf8) = utf8 {
        // Fail on a dangling incomplete sequence at the end of the message.
        utf8.finish(&data)?;
    }
    String::from_utf8(data)
        .map(Message::Text)
        .map_err(|_| WsError::InvalidUtf8)
}

/// The item for a complete control frame.
fn control_item(opcode: OpCode, payload: ControlPayload) -> Result<Decoded, WsError> {
    match opcode {
        OpCode::Ping => Ok(Decoded::Ping(payload)),
        OpCode::Pong => Ok(Decoded::Pong(payload)),
        OpCode::Close => Ok(Decoded::Close(parse_close(payload.as_bytes())?)),
        OpCode::Continue | OpCode::Text | OpCode::Binary => {
            Err(WsError::Protocol("data opcode handled as a control frame"))
        }
    }
}

mod assembly_buffer;
mod direct;
mod limits;
pub use limits::DecoderLimits;
#[cfg(test)]
mod tests;
