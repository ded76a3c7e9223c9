//! Picking a certificate by SNI: the name the client puts in its ClientHello selects one of
//! several certificates, else the first one serves.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::error::TlsError;

/// A default certificate, and others by server name (exact, or `*.` for one label).
#[derive(Clone, Debug)]
pub(super) struct SniCertificates {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl SniCertificates {
    pub(super) fn new(default: CertifiedKey) -> Self {
        SniCertificates {
            default: Arc::new(default),
            by_name: HashMap::new(),
        }
    }

    pub(super) fn add(&mut self, server_name: &str, key: CertifiedKey) -> Result<(), TlsError> {
        let name = server_name.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || name == "*" || self.by_name.contains_key(&name) {
            return Err(TlsError::BadServerName(server_name.to_owned()));
        }
        self.by_name.insert(name, Arc::new(key));
        Ok(())
    }

    /// The certificate for `server_name`: its own, else a wildcard's, else the default.
    fn choose(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = server_name.filter(|_| !self.by_name.is_empty()) else {
            return &self.default;
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(key) = self.by_name.get(&name) {
            return key;
        }
        let wildcard = name
            .split_once('.')
            .map(|(_, parent)| format!("*.{parent}"));
        wildcard
            .and_then(|wildcard| self.by_name.get(&wildcard))
            .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for SniCertificates {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.choose(client_hello.server_name())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::PrivateKeyDer;

    fn key(name: &str) -> CertifiedKey {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("rcgen");
        let der = PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        CertifiedKey::from_der(vec![cert.cert.der().clone()], der, &provider).expect("key")
    }

    #[test]
    fn names_choose_their_certificate_and_others_get_the_default() {
        let mut certs = SniCertificates::new(key("default.test"));
        certs
            .add("Chat.Example.org", key("chat.example.org"))
            .unwrap();
        certs.add("*.apps.test", key("*.apps.test")).unwrap();
        let leaf = |chosen: &Arc<CertifiedKey>| chosen.cert[0].clone();
        let default = leaf(&certs.default);
        assert_eq!(leaf(certs.choose(None)), default);
        assert_eq!(leaf(certs.choose(Some("other.test"))), default);
        let chat = leaf(certs.choose(Some("chat.example.org")));
        assert_ne!(chat, default);
        assert_eq!(leaf(certs.choose(Some("CHAT.example.org."))), chat);
        let app = leaf(certs.choose(Some("one.apps.test")));
        assert_ne!(app, default);
        assert_ne!(app, chat);
        assert_eq!(
            leaf(certs.choose(Some("a.b.apps.test"))),
            default,
            "one label only"
        );
        assert!(certs.add("chat.example.org", key("x")).is_err(), "repeated");
        assert!(certs.add("", key("x")).is_err(), "empty");
    }
}
