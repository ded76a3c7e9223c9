//! Internals made public for the fuzz targets and the property tests (the `fuzzing` feature):
//! not part of the supported API, and hidden from the documentation.
//!
//! The codecs are public as `wsreactor::http` and `wsreactor::ws` with this feature; this module
//! adds the sans-I/O connection core: a [`Harness`] that drives one event loop's table of
//! connections over in-memory wires, with a hand-driven clock and hand-run jobs.

pub use crate::harness::{
    AppEvent, Harness, PendingJob, TestApp, client_fragment, client_frame, fuzz_config,
    masked_frame, random_script, run_script, upgrade_request,
};
