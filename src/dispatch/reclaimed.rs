//! Why the loop takes a deferred call back without its completion: shared by the ordered kind
//! (`deferred.rs`) and the out-of-order kind (`unordered.rs`).

/// Why the loop took a deferred job back without its completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reclaimed {
    /// Its deadline (`Config::deferred_timeout`) passed.
    Expired,
    /// The connection closed (or the server gave up on it).
    Closed,
}
