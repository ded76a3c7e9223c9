//! [`MemoryRelease`]: when a storm is over, give the memory it used back to the operating system.
//!
//! Freeing a buffer returns it to the allocator, not to the OS. glibc's malloc keeps freed
//! memory in its arenas unless it sits at the very top of a heap, so after a few hundred clients
//! held 256 MiB of output and left, the process kept its peak RSS with no client connected
//! (measured with `scripts/hostile.sh`, docs/hardening.md). This module decides when a storm is
//! over — the bytes this loop's connections hold (the memory budget's count) fell to an eighth
//! of their peak, the peak was at least [`STORM`], and it has stayed that low for
//! `Config::release_memory_after` — and then the loop empties its buffer pool and asks the
//! allocator to return its free pages ([`return_free_memory`]). One release per storm; a loop
//! that never held [`STORM`] bytes never calls the allocator at all.
//!
//! The state enters through [`observe`](MemoryRelease::observe), once per loop turn, and the
//! instant it waits for leaves through [`deadline`](MemoryRelease::deadline) into the `poll`
//! timeout, so an idle loop still wakes to release.

use std::time::{Duration, Instant};

use crate::config::deadline_after;

/// A peak below this is ordinary traffic, not a storm: nothing is released after it.
pub(crate) const STORM: usize = 8 * 1024 * 1024;

/// One loop's view of whether a storm has passed.
#[derive(Debug)]
pub(crate) struct MemoryRelease {
    /// `Config::release_memory_after`; `None`: never release.
    after: Option<Duration>,
    /// The most bytes the loop's connections held since the last release.
    peak: usize,
    /// Since when they have held at most an eighth of `peak`, if they do.
    calm_since: Option<Instant>,
}

impl MemoryRelease {
    pub(crate) fn new(after: Option<Duration>) -> Self {
        MemoryRelease {
            after,
            peak: 0,
            calm_since: None,
        }
    }

    /// The loop's connections hold `held` bytes now. True when memory should be released now
    /// (and the storm is then forgotten).
    pub(crate) fn observe(&mut self, held: usize, now: Instant) -> bool {
        let Some(after) = self.after else {
            return false;
        };
        self.peak = self.peak.max(held);
        if self.peak < STORM || held > self.peak / 8 {
            self.calm_since = None;
            return false;
        }
        let since = *self.calm_since.get_or_insert(now);
        if now.saturating_duration_since(since) < after {
            return false;
        }
        self.peak = held;
        self.calm_since = None;
        true
    }

    /// When the loop must look again (a calm that may become a release), if it must.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        Some(deadline_after(self.calm_since?, self.after?))
    }
}

/// Asks the allocator to give its free pages back to the OS: `malloc_trim(0)` with glibc, which
/// walks every arena (the loops' and the workers') and releases whole free pages anywhere in
/// them, not only at the top. Elsewhere (musl, macOS) this does nothing: those allocators
/// return memory by themselves, or a program picks one that does (see docs/hardening.md).
/// Returns whether any memory was released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn return_free_memory() -> bool {
    // SAFETY: `malloc_trim` takes a byte count and touches only the allocator's own free
    // lists, under the arenas' locks; it has no precondition a caller could break.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Asks the allocator to give its free pages back to the OS (nothing to do on this platform).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn return_free_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn a_storm_is_released_once_it_has_been_calm_for_the_delay() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut release = MemoryRelease::new(Some(Duration::from_secs(1)));
        assert!(!release.observe(100 * MIB, at(0)), "the storm");
        assert!(
            !release.observe(20 * MIB, at(100)),
            "an eighth is 12.5 MiB: not calm"
        );
        assert!(!release.observe(10 * MIB, at(200)), "calm from here");
        assert_eq!(release.deadline(), Some(at(1200)));
        assert!(!release.observe(5 * MIB, at(1000)));
        assert!(release.observe(5 * MIB, at(1200)), "calm for 1 s: release");
        assert_eq!(release.deadline(), None);
        assert!(
            !release.observe(5 * MIB, at(5000)),
            "once per storm: 5 MiB is not a new one"
        );
    }

    #[test]
    fn a_rise_during_the_calm_starts_it_again() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut release = MemoryRelease::new(Some(Duration::from_secs(1)));
        release.observe(64 * MIB, at(0));
        release.observe(0, at(100));
        release.observe(32 * MIB, at(600));
        assert_eq!(release.deadline(), None);
        release.observe(0, at(700));
        assert!(!release.observe(0, at(1600)));
        assert!(release.observe(0, at(1700)));
    }

    #[test]
    fn ordinary_traffic_and_a_disabled_release_never_release() {
        let t0 = Instant::now();
        let mut small = MemoryRelease::new(Some(Duration::from_millis(1)));
        small.observe(STORM - 1, t0);
        assert!(!small.observe(0, t0 + Duration::from_secs(10)));
        let mut off = MemoryRelease::new(None);
        off.observe(100 * MIB, t0);
        assert!(!off.observe(0, t0 + Duration::from_secs(10)));
        assert_eq!(off.deadline(), None);
    }

    /// A delay of `Duration::MAX` means "never" (its deadline used to overflow `Instant`, a
    /// panic on the loop thread once a storm calmed down).
    #[test]
    fn a_delay_at_its_maximum_never_releases() {
        let t0 = Instant::now();
        let mut never = MemoryRelease::new(Some(Duration::MAX));
        never.observe(100 * MIB, t0);
        assert!(!never.observe(0, t0 + Duration::from_secs(1)));
        let deadline = never.deadline().expect("calm: a deadline");
        assert!(deadline > t0 + Duration::from_secs(99 * 365 * 24 * 3600));
        assert!(!never.observe(0, t0 + Duration::from_secs(50 * 365 * 24 * 3600)));
    }
}
