//! Arbitrary bytes as a script of events for one event loop's connection core (the table and
//! its sessions, sans-I/O): peers connecting and sending anything in any chunking, EOFs, resets,
//! socket errors, peers that stop reading, clock jumps, jobs run early, late or never, pushes,
//! closes, subscriptions and publications to topics, and shutdown. After every step the core's
//! invariants must hold (bounded buffers and inboxes, interest in step with output, no closed
//! connection left in the table, handler calls in order, the topic registry consistent and
//! every subscriber in the table); at the end every connection must be closed, every gauge back to zero, and every
//! `on_close` owed delivered exactly once. See `src/netpoller/harness/script.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsreactor::fuzzing::{fuzz_config, run_script};

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = run_script(fuzz_config(), data) {
        panic!("{broken}");
    }
});
