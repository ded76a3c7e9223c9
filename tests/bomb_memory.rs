//! A decompression bomb costs at most about the message limit: the heap's peak while inflating
//! a 100 MiB message of zeros (about 100 KiB compressed) with a 1 MiB limit, measured by a
//! counting global allocator. Its own test binary, so that no other test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wsreactor::ws::deflate::compress;
use wsreactor::ws::{Compressed, WsError};

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn inflating_a_bomb_allocates_about_the_limit_not_the_inflated_size() {
    const LIMIT: usize = 1024 * 1024;
    // One MiB of zeros deflated, a hundred times over (the pieces chain: each ends on a
    // complete empty stored block), so building the bomb never holds 100 MiB either.
    let piece = compress(&vec![0u8; LIMIT], 15, 9);
    let mut payload = Vec::new();
    for _ in 0..100 {
        payload.extend_from_slice(&piece);
        payload.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    }
    payload.truncate(payload.len() - 4);
    let bomb = Compressed {
        text: false,
        payload,
    };
    // Warm the thread's inflater, then measure from here.
    let _ = Compressed {
        text: false,
        payload: piece,
    }
    .inflate(LIMIT);
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);

    let result = bomb.inflate(LIMIT);

    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert_eq!(result, Err(WsError::MessageTooBig { limit: LIMIT }));
    // The output buffer doubles up to one byte past the limit; during its last move the old
    // half-size buffer and the new one exist together (realloc counted as alloc + copy + free).
    assert!(
        peak <= LIMIT + LIMIT / 2 + 64 * 1024,
        "peak {peak} bytes for a {LIMIT}-byte limit"
    );
    assert!(peak > LIMIT / 2, "it did inflate up to the limit: {peak}");
    eprintln!("peak heap while inflating the 100 MiB bomb: {peak} bytes");
}
