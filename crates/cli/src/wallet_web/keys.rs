//! Loading the cardholder's key files with a passphrase typed into the wallet page (instead of
//! a file, the environment or a terminal prompt as `crate::support::keystore` does).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use warifu_core::keyfile::{KeyFile, SokKeyFile};
use warifu_core::keysource::KeySource;
use warifu_core::secret::Secret;
use warifu_core::sok::{KeyScheme, PartyKeys};
use zeroize::Zeroizing;

use crate::support::files;

/// Whether any of the key files is sealed under a passphrase.
pub fn any_sealed(paths: &[PathBuf]) -> bool {
    paths.iter().any(|p| {
        files::read_bounded(p, files::MAX_KEY_FILE)
            .map(|b| KeyFile::is_sealed(&Zeroizing::new(b)))
            .unwrap_or(false)
    })
}

/// The cardholder's key source from its key files (a hybrid bundle, a Blom and a SOK key, or
/// one of them), opening sealed ones with `pass`, behind a cache of `cache` counterparties.
pub fn load(
    paths: &[PathBuf],
    scheme: Option<KeyScheme>,
    cache: usize,
    pass: Option<&Secret>,
) -> Result<Arc<dyn KeySource>> {
    let mut keys = PartyKeys::new();
    for path in paths {
        let bytes = Zeroizing::new(files::read_bounded(path, files::MAX_KEY_FILE)?);
        let secret = if KeyFile::is_sealed(&bytes) {
            match pass {
                Some(p) => Some(p),
                None => bail!("{} is sealed: enter its passphrase", path.display()),
            }
        } else {
            None
        };
        let added = if SokKeyFile::is_sok_kind(&bytes) {
            keys.add_file(&bytes, secret)
        } else {
            match KeyFile::decode(&bytes, secret) {
                Ok(KeyFile::Personal(k)) => keys.add_blom(k),
                Ok(_) => bail!("{} is not a cardholder's personal key", path.display()),
                Err(e) => Err(e),
            }
        };
        added.with_context(|| format!("cannot open key file {}", path.display()))?;
    }
    let scheme = match scheme {
        Some(s) => s,
        None => keys
            .available()
            .last()
            .copied()
            .context("no key file given")?,
    };
    let source = keys
        .key_source(scheme)
        .context("the key files do not serve this scheme")?;
    if source.owner().role() != warifu_core::Role::Cardholder {
        bail!(
            "the key file(s) hold the key of {}, not of a cardholder",
            source.owner()
        );
    }
    Ok(warifu_services::keys::cached(source, cache))
}
