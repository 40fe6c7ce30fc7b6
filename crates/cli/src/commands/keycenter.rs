//! `warifu keycenter`: create a master, issue personal keys, show the parameters and costs,
//! and the 【0053】 variant of keys handed out per pair.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::support::files::{self, Overwrite};
use crate::support::flags::SchemeArg;
use crate::support::format::{bound_words, print};
use crate::support::keystore::{
    self, MASTER_FILE, REGISTER_FILE, REVOCATION_KEY_FILE, REVOCATIONS_FILE, Register,
    SOK_CENTER_FILE, SOK_MASTER_FILE, SOK_SHARE_FILE, SOK_SHARES_FILE, encode_key_file,
    encode_sok_key_file, file_name_for,
};
use crate::support::passphrase::{
    self, NewPassphraseArgs, PassphraseArgs, SokPassphraseArgs, Source,
};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::{Path, PathBuf};
use warifu_core::PartyId;
use warifu_core::blom::{self, Master, Sizing};
use warifu_core::keycenter::{self, KeyCenter};
use warifu_core::keyfile::KdfParams;
use warifu_core::keyfile::{KeyFile, SokKeyFile};
use warifu_core::keysource::{self, pairwise_key};
use warifu_core::rand::OsRandom;
use warifu_core::revocation::{CenterSigningKey, RevocationList, SignedRevocationList};
use warifu_core::sok::{self, KeyScheme, SokMaster};
use warifu_core::sok_threshold::{self, MasterShare};
use warifu_services::directory::{Directory, Entry};
use zeroize::Zeroizing;

/// `warifu keycenter …`
#[derive(Debug, Subcommand)]
pub enum KeycenterCommand {
    /// Create a key center: a fresh master (OS CSPRNG) and an empty register of issued ids.
    Init(InitArgs),
    /// Issue the secret personal keys of one or more identifiers.
    Issue(IssueArgs),
    /// Show the parameters: k, the collusion bound, sizes and the cost of issuing a key.
    Show(ShowArgs),
    /// The patent's variant 【0053】: draw a random key for every pair of the given parties
    /// and write each party its table (no master, no collusion bound, no later additions).
    Predistribute(PredistributeArgs),
    /// The directory of institutions (identifier → role → endpoint) that parties use to
    /// find each other.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Revoke identifiers: sign the next revocation list (the last one plus these, serial + 1)
    /// and write it to DIR/revocations.json, for every party's `--revocations` file.
    Revoke(RevokeArgs),
}

/// `warifu keycenter revoke`
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The key center's directory (its revocation.key is created here on the first revoke
    /// if `init` did not make one, sealed like the master).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The passphrase of revocation.key (the master's), if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// The identifiers to revoke, each epoch separately (`cardholder:alice@mail.example`,
    /// `cardholder:alice@mail.example~2`).
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}
/// `warifu keycenter init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The key center's directory (created if missing): master.key and issued.txt (Blom),
    /// sok-master.key (SOK).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Which masters to create: `blom`, `sok`, or `hybrid` (both: two centers, the Blom
    /// one in DIR and the SOK one in --sok-dir, each under its own passphrase).
    #[arg(long, value_enum, default_value_t = SchemeArg::Hybrid)]
    pub scheme: SchemeArg,
    /// The hybrid's SOK center (created if missing; default: DIR-sok beside DIR). DIR's
    /// sok-center.txt names it, so that `issue` and `show` find it.
    #[arg(long, value_name = "DIR", conflicts_with = "single_center")]
    pub sok_dir: Option<PathBuf>,
    /// Put both masters of the hybrid in DIR under one passphrase: whoever holds DIR then
    /// derives every pairwise key (not the default).
    #[arg(long, alias = "one-center")]
    pub single_center: bool,
    /// Split the SOK master among N share centers, any T of which issue a key (`T/N`, e.g.
    /// `2/3`): share i goes to SOK-DIR-i (SOK-DIR: --sok-dir, default DIR-sok); the master
    /// itself is never written. DIR's sok-shares.txt names the share centers.
    #[arg(long, value_name = "T/N", conflicts_with = "single_center")]
    pub sok_shares: Option<String>,
    /// The collusion bound of the Blom master: any k+1 key holders together recover it.
    #[arg(long, default_value_t = warifu_core::blom::DEFAULT_K)]
    pub k: u32,
    /// Protection of master.key (and revocation.key; of both masters with
    /// --single-center). --no-passphrase leaves every master of this init unsealed.
    #[command(flatten)]
    pub passphrase: NewPassphraseArgs,
    /// Protection of the separate SOK center's sok-master.key: its own passphrase.
    #[command(flatten)]
    pub sok_passphrase: SokPassphraseArgs,
}

/// `warifu keycenter issue`
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The key center's directory.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to write the personal keys, one `<identifier>.key` file each.
    #[arg(long, value_name = "OUTDIR")]
    pub out: PathBuf,
    /// The passphrase of master.key, if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Seal every issued key under the passphrase in this file (default: unsealed, 0600).
    #[arg(long, value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// Issue only this scheme's keys. Default: every master the center holds or names (both
    /// → one hybrid key file each; a Blom or a SOK center alone → its own key file).
    #[arg(long, value_enum)]
    pub scheme: Option<SchemeArg>,
    /// The hybrid's SOK center (default: the one DIR's sok-center.txt names).
    #[arg(long, value_name = "DIR")]
    pub sok_dir: Option<PathBuf>,
    /// The passphrase of the separate SOK center's master.
    #[command(flatten)]
    pub sok_passphrase: SokPassphraseArgs,
    /// Identifiers such as `cardholder:alice@mail.example` or `merchant:shop.example`.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

/// `warifu keycenter show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The key center's directory (reads k from master.key and counts issued.txt).
    #[arg(long, value_name = "DIR", required_unless_present = "k")]
    pub dir: Option<PathBuf>,
    /// Show the figures for this k without a key center (times a throwaway master).
    #[arg(long, conflicts_with = "dir")]
    pub k: Option<u32>,
    /// The passphrase of master.key, if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// The hybrid's SOK center (default: the one DIR's sok-center.txt names).
    #[arg(long, value_name = "DIR", requires = "dir")]
    pub sok_dir: Option<PathBuf>,
    /// The passphrase of the separate SOK center's master.
    #[command(flatten)]
    pub sok_passphrase: SokPassphraseArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `warifu keycenter predistribute`
#[derive(Debug, Args)]
pub struct PredistributeArgs {
    /// Where to write each party's table, one `<identifier>.key` file each.
    #[arg(long, value_name = "OUTDIR")]
    pub out: PathBuf,
    /// Replace existing key files (their old pairwise keys stop working).
    #[arg(long)]
    pub force: bool,
    /// Seal every table under the passphrase in this file (default: unsealed, 0600).
    #[arg(long, value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// The parties, at least two.
    #[arg(value_name = "ID", required = true, num_args = 2..)]
    pub ids: Vec<String>,
}
/// `warifu keycenter directory …`
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Add (or move) an institution: identifier → endpoint; the role is the identifier's.
    Add {
        /// The directory file (created if missing).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The identifier, e.g. `merchant:shop.example`.
        #[arg(long, value_name = "ID")]
        id: String,
        /// Its service's base URL, e.g. `http://127.0.0.1:8081`.
        #[arg(long, value_name = "URL")]
        endpoint: String,
    },
    /// Remove an institution.
    Remove {
        /// The directory file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The identifier.
        #[arg(long, value_name = "ID")]
        id: String,
    },
    /// List the institutions.
    List {
        /// The directory file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Name the key center's revocation key in the directory: parties verify the revocation
    /// lists of `--revocations` under it.
    Center {
        /// The directory file (created if missing).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The key center's directory (its revocation.key).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The passphrase of revocation.key, if it is sealed.
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
}

/// Runs `warifu keycenter directory …`.
pub fn directory(cmd: &DirectoryCommand) -> Result<()> {
    match cmd {
        DirectoryCommand::Add { file, id, endpoint } => {
            let mut d = if file.exists() {
                Directory::load(file)?
            } else {
                Directory::new()
            };
            let entry = Entry::new(PartyId::parse(id)?, endpoint)?;
            let line = format!("{} ({}) → {}\n", entry.id, entry.role, entry.endpoint);
            d.insert(entry);
            d.save(file)?;
            print(&line)
        }
        DirectoryCommand::Remove { file, id } => {
            let mut d = Directory::load(file)?;
            if !d.remove(&PartyId::parse(id)?) {
                bail!("{id} is not in {}", file.display());
            }
            d.save(file)?;
            Ok(())
        }
        DirectoryCommand::Center {
            file,
            dir,
            passphrase,
        } => {
            let mut d = if file.exists() {
                Directory::load(file)?
            } else {
                Directory::new()
            };
            let key = load_revocation_key(&dir.join(REVOCATION_KEY_FILE), passphrase)?;
            d.set_revocation_key(key.public());
            d.save(file)?;
            print(&format!(
                "{}: revocation key of {} (fingerprint {})\n",
                file.display(),
                dir.display(),
                fingerprint(&key.public().to_bytes())
            ))
        }
        DirectoryCommand::List { file } => {
            let d = Directory::load(file)?;
            let mut out = String::new();
            if let Some(k) = d.revocation_key() {
                out.push_str(&format!(
                    "revocation key fingerprint {}\n",
                    fingerprint(&k.to_bytes())
                ));
            }
            for e in d.entries() {
                out.push_str(&format!("{:<10} {:<32} {}\n", e.role, e.id, e.endpoint));
            }
            print(&out)
        }
    }
}
/// Runs a `keycenter` subcommand.
pub fn run(cmd: &KeycenterCommand) -> Result<()> {
    match cmd {
        KeycenterCommand::Init(a) => init(a),
        KeycenterCommand::Issue(a) => issue(a),
        KeycenterCommand::Show(a) => show(a),
        KeycenterCommand::Predistribute(a) => predistribute(a),
        KeycenterCommand::Directory(c) => directory(c),
        KeycenterCommand::Revoke(a) => revoke(a),
    }
}

/// Reads the key center's revocation signing key.
fn load_revocation_key(path: &Path, pass: &PassphraseArgs) -> Result<CenterSigningKey> {
    let bytes = Zeroizing::new(files::read_bounded(path, files::MAX_KEY_FILE)?);
    let secret = KeyFile::is_sealed(&bytes)
        .then(|| passphrase::existing_passphrase(pass, path))
        .transpose()?;
    CenterSigningKey::decode_file(&bytes, secret.as_ref())
        .with_context(|| format!("cannot open the revocation key {}", path.display()))
}

/// Writes a new revocation signing key into `dir`, sealed under `pass` if given.
fn write_revocation_key(
    dir: &Path,
    pass: Option<&warifu_core::secret::Secret>,
    out: &mut String,
) -> Result<CenterSigningKey> {
    let path = dir.join(REVOCATION_KEY_FILE);
    let key =
        CenterSigningKey::generate(&mut OsRandom).context("cannot generate the revocation key")?;
    let bytes = Zeroizing::new(
        key.encode_file(pass.map(|p| (p, KdfParams::default())), &mut OsRandom)
            .context("cannot encode the revocation key")?,
    );
    files::write_secret(&path, &bytes, Overwrite::Refuse)?;
    writeln!(
        out,
        "  {}  revocation signing key (BLS12-381), {}; fingerprint {}",
        path.display(),
        if pass.is_some() {
            "sealed under a passphrase"
        } else {
            "NOT sealed (0600 only)"
        },
        fingerprint(&key.public().to_bytes())
    )?;
    Ok(key)
}

/// The list the center signed last (DIR/revocations.json), verified under its key when it
/// is given; an empty list before the first revoke.
fn held_list(dir: &Path, key: Option<&CenterSigningKey>) -> Result<RevocationList> {
    let path = dir.join(REVOCATIONS_FILE);
    if !path.exists() {
        return Ok(RevocationList::default());
    }
    let text = String::from_utf8(files::read_file(&path)?)
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    let signed = SignedRevocationList::from_json(&text)?;
    if let Some(key) = key {
        signed.verify(&key.public()).map_err(|_| {
            anyhow::anyhow!(
                "{} is not signed by this key center's revocation key: refusing to extend it",
                path.display()
            )
        })?;
    }
    Ok(signed.list)
}

fn revoke(args: &RevokeArgs) -> Result<()> {
    let ids = keystore::parse_ids(&args.ids)?;
    let key_path = args.dir.join(REVOCATION_KEY_FILE);
    let mut out = String::new();
    let key = if key_path.exists() {
        load_revocation_key(&key_path, &args.passphrase)?
    } else {
        // A center made before revocation lists: its key is made now, sealed like its master.
        let master = [MASTER_FILE, SOK_MASTER_FILE]
            .map(|f| args.dir.join(f))
            .into_iter()
            .find(|p| p.exists())
            .with_context(|| format!("{} holds no key center", args.dir.display()))?;
        let sealed = KeyFile::is_sealed(&files::read_bounded(&master, files::MAX_KEY_FILE)?);
        let pass = sealed
            .then(|| passphrase::existing_passphrase(&args.passphrase, &master))
            .transpose()?;
        writeln!(out, "created the key center's revocation key:")?;
        let key = write_revocation_key(&args.dir, pass.as_ref(), &mut out)?;
        writeln!(
            out,
            "  name it in the parties' directory: warifu keycenter directory center --file DIRECTORY --dir {}",
            args.dir.display()
        )?;
        key
    };
    let held = held_list(&args.dir, Some(&key))?;
    let fresh: Vec<PartyId> = ids.into_iter().filter(|id| !held.is_revoked(id)).collect();
    let path = args.dir.join(REVOCATIONS_FILE);
    if fresh.is_empty() {
        writeln!(
            out,
            "already revoked: {} unchanged (serial {})",
            path.display(),
            held.serial
        )?;
        return print(&out);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signed = key.sign(held.with(fresh.iter().cloned(), now));
    files::write_public(&path, (signed.to_json() + "\n").as_bytes())?;
    writeln!(
        out,
        "revocation list serial {} ({} identifier(s) revoked) written to {}",
        signed.list.serial,
        signed.list.revoked.len(),
        path.display()
    )?;
    for id in &fresh {
        let next = next_epoch(id, &args.dir, &signed.list)?;
        writeln!(
            out,
            "  revoked {id}; re-issue it as {next}: warifu keycenter issue --dir {} --out OUTDIR {next}",
            args.dir.display()
        )?;
    }
    writeln!(
        out,
        "copy it to every party's --revocations file (services re-read it within {} s; wallets on their next run)",
        warifu_services::revocations::WATCH_PERIOD.as_secs()
    )?;
    if let Ok(register) = Register::read(&args.dir.join(REGISTER_FILE)) {
        writeln!(
            out,
            "revoked keys still count toward Blom's k: the register holds {} identifier(s), revoked ones included",
            register.len()
        )?;
    }
    print(&out)
}

/// The first epoch of `id`'s identity that is neither registered nor revoked.
fn next_epoch(id: &PartyId, dir: &Path, revoked: &RevocationList) -> Result<PartyId> {
    let registered = Register::read(&dir.join(REGISTER_FILE)).unwrap_or_default();
    let used = registered
        .iter()
        .chain(revoked.revoked.iter())
        .filter(|other| other.identity() == id.identity())
        .map(PartyId::epoch)
        .max()
        .unwrap_or(1)
        .max(id.epoch());
    Ok(id.with_epoch(used.saturating_add(1))?)
}

/// The first 8 bytes of SHA-256 of a public key, in groups of four hex digits.
fn fingerprint(public: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(public)[..8])
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
/// Where `init` puts the SOK master: DIR for a SOK center or a single hybrid center, else
/// the separate SOK center (`--sok-dir`, default DIR-sok).
fn init_sok_dir(args: &InitArgs) -> Result<PathBuf> {
    let scheme = KeyScheme::from(args.scheme);
    if scheme != KeyScheme::Hybrid {
        if args.sok_dir.is_some() || args.single_center || args.sok_shares.is_some() {
            bail!("--sok-dir, --sok-shares and --single-center are for the hybrid scheme");
        }
        return Ok(args.dir.clone());
    }
    if args.single_center {
        return Ok(args.dir.clone());
    }
    if let Some(d) = &args.sok_dir {
        return Ok(d.clone());
    }
    let name = args
        .dir
        .file_name()
        .context("give --sok-dir DIR for the SOK center (DIR has no name to suffix)")?;
    let mut sibling = name.to_owned();
    sibling.push("-sok");
    Ok(args.dir.with_file_name(sibling))
}

fn init(args: &InitArgs) -> Result<()> {
    let scheme = KeyScheme::from(args.scheme);
    let shares = args.sok_shares.as_deref().map(parse_shares).transpose()?;
    let sok_dir = init_sok_dir(args)?;
    let separate = sok_dir != args.dir;
    let sok_path = sok_dir.join(SOK_MASTER_FILE);
    if scheme != KeyScheme::Blom && sok_path.exists() {
        bail!(
            "{} already exists: refusing to overwrite a master (every key it issued would stop working)",
            sok_path.display()
        );
    }
    if scheme == KeyScheme::Sok {
        return init_sok(args, &sok_path);
    }
    let master_path = args.dir.join(MASTER_FILE);
    let register_path = args.dir.join(REGISTER_FILE);
    if master_path.exists() {
        bail!(
            "{} already exists: refusing to overwrite a master (every key it issued would stop working)",
            master_path.display()
        );
    }
    if register_path.exists() {
        bail!(
            "{} exists without a master: use an empty directory for a new key center",
            register_path.display()
        );
    }
    if args.k == 0 || args.k > blom::MAX_K {
        bail!("--k must be in 1..={}, got {}", blom::MAX_K, args.k);
    }
    let pass = passphrase::new_passphrase(&args.passphrase, MASTER_FILE)?;
    // The separate SOK center has a passphrase of its own (none with --no-passphrase).
    let sok_pass = if separate {
        let p = passphrase::new_passphrase_from(
            args.sok_passphrase.source(),
            args.passphrase.no_passphrase,
            &format!("the SOK center's {SOK_MASTER_FILE}"),
        )?;
        if p.is_some() && p == pass {
            bail!(
                "the SOK center's passphrase is the Blom center's: two centers need two passphrases"
            );
        }
        p
    } else {
        pass.clone()
    };
    files::ensure_private_dir(&args.dir)?;
    let sizing = Sizing::for_k(args.k);
    // No step to count (one draw, one sealing): a spinner says what takes the time.
    let spinner = ProgressBar::new_spinner().with_message(format!(
        "generating and sealing a {} master for k = {} …",
        human_bytes(sizing.master_bytes),
        args.k
    ));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let master = Master::generate(args.k, &mut OsRandom).context("cannot generate the master")?;
    let bytes = encode_key_file(&KeyFile::Master(master), pass.as_ref())?;
    spinner.finish_and_clear();
    Register::create(&register_path)?;
    if let Err(e) = files::write_secret(&master_path, &bytes, Overwrite::Refuse) {
        let _ = std::fs::remove_file(&register_path);
        return Err(e);
    }
    let mut out = String::new();
    writeln!(out, "created key center {}", args.dir.display())?;
    writeln!(
        out,
        "  {}  k = {}, {}, {}",
        master_path.display(),
        args.k,
        human_bytes(sizing.master_bytes),
        if pass.is_some() {
            "sealed under a passphrase"
        } else {
            "NOT sealed (0600 only)"
        }
    )?;
    writeln!(out, "  {}  empty register", register_path.display())?;
    writeln!(out, "  bound: {}", bound_words(args.k))?;
    let sok_center = args.dir.join(SOK_CENTER_FILE);
    let made = write_revocation_key(&args.dir, pass.as_ref(), &mut out)
        .map(drop)
        .and_then(|()| match (scheme, &shares) {
            (KeyScheme::Hybrid, Some((t, n))) => {
                write_sok_shares(args, &sok_dir, (*t, *n), sok_pass.as_ref(), &mut out)
            }
            (KeyScheme::Hybrid, None) if separate => {
                files::ensure_private_dir(&sok_dir)?;
                writeln!(out, "created SOK key center {}", sok_dir.display())?;
                write_sok_master(&sok_path, sok_pass.as_ref(), &mut out)?;
                let named = std::fs::canonicalize(&sok_dir)
                    .with_context(|| format!("cannot resolve {}", sok_dir.display()))?;
                files::write_public(&sok_center, format!("{}\n", named.display()).as_bytes())
            }
            (KeyScheme::Hybrid, None) => write_sok_master(&sok_path, pass.as_ref(), &mut out),
            _ => Ok(()),
        });
    if let Err(e) = made {
        // A half-made center would later pass for another one: remove what was written.
        let revocation_key = args.dir.join(REVOCATION_KEY_FILE);
        for f in [
            &master_path,
            &register_path,
            &sok_path,
            &sok_center,
            &revocation_key,
            &args.dir.join(SOK_SHARES_FILE),
        ] {
            let _ = std::fs::remove_file(f);
        }
        return Err(e);
    }
    match scheme {
        KeyScheme::Hybrid if shares.is_some() => writeln!(
            out,
            "scheme: hybrid (Blom ⊕ SOK), the SOK master split among share centers: no one \
             center derives a SOK key; `issue` combines the shares of enough of them."
        )?,
        KeyScheme::Hybrid if separate => writeln!(
            out,
            "scheme: hybrid (Blom ⊕ SOK) from two centers, each under its own passphrase: a \
             pairwise key needs both masters. Keep {} and {} on separate machines; `issue` \
             takes each (--sok-dir, default the one {SOK_CENTER_FILE} names).",
            args.dir.display(),
            sok_dir.display()
        )?,
        KeyScheme::Hybrid => {
            writeln!(
                out,
                "scheme: hybrid (Blom ⊕ SOK), both masters in one center"
            )?;
            eprintln!(
                "warning: --single-center: {} holds both masters under one passphrase, so whoever \
                 holds it derives every pairwise key; the default puts the SOK master in a \
                 second center",
                args.dir.display()
            );
        }
        _ => {}
    }
    print(&out)
}

/// Creates a SOK key center: only sok-master.key (no register: SOK has no collisions to
/// refuse and no collusion bound).
fn init_sok(args: &InitArgs, sok_path: &std::path::Path) -> Result<()> {
    let pass = passphrase::new_passphrase(&args.passphrase, SOK_MASTER_FILE)?;
    files::ensure_private_dir(&args.dir)?;
    let mut out = format!("created SOK key center {}\n", args.dir.display());
    write_sok_master(sok_path, pass.as_ref(), &mut out)?;
    if let Err(e) = write_revocation_key(&args.dir, pass.as_ref(), &mut out) {
        let _ = std::fs::remove_file(sok_path);
        return Err(e);
    }
    print(&out)
}

/// `T/N` with 1 ≤ T ≤ N ≤ 255.
fn parse_shares(s: &str) -> Result<(u8, u8)> {
    let parsed = s
        .split_once('/')
        .and_then(|(t, n)| Some((t.trim().parse::<u8>().ok()?, n.trim().parse::<u8>().ok()?)));
    match parsed {
        Some((t, n)) if t >= 1 && t <= n => Ok((t, n)),
        _ => bail!("--sok-shares takes T/N with 1 ≤ T ≤ N ≤ 255, e.g. 2/3; got {s}"),
    }
}

/// The share centers of a split SOK master: SOK-DIR-1 … SOK-DIR-N.
fn share_dir(sok_dir: &Path, i: u8) -> PathBuf {
    let mut name = sok_dir.file_name().unwrap_or_default().to_owned();
    name.push(format!("-{i}"));
    sok_dir.with_file_name(name)
}

/// Draws a SOK master, splits it `t` of `n` and writes share i into its own center
/// (sok-share.key, under `pass`), then DIR's sok-shares.txt naming them. The master is
/// dropped (wiped) here: no file ever holds it.
fn write_sok_shares(
    args: &InitArgs,
    sok_dir: &Path,
    (t, n): (u8, u8),
    pass: Option<&warifu_core::secret::Secret>,
    out: &mut String,
) -> Result<()> {
    let dirs: Vec<PathBuf> = (1..=n).map(|i| share_dir(sok_dir, i)).collect();
    if let Some(d) = dirs.iter().find(|d| d.join(SOK_SHARE_FILE).exists()) {
        bail!(
            "{} already holds a share: refusing to overwrite it",
            d.display()
        );
    }
    let master = SokMaster::generate(&mut OsRandom).context("cannot generate the SOK master")?;
    let public = master.public_key();
    let shares = sok_threshold::split(&master, t, n, &mut OsRandom)?;
    drop(master);
    let mut list = format!("{t}/{n}\n");
    for (share, dir) in shares.iter().zip(&dirs) {
        files::ensure_private_dir(dir)?;
        let bytes = Zeroizing::new(share.encode_file(
            &public,
            pass.map(|p| (p, KdfParams::default())),
            &mut OsRandom,
        )?);
        files::write_secret(&dir.join(SOK_SHARE_FILE), &bytes, Overwrite::Refuse)?;
        let named = std::fs::canonicalize(dir)
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        writeln!(list, "{}", named.display())?;
        writeln!(
            out,
            "created SOK share center {} (share {} of {n}, {})",
            dir.display(),
            share.index(),
            if pass.is_some() {
                "sealed under the SOK passphrase"
            } else {
                "NOT sealed (0600 only)"
            }
        )?;
    }
    writeln!(
        out,
        "  the SOK master (public key fingerprint {}) is split {t} of {n}: any {t} share centers issue a key, {} or fewer learn nothing; it was never written",
        fingerprint(&public),
        t - 1
    )?;
    files::write_public(&args.dir.join(SOK_SHARES_FILE), list.as_bytes())
}

/// Who issues the SOK half of a key: one master, or share centers combined.
enum SokIssuer {
    /// A SOK center's master.
    Master(SokMaster),
    /// `t` shares of a split master and the master's public key.
    Shares(Vec<MasterShare>, [u8; warifu_core::sok::G1_BYTES]),
}

impl SokIssuer {
    /// The SOK personal key of `id` (from shares: combined and checked against the master's
    /// public key).
    fn personal_key(&self, id: &PartyId) -> Result<warifu_core::sok::SokKey> {
        Ok(match self {
            SokIssuer::Master(m) => m.personal_key(id),
            SokIssuer::Shares(shares, public) => {
                let parts: Vec<_> = shares.iter().map(|s| s.key_share(id)).collect();
                sok_threshold::combine(id, &parts, public)
                    .with_context(|| format!("the share centers' keys for {id} do not combine"))?
            }
        })
    }
}

/// The first `t` share centers that DIR's sok-shares.txt names and that hold their share
/// (a center may be away); `None` if DIR names no share centers.
fn load_shares(dir: &Path, pass: &SokPassphraseArgs) -> Result<Option<SokIssuer>> {
    let list = dir.join(SOK_SHARES_FILE);
    if !list.exists() {
        return Ok(None);
    }
    let text = String::from_utf8(files::read_bounded(&list, 64 * 1024)?)
        .with_context(|| format!("{} is not UTF-8", list.display()))?;
    let mut lines = text.lines();
    let (t, n) = parse_shares(lines.next().unwrap_or_default())?;
    let (mut shares, mut public, mut away) = (Vec::new(), None, Vec::new());
    for center in lines.map(str::trim).filter(|l| !l.is_empty()) {
        let path = Path::new(center).join(SOK_SHARE_FILE);
        if shares.len() == usize::from(t) {
            break;
        }
        if !path.exists() {
            away.push(center.to_owned());
            continue;
        }
        let bytes = Zeroizing::new(files::read_bounded(&path, files::MAX_KEY_FILE)?);
        let secret = KeyFile::is_sealed(&bytes)
            .then(|| passphrase::existing_passphrase_from(pass.source(), &path))
            .transpose()?;
        let (share, key) = MasterShare::decode_file(&bytes, secret.as_ref())
            .with_context(|| format!("cannot open the share {}", path.display()))?;
        if public.is_some_and(|p| p != key) {
            bail!("{} is a share of another SOK master", path.display());
        }
        public = Some(key);
        shares.push(share);
    }
    match public {
        Some(public) if shares.len() == usize::from(t) => {
            Ok(Some(SokIssuer::Shares(shares, public)))
        }
        _ => bail!(
            "the SOK master is split {t} of {n}: {} share center(s) hold their share, {t} are needed (away: {})",
            shares.len(),
            away.join(", ")
        ),
    }
}

fn write_sok_master(
    path: &std::path::Path,
    pass: Option<&warifu_core::secret::Secret>,
    out: &mut String,
) -> Result<()> {
    let master = SokMaster::generate(&mut OsRandom).context("cannot generate the SOK master")?;
    let bytes = encode_sok_key_file(&SokKeyFile::Master(master), pass)?;
    files::write_secret(path, &bytes, Overwrite::Refuse)?;
    writeln!(
        out,
        "  {}  SOK master (BLS12-381 scalar), {}",
        path.display(),
        if pass.is_some() {
            "sealed under a passphrase"
        } else {
            "NOT sealed (0600 only)"
        }
    )?;
    Ok(())
}

fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} issuing [{bar:40}] {pos}/{len} {msg} ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The hybrid's SOK master of the center in `dir`: `sok_dir`'s if given, else DIR's own (a
/// SOK center, or a single hybrid center), else the separate SOK center DIR's
/// sok-center.txt names; with where its passphrase comes from (`sok_pass` for a separate
/// center, else `pass`). `None`: no SOK master.
fn sok_master<'a>(
    dir: &Path,
    sok_dir: Option<&Path>,
    pass: &'a PassphraseArgs,
    sok_pass: &'a SokPassphraseArgs,
) -> Result<Option<(PathBuf, Source<'a>)>> {
    let own = dir.join(SOK_MASTER_FILE);
    let named = dir.join(SOK_CENTER_FILE);
    let separate = match sok_dir {
        Some(d) => d.to_owned(),
        None if own.exists() => return Ok(Some((own, pass.source()))),
        None if named.exists() => {
            let text = String::from_utf8(files::read_bounded(&named, 64 * 1024)?)
                .with_context(|| format!("{} is not UTF-8", named.display()))?;
            PathBuf::from(text.lines().next().unwrap_or_default().trim())
        }
        None => return Ok(None),
    };
    let path = separate.join(SOK_MASTER_FILE);
    if !path.exists() {
        bail!(
            "the SOK center {} holds no {SOK_MASTER_FILE}",
            separate.display()
        );
    }
    Ok(Some((path, sok_pass.source())))
}

/// The halves `keycenter issue` issues: the requested scheme's, or every master present.
fn halves(args: &IssueArgs, has_sok: bool) -> Result<(bool, bool)> {
    let has_blom = args.dir.join(MASTER_FILE).exists();
    let (blom, sok) = match args.scheme.map(KeyScheme::from) {
        None => (has_blom, has_sok),
        Some(KeyScheme::Blom) => (true, false),
        Some(KeyScheme::Sok) => (false, true),
        Some(KeyScheme::Hybrid) => (true, true),
    };
    if !blom && !sok {
        bail!(
            "{} holds no master: run `warifu keycenter init --dir {}` first",
            args.dir.display(),
            args.dir.display()
        );
    }
    for (want, has, file) in [
        (blom, has_blom, MASTER_FILE),
        (sok, has_sok, SOK_MASTER_FILE),
    ] {
        if want && !has {
            bail!(
                "{} has no {file} (nor names a SOK center)",
                args.dir.display()
            );
        }
    }
    Ok((blom, sok))
}

fn issue(args: &IssueArgs) -> Result<()> {
    let ids = keystore::parse_ids(&args.ids)?;
    // The center's own list (DIR/revocations.json): a revoked identifier is never issued
    // again; its identity gets a new epoch.
    let revoked = held_list(&args.dir, None)?;
    if let Some(id) = ids.iter().find(|id| revoked.is_revoked(id)) {
        bail!(
            "{id} is revoked (revocation list serial {}): issue its next epoch instead, {}",
            revoked.serial,
            next_epoch(id, &args.dir, &revoked)?
        );
    }
    let key_pass = passphrase::optional_passphrase(args.key_passphrase_file.as_deref())?;
    let sok = sok_master(
        &args.dir,
        args.sok_dir.as_deref(),
        &args.passphrase,
        &args.sok_passphrase,
    )?;
    let split = args.sok_dir.is_none() && args.dir.join(SOK_SHARES_FILE).exists();
    let (with_blom, with_sok) = halves(args, sok.is_some() || split)?;
    let sok_master = match (&sok, with_sok) {
        (_, false) => None,
        (Some((path, source)), true) => {
            Some(SokIssuer::Master(keystore::load_sok_master(path, *source)?))
        }
        (None, true) => load_shares(&args.dir, &args.sok_passphrase)?,
    };
    if !with_blom {
        return issue_sok(args, &ids, sok_master, key_pass.as_ref());
    }
    let mut register = Register::open(&args.dir.join(REGISTER_FILE))?;
    let master = keystore::load_master(&args.dir.join(MASTER_FILE), &args.passphrase)?;
    let mut center = KeyCenter::new(master, register.ids().to_vec())
        .context("the register holds colliding identifiers")?;
    files::ensure_private_dir(&args.out)?;
    let bar = progress(ids.len() as u64);
    let (mut fresh, mut again) = (0usize, 0usize);
    let mut past_bound = false;
    let mut written = Vec::with_capacity(ids.len());
    for id in &ids {
        bar.set_message(id.to_string());
        let key = if sok_master.is_some() {
            let (key, past) = center
                .issue_in_hybrid(id)
                .with_context(|| format!("cannot issue a key for {id}"))?;
            past_bound |= past;
            key
        } else {
            center
                .issue(id)
                .with_context(|| format!("cannot issue a key for {id}"))?
        };
        // Register first: a registered identifier without a key file is harmless (issuing
        // again gives the same key), a key whose identifier is not registered is not.
        if register.contains(id) {
            again += 1;
        } else {
            register.append(id)?;
            fresh += 1;
        }
        let path = args.out.join(file_name_for(id));
        let bytes = match &sok_master {
            Some(m) => encode_sok_key_file(
                &SokKeyFile::Hybrid(key, m.personal_key(id)?),
                key_pass.as_ref(),
            )?,
            None => encode_key_file(&KeyFile::Personal(key), key_pass.as_ref())?,
        };
        files::write_secret(&path, &bytes, Overwrite::Replace)?;
        written.push((id.clone(), path));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut out = String::new();
    writeln!(
        out,
        "issued {} {} key(s) into {} ({fresh} new, {again} issued before); the register holds {} identifier(s)",
        written.len(),
        if sok_master.is_some() {
            "hybrid (Blom + SOK)"
        } else {
            "Blom"
        },
        args.out.display(),
        register.ids().len()
    )?;
    for (id, path) in &written {
        writeln!(out, "  {id}  {}", path.display())?;
    }
    if let Some(SokIssuer::Shares(shares, public)) = &sok_master {
        let used: Vec<String> = shares.iter().map(|s| s.index().to_string()).collect();
        writeln!(
            out,
            "the SOK halves combined from share centers {} (checked against the SOK master's public key, fingerprint {})",
            used.join(", "),
            fingerprint(public)
        )?;
    }
    if written.iter().any(|(id, _)| id.epoch() > 1) {
        writeln!(
            out,
            "new epochs of earlier identities: their revoked keys still count toward Blom's k \
             ({} of k = {} used; new identities stop at {}, new epochs at k)",
            center.count(),
            center.master().k(),
            center.limit()
        )?;
    }
    if past_bound {
        eprintln!(
            "warning: the register holds {} identifiers, past the Blom half's limit of {} (k = {}): \
             any {} key holders together can recover the Blom master, so these keys rest on SOK alone",
            center.count(),
            center.limit(),
            center.master().k(),
            center.master().k() + 1
        );
    }
    print(&out)
}

/// Issues SOK personal keys only (a SOK key center, or `--scheme sok`).
fn issue_sok(
    args: &IssueArgs,
    ids: &[PartyId],
    master: Option<SokIssuer>,
    key_pass: Option<&warifu_core::secret::Secret>,
) -> Result<()> {
    let master = master.context("no SOK master loaded")?;
    files::ensure_private_dir(&args.out)?;
    let mut out = format!(
        "issued {} SOK key(s) into {}\n",
        ids.len(),
        args.out.display()
    );
    let bar = progress(ids.len() as u64);
    for id in ids {
        bar.set_message(id.to_string());
        let path = args.out.join(file_name_for(id));
        let bytes = encode_sok_key_file(&SokKeyFile::Personal(master.personal_key(id)?), key_pass)?;
        files::write_secret(&path, &bytes, Overwrite::Replace)?;
        writeln!(out, "  {id}  {}", path.display())?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    print(&out)
}

/// What `keycenter show` prints.
#[derive(Debug, Serialize)]
struct ShowReport {
    /// `blom`, or `hybrid` when the directory holds a SOK master too.
    scheme: &'static str,
    k: u32,
    bound: String,
    lanes: usize,
    personal_key_bytes: usize,
    master_bytes: usize,
    field_mults_per_issuance: u64,
    field_mults_per_derivation: u64,
    /// Median wall time to issue one personal key, if measured.
    issue_seconds: Option<f64>,
    /// Median wall time to derive one pairwise key (Horner + HKDF), if measured.
    derive_seconds: Option<f64>,
    /// How many issuances the median is over.
    issue_samples: usize,
    /// Identifiers in the register (with `--dir`).
    issued: Option<usize>,
    /// The most new identities a Blom center issues: k − margin (docs/PROTOCOL.md §18).
    issue_limit: u32,
    /// How many new identities it can still issue (with `--dir`).
    remaining: Option<u32>,
    /// Whether master.key is sealed under a passphrase (with `--dir`).
    master_sealed: Option<bool>,
    /// Whether the times come from an unoptimized build.
    debug_build: bool,
    /// The SOK master's public facts, when the directory holds one (a hybrid center).
    #[serde(skip_serializing_if = "Option::is_none")]
    sok: Option<SokReport>,
}

/// The public facts of a SOK master that `keycenter show` prints: never the scalar.
#[derive(Debug, Serialize)]
struct SokReport {
    scheme: &'static str,
    curve: &'static str,
    collusion_bound: &'static str,
    /// The RFC 9380 domain separation tags of the identifier hashes to G1 and G2.
    hash_to_g1: String,
    hash_to_g2: String,
    /// The master's public key s·P1 (compressed G1, hex) and the first 8 bytes of its
    /// SHA-256: which master issued the keys, without revealing it.
    public_key: String,
    fingerprint: String,
    personal_key_bytes: usize,
    master_bytes: usize,
    issue_seconds: f64,
    derive_seconds: f64,
    master_sealed: bool,
    debug_build: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the SOK master in `dir` and times one issuance and one pairwise derivation.
fn sok_report(path: &Path, pass: Source<'_>) -> Result<SokReport> {
    let sealed = KeyFile::is_sealed(&files::read_bounded(path, files::MAX_KEY_FILE)?);
    let master = keystore::load_sok_master(path, pass)?;
    let a = PartyId::parse("cardholder:show@keycenter.invalid")?;
    let b = PartyId::parse("issuer:show.keycenter.invalid")?;
    let started = std::time::Instant::now();
    let key = master.personal_key(&a);
    let issue = started.elapsed();
    let started = std::time::Instant::now();
    key.shared_gt(&b).context("cannot derive a pairwise key")?;
    let derive = started.elapsed();
    let public_key = master.public_key();
    let fingerprint = fingerprint(&public_key);
    Ok(SokReport {
        scheme: "sok",
        curve: "BLS12-381",
        collusion_bound: "none (security rests on the bilinear Diffie-Hellman assumption)",
        hash_to_g1: String::from_utf8_lossy(sok::DST_G1).into_owned(),
        hash_to_g2: String::from_utf8_lossy(sok::DST_G2).into_owned(),
        public_key: hex(&public_key),
        fingerprint,
        personal_key_bytes: sok::G1_BYTES + sok::G2_BYTES,
        master_bytes: sok::SCALAR_BYTES,
        issue_seconds: issue.as_secs_f64(),
        derive_seconds: derive.as_secs_f64(),
        master_sealed: sealed,
        debug_build: cfg!(debug_assertions),
    })
}

/// The SOK master's lines of `keycenter show`.
fn sok_lines(r: &SokReport, out: &mut String) -> Result<()> {
    let secs = Duration::from_secs_f64;
    let lines = [
        (
            "scheme",
            "sok (Sakai–Ohgishi–Kasahara, BLS12-381)".to_owned(),
        ),
        (
            "bound",
            "none: no number of colluders yields another pair's key".to_owned(),
        ),
        (
            "public key",
            format!(
                "s·P1, fingerprint {} (SHA-256, first 8 bytes)",
                r.fingerprint
            ),
        ),
        ("hash to G1", r.hash_to_g1.clone()),
        ("hash to G2", r.hash_to_g2.clone()),
        (
            "personal key",
            format!(
                "{} (a G1 and a G2 point)",
                human_bytes(r.personal_key_bytes)
            ),
        ),
        (
            "master",
            format!("{} (one scalar)", human_bytes(r.master_bytes)),
        ),
        (
            "time to issue one key",
            format!(
                "{} (measured here, once)",
                human_duration(secs(r.issue_seconds))
            ),
        ),
        (
            "time per pairwise key",
            format!(
                "{} (one pairing, measured here, once)",
                human_duration(secs(r.derive_seconds))
            ),
        ),
        (
            SOK_MASTER_FILE,
            if r.master_sealed {
                "sealed under a passphrase"
            } else {
                "NOT sealed (0600 only)"
            }
            .to_owned(),
        ),
    ];
    for (name, value) in lines {
        writeln!(out, "{name:<28} {value}")?;
    }
    Ok(())
}

/// `keycenter show` for a SOK-only center: the scheme, its public facts and fixed sizes (SOK
/// has no collusion bound and no register), with the time to issue and derive a key.
fn show_sok(dir: &std::path::Path, args: &ShowArgs) -> Result<()> {
    let report = sok_report(&dir.join(SOK_MASTER_FILE), args.passphrase.source())?;
    if args.json {
        return print(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    }
    let mut out = String::new();
    sok_lines(&report, &mut out)?;
    print(&out)
}

/// The largest throwaway master `show --k` builds to time an issuance.
const MAX_THROWAWAY_MASTER: usize = 300 * 1024 * 1024;

fn show(args: &ShowArgs) -> Result<()> {
    let sok_center = match &args.dir {
        Some(dir) if dir.join(MASTER_FILE).exists() => sok_master(
            dir,
            args.sok_dir.as_deref(),
            &args.passphrase,
            &args.sok_passphrase,
        )?,
        _ => None,
    };
    let sok = sok_center
        .as_ref()
        .map(|(path, source)| sok_report(path, *source))
        .transpose()?;
    let (master, issued, sealed) = match (&args.dir, args.k) {
        (Some(dir), _) if !dir.join(MASTER_FILE).exists() && dir.join(SOK_MASTER_FILE).exists() => {
            return show_sok(dir, args);
        }
        (Some(dir), _) => {
            let path = dir.join(MASTER_FILE);
            let sealed = KeyFile::is_sealed(&files::read_bounded(&path, files::MAX_KEY_FILE)?);
            let master = keystore::load_master(&path, &args.passphrase)?;
            let issued = Register::read(&dir.join(REGISTER_FILE))?.len();
            (Some(master), Some(issued), Some(sealed))
        }
        (None, Some(k)) => {
            if k == 0 || k > blom::MAX_K {
                bail!("--k must be in 1..={}, got {k}", blom::MAX_K);
            }
            let master = (Sizing::for_k(k).master_bytes <= MAX_THROWAWAY_MASTER)
                .then(|| Master::generate(k, &mut OsRandom))
                .transpose()
                .context("cannot generate a throwaway master")?;
            (master, None, None)
        }
        (None, None) => bail!("give --dir DIR or --k K"),
    };
    let k = match (&master, args.k) {
        (Some(m), _) => m.k(),
        (None, Some(k)) => k,
        (None, None) => bail!("give --dir DIR or --k K"),
    };
    let sizing = Sizing::for_k(k);
    let (issue_time, samples, derive_time) = match &master {
        Some(m) => {
            let (t, n) = time_issue(m)?;
            (Some(t), n, Some(time_derive(m)?))
        }
        None => (None, 0, None),
    };
    let report = ShowReport {
        scheme: if sok.is_some() { "hybrid" } else { "blom" },
        k,
        bound: bound_words(k),
        lanes: blom::LANES,
        personal_key_bytes: sizing.personal_key_bytes,
        master_bytes: sizing.master_bytes,
        field_mults_per_issuance: sizing.issue_mults,
        field_mults_per_derivation: sizing.derive_mults,
        issue_seconds: issue_time.map(|d| d.as_secs_f64()),
        derive_seconds: derive_time.map(|d| d.as_secs_f64()),
        issue_samples: samples,
        issued,
        issue_limit: keycenter::limit(k),
        remaining: issued
            .map(|n| keycenter::limit(k).saturating_sub(u32::try_from(n).unwrap_or(u32::MAX))),
        master_sealed: sealed,
        debug_build: cfg!(debug_assertions),
        sok,
    };
    if args.json {
        return print(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    }
    let n = u64::from(k) + 1;
    let mut out = String::new();
    if report.sok.is_some() {
        writeln!(
            out,
            "scheme                       hybrid: Blom ⊕ SOK (both masters below; a pairwise key needs both)"
        )?;
        writeln!(out, "— Blom master ({MASTER_FILE})")?;
    }
    writeln!(out, "k (collusion bound)          {k}")?;
    writeln!(out, "bound                        {}", report.bound)?;
    writeln!(
        out,
        "personal key                 {} ({} lanes × {n} elements × 16 bytes)",
        human_bytes(report.personal_key_bytes),
        blom::LANES
    )?;
    writeln!(
        out,
        "master                       {} ({} lanes × {} elements × 16 bytes)",
        human_bytes(report.master_bytes),
        blom::LANES,
        n * (n + 1) / 2
    )?;
    writeln!(
        out,
        "field mults per issuance     {}",
        report.field_mults_per_issuance
    )?;
    writeln!(
        out,
        "field mults per derivation   {}",
        report.field_mults_per_derivation
    )?;
    match issue_time {
        Some(t) => writeln!(
            out,
            "time to issue one key        {} (measured here, median of {samples})",
            human_duration(t)
        ),
        None => writeln!(
            out,
            "time to issue one key        not measured: a throwaway master for k = {k} needs {}",
            human_bytes(report.master_bytes)
        ),
    }?;
    if let Some(t) = derive_time {
        writeln!(
            out,
            "time per pairwise key        {} (measured here, Horner + HKDF)",
            human_duration(t)
        )?;
    }
    if cfg!(debug_assertions) && issue_time.is_some() {
        writeln!(
            out,
            "                             (times from a debug build: use --release for real ones)"
        )?;
    }
    writeln!(
        out,
        "issue limit                  {} new identities (k − margin {})",
        report.issue_limit,
        keycenter::margin(k)
    )?;
    if let (Some(count), Some(left)) = (issued, report.remaining) {
        writeln!(out, "identifiers issued           {count} ({left} remain)")?;
    }
    if let Some(s) = sealed {
        writeln!(
            out,
            "master.key                   {}",
            if s {
                "sealed under a passphrase"
            } else {
                "not sealed"
            }
        )?;
    }
    if let Some(dir) = &args.dir
        && let Ok(text) = std::fs::read_to_string(dir.join(SOK_SHARES_FILE))
    {
        let mut lines = text.lines();
        writeln!(
            out,
            "— SOK master split {} among share centers (no file holds it): {}",
            lines.next().unwrap_or_default(),
            lines.collect::<Vec<_>>().join(", ")
        )?;
    }
    if let Some(sok) = &report.sok {
        let place = sok_center
            .as_ref()
            .and_then(|(p, _)| p.parent())
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let centers = if args
            .dir
            .as_deref()
            .map(|d| d.join(SOK_MASTER_FILE).exists())
            == Some(true)
        {
            "one center holds both masters"
        } else {
            "a separate center"
        };
        writeln!(out, "— SOK master ({place}/{SOK_MASTER_FILE}, {centers})")?;
        sok_lines(sok, &mut out)?;
    }
    print(&out)
}

fn probe_id(n: usize) -> Result<PartyId> {
    Ok(PartyId::parse(&format!(
        "cardholder:warifu-show-probe-{n}"
    ))?)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Times issuing keys (not registered anywhere) until 3 samples and 0.3 s, or 101 samples.
fn time_issue(master: &Master) -> Result<(Duration, usize)> {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (start.elapsed() < Duration::from_millis(300) && times.len() < 101) {
        let id = probe_id(times.len())?;
        let t = Instant::now();
        let key = master.personal_key(&id);
        times.push(t.elapsed());
        drop(key);
    }
    let n = times.len();
    Ok((median(times), n))
}

/// Times deriving pairwise keys in batches, returning the median per-derivation time.
fn time_derive(master: &Master) -> Result<Duration> {
    let key = master.personal_key(&probe_id(0)?);
    let peers: Vec<PartyId> = (1..=64).map(probe_id).collect::<Result<_>>()?;
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (start.elapsed() < Duration::from_millis(200) && times.len() < 51) {
        let t = Instant::now();
        for peer in &peers {
            std::hint::black_box(pairwise_key(&key, peer)?);
        }
        times.push(t.elapsed() / peers.len() as u32);
    }
    Ok(median(times))
}

/// Most parties the 【0053】 variant accepts: it stores a key per pair.
const MAX_PREDISTRIBUTED: usize = 1024;

fn predistribute(args: &PredistributeArgs) -> Result<()> {
    let ids = keystore::parse_ids(&args.ids)?;
    if ids.len() < 2 {
        bail!("give at least two distinct parties");
    }
    if ids.len() > MAX_PREDISTRIBUTED {
        bail!(
            "{} parties would need {} pairwise keys; the 【0053】 variant stops at {MAX_PREDISTRIBUTED} \
             parties — use Blom (`keycenter init` / `issue`) for more",
            ids.len(),
            ids.len() * (ids.len() - 1) / 2
        );
    }
    let key_pass = passphrase::optional_passphrase(args.key_passphrase_file.as_deref())?;
    let mut out = String::new();
    let paths: Vec<_> = ids
        .iter()
        .map(|id| args.out.join(file_name_for(id)))
        .collect();
    if !args.force
        && let Some(p) = paths.iter().find(|p| p.exists())
    {
        bail!(
            "{} already exists: new tables would replace its pairwise keys; pass --force to do so",
            p.display()
        );
    }
    files::ensure_private_dir(&args.out)?;
    let tables = keysource::predistribute(&ids, &mut OsRandom)?;
    let overwrite = if args.force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    for (table, path) in tables.into_iter().zip(&paths) {
        let bytes = encode_key_file(&KeyFile::Predistributed(table), key_pass.as_ref())?;
        files::write_secret(path, &bytes, overwrite)?;
    }
    writeln!(
        out,
        "wrote {} tables of {} pairwise key(s) each into {} (【0053】: keys handed out per pair; \
         a new party needs new tables for everyone it talks to)",
        ids.len(),
        ids.len() - 1,
        args.out.display()
    )?;
    for (id, path) in ids.iter().zip(&paths) {
        writeln!(out, "  {id}  {}", path.display())?;
    }
    print(&out)
}

/// Bytes in B, kB or MB (decimal), with the exact count.
fn human_bytes(n: usize) -> String {
    let f = n as f64;
    if n < 1000 {
        format!("{n} bytes")
    } else if n < 1_000_000 {
        format!("{n} bytes ({:.1} kB)", f / 1e3)
    } else if n < 1_000_000_000 {
        format!("{n} bytes ({:.1} MB)", f / 1e6)
    } else {
        format!("{n} bytes ({:.2} GB)", f / 1e9)
    }
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(32_800), "32800 bytes (32.8 kB)");
        assert_eq!(human_duration(Duration::from_micros(1500)), "1.50 ms");
    }
}
