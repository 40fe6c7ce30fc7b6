//! `--tls-cert`, `--tls-key` and `--tls-ca`: HTTPS for the services this process serves and
//! the peers it dials (README "HTTPS"). Session bodies are sealed by the record layer either
//! way; TLS is for deployments that want it.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use warifu_services::http::tls::{ServerTls, trust_process_roots};

use crate::support::files;

/// HTTPS flags, accepted by every command (they matter to the services and to the clients).
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this PEM certificate chain (the service's certificate first); needs
    /// `--tls-key`. For `merchant|issuer|carrier serve`, `up` and `demo`.
    #[arg(long, value_name = "FILE", global = true, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert` (a file only its owner can read: mode 0600).
    #[arg(long, value_name = "FILE", global = true, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also trust the CA certificates of this PEM file for `https://` peers (besides the
    /// system's roots): the services' peers, the wallet's merchant and carrier, an operator
    /// command's `--url`.
    #[arg(long, value_name = "FILE", global = true)]
    pub tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// Makes these the TLS settings of this process.
    pub fn apply(&self) -> Result<()> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                warn_if_readable_by_others(key);
                let tls = ServerTls::from_pem(&files::read_file(cert)?, &files::read_file(key)?)
                    .with_context(|| {
                        format!(
                            "cannot serve HTTPS with {} and {}",
                            cert.display(),
                            key.display()
                        )
                    })?;
                tls.set_process_default();
            }
            (None, None) => {}
            _ => bail!("--tls-cert and --tls-key go together: give both, or neither"),
        }
        if let Some(ca) = &self.tls_ca {
            trust_process_roots(&files::read_file(ca)?)
                .with_context(|| format!("cannot trust the CA file {}", ca.display()))?;
        }
        Ok(())
    }
}

/// Warns when the private key's file is open to its group or others (wanted: 0600).
fn warn_if_readable_by_others(key: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(key) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                eprintln!(
                    "warning: the TLS key {} has mode {mode:04o}; make it 0600 (chmod 600)",
                    key.display()
                );
            }
        }
    }
}
