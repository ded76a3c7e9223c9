//! [`DecoderLimits`]: the sizes a [`MessageDecoder`](super::MessageDecoder) enforces, set from
//! the server's configuration (`Config::decoder_limits`).

/// Size limits the decoder enforces; a message beyond them fails with
/// [`WsError::MessageTooBig`](crate::ws::WsError::MessageTooBig) (close code 1009).
#[derive(Debug, Clone, Copy)]
pub struct DecoderLimits {
    /// Largest message in payload bytes, after reassembly of all its fragments.
    pub max_message_size: usize,
    /// Most frames one message may have (an unfragmented message has 1).
    pub max_fragments: usize,
    /// Largest single frame's payload, checked from its header before anything is read.
    pub max_frame_size: usize,
    /// permessage-deflate was negotiated: RSV1 on a message's first frame marks it compressed,
    /// and it leaves as [`Decoded::Compressed`](super::Decoded::Compressed). Its size limits count the compressed bytes;
    /// [`Compressed::inflate`](crate::ws::deflate::Compressed::inflate) enforces `max_message_size` on the inflated ones.
    pub deflate: bool,
}

impl Default for DecoderLimits {
    /// 16 MiB messages and frames, 65,536 frames a message: the server configuration's defaults.
    fn default() -> Self {
        DecoderLimits {
            max_message_size: 16 * 1024 * 1024,
            max_fragments: 65_536,
            max_frame_size: 16 * 1024 * 1024,
            deflate: false,
        }
    }
}
