//! Key files on disk: the key center's file names, loading and encoding keys (asking for a
//! passphrase only when sealed), file names for identifiers, and the register of issued
//! identifiers.
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::support::files::{MAX_KEY_FILE, PUBLIC_MODE, parent, read_bounded, sync_dir};
use crate::support::passphrase::{
    PassphraseArgs, Source, existing_passphrase, existing_passphrase_from,
};
use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use warifu_core::PartyId;
use warifu_core::blom::Master;
use warifu_core::keyfile::{KdfParams, KeyFile, SokKeyFile};
use warifu_core::keysource::KeySource;
use warifu_core::rand::OsRandom;
use warifu_core::secret::Secret;
use warifu_core::sok::{KeyScheme, PartyKeys, SokMaster};
use zeroize::Zeroizing;

/// The Blom master's file name inside a key center directory.
pub const MASTER_FILE: &str = "master.key";
/// The SOK master's file name inside a key center directory (the hybrid's second center).
pub const SOK_MASTER_FILE: &str = "sok-master.key";
/// The key center's revocation signing key and its latest signed list, beside its masters
/// (the same names as in a local deployment's key center).
pub use warifu_services::dev::local::{REVOCATION_KEY_FILE, REVOCATIONS_FILE};
/// The file in a hybrid's Blom center naming its separate SOK center (a directory path).
pub const SOK_CENTER_FILE: &str = "sok-center.txt";
/// The file in a hybrid's Blom center naming the share centers of a split SOK master
/// (`T/N`, then one directory per line).
pub const SOK_SHARES_FILE: &str = "sok-shares.txt";
/// A SOK share center's share of the master.
pub const SOK_SHARE_FILE: &str = "sok-share.key";
/// The register's file name inside a key center directory.
pub const REGISTER_FILE: &str = "issued.txt";
/// The extension of key files.
pub const KEY_EXT: &str = "key";

/// Reads and decodes a key file, asking for its passphrase only if it is sealed.
pub fn load_key_file(path: &Path, pass: &PassphraseArgs) -> Result<KeyFile> {
    let bytes = Zeroizing::new(read_bounded(path, MAX_KEY_FILE)?);
    let secret = if KeyFile::is_sealed(&bytes) {
        Some(existing_passphrase(pass, path)?)
    } else {
        None
    };
    KeyFile::decode(&bytes, secret.as_ref())
        .with_context(|| format!("cannot open key file {}", path.display()))
}

/// Loads a key center's master.
pub fn load_master(path: &Path, pass: &PassphraseArgs) -> Result<Master> {
    match load_key_file(path, pass)? {
        KeyFile::Master(m) => Ok(m),
        other => bail!(
            "{} holds a {}, not a key center's master",
            path.display(),
            other.kind_name()
        ),
    }
}

/// Loads a SOK key center's master.
pub fn load_sok_master(path: &Path, pass: Source<'_>) -> Result<SokMaster> {
    let bytes = Zeroizing::new(read_bounded(path, MAX_KEY_FILE)?);
    let secret = if KeyFile::is_sealed(&bytes) {
        Some(existing_passphrase_from(pass, path)?)
    } else {
        None
    };
    match SokKeyFile::decode(&bytes, secret.as_ref())
        .with_context(|| format!("cannot open key file {}", path.display()))?
    {
        SokKeyFile::Master(m) => Ok(m),
        other => bail!(
            "{} holds a {}, not a SOK key center's master",
            path.display(),
            other.kind_name()
        ),
    }
}

/// A service's or wallet's key source: its key files in the chosen scheme, behind the
/// pairwise-key cache. The one place the CLI turns key files into a party's key source.
pub fn party_key_source(
    paths: &[PathBuf],
    use_args: &crate::support::flags::KeyUseArgs,
    pass: &PassphraseArgs,
) -> Result<std::sync::Arc<dyn KeySource>> {
    let source = load_party_keys(paths, use_args.scheme.map(KeyScheme::from), pass)?;
    Ok(warifu_services::keys::cached(source, use_args.key_cache))
}

/// Loads a party's key from one key file (see [`load_party_keys`]), in the strongest scheme
/// it serves.
pub fn load_party_key(path: &Path, pass: &PassphraseArgs) -> Result<Box<dyn KeySource>> {
    load_party_keys(std::slice::from_ref(&path.to_path_buf()), None, pass)
}

/// Loads a party's key source from its key files: one hybrid bundle (kind 6), a Blom and a
/// SOK personal key from two key centers, a single Blom or SOK key, or a predistributed
/// table (【0053】). `scheme` picks the scheme; without it, the hybrid when both halves are
/// there, else the one scheme the files serve.
pub fn load_party_keys(
    paths: &[PathBuf],
    scheme: Option<KeyScheme>,
    pass: &PassphraseArgs,
) -> Result<Box<dyn KeySource>> {
    let mut keys = PartyKeys::new();
    let mut table = None;
    for path in paths {
        let bytes = Zeroizing::new(read_bounded(path, MAX_KEY_FILE)?);
        let secret = if KeyFile::is_sealed(&bytes) {
            Some(existing_passphrase(pass, path)?)
        } else {
            None
        };
        let added = if SokKeyFile::is_sok_kind(&bytes) {
            keys.add_file(&bytes, secret.as_ref())
        } else {
            match KeyFile::decode(&bytes, secret.as_ref()) {
                Ok(KeyFile::Personal(k)) => keys.add_blom(k),
                Ok(KeyFile::Predistributed(t)) => {
                    table = Some(t);
                    Ok(())
                }
                Ok(KeyFile::Master(_)) => bail!(
                    "{} is a key center's master, not a party's key; use a key from `warifu keycenter issue`",
                    path.display()
                ),
                Err(e) => Err(e),
            }
        };
        added.with_context(|| format!("cannot open key file {}", path.display()))?;
    }
    if let Some(t) = table {
        if paths.len() > 1 || scheme.is_some() {
            bail!("a predistributed table (【0053】) is used alone, without --scheme");
        }
        return Ok(Box::new(t));
    }
    let scheme = match scheme {
        Some(s) => s,
        None => keys
            .available()
            .last()
            .copied()
            .context("no key file given")?,
    };
    keys.key_source(scheme)
        .context("the key files do not serve this scheme")
}

/// Encodes a key file, sealed under `pass` if given, with the default Argon2id costs.
pub fn encode_key_file(file: &KeyFile, pass: Option<&Secret>) -> Result<Zeroizing<Vec<u8>>> {
    file.encode(pass.map(|p| (p, KdfParams::default())), &mut OsRandom)
        .map(Zeroizing::new)
        .with_context(|| format!("cannot encode the {}", file.kind_name()))
}

/// Encodes a SOK or hybrid key file, sealed under `pass` if given, with the default costs.
pub fn encode_sok_key_file(file: &SokKeyFile, pass: Option<&Secret>) -> Result<Zeroizing<Vec<u8>>> {
    file.encode(pass.map(|p| (p, KdfParams::default())), &mut OsRandom)
        .map(Zeroizing::new)
        .with_context(|| format!("cannot encode the {}", file.kind_name()))
}
/// The longest file stem we produce; longer ones are shortened and suffixed with a hash.
pub(crate) const MAX_STEM: usize = 200;

/// The key file name of an identifier: `role_name.key`, where the name keeps ASCII letters,
/// digits and `. @ + - _` and percent-encodes every other byte (so `%` and `/` too). The
/// role never contains `_`, so distinct identifiers give distinct names; very long ones are
/// cut and suffixed with 16 hex digits of SHA-256 of the identifier.
pub fn file_name_for(id: &PartyId) -> String {
    let (role, name) = id.as_str().split_once(':').unwrap_or(("", id.as_str()));
    let mut stem = format!("{role}_");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b".@+-_".contains(&b) {
            stem.push(char::from(b));
        } else {
            stem.push_str(&format!("%{b:02X}"));
        }
    }
    if stem.len() > MAX_STEM {
        let digest = Sha256::digest(id.as_str().as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let mut cut = MAX_STEM - 17;
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        stem.truncate(cut);
        stem.push('-');
        stem.push_str(&hex);
    }
    format!("{stem}.{KEY_EXT}")
}

/// Parses identifiers given on the command line, dropping repeats (first wins).
pub fn parse_ids(raw: &[String]) -> Result<Vec<PartyId>> {
    let mut ids: Vec<PartyId> = Vec::with_capacity(raw.len());
    for s in raw {
        let id = PartyId::parse(s)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The key center's register of issued identifiers (`issued.txt`, one per line), held open
/// under an exclusive lock so two `issue` runs cannot interleave.
pub struct Register {
    path: PathBuf,
    file: File,
    ids: Vec<PartyId>,
    ends_with_newline: bool,
}

impl Register {
    /// Creates an empty register; fails if one exists.
    pub fn create(path: &Path) -> Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(PUBLIC_MODE);
        }
        let f = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow!(
                    "{} already exists; refusing to overwrite it",
                    path.display()
                )
            } else {
                anyhow!(e).context(format!("cannot create {}", path.display()))
            }
        })?;
        f.sync_all()
            .with_context(|| format!("cannot write {}", path.display()))?;
        sync_dir(parent(path));
        Ok(())
    }

    /// Opens and locks the register, reading every identifier (blank lines and `#` comments
    /// are skipped; a bad line is an error naming its number).
    pub fn open(path: &Path) -> Result<Register> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the register {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .with_context(|| format!("cannot read {} (is it UTF-8?)", path.display()))?;
        let ids = Register::parse(&text)
            .with_context(|| format!("the register {} is damaged", path.display()))?;
        Ok(Register {
            path: path.to_owned(),
            file,
            ids,
            ends_with_newline: text.is_empty() || text.ends_with('\n'),
        })
    }

    /// Reads the identifiers without locking (for `show`).
    pub fn read(path: &Path) -> Result<Vec<PartyId>> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read the register {}", path.display()))?;
        Register::parse(&text)
            .with_context(|| format!("the register {} is damaged", path.display()))
    }

    fn parse(text: &str) -> Result<Vec<PartyId>> {
        text.lines()
            .enumerate()
            .map(|(n, l)| (n + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .map(|(n, l)| PartyId::parse(l).with_context(|| format!("line {n}")))
            .collect()
    }

    /// The identifiers issued so far.
    pub fn ids(&self) -> &[PartyId] {
        &self.ids
    }

    /// Whether `id` is registered.
    pub fn contains(&self, id: &PartyId) -> bool {
        self.ids.contains(id)
    }

    /// Appends `id` and syncs it to disk before returning.
    pub fn append(&mut self, id: &PartyId) -> Result<()> {
        let mut line = String::new();
        if !self.ends_with_newline {
            line.push('\n');
        }
        line.push_str(id.as_str());
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot append to {}", self.path.display()))?;
        self.ends_with_newline = true;
        self.ids.push(id.clone());
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PartyId {
        PartyId::parse(s).expect("id")
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(
            file_name_for(&id("merchant:shop.example")),
            "merchant_shop.example.key"
        );
        assert_eq!(
            file_name_for(&id("cardholder:alice@mail.example")),
            "cardholder_alice@mail.example.key"
        );
        let a = file_name_for(&id("cardholder:a/b"));
        let b = file_name_for(&id("cardholder:a%2Fb"));
        let c = file_name_for(&id("cardholder:..")); // stays inside the directory
        assert_eq!(a, "cardholder_a%2Fb.key");
        assert_ne!(a, b);
        assert!(!a.contains('/') && !c.contains('/'));
        assert_eq!(c, "cardholder_...key");
        let long1 = file_name_for(&id(&format!("issuer:{}/1", "x".repeat(240))));
        let long2 = file_name_for(&id(&format!("issuer:{}/2", "x".repeat(240))));
        assert!(long1.len() <= MAX_STEM + 4, "{}", long1.len());
        assert_ne!(long1, long2);
        let wide = file_name_for(&id(&format!("issuer:{}", "é".repeat(100))));
        assert!(wide.len() <= MAX_STEM + 4);
    }

    #[test]
    fn register_round_trips_and_reports_bad_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join(REGISTER_FILE);
        Register::create(&path).expect("create");
        assert!(Register::create(&path).is_err(), "no overwrite");
        {
            let mut r = Register::open(&path).expect("open");
            r.append(&id("merchant:m")).expect("append");
            r.append(&id("issuer:i")).expect("append");
        }
        assert_eq!(
            Register::read(&path).expect("read"),
            vec![id("merchant:m"), id("issuer:i")]
        );
        fs::write(&path, "merchant:m\n# note\n\nnot an id\n").expect("write");
        let err = format!("{:#}", Register::read(&path).expect_err("bad line"));
        assert!(err.contains("line 4"), "{err}");
        fs::write(&path, "merchant:m").expect("write");
        let mut r = Register::open(&path).expect("open");
        r.append(&id("issuer:i")).expect("append");
        drop(r);
        assert_eq!(Register::read(&path).expect("read").len(), 2);
    }
}
