//! The origin check of WebSocket upgrades (Cross-Site WebSocket Hijacking).
//!
//! A valid upgrade request enters [`check_origin`] (called by
//! [`check_upgrade`](crate::http::check_upgrade), on the event loop, before any handler) with
//! the configured [`OriginCheck`]; it leaves accepted, saying how ([`UpgradeOrigin`]: no
//! `Origin`, the server's own origin, an allow-list entry, or anything under
//! [`OriginPolicy::Any`]), or refused with an [`OriginRefusal`] that the loop answers with
//! `403`. The parts:
//!
//! | file | job |
//! |---|---|
//! | `serialized.rs` | parse `scheme://host[:port]` (RFC 6454 §6.2) and `Host` values; compare hosts and ports |
//! | `pattern.rs` | allow-list entries: exact origins and `scheme://*.domain` |
//! | `forwarded.rs` | the host a trusted proxy forwarded (`X-Forwarded-Host`, `Forwarded: host=`) |
//! | `policy.rs` | the policy, and the check itself |
//! | `refusal.rs` | why a request is refused (the `403`'s reason) |

mod forwarded;
mod pattern;
mod policy;
mod refusal;
mod serialized;

pub use forwarded::ForwardedHost;
pub use pattern::OriginPattern;
pub use policy::{OriginCheck, OriginPolicy, UpgradeOrigin, check_origin};
pub use refusal::OriginRefusal;
