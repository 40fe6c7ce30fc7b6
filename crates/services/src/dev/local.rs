//! A whole deployment in one process on loopback: a key center, the directory, the three
//! services on their own ports and databases. `warifu demo`, `warifu up` and the end-to-end
//! tests run on it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use warifu_core::PartyId;
#[cfg(feature = "baseline")]
use warifu_core::baseline::PlaintextBaseline;
use warifu_core::blom::Master;
use warifu_core::keycenter::KeyCenter;
use warifu_core::keyfile::{KeyFile, SokKeyFile};
use warifu_core::keysource::KeySource;
use warifu_core::order::Expiry;
use warifu_core::rand::OsRandom;
use warifu_core::revocation::{CenterSigningKey, SignedRevocationList};
use warifu_core::secret::Secret;
use warifu_core::sok::{KeyScheme, PartyKeys, SokMaster};
use warifu_store::{CardRecord, NewCard, Party, Store, StoreOptions, Synchronous};

use crate::cardholder::Cardholder;
use crate::carrier::push::{PushOptions, Pusher, PusherHandle};
use crate::carrier::{self, CarrierState};
use crate::clock::Clock;
use crate::directory::{Directory, Entry, SharedDirectory};
use crate::issuer::{self, IssuerState};
use crate::merchant::webhooks::{Deliverer, DelivererHandle, WebhookOptions};
use crate::merchant::worker::{Worker, WorkerHandle, WorkerOptions};
use crate::merchant::{self, MerchantConfig, MerchantState};
use crate::revocations::{RevocationFeed, WATCH_PERIOD};
use crate::session::operator::OperatorAuth;

/// Where the parties keep their databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// One SQLite file per party in the data directory (`merchant.db`, `issuer.db`, `carrier.db`).
    Sqlite,
    /// One PostgreSQL schema per party (`<prefix>_merchant`, …) in the database at `url`.
    Postgres {
        /// The database URL.
        url: String,
        /// The schema prefix (distinct per deployment sharing the database).
        schema_prefix: String,
    },
}

/// How to set up a local deployment.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The data directory: `keycenter/master.key`, `directory.json`, SQLite files.
    pub data_dir: PathBuf,
    /// Where the databases are.
    pub storage: Storage,
    /// The key center's collusion bound (used when it creates a new master).
    pub k: u32,
    /// The merchant's identifier.
    pub merchant: PartyId,
    /// The issuer's identifier.
    pub issuer: PartyId,
    /// The carrier's identifier.
    pub carrier: PartyId,
    /// The address to listen on.
    pub ip: IpAddr,
    /// Ports of the merchant, issuer and carrier (0: any free port).
    pub ports: [u16; 3],
    /// SQLite durability.
    pub synchronous: Synchronous,
    /// The key scheme of every party (default: hybrid, Blom and SOK from two masters).
    pub scheme: KeyScheme,
    /// How many counterparties' pairwise keys each party caches (0: none).
    pub key_cache: usize,
    /// **Benchmark baseline only** (`warifu bench`): every party, cardholders included, gets
    /// the public [`PlaintextBaseline`] key source instead of keys from the key centers, so
    /// orders travel unsealed. No key file can be written for it. Only with the `baseline`
    /// feature.
    #[cfg(feature = "baseline")]
    pub plaintext_baseline: bool,
    /// How the services admit operators (default: open, as the deployment is on loopback).
    pub operator: OperatorAuth,
    /// The merchant's outbox worker (`None`: not started, orders then move only inline).
    pub worker: Option<WorkerOptions>,
    /// The carrier's delivery-event pusher (`None`: not started, the merchant then learns
    /// deliveries only by its slow tracking poll).
    pub pusher: Option<PushOptions>,
    /// The revocation list every party reads, re-read when it changes (default:
    /// `keycenter/revocations.json`, where `warifu keycenter revoke --dir DATA/keycenter`
    /// writes it).
    pub revocations: Option<PathBuf>,
    /// The clock every party and cardholder of the deployment reads (default: the system's).
    pub clock: Clock,
}

impl LocalOptions {
    /// Defaults: SQLite in `data_dir`, the example identifiers, loopback, free ports.
    pub fn new(data_dir: &Path, k: u32) -> LocalOptions {
        let id = |s: &str| PartyId::parse(s).unwrap_or_else(|_| unreachable!("valid literal"));
        LocalOptions {
            data_dir: data_dir.to_owned(),
            storage: Storage::Sqlite,
            k,
            merchant: id("merchant:shop.example"),
            issuer: id("issuer:bank.example"),
            carrier: id("carrier:post.example"),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: [0; 3],
            synchronous: Synchronous::Full,
            scheme: KeyScheme::default(),
            key_cache: crate::keys::DEFAULT_KEY_CACHE,
            #[cfg(feature = "baseline")]
            plaintext_baseline: false,
            operator: OperatorAuth::Open,
            worker: Some(WorkerOptions::default()),
            pusher: Some(PushOptions::default()),
            revocations: None,
            clock: Clock::system(),
        }
    }
}

/// Figures about the key center, for the demo to show.
#[derive(Debug, Clone)]
pub struct KeyCenterFigures {
    /// The key scheme in use.
    pub scheme: KeyScheme,
    /// The Blom master's collusion bound (`None` under SOK alone).
    pub k: Option<u32>,
    /// Whether the masters were created now (or loaded from the data directory).
    pub created: bool,
    /// How long creating or loading the masters took.
    pub master_time: Duration,
    /// How long issuing the three parties' keys took.
    pub issue_time: Duration,
    /// The Blom center's directory (`None` under SOK alone).
    pub blom_center: Option<PathBuf>,
    /// The SOK center's directory (`None` under Blom alone): a separate center, unless the
    /// data directory comes from before the centers were separated.
    pub sok_center: Option<PathBuf>,
}

/// A running local deployment.
pub struct Local {
    /// The merchant.
    pub merchant: Arc<MerchantState>,
    /// The issuer.
    pub issuer: Arc<IssuerState>,
    /// The carrier.
    pub carrier: Arc<CarrierState>,
    /// The directory the parties use.
    pub directory: Arc<SharedDirectory>,
    /// The directory file.
    pub directory_path: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Where the databases are.
    pub storage: Storage,
    /// The key center's figures.
    pub figures: KeyCenterFigures,
    /// The revocation list the parties (and the cardholders of [`Local::cardholder`]) hold.
    pub revocations: Arc<RevocationFeed>,
    /// The file it is read from.
    pub revocations_path: PathBuf,
    center_key: CenterSigningKey,
    centers: Mutex<Centers>,
    key_cache: usize,
    stores: [Store; 3],
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    watcher: JoinHandle<()>,
    worker: Option<WorkerHandle>,
    webhooks: Option<DelivererHandle>,
    pusher: Option<PusherHandle>,
}

impl core::fmt::Debug for Local {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Local {{ data_dir: {}, .. }}", self.data_dir.display())
    }
}

/// The key center's directory inside a data directory (the Blom center, with the revocation
/// key and list).
pub const KEYCENTER_DIR: &str = "keycenter";
/// The hybrid's separate SOK center inside a data directory.
pub const SOK_KEYCENTER_DIR: &str = "keycenter-sok";
/// The file in the Blom center naming the separate SOK center (as `warifu keycenter init`
/// writes it).
pub const SOK_CENTER_FILE: &str = "sok-center.txt";
/// The Blom master's file name.
pub const MASTER_FILE: &str = "master.key";
/// The SOK master's file name (the second key center of the hybrid scheme).
pub const SOK_MASTER_FILE: &str = "sok-master.key";
/// The directory file name.
pub const DIRECTORY_FILE: &str = "directory.json";
/// The key center's revocation signing key (BLS12-381), beside its masters.
pub const REVOCATION_KEY_FILE: &str = "revocation.key";
/// The key center's latest signed revocation list, beside its masters.
pub const REVOCATIONS_FILE: &str = "revocations.json";

/// What can fail while setting up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// A file or socket operation failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The key center failed.
    #[error("key center: {0}")]
    Keys(#[from] warifu_core::Error),
    /// A store failed to open.
    #[error("storage: {0}")]
    Store(#[from] warifu_store::StoreError),
    /// The directory failed.
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    /// The revocation list failed.
    #[error(transparent)]
    Revocation(#[from] crate::revocations::RevocationError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalError {
    let what = what.into();
    move |e| LocalError::Io(what, e)
}

/// The key centers of the scheme: the Blom center, the SOK master, or both.
struct Centers {
    scheme: KeyScheme,
    /// Issue the plaintext benchmark baseline instead of the scheme's keys.
    #[cfg(feature = "baseline")]
    baseline: bool,
    blom: Option<KeyCenter>,
    sok: Option<SokMaster>,
}

impl Centers {
    /// Loads or creates the masters `scheme` needs: the Blom master in `dir/keycenter`, the
    /// SOK master in its own center `dir/keycenter-sok` (or, in a data directory made before
    /// the centers were separated, beside the Blom master).
    fn open(
        dir: &Path,
        k: u32,
        scheme: KeyScheme,
    ) -> Result<(Centers, Option<u32>, bool), LocalError> {
        let (mut blom, mut sok, mut k_used, mut created) = (None, None, None, false);
        if scheme != KeyScheme::Sok {
            let (master, fresh) = load_or_create_master(dir, k)?;
            k_used = Some(master.k());
            created |= fresh;
            blom = Some(KeyCenter::new(master, [])?);
        }
        if scheme != KeyScheme::Blom {
            let (master, fresh) = load_or_create_sok_master(dir)?;
            created |= fresh;
            sok = Some(master);
        }
        Ok((
            Centers {
                scheme,
                #[cfg(feature = "baseline")]
                baseline: false,
                blom,
                sok,
            },
            k_used,
            created,
        ))
    }

    /// The personal keys of `id` under the scheme.
    fn issue(&mut self, id: &PartyId) -> Result<PartyKeys, LocalError> {
        let mut keys = PartyKeys::new();
        if let Some(c) = &mut self.blom {
            keys.add_blom(c.issue(id)?)?;
        }
        if let Some(m) = &self.sok {
            keys.add_sok(m.personal_key(id))?;
        }
        Ok(keys)
    }

    /// The key source of `id` under the scheme, behind a cache of `cache` counterparties.
    fn source(&mut self, id: &PartyId, cache: usize) -> Result<Arc<dyn KeySource>, LocalError> {
        #[cfg(feature = "baseline")]
        if self.baseline {
            let source = Box::new(PlaintextBaseline::new(id.clone()));
            return Ok(crate::keys::cached(source, cache));
        }
        let source = self.issue(id)?.key_source(self.scheme)?;
        Ok(crate::keys::cached(source, cache))
    }

    /// The key file of `id` under the scheme: Blom (kind 2), SOK (kind 5) or hybrid (kind 6).
    fn encode(&mut self, id: &PartyId) -> Result<zeroize::Zeroizing<Vec<u8>>, LocalError> {
        #[cfg(feature = "baseline")]
        if self.baseline {
            return Err(LocalError::Keys(warifu_core::Error::ParameterMismatch(
                "the plaintext benchmark baseline has no key files".into(),
            )));
        }
        let mut blom = self.blom.as_mut().map(|c| c.issue(id)).transpose()?;
        let sok = self.sok.as_ref().map(|m| m.personal_key(id));
        let bytes = match (blom.take(), sok) {
            (Some(b), None) => KeyFile::Personal(b).encode(None, &mut OsRandom)?,
            (None, Some(s)) => SokKeyFile::Personal(s).encode(None, &mut OsRandom)?,
            (Some(b), Some(s)) => SokKeyFile::Hybrid(b, s).encode(None, &mut OsRandom)?,
            (None, None) => {
                return Err(LocalError::Keys(warifu_core::Error::ParameterMismatch(
                    "no key center master is loaded".into(),
                )));
            }
        };
        Ok(zeroize::Zeroizing::new(bytes))
    }
}

/// The SOK center of a data directory: `keycenter-sok`, or `keycenter` if an older run put
/// the SOK master there.
pub fn sok_center(dir: &Path) -> PathBuf {
    let old = dir.join(KEYCENTER_DIR);
    if old.join(SOK_MASTER_FILE).exists() {
        return old;
    }
    dir.join(SOK_KEYCENTER_DIR)
}

/// Loads the SOK master from the data directory's SOK center, or creates it (0600) and names
/// the center in the Blom center's `sok-center.txt`.
fn load_or_create_sok_master(dir: &Path) -> Result<(SokMaster, bool), LocalError> {
    let kc = sok_center(dir);
    let path = kc.join(SOK_MASTER_FILE);
    if path.exists() {
        let bytes = zeroize::Zeroizing::new(
            crate::files::read_bounded(&path, crate::files::MAX_KEY_FILE)
                .map_err(io(format!("reading {}", path.display())))?,
        );
        return match SokKeyFile::decode(&bytes, None)? {
            SokKeyFile::Master(m) => Ok((m, false)),
            _ => Err(LocalError::Keys(warifu_core::Error::ParameterMismatch(
                format!("{} does not hold a SOK master", path.display()),
            ))),
        };
    }
    crate::files::create_private_dir(&kc).map_err(io(format!("creating {}", kc.display())))?;
    let master = SokMaster::generate(&mut OsRandom)?;
    let bytes = zeroize::Zeroizing::new(
        SokKeyFile::Master(SokMaster::from_bytes(&master.to_bytes())?)
            .encode(None, &mut OsRandom)?,
    );
    write_private(&path, &bytes)?;
    let blom = dir.join(KEYCENTER_DIR);
    crate::files::create_private_dir(&blom).map_err(io(format!("creating {}", blom.display())))?;
    let named = std::fs::canonicalize(&kc).map_err(io(format!("resolving {}", kc.display())))?;
    let pointer = blom.join(SOK_CENTER_FILE);
    if pointer.exists() {
        std::fs::remove_file(&pointer).map_err(io(format!("replacing {}", pointer.display())))?;
    }
    write_private(&pointer, format!("{}\n", named.display()).as_bytes())?;
    Ok((master, true))
}

/// Loads the key center's revocation signing key from the data directory, or creates it
/// (0600).
fn load_or_create_center_key(dir: &Path) -> Result<CenterSigningKey, LocalError> {
    let kc = dir.join(KEYCENTER_DIR);
    let path = kc.join(REVOCATION_KEY_FILE);
    if path.exists() {
        let bytes = zeroize::Zeroizing::new(
            crate::files::read_bounded(&path, crate::files::MAX_KEY_FILE)
                .map_err(io(format!("reading {}", path.display())))?,
        );
        return Ok(CenterSigningKey::decode_file(&bytes, None)?);
    }
    crate::files::create_private_dir(&kc).map_err(io(format!("creating {}", kc.display())))?;
    let key = CenterSigningKey::generate(&mut OsRandom)?;
    let bytes = zeroize::Zeroizing::new(key.encode_file(None, &mut OsRandom)?);
    write_private(&path, &bytes)?;
    Ok(key)
}

/// Loads the key center's Blom master from the data directory, or creates it (0600).
fn load_or_create_master(dir: &Path, k: u32) -> Result<(Master, bool), LocalError> {
    let kc = dir.join(KEYCENTER_DIR);
    let path = kc.join(MASTER_FILE);
    if path.exists() {
        let bytes = zeroize::Zeroizing::new(
            crate::files::read_bounded(&path, crate::files::MAX_KEY_FILE)
                .map_err(io(format!("reading {}", path.display())))?,
        );
        return match KeyFile::decode(&bytes, None)? {
            KeyFile::Master(m) => Ok((m, false)),
            _ => Err(LocalError::Keys(warifu_core::Error::ParameterMismatch(
                format!("{} does not hold a master", path.display()),
            ))),
        };
    }
    crate::files::create_private_dir(&kc).map_err(io(format!("creating {}", kc.display())))?;
    let master = Master::generate(k, &mut OsRandom)?;
    let file = KeyFile::Master(master);
    let bytes = zeroize::Zeroizing::new(file.encode(None, &mut OsRandom)?);
    write_private(&path, &bytes)?;
    match file {
        KeyFile::Master(m) => Ok((m, true)),
        _ => unreachable!("constructed as a master"),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), LocalError> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("writing {}", path.display())))
}

async fn open_store(opts: &LocalOptions, party: Party) -> Result<Store, LocalError> {
    let o = match &opts.storage {
        Storage::Sqlite => StoreOptions::new(Store::party_url(&opts.data_dir, party)?)
            .synchronous(opts.synchronous),
        // The key-encryption key of card numbers and destinations: a 0600 file in the data
        // directory, as SQLite's beside its database (issue 15).
        Storage::Postgres { url, schema_prefix } => StoreOptions::new(url.clone())
            .schema(format!("{schema_prefix}_{}", party.as_str()))
            .kek(warifu_store::atrest::KekSource::FileOrCreate(
                opts.data_dir.join(format!("{}.kek", party.as_str())),
            )),
    };
    Ok(Store::open_with(o).await?)
}

async fn bind(ip: IpAddr, port: u16) -> Result<(TcpListener, String), LocalError> {
    let listener = TcpListener::bind(SocketAddr::new(ip, port))
        .await
        .map_err(io(format!("binding {ip}:{port}")))?;
    let addr = listener
        .local_addr()
        .map_err(io("reading the bound address"))?;
    Ok((listener, format!("{}://{addr}", crate::http::tls::scheme())))
}

impl Local {
    /// Sets up the key center, the directory and the stores, and starts the three services.
    pub async fn start(opts: LocalOptions) -> Result<Local, LocalError> {
        crate::files::create_private_dir(&opts.data_dir)
            .map_err(io(format!("creating {}", opts.data_dir.display())))?;
        let started = Instant::now();
        let (mut centers, k, created) = Centers::open(&opts.data_dir, opts.k, opts.scheme)?;
        #[cfg(feature = "baseline")]
        {
            centers.baseline = opts.plaintext_baseline;
        }
        let center_key = load_or_create_center_key(&opts.data_dir)?;
        let revocations_path = opts
            .revocations
            .clone()
            .unwrap_or_else(|| opts.data_dir.join(KEYCENTER_DIR).join(REVOCATIONS_FILE));
        let revocations = RevocationFeed::open(&revocations_path, center_key.public())?;
        let master_time = started.elapsed();
        let started = Instant::now();
        let mk = revocations.protect(centers.source(&opts.merchant, opts.key_cache)?);
        let ik = revocations.protect(centers.source(&opts.issuer, opts.key_cache)?);
        let ck = revocations.protect(centers.source(&opts.carrier, opts.key_cache)?);
        let issue_time = started.elapsed();

        let (ml, murl) = bind(opts.ip, opts.ports[0]).await?;
        let (il, iurl) = bind(opts.ip, opts.ports[1]).await?;
        let (cl, curl) = bind(opts.ip, opts.ports[2]).await?;
        let directory_path = opts.data_dir.join(DIRECTORY_FILE);
        let mut dir = if directory_path.exists() {
            Directory::load(&directory_path)?
        } else {
            Directory::new()
        };
        dir.insert(Entry::new(opts.merchant.clone(), &murl)?);
        dir.insert(Entry::new(opts.issuer.clone(), &iurl)?);
        dir.insert(Entry::new(opts.carrier.clone(), &curl)?);
        dir.set_revocation_key(center_key.public());
        dir.save(&directory_path)?;
        let directory = Arc::new(SharedDirectory::from_file(&directory_path)?);

        let ms = open_store(&opts, Party::Merchant).await?;
        let is = open_store(&opts, Party::Issuer).await?;
        let cs = open_store(&opts, Party::Carrier).await?;
        let merchant = MerchantState::new(
            mk,
            MerchantConfig::example(opts.issuer.clone(), Some(opts.carrier.clone())),
            Arc::new(ms.clone()),
            directory.clone(),
            opts.clock.clone(),
        );
        let issuer = IssuerState::new(ik, Arc::new(is.clone()), opts.clock.clone());
        let carrier = CarrierState::with_directory(
            ck,
            Arc::new(cs.clone()),
            directory.clone(),
            opts.clock.clone(),
        );
        for guard in [merchant.guard(), issuer.guard(), carrier.guard()] {
            guard.operator().set(opts.operator.clone());
            guard.use_revocations(revocations.revocations().clone());
        }

        let (tx, rx) = watch::channel(false);
        let stop = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let watcher = revocations.watch(WATCH_PERIOD);
        let tasks = vec![
            tokio::spawn(merchant::run(ml, merchant.clone(), stop(rx.clone()))),
            tokio::spawn(issuer::run(il, issuer.clone(), stop(rx.clone()))),
            tokio::spawn(carrier::run(cl, carrier.clone(), stop(rx))),
        ];
        let worker = opts
            .worker
            .clone()
            .map(|w| Worker::start(merchant.clone(), w));
        let webhooks = worker
            .as_ref()
            .map(|_| Deliverer::start(merchant.clone(), WebhookOptions::default()));
        let pusher = opts
            .pusher
            .clone()
            .map(|p| Pusher::start(carrier.clone(), p));
        Ok(Local {
            merchant,
            issuer,
            carrier,
            directory,
            directory_path,
            data_dir: opts.data_dir.clone(),
            storage: opts.storage.clone(),
            figures: KeyCenterFigures {
                scheme: opts.scheme,
                k,
                created,
                master_time,
                issue_time,
                blom_center: (opts.scheme != KeyScheme::Sok)
                    .then(|| opts.data_dir.join(KEYCENTER_DIR)),
                sok_center: (opts.scheme != KeyScheme::Blom).then(|| sok_center(&opts.data_dir)),
            },
            revocations,
            revocations_path,
            center_key,
            watcher,
            centers: Mutex::new(centers),
            key_cache: opts.key_cache,
            stores: [ms, is, cs],
            shutdown: tx,
            tasks,
            worker,
            webhooks,
            pusher,
        })
    }

    /// Issues the keys of `id` under the deployment's scheme from the key centers (any role:
    /// a cardholder, or an extra party), behind the deployment's pairwise-key cache; bare keys
    /// that know no revocation list (as a revoked party's own software would use them).
    pub fn issue(&self, id: &PartyId) -> Result<Arc<dyn KeySource>, LocalError> {
        self.lock_centers().source(id, self.key_cache)
    }

    /// The key center revokes `ids`: it signs the next list (the one held plus `ids`, serial
    /// + 1), writes it to the revocation file and the parties apply it at once.
    pub fn revoke(&self, ids: &[PartyId]) -> Result<SignedRevocationList, LocalError> {
        let held = self.revocations.revocations().list();
        let signed = self
            .center_key
            .sign(held.with(ids.iter().cloned(), self.issuer.clock().now_unix()));
        let tmp = self.revocations_path.with_extension("json.tmp");
        std::fs::write(&tmp, signed.to_json())
            .and_then(|()| std::fs::rename(&tmp, &self.revocations_path))
            .map_err(io(format!("writing {}", self.revocations_path.display())))?;
        self.revocations.apply(&signed)?;
        Ok(signed)
    }

    fn lock_centers(&self) -> std::sync::MutexGuard<'_, Centers> {
        self.centers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the key file of `id` under the deployment's scheme (Blom, SOK or the hybrid
    /// bundle) to `path` (0600, unsealed), for `warifu wallet`.
    pub fn write_key(&self, id: &PartyId, path: &Path) -> Result<(), LocalError> {
        let bytes = self.lock_centers().encode(id)?;
        if path.exists() {
            std::fs::remove_file(path).map_err(io(format!("replacing {}", path.display())))?;
        }
        write_private(path, &bytes)
    }

    /// A cardholder client for `id`, with a key issued now, holding the deployment's
    /// revocation list (it refuses a revoked merchant, issuer or carrier, and itself once
    /// revoked).
    pub fn cardholder(&self, id: &PartyId) -> Result<Cardholder, LocalError> {
        let keys = self.revocations.protect(self.issue(id)?);
        Ok(Cardholder::new(keys, self.directory.clone()).with_clock(self.issuer.clock().clone()))
    }

    /// Enrolls a card at the issuer.
    #[allow(clippy::too_many_arguments)]
    pub async fn enroll(
        &self,
        card_id: &str,
        cardholder: &PartyId,
        holder_name: &str,
        number: &str,
        expiry: Expiry,
        credit_limit: u64,
        currency: &str,
    ) -> Result<CardRecord, LocalError> {
        Ok(self
            .issuer
            .store()
            .enroll_card(&NewCard {
                card_id: card_id.to_owned(),
                cardholder_id: cardholder.to_string(),
                holder_name: holder_name.to_owned(),
                number: Secret::new(number),
                expiry,
                credit_limit,
                currency: currency.to_owned(),
                now_ms: self.issuer.clock().now_ms(),
            })
            .await?)
    }

    /// The endpoint of a listed party.
    pub fn endpoint(&self, id: &PartyId) -> Option<String> {
        self.directory.get().get(id).map(|e| e.endpoint.clone())
    }

    /// Another store on `party`'s database, with its key-encryption key (as an operator's
    /// command opens it: a data-key rotation, say).
    pub async fn open_store(&self, party: Party) -> Result<Store, LocalError> {
        let mut o = LocalOptions::new(&self.data_dir, 0);
        o.storage = self.storage.clone();
        open_store(&o, party).await
    }

    /// The SQLite files (with their `-wal` and `-shm` companions) of a party, if on SQLite.
    pub fn sqlite_files(&self, party: Party) -> Vec<PathBuf> {
        if self.storage != Storage::Sqlite {
            return Vec::new();
        }
        let db = Store::party_path(&self.data_dir, party);
        let mut files = vec![db.clone()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            files.push(PathBuf::from(p));
        }
        files.into_iter().filter(|p| p.exists()).collect()
    }

    /// Stops the merchant's outbox worker (letting the messages in hand finish); the
    /// services keep running. Tests use it to leave work in the outbox.
    pub async fn stop_worker(&mut self) {
        if let Some(w) = self.worker.take() {
            w.stop().await;
        }
    }

    /// Starts the merchant's outbox worker (again) with `opts`.
    pub async fn start_worker(&mut self, opts: WorkerOptions) {
        self.stop_worker().await;
        self.worker = Some(Worker::start(self.merchant.clone(), opts));
    }

    /// Stops the carrier's delivery-event pusher (letting the events in hand finish); the
    /// moves of shipments then wait in its outbox.
    pub async fn stop_pusher(&mut self) {
        if let Some(p) = self.pusher.take() {
            p.stop().await;
        }
    }

    /// Starts the carrier's delivery-event pusher (again) with `opts`.
    pub async fn start_pusher(&mut self, opts: PushOptions) {
        self.stop_pusher().await;
        self.pusher = Some(Pusher::start(self.carrier.clone(), opts));
    }

    /// Replaces the merchant's webhook deliverer (started with the outbox worker, default
    /// options) by one with `opts`.
    pub async fn start_webhooks(&mut self, opts: WebhookOptions) {
        if let Some(d) = self.webhooks.take() {
            d.stop().await;
        }
        self.webhooks = Some(Deliverer::start(self.merchant.clone(), opts));
    }

    /// Stops the worker and the services (finishing in-flight requests) and closes the stores.
    pub async fn stop(mut self) {
        self.stop_worker().await;
        self.stop_pusher().await;
        if let Some(d) = self.webhooks.take() {
            d.stop().await;
        }
        self.watcher.abort();
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "a service stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "a service task failed"),
            }
        }
        for s in &self.stores {
            s.close().await;
        }
    }
}
