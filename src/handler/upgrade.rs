//! The upgrade decision: what a client's upgrade request offers ([`UpgradeOffer`]), and what
//! [`Handler::on_upgrade`](crate::Handler::on_upgrade) answers ([`Upgrade`]) — a rejection, or an
//! acceptance that carries the new connection's first session value.
//!
//! An offer enters from the runner (`runner.rs`), which builds it from the request the loop
//! checked; the answer leaves for the runner, which writes the `101` (or the rejection) and moves
//! the accepted session into the connection, where `on_open` finds it.

use crate::http::{Response, UpgradeOrigin};
use crate::ws::PerMessageDeflate;

/// What a client's upgrade request offers, as [`Handler::on_upgrade`](crate::Handler::on_upgrade)
/// sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeOffer {
    pub(crate) protocols: Vec<String>,
    pub(crate) compression: Option<PerMessageDeflate>,
    pub(crate) origin: UpgradeOrigin,
}

impl UpgradeOffer {
    /// The subprotocols of `Sec-WebSocket-Protocol`, in the client's order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The permessage-deflate agreement the server will answer with if the handler accepts
    /// (and does not decline compression): `None` when the client offered nothing acceptable
    /// or [`Config::compression`](crate::Config::compression) is off.
    pub fn compression(&self) -> Option<&PerMessageDeflate> {
        self.compression.as_ref()
    }

    /// How the request's `Origin` passed the origin check: absent (not a browser), this
    /// server's own origin, an entry of [`OriginPolicy::Allow`](crate::OriginPolicy::Allow), or
    /// another origin let through by [`OriginPolicy::Any`](crate::OriginPolicy::Any) — the one
    /// case where deciding is left to the handler. [`UpgradeOrigin::value`] is the header's text.
    pub fn origin(&self) -> &UpgradeOrigin {
        &self.origin
    }
}

/// The answer of [`Handler::on_upgrade`](crate::Handler::on_upgrade); `S` is the handler's
/// [`Handler::Session`](crate::Handler::Session).
///
/// An acceptance carries the connection's first session value: what `on_upgrade` learnt (the
/// user a token names, a role, the room in the path) reaches `on_open` and every later call in
/// [`Context::session`](crate::Context::session), with no second look at the request.
///
/// ```
/// use wsreactor::{Context, Handler, Message, Request, Upgrade, UpgradeOffer};
///
/// #[derive(Default)]
/// struct User {
///     name: String,
/// }
///
/// struct Greeter;
///
/// impl Handler for Greeter {
///     type Session = User;
///
///     fn on_upgrade(&self, request: &Request, _offer: &UpgradeOffer) -> Upgrade<User> {
///         match request.header("x-user") {
///             Some(name) => Upgrade::accept_with(User { name: name.to_owned() }),
///             None => Upgrade::reject(401, "who are you?\n"),
///         }
///     }
///
///     fn on_message(&self, ctx: &mut Context<'_, User>, message: Message) {
///         let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
///         let hello = format!("{}: {text}", ctx.session().name);
///         ctx.send(hello);
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade<S = ()> {
    /// Switch to WebSocket. Build it with [`Upgrade::accept`], [`Upgrade::accept_with`] or
    /// [`Upgrade::accept_protocol`] (fields may be added).
    #[non_exhaustive]
    Accept {
        /// The subprotocol to confirm in `Sec-WebSocket-Protocol`; it must be one the client
        /// offered (a protocol it did not offer is ignored with a warning, RFC 6455 §4.2.2).
        protocol: Option<String>,
        /// Extra headers for the `101` response.
        headers: Vec<(String, String)>,
        /// Use the compression in [`UpgradeOffer::compression`], if there is one. `false`
        /// declines it: the connection sends and receives uncompressed messages only.
        compression: bool,
        /// The connection's session from now on: what `on_open` finds in
        /// [`Context::session`](crate::Context::session).
        session: S,
    },
    /// Refuse, answering with this response; the connection is then closed.
    Reject(Response),
}

impl<S: Default> Upgrade<S> {
    /// Accept with no subprotocol (and with compression, if it was agreed), the session
    /// starting at `S::default()`.
    pub fn accept() -> Self {
        Upgrade::accept_with(S::default())
    }

    /// Accept and confirm the subprotocol `protocol`, the session starting at `S::default()`.
    pub fn accept_protocol(protocol: impl Into<String>) -> Self {
        Upgrade::accept().with_protocol(protocol)
    }
}

impl<S> Upgrade<S> {
    /// Accept, the connection's session starting at `session` (no subprotocol; compression if
    /// it was agreed).
    pub fn accept_with(session: S) -> Self {
        Upgrade::Accept {
            protocol: None,
            headers: Vec::new(),
            compression: true,
            session,
        }
    }

    /// The same answer, confirming the subprotocol `protocol` (no effect on a rejection).
    pub fn with_protocol(mut self, chosen: impl Into<String>) -> Self {
        if let Upgrade::Accept { protocol, .. } = &mut self {
            *protocol = Some(chosen.into());
        }
        self
    }

    /// The same answer with an extra header on the `101` (no effect on a rejection).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Upgrade::Accept { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// The same answer, declining compression (no effect on a rejection).
    pub fn without_compression(mut self) -> Self {
        if let Upgrade::Accept { compression, .. } = &mut self {
            *compression = false;
        }
        self
    }

    /// Refuse with `status` and a plain-text `body` (e.g. `403`, "origin not allowed").
    pub fn reject(status: u16, body: impl Into<String>) -> Self {
        Upgrade::Reject(Response::text(status, body))
    }
}
