//! Where rustls's records meet [`TlsStream`](super::TlsStream)'s buffers: the steps of
//! `process` that move bytes, each given only the buffers it fills.
//!
//! Decrypted application data enters from rustls's `ReadTraffic` and leaves into the session's
//! read buffer while it has room, the rest into `plaintext` ([`deliver_records`]). What goes to
//! the peer — the session's bytes encrypted, `close_notify` ([`write_traffic`]), handshake
//! records and alerts ([`encode_record`]) — is appended to `outgoing` by [`append`], which
//! grows it to what rustls says a record needs and to nothing more.

use rustls::server::ServerConnectionData;
use rustls::unbuffered::{
    EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError, ReadTraffic, WriteTraffic,
};

use super::Then;

/// Hands out every record rustls has decrypted: into `sink` while it has room, the rest
/// appended to `plaintext`. Returns how many bytes went to `sink`; on a record that fails,
/// the error (what came before it is delivered all the same).
pub(super) fn deliver_records(
    traffic: &mut ReadTraffic<'_, '_, ServerConnectionData>,
    sink: &mut [u8],
    plaintext: &mut Vec<u8>,
) -> Result<usize, rustls::Error> {
    let mut delivered = 0;
    while let Some(record) = traffic.next_record() {
        let payload = record?.payload;
        let room = &mut sink[delivered..];
        let n = payload.len().min(room.len());
        room[..n].copy_from_slice(&payload[..n]);
        delivered += n;
        plaintext.extend_from_slice(&payload[n..]);
    }
    Ok(delivered)
}

/// Does what `then` asks once rustls takes application data: encrypts its bytes, or queues
/// `close_notify`, into `outgoing`. Returns how many bytes of data were encrypted (all or
/// none).
pub(super) fn write_traffic(
    traffic: &mut WriteTraffic<'_, ServerConnectionData>,
    then: Option<Then<'_>>,
    outgoing: &mut Vec<u8>,
) -> usize {
    match then {
        Some(Then::Encrypt(data)) => {
            let guess = data.len() + (data.len() / (16 * 1024) + 1) * 64;
            let done = append(outgoing, guess, |buf| {
                room_needed(traffic.encrypt(data, buf))
            });
            if done { data.len() } else { 0 }
        }
        Some(Then::CloseNotify) => {
            append(outgoing, 64, |buf| {
                room_needed(traffic.queue_close_notify(buf))
            });
            0
        }
        Some(Then::Nothing) | None => 0,
    }
}

/// Appends what `encode` writes to `out`, with `guess` bytes of room to begin with and as many
/// as it then says it needs; true if it wrote. It gives up (writing nothing) on any other
/// failure, which rustls reports again on the next call.
pub(super) fn append(
    out: &mut Vec<u8>,
    guess: usize,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, Option<InsufficientSizeError>>,
) -> bool {
    let start = out.len();
    let mut room = guess;
    loop {
        out.resize(start + room, 0);
        match encode(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return true;
            }
            Err(Some(InsufficientSizeError { required_size })) if required_size > room => {
                room = required_size;
            }
            Err(_) => {
                out.truncate(start);
                return false;
            }
        }
    }
}

/// What an encryption into a buffer says, for [`append`]: the bytes written, or the room it
/// needs (`None`: it cannot be done).
fn room_needed(
    result: Result<usize, EncryptError>,
) -> Result<usize, Option<InsufficientSizeError>> {
    match result {
        Ok(n) => Ok(n),
        Err(EncryptError::InsufficientSize(size)) => Err(Some(size)),
        Err(EncryptError::EncryptExhausted) => Err(None),
    }
}

/// One handshake record or alert into `buf`, for [`append`].
pub(super) fn encode_record(
    encode: &mut EncodeTlsData<'_, ServerConnectionData>,
    buf: &mut [u8],
) -> Result<usize, Option<InsufficientSizeError>> {
    match encode.encode(buf) {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(size)) => Err(Some(size)),
        Err(EncodeError::AlreadyEncoded) => Err(None),
    }
}
