//! Spare `incoming` buffers: a few ciphertext buffers each event-loop thread keeps for the next
//! TLS connection that becomes active, instead of allocating and zeroing 18 KiB each time.
//!
//! A connection takes one ([`take`]) when its first bytes arrive after idleness and gives it
//! back ([`give`]) when it goes idle again or ends. A loop is one thread and its connections'
//! transports live on it, so a thread-local list is that loop's pool, with no lock; a buffer
//! given back on another thread (a driven server's, a test's) simply joins that thread's list.
//! At most [`KEPT`] are kept per thread (288 KiB): a burst does not pin more, and idle
//! connections still hold none. A buffer is lent as it was left — its bytes are stale
//! ciphertext of another connection, overwritten by the socket's reads before rustls looks at
//! them, since only `incoming[start..end]`, which the reads filled, is ever handed on.

use std::cell::RefCell;

use super::RECORD_MAX;

/// Spare buffers kept per thread.
pub(super) const KEPT: usize = 16;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of one record's size: a spare one, or a new one.
pub(super) fn take() -> Vec<u8> {
    SPARE
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_else(|| vec![0; RECORD_MAX])
}

/// Keeps `buf` for the next connection if it is one record's size (one that grew for a large
/// handshake message is freed) and fewer than [`KEPT`] are kept; else frees it.
pub(super) fn give(buf: Vec<u8>) {
    if buf.len() != RECORD_MAX {
        return;
    }
    // During thread teardown the list may be gone already: the buffer is then just freed.
    let _ = SPARE.try_with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < KEPT {
            spare.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_is_lent_again_and_the_list_is_bounded() {
        let first = take();
        assert_eq!(first.len(), RECORD_MAX);
        let address = first.as_ptr();
        give(first);
        let again = take();
        assert_eq!(again.as_ptr(), address, "the spare buffer is reused");
        give(again);
        for _ in 0..KEPT + 4 {
            give(vec![0; RECORD_MAX]);
        }
        let kept = SPARE.with(|spare| spare.borrow().len());
        assert_eq!(kept, KEPT);
        give(vec![0; 2 * RECORD_MAX]);
        assert_eq!(
            SPARE.with(|spare| spare.borrow().len()),
            KEPT,
            "a grown one is freed"
        );
    }
}
