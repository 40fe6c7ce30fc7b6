//! Files from the shell: atomic 0600/0644 writes, reading a file or standard input, JSON and
//! policy files with redacted errors, and sealed orders in JSON or binary.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use warifu_core::keysource::KeySource;
use warifu_core::policy::Policy;
use warifu_core::sealed::{Disclosed, ForwardedPart, Header, Recipient, SealedOrder};

/// Permissions of files holding secrets.
pub(crate) const SECRET_MODE: u32 = 0o600;
/// Permissions of files that are not secret (sealed orders, the register).
pub(crate) const PUBLIC_MODE: u32 = 0o644;

/// Whether an existing file at the destination may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace it (atomically).
    Replace,
    /// Refuse, even if another process creates it meanwhile.
    Refuse,
}

/// Writes a secret file: a temporary file (0600) in the same directory, synced, then renamed
/// over `path`, then the directory synced. A reader sees the old file or the new one, never
/// a partial one.
pub fn write_secret(path: &Path, bytes: &[u8], overwrite: Overwrite) -> Result<()> {
    write_atomic(path, bytes, SECRET_MODE, overwrite)
}

/// Writes a non-secret file atomically (0644).
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes, PUBLIC_MODE, Overwrite::Replace)
}

pub(crate) fn write_atomic(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> Result<()> {
    let dir = parent(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".warifu-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let persisted = match overwrite {
        Overwrite::Replace => tmp.persist(path),
        Overwrite::Refuse => tmp.persist_noclobber(path),
    };
    persisted.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow!(
                "{} already exists; refusing to overwrite it",
                path.display()
            )
        } else {
            anyhow!(e.error).context(format!("cannot write {}", path.display()))
        }
    })?;
    sync_dir(dir);
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a rename in `dir` durable. Best effort: not every platform can open a directory.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Creates `dir` (and its parents) if missing; a directory this call creates gets 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    Ok(warifu_services::files::create_private_dir(dir)?)
}

pub use warifu_services::files::{MAX_INPUT, MAX_KEY_FILE, read_bounded};

/// Reads a whole input file (at most [`MAX_INPUT`]), naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    Ok(read_bounded(path, MAX_INPUT)?)
}

/// Reads a file, or standard input for `-` (at most [`MAX_INPUT`] either way).
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        if buf.len() as u64 > MAX_INPUT {
            return Err(warifu_services::files::too_large("standard input", MAX_INPUT).into());
        }
        return Ok(buf);
    }
    read_file(path)
}
/// Writes `bytes` to `path`, or to standard output for `-`.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .context("cannot write to standard output")?;
        return Ok(());
    }
    write_public(path, bytes)
}
/// The Unix time now.
pub(crate) fn now() -> Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs())
}

/// Redacts the values serde_json quotes in an error message (it echoes wrong values, which in
/// an order may be a card number), keeping the schema's expectation and the position.
pub(crate) fn redact_serde(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let (head, tail) = match msg.find(", expected") {
        Some(i) => msg.split_at(i),
        None => (msg.as_str(), ""),
    };
    format!("{}{tail}", warifu_services::error::redact_quoted(head))
}

/// Reads a JSON file into `T`, with an error naming the file and what it should be.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = read_input(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!(
            "{}: not a valid {what}: {}",
            path.display(),
            redact_serde(&e)
        )
    })
}

pub(crate) fn read_policy(path: &Path) -> Result<Policy> {
    let text = String::from_utf8(read_file(path)?)
        .map_err(|_| anyhow!("{}: not UTF-8", path.display()))?;
    Policy::from_toml(&text).with_context(|| format!("{}: not a valid policy", path.display()))
}

pub(crate) fn pretty<T: Serialize>(value: &T) -> Result<String> {
    let mut s = serde_json::to_string_pretty(value).context("cannot encode JSON")?;
    s.push('\n');
    Ok(s)
}
/// A whole sealed order or one forwarded part.
pub(crate) enum Parcel {
    Whole(SealedOrder),
    Forwarded(ForwardedPart),
}

impl Parcel {
    /// Reads JSON (`{…}`) or binary, whole order or forwarded part.
    pub(crate) fn read(path: &Path) -> Result<Parcel> {
        let bytes = read_input(path)?;
        let name = path.display();
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow!("{name}: not valid JSON: {}", redact_serde(&e)))?;
            return if value.get("parts").is_some() {
                serde_json::from_value(value)
                    .map(Parcel::Whole)
                    .map_err(|e| anyhow!("{name}: not a valid sealed order: {}", redact_serde(&e)))
            } else {
                serde_json::from_value(value)
                    .map(Parcel::Forwarded)
                    .map_err(|e| {
                        anyhow!("{name}: not a valid forwarded part: {}", redact_serde(&e))
                    })
            };
        }
        let whole = match SealedOrder::decode(&bytes) {
            Ok(s) => return Ok(Parcel::Whole(s)),
            Err(e) => e,
        };
        match ForwardedPart::decode(&bytes) {
            Ok(f) => Ok(Parcel::Forwarded(f)),
            Err(part) if part == whole => {
                Err(anyhow!(whole)).with_context(|| format!("{name}: not a valid sealed order"))
            }
            Err(part) => {
                bail!("{name}: neither a sealed order ({whole}) nor a forwarded part ({part})")
            }
        }
    }

    pub(crate) fn open<R: Recipient>(
        &self,
        policy: &Policy,
        keys: &dyn KeySource,
    ) -> Result<(Header, Disclosed)> {
        let view = match self {
            Parcel::Whole(s) => s.open::<R>(policy, keys)?,
            Parcel::Forwarded(f) => f.open::<R>(policy, keys)?,
        };
        Ok((view.header.clone(), view.fields.clone()))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use warifu_core::order::Card;

    #[test]
    fn serde_errors_do_not_echo_values() {
        let card = "4111111111111111";
        let bad = format!(r#"{{"number": {card}, "expiry": {{"year": 2030, "month": 1}}}}"#);
        let e = serde_json::from_str::<Card>(&bad).expect_err("wrong type");
        assert!(e.to_string().contains(card), "serde echoes it: {e}");
        let red = redact_serde(&e);
        assert!(!red.contains(card), "{red}");
        assert!(red.contains("expected"), "{red}");
        let bad = format!(r#"{{"number": "x", "expiry": "{card}"}}"#);
        let e = serde_json::from_str::<Card>(&bad).expect_err("wrong type");
        assert!(!redact_serde(&e).contains(card));
    }

    #[test]
    fn atomic_write_sets_mode_and_refuses_clobber() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("x.key");
        write_secret(&path, b"one", Overwrite::Refuse).expect("write");
        let err = write_secret(&path, b"two", Overwrite::Refuse).expect_err("exists");
        assert!(err.to_string().contains("already exists"));
        assert_eq!(fs::read(&path).expect("read"), b"one");
        write_secret(&path, b"three", Overwrite::Replace).expect("replace");
        assert_eq!(fs::read(&path).expect("read"), b"three");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }
}
