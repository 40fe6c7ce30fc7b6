//! Passphrases of sealed files: their flags, and reading one from a file, WARIFU_PASSPHRASE or a
//! terminal prompt.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use warifu_core::secret::Secret;
use zeroize::Zeroizing;

/// The environment variable holding a passphrase when no `--passphrase-file` is given.
pub const PASSPHRASE_ENV: &str = "WARIFU_PASSPHRASE";
/// How a key file being written is protected.
#[derive(Debug, Clone, Args)]
pub struct NewPassphraseArgs {
    /// Seal the file under the passphrase in this file (first line). Without it the
    /// passphrase comes from WARIFU_PASSPHRASE, or a prompt on a terminal.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Write the file unsealed (still with 0600 permissions).
    #[arg(long, conflicts_with = "passphrase_file")]
    pub no_passphrase: bool,
}

/// Where the passphrase of a sealed key file being read comes from.
#[derive(Debug, Clone, Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from this file (first line). Otherwise from WARIFU_PASSPHRASE, or
    /// a prompt on a terminal. Only asked for when the key file is sealed.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// The environment variable holding the passphrase of the hybrid's separate SOK center.
pub const SOK_PASSPHRASE_ENV: &str = "WARIFU_SOK_PASSPHRASE";

/// Where the passphrase of the hybrid's separate SOK center comes from (its own, not the
/// Blom center's).
#[derive(Debug, Clone, Args)]
pub struct SokPassphraseArgs {
    /// The SOK center's passphrase, from this file (first line). Otherwise from
    /// WARIFU_SOK_PASSPHRASE, or a prompt on a terminal.
    #[arg(long, value_name = "FILE")]
    pub sok_passphrase_file: Option<PathBuf>,
}

/// One place a passphrase comes from: a file, else an environment variable, else a prompt.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    file: Option<&'a Path>,
    env: &'static str,
    flag: &'static str,
}

impl PassphraseArgs {
    /// `--passphrase-file`, else WARIFU_PASSPHRASE, else a prompt.
    pub fn source(&self) -> Source<'_> {
        Source {
            file: self.passphrase_file.as_deref(),
            env: PASSPHRASE_ENV,
            flag: "--passphrase-file",
        }
    }
}

impl NewPassphraseArgs {
    /// `--passphrase-file`, else WARIFU_PASSPHRASE, else a prompt.
    pub fn source(&self) -> Source<'_> {
        Source {
            file: self.passphrase_file.as_deref(),
            env: PASSPHRASE_ENV,
            flag: "--passphrase-file",
        }
    }
}

impl SokPassphraseArgs {
    /// `--sok-passphrase-file`, else WARIFU_SOK_PASSPHRASE, else a prompt.
    pub fn source(&self) -> Source<'_> {
        Source {
            file: self.sok_passphrase_file.as_deref(),
            env: SOK_PASSPHRASE_ENV,
            flag: "--sok-passphrase-file",
        }
    }
}
/// Reads a passphrase file: its first line, without the line ending. Never empty.
pub(crate) fn passphrase_from_file(path: &Path) -> Result<Secret> {
    let bytes = Zeroizing::new(
        crate::support::files::read_bounded(path, 64 * 1024)
            .with_context(|| format!("cannot read passphrase file {}", path.display()))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow!("passphrase file {} is not UTF-8", path.display()))?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        bail!("passphrase file {} is empty", path.display());
    }
    Ok(Secret::new(line))
}

fn passphrase_from_var(name: &str) -> Result<Option<Secret>> {
    match std::env::var(name) {
        Ok(v) if v.is_empty() => bail!("{name} is set but empty"),
        Ok(v) => Ok(Some(Secret::new(v))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{name} is not UTF-8"),
    }
}

/// Whether an interactive prompt is possible: standard input is a terminal.
pub(crate) fn can_prompt() -> bool {
    std::io::stdin().is_terminal()
}

pub(crate) fn prompt(text: &str) -> Result<Secret> {
    rpassword::prompt_password(text)
        .map(Secret::new)
        .context("cannot read the passphrase from the terminal")
}

/// The fewest characters a new passphrase may have (as the wallet asks).
pub const MIN_PASSPHRASE: usize = 8;

/// The environment variable holding the wallet passphrase (`wallet buy`, `up`).
pub const WALLET_PASSPHRASE_ENV: &str = "WARIFU_WALLET_PASSPHRASE";

/// A new passphrase of at least [`MIN_PASSPHRASE`] characters; the error never shows it.
fn long_enough(p: Secret) -> Result<Secret> {
    if p.expose().chars().count() < MIN_PASSPHRASE {
        bail!("a new passphrase needs at least {MIN_PASSPHRASE} characters");
    }
    Ok(p)
}

/// The passphrase to seal a new file with, or `None` to write it unsealed. Order: the flag's
/// file, `--no-passphrase`, WARIFU_PASSPHRASE, a prompt (twice, empty for none) on a terminal;
/// otherwise an error, so a secret is never written unsealed by accident.
pub fn new_passphrase(args: &NewPassphraseArgs, what: &str) -> Result<Option<Secret>> {
    new_passphrase_from(args.source(), args.no_passphrase, what)
}

/// [`new_passphrase`] from `source` (`none`: `--no-passphrase`).
pub fn new_passphrase_from(source: Source<'_>, none: bool, what: &str) -> Result<Option<Secret>> {
    if let Some(file) = source.file {
        return passphrase_from_file(file).and_then(long_enough).map(Some);
    }
    if none {
        return Ok(None);
    }
    if let Some(p) = passphrase_from_var(source.env)? {
        return long_enough(p).map(Some);
    }
    if !can_prompt() {
        bail!(
            "no passphrase for {what}: give {} FILE, set {}, \
             or pass --no-passphrase to write it unsealed",
            source.flag,
            source.env
        );
    }
    let first = prompt(&format!(
        "Passphrase to seal {what} (empty for none, file stays 0600): "
    ))?;
    if first.expose().is_empty() {
        return Ok(None);
    }
    let first = long_enough(first)?;
    let again = prompt("Repeat the passphrase: ")?;
    if first != again {
        bail!("the passphrases do not match");
    }
    Ok(Some(first))
}

/// The passphrase of an existing sealed file: the flag's file, WARIFU_PASSPHRASE, or a prompt.
pub(crate) fn existing_passphrase(args: &PassphraseArgs, path: &Path) -> Result<Secret> {
    existing_passphrase_from(args.source(), path)
}

/// [`existing_passphrase`] from `source`.
pub(crate) fn existing_passphrase_from(source: Source<'_>, path: &Path) -> Result<Secret> {
    if let Some(file) = source.file {
        return passphrase_from_file(file);
    }
    if let Some(p) = passphrase_from_var(source.env)? {
        return Ok(p);
    }
    if !can_prompt() {
        bail!(
            "{} is sealed under a passphrase: give {} FILE or set {}",
            path.display(),
            source.flag,
            source.env
        );
    }
    prompt(&format!("Passphrase of {}: ", path.display()))
}
/// An optional passphrase file for keys being written (`--key-passphrase-file`).
pub fn optional_passphrase(file: Option<&Path>) -> Result<Option<Secret>> {
    file.map(passphrase_from_file).transpose()
}
