//! The echo server's TLS flags: `--tls-cert PATH --tls-key PATH` (PEM files; SIGHUP reloads
//! them, for a renewed certificate) or `--tls-self-signed` (a certificate for `localhost` made
//! in memory, to try `wss://` at once). With either, the one port serves `https://` and
//! `wss://`. They need the `tls` feature: `cargo run --features tls --example echo -- ...`.

/// The TLS flags, taken out of the command line before the `Config` flags are parsed.
#[derive(Debug, Default)]
pub struct TlsFlags {
    cert: Option<String>,
    key: Option<String>,
    self_signed: bool,
}

pub const USAGE: &str = "\
TLS (build with --features tls; then the port serves https:// and wss://):
  --tls-cert PATH              certificate chain, PEM (with --tls-key; SIGHUP reloads both)
  --tls-key PATH               private key, PEM
  --tls-self-signed            a certificate for localhost made in memory (its PEM is written
                               to a file named at start, for clients to trust)
";

impl TlsFlags {
    /// Removes the TLS flags from `args`.
    pub fn take(args: &mut Vec<String>) -> Result<TlsFlags, String> {
        let mut flags = TlsFlags::default();
        let mut rest = Vec::with_capacity(args.len());
        let mut iter = std::mem::take(args).into_iter();
        while let Some(arg) = iter.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = |flag: &str| {
                inline
                    .clone()
                    .or_else(|| iter.next())
                    .ok_or(format!("{flag} needs a value"))
            };
            match name.as_str() {
                "--tls-cert" => flags.cert = Some(value("--tls-cert")?),
                "--tls-key" => flags.key = Some(value("--tls-key")?),
                "--tls-self-signed" => flags.self_signed = true,
                _ => rest.push(arg),
            }
        }
        *args = rest;
        match (&flags.cert, &flags.key, flags.self_signed) {
            (Some(_), None, _) | (None, Some(_), _) => {
                Err("--tls-cert and --tls-key go together".into())
            }
            (Some(_), Some(_), true) => {
                Err("--tls-self-signed or --tls-cert/--tls-key, not both".into())
            }
            _ => Ok(flags),
        }
    }

    /// Whether any TLS flag was given.
    pub fn enabled(&self) -> bool {
        self.cert.is_some() || self.self_signed
    }
}

#[cfg(not(feature = "tls"))]
pub fn check_available(flags: &TlsFlags) -> Result<(), String> {
    if flags.enabled() {
        return Err("this build has no TLS: cargo run --features tls --example echo -- ...".into());
    }
    Ok(())
}

#[cfg(feature = "tls")]
pub use with_tls::*;

#[cfg(feature = "tls")]
mod with_tls {
    use std::path::PathBuf;

    use signal_hook::consts::SIGHUP;
    use signal_hook::iterator::Signals;
    use wsreactor::ServerHandle;
    use wsreactor::tls::{CertificateDer, PrivateKeyDer, TlsConfig};

    use super::TlsFlags;

    /// A file the echo wrote, removed when this is dropped (as the echo exits).
    pub struct WrittenFile(PathBuf);

    impl Drop for WrittenFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// The TLS configuration the flags ask for, if any, and the self-signed certificate's file.
    pub fn config(flags: &TlsFlags) -> Result<(Option<TlsConfig>, Option<WrittenFile>), String> {
        if flags.self_signed {
            let (tls, pem) = self_signed()?;
            return Ok((Some(tls), pem));
        }
        let (Some(cert), Some(key)) = (&flags.cert, &flags.key) else {
            return Ok((None, None));
        };
        let tls = TlsConfig::from_pem_files(cert, key).map_err(|err| format!("TLS: {err}"))?;
        Ok((Some(tls), None))
    }

    /// A certificate for `localhost`, `127.0.0.1` and `::1`, made now; its PEM goes to a file
    /// (removed at exit) so that clients can be told to trust it (`curl --cacert FILE`).
    fn self_signed() -> Result<(TlsConfig, Option<WrittenFile>), String> {
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|err| format!("self-signed certificate: {err}"))?;
        let path = std::env::temp_dir().join(format!("wsreactor-echo-{}.pem", std::process::id()));
        let written = match std::fs::write(&path, made.cert.pem()) {
            Ok(()) => {
                println!(
                    "self-signed certificate for localhost in {} (trust it, or accept the warning)",
                    path.display()
                );
                Some(WrittenFile(path))
            }
            Err(err) => {
                log::warn!("cannot write {}: {err}", path.display());
                None
            }
        };
        let chain = vec![CertificateDer::from(made.cert.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        let tls = TlsConfig::from_der(chain, key).map_err(|err| format!("TLS: {err}"))?;
        Ok((tls, written))
    }

    /// On SIGHUP, loads the certificate and key files again for new connections (what a
    /// renewal hook runs: `kill -HUP PID`); a file that does not load keeps the old ones.
    pub fn reload_on_sighup(flags: &TlsFlags, handle: ServerHandle) {
        let (Some(cert), Some(key)) = (flags.cert.clone(), flags.key.clone()) else {
            return;
        };
        let mut signals = match Signals::new([SIGHUP]) {
            Ok(signals) => signals,
            Err(err) => return log::warn!("cannot watch SIGHUP: {err}"),
        };
        std::thread::spawn(move || {
            for _ in signals.forever() {
                match TlsConfig::from_pem_files(&cert, &key) {
                    Ok(tls) => match handle.reload_tls(&tls) {
                        Ok(()) => log::info!("SIGHUP: {cert} reloaded for new connections"),
                        Err(err) => log::warn!("SIGHUP: {err}"),
                    },
                    Err(err) => log::warn!("SIGHUP: {err}; keeping the certificate in use"),
                }
            }
        });
    }
}
