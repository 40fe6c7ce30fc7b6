//! HTTPS, for deployments that want it: rustls with the *ring* provider, one stack for serving
//! and dialing (no OpenSSL, no aws-lc).
//!
//! Session bodies are already sealed by the record layer (PROTOCOL.md §12.5), certificates or
//! not; TLS adds the usual: the handshake messages, headers and the public routes are hidden
//! from the network, and a client knows the host before it says anything.
//!
//! - Serving: a [`ServerTls`] (a PEM certificate chain and its key) wraps each accepted
//!   connection of [`serve_limited`](super::listen::serve_limited); the handshake must finish
//!   within the header timeout. [`ServerTls::set_process_default`] makes every service of the
//!   process serve HTTPS (`--tls-cert`/`--tls-key`).
//! - Dialing: every HTTP client of the services is built by [`client`]; it verifies `https://`
//!   peers against the system's roots plus the CA certificates of [`trust_process_roots`]
//!   (`--tls-ca`).

use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why a certificate, a key or a CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The PEM does not parse.
    #[error("the {what} is not valid PEM: {detail}")]
    Pem {
        /// What was read: "certificate", "private key", "CA certificate".
        what: &'static str,
        /// The parser's complaint.
        detail: String,
    },
    /// Nothing of the kind in the PEM.
    #[error("no {what} found in the PEM")]
    Missing {
        /// What was looked for.
        what: &'static str,
    },
    /// rustls refused the certificate, the key, or the pair.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider of every TLS configuration here: *ring*. rustls deprecates it for want
/// of post-quantum key exchange, but its alternative (aws-lc-rs) needs cmake and nasm to
/// build; what TLS protects here is also sealed by the record layer under the session's keys.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The certificates of a PEM bundle (at least one).
fn certificates(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing { what });
    }
    Ok(certs)
}

/// A service's side of TLS: its certificate chain and key, as an acceptor.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl core::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ServerTls")
    }
}

static PROCESS_SERVER: OnceLock<ServerTls> = OnceLock::new();

impl ServerTls {
    /// From a PEM certificate chain (the service's certificate first) and its PEM private key
    /// (PKCS#8, PKCS#1 or SEC1). TLS 1.3 and 1.2, HTTP/1.1 by ALPN.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<ServerTls, TlsError> {
        const KEY: &str = "private key";
        let chain = certificates(chain, "certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::Missing { what: KEY },
            e => TlsError::Pem {
                what: KEY,
                detail: e.to_string(),
            },
        })?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Makes every service of this process serve HTTPS with `self`; the first call wins.
    /// Returns whether it was set.
    pub fn set_process_default(self) -> bool {
        PROCESS_SERVER.set(self).is_ok()
    }

    /// What [`ServerTls::set_process_default`] set, if anything.
    pub fn process_default() -> Option<ServerTls> {
        PROCESS_SERVER.get().cloned()
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// The scheme of this process's services: `https` once [`ServerTls::set_process_default`] ran.
pub fn scheme() -> &'static str {
    if PROCESS_SERVER.get().is_some() {
        "https"
    } else {
        "http"
    }
}

static PROCESS_ROOTS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();

/// Makes every client of this process also trust the CA certificates of `pem` for `https://`
/// peers; the first call wins. Returns how many certificates the bundle holds.
pub fn trust_process_roots(pem: &[u8]) -> Result<usize, TlsError> {
    const WHAT: &str = "CA certificate";
    let certs = certificates(pem, WHAT)?;
    // Refused now, naming the file, rather than at the first client build.
    let mut store = rustls::RootCertStore::empty();
    let mut roots = Vec::with_capacity(certs.len());
    for der in certs {
        roots.push(
            reqwest::Certificate::from_der(&der).map_err(|e| TlsError::Pem {
                what: WHAT,
                detail: e.to_string(),
            })?,
        );
        store.add(der)?;
    }
    let n = roots.len();
    let _ = PROCESS_ROOTS.set(roots);
    Ok(n)
}

/// An HTTP client configured by `configure` (timeouts, redirects…), trusting the system's
/// roots and those of [`trust_process_roots`] for `https://` URLs.
pub fn client(
    configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<reqwest::Client, reqwest::Error> {
    client_trusting(
        PROCESS_ROOTS.get().map(Vec::as_slice).unwrap_or_default(),
        configure,
    )
}

/// An HTTP client configured by `configure`, trusting the system's roots and `extra`. The
/// one place a `reqwest` client is built (clippy.toml refuses the builders elsewhere).
#[allow(clippy::disallowed_methods)]
pub fn client_trusting(
    extra: &[reqwest::Certificate],
    configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<reqwest::Client, reqwest::Error> {
    // reqwest (feature `rustls-no-provider`) takes the process's default provider: ring.
    // Another already installed (by an embedding program) is kept.
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let _ = provider().install_default();
    });
    configure(reqwest::Client::builder().tls_certs_merge(extra.iter().cloned()))
        .build()
        .or_else(|e| {
            // A system without CA certificates (a bare container): the extra roots alone.
            tracing::debug!(error = %e, "no system roots; trusting the given CA only");
            configure(reqwest::Client::builder().tls_certs_only(extra.iter().cloned())).build()
        })
}

/// Says what went wrong in TLS under a failed request, if that is what failed: an unknown
/// issuer, a name mismatch, a peer that does not speak TLS.
pub fn failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            let hint = match tls {
                rustls::Error::InvalidCertificate(_) => " (is the peer's CA given with --tls-ca?)",
                rustls::Error::InvalidMessage(_) => " (does the peer serve HTTPS?)",
                _ => "",
            };
            return Some(format!("TLS: {tls}{hint}"));
        }
        // io::Error's `source` skips the error it wraps: step into that one instead.
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}
