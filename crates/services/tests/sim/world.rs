//! The simulated deployment: the three services, each with its own store, server task and
//! directory entry, that the schedule can take off the directory (down), crash (the server
//! aborted and the store closed, the in-memory state — sessions, caches — lost) and restart on
//! the same database. Separate observer stores read each party's database even while it is
//! crashed.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warifu_core::PartyId;
use warifu_core::keysource::KeySource;
use warifu_core::order::Expiry;
use warifu_core::secret::Secret;
use warifu_core::sok::KeyScheme;
use warifu_services::cardholder::Cardholder;
use warifu_services::carrier::{self, CarrierState};
use warifu_services::clock::Clock;
use warifu_services::dev::local::{Local, LocalOptions, Storage};
use warifu_services::directory::{Directory, Entry, SharedDirectory};
use warifu_services::issuer::{self, IssuerState};
use warifu_services::merchant::{self, MerchantConfig, MerchantState};
use warifu_services::session::operator::OperatorAuth;
use warifu_store::{NewCard, Party, Store, StoreOptions};

/// Which database the parties use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// SQLite files in a temporary directory.
    Sqlite,
    /// Schemas in the test PostgreSQL database.
    Postgres,
}

/// The three services, by index.
pub const PARTIES: [Party; 3] = [Party::Merchant, Party::Issuer, Party::Carrier];

/// A card's number, name and expiry (Luhn-valid test numbers).
pub const CARDS: [(&str, &str, u64); 3] = [
    ("4539148803436467", "Hanako Yamada", 30_000),
    ("5298473021193759", "Taro Suzuki", 50_000),
    ("4916338506082832", "Jiro Tanaka", 100_000),
];
/// Every card's expiry.
pub const EXPIRY: Expiry = Expiry {
    year: 2035,
    month: 7,
};

/// Whether a service is reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Running and listed.
    Up,
    /// Running, but the directory points at a port nobody listens on.
    Down,
    /// Not running (crashed); its database is as it was left.
    Crashed,
}

/// A running service's state (the issuer's and carrier's kept alive with their server).
#[allow(dead_code)]
enum Running {
    Merchant(Arc<MerchantState>),
    Issuer(Arc<IssuerState>),
    Carrier(Arc<CarrierState>),
}

/// A running service: its state, store, server task and the switch that stops it.
type Instance = (
    Running,
    Store,
    JoinHandle<std::io::Result<()>>,
    oneshot::Sender<()>,
);

struct Service {
    party: Party,
    keys: Arc<dyn KeySource>,
    running: Option<Instance>,
    endpoint: String,
    health: Health,
}

/// The running simulated deployment.
pub struct World {
    /// The directory every party and cardholder reads.
    pub directory: Arc<SharedDirectory>,
    /// The cardholders (one card each, limits from [`CARDS`]).
    pub cardholders: Vec<Cardholder>,
    /// The merchant's, issuer's and carrier's identifiers.
    pub ids: [PartyId; 3],
    /// Read-only handles on each party's database (merchant, issuer, carrier).
    pub observers: [Store; 3],
    services: Vec<Service>,
    storage: Storage,
    data_dir: std::path::PathBuf,
    /// The PostgreSQL schema prefix, to drop at the end.
    pub schema_prefix: Option<String>,
    /// The clock every service and cardholder reads: manual, moved by the schedule.
    pub clock: Clock,
    _tmp: tempfile::TempDir,
}

/// Where the simulation's clock starts: 2026-01-01T00:00:00Z.
pub const START_MS: i64 = 1_767_225_600_000;

/// The PostgreSQL URL of the tests.
pub fn postgres_url() -> String {
    std::env::var("WARIFU_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn id(s: &str) -> PartyId {
    PartyId::parse(s).expect("identifier")
}

fn unique_prefix(seed: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("sim_{}_{seed:x}_{nanos}", std::process::id())
}

async fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("http://{}", l.local_addr().expect("addr"))
}

impl World {
    /// Sets up keys (Blom, small k) and databases with a local deployment, stops it, and starts
    /// the three services again under the simulator's control, with the cards enrolled.
    pub async fn start(db: Db, seed: u64) -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let clock = Clock::manual(START_MS);
        let mut opts = LocalOptions::new(tmp.path(), 16);
        opts.clock = clock.clone();
        opts.scheme = KeyScheme::Blom;
        opts.worker = None;
        let mut schema_prefix = None;
        if db == Db::Postgres {
            let prefix = unique_prefix(seed);
            opts.storage = Storage::Postgres {
                url: postgres_url(),
                schema_prefix: prefix.clone(),
            };
            schema_prefix = Some(prefix);
        }
        let storage = opts.storage.clone();
        let local = Local::start(opts).await.unwrap_or_else(|e| {
            panic!("cannot start the deployment ({e}); for PostgreSQL see WARIFU_TEST_POSTGRES")
        });
        let ids = [
            local.merchant.id().clone(),
            local.issuer.id().clone(),
            local.carrier.id().clone(),
        ];
        let keys: Vec<Arc<dyn KeySource>> = ids
            .iter()
            .map(|i| local.issue(i).expect("party keys"))
            .collect();
        let holder_keys: Vec<Arc<dyn KeySource>> = (0..CARDS.len())
            .map(|n| {
                local
                    .issue(&id(&format!("cardholder:sim{n}@mail.example")))
                    .expect("cardholder keys")
            })
            .collect();
        for (n, (number, name, limit)) in CARDS.iter().enumerate() {
            local
                .issuer
                .store()
                .enroll_card(&NewCard {
                    card_id: format!("card-{n}"),
                    cardholder_id: format!("cardholder:sim{n}@mail.example"),
                    holder_name: (*name).to_owned(),
                    number: Secret::new(*number),
                    expiry: EXPIRY,
                    credit_limit: *limit,
                    currency: "JPY".to_owned(),
                    now_ms: clock.now_ms(),
                })
                .await
                .expect("enroll");
        }
        let data_dir = local.data_dir.clone();
        local.stop().await;

        let directory = Arc::new(SharedDirectory::fixed(Directory::new()));
        let cardholders = holder_keys
            .into_iter()
            .map(|k| Cardholder::new(k, directory.clone()).with_clock(clock.clone()))
            .collect();
        let observers = [
            open(&storage, &data_dir, Party::Merchant, true).await,
            open(&storage, &data_dir, Party::Issuer, true).await,
            open(&storage, &data_dir, Party::Carrier, true).await,
        ];
        let services = PARTIES
            .iter()
            .zip(keys)
            .map(|(p, k)| Service {
                party: *p,
                keys: k,
                running: None,
                endpoint: String::new(),
                health: Health::Crashed,
            })
            .collect();
        let mut w = World {
            directory,
            cardholders,
            ids,
            observers,
            services,
            storage,
            data_dir,
            schema_prefix,
            clock,
            _tmp: tmp,
        };
        for n in 0..3 {
            w.restart(n).await;
        }
        w
    }

    /// Whether service `n` is up, listed as down, or crashed.
    pub fn health(&self, n: usize) -> Health {
        self.services[n].health
    }

    /// The running merchant (`None` while crashed).
    pub fn merchant(&self) -> Option<Arc<MerchantState>> {
        match &self.services[0].running {
            Some((Running::Merchant(m), ..)) => Some(m.clone()),
            _ => None,
        }
    }

    /// The carrier's state, if it runs.
    pub fn carrier(&self) -> Option<Arc<CarrierState>> {
        match &self.services[2].running {
            Some((Running::Carrier(c), ..)) => Some(c.clone()),
            _ => None,
        }
    }

    /// The endpoint the directory lists for service `n` (a dead port while it is down).
    pub fn endpoint(&self, n: usize) -> String {
        self.directory
            .get()
            .get(&self.ids[n])
            .map(|e| e.endpoint.clone())
            .unwrap_or_default()
    }

    fn list(&self, n: usize, endpoint: &str) {
        let mut d = (*self.directory.get()).clone();
        d.insert(Entry::new(self.ids[n].clone(), endpoint).expect("entry"));
        self.directory.replace(d).expect("directory");
    }

    /// Lists service `n` at a dead port (it keeps running).
    pub async fn take_down(&mut self, n: usize) {
        if self.services[n].health == Health::Up {
            self.list(n, &dead_endpoint().await);
            self.services[n].health = Health::Down;
        }
    }

    /// Lists a service that was down at its real endpoint again.
    pub fn bring_up(&mut self, n: usize) {
        if self.services[n].health == Health::Down {
            let e = self.services[n].endpoint.clone();
            self.list(n, &e);
            self.services[n].health = Health::Up;
        }
    }

    /// Crashes service `n` between two steps: its server stops (and with it every
    /// connection, also the peers' kept-alive ones; no request is in flight, as the schedule
    /// runs one step at a time), its store is closed, its in-memory state (sessions, caches)
    /// dropped; the directory keeps its (now dead) endpoint.
    pub async fn crash(&mut self, n: usize) {
        if let Some((_, store, mut task, stop)) = self.services[n].running.take() {
            let _ = stop.send(());
            if tokio::time::timeout(std::time::Duration::from_secs(10), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
            store.close().await;
        }
        self.services[n].health = Health::Crashed;
    }

    /// Starts service `n` (again) on its database, on a fresh port, and lists it.
    pub async fn restart(&mut self, n: usize) {
        if self.services[n].running.is_some() {
            self.bring_up(n);
            return;
        }
        let s = &self.services[n];
        let store = open(&self.storage, &self.data_dir, s.party, false).await;
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", l.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let pending = async move {
            let _ = stopped.await;
        };
        let (running, task) = match s.party {
            Party::Merchant => {
                let st = MerchantState::new(
                    s.keys.clone(),
                    MerchantConfig::example(self.ids[1].clone(), Some(self.ids[2].clone())),
                    Arc::new(store.clone()),
                    self.directory.clone(),
                    self.clock.clone(),
                );
                st.guard().operator().set(OperatorAuth::Open);
                st.set_worker_options(&crate::worker_options());
                let task = tokio::spawn(merchant::run(l, st.clone(), pending));
                (Running::Merchant(st), task)
            }
            Party::Issuer => {
                let st =
                    IssuerState::new(s.keys.clone(), Arc::new(store.clone()), self.clock.clone());
                st.guard().operator().set(OperatorAuth::Open);
                let task = tokio::spawn(issuer::run(l, st.clone(), pending));
                (Running::Issuer(st), task)
            }
            _ => {
                // With the directory, as served in production: the carrier asks the issuer
                // before accepting a shipment and pushes each move to the merchant.
                let st = CarrierState::with_directory(
                    s.keys.clone(),
                    Arc::new(store.clone()),
                    self.directory.clone(),
                    self.clock.clone(),
                );
                st.guard().operator().set(OperatorAuth::Open);
                let task = tokio::spawn(carrier::run(l, st.clone(), pending));
                (Running::Carrier(st), task)
            }
        };
        let s = &mut self.services[n];
        s.running = Some((running, store, task, stop));
        s.endpoint = endpoint.clone();
        s.health = Health::Up;
        self.list(n, &endpoint);
    }

    /// Brings every service up (restarting crashed ones).
    pub async fn heal(&mut self) {
        for n in 0..3 {
            match self.services[n].health {
                Health::Up => {}
                Health::Down => self.bring_up(n),
                Health::Crashed => self.restart(n).await,
            }
        }
    }

    /// Stops everything and drops the PostgreSQL schemas.
    pub async fn finish(mut self) {
        for n in 0..3 {
            self.crash(n).await;
        }
        for o in &self.observers {
            o.close().await;
        }
        if let Some(prefix) = &self.schema_prefix {
            for p in PARTIES {
                let _ = Store::drop_postgres_schema(
                    &postgres_url(),
                    &format!("{prefix}_{}", p.as_str()),
                )
                .await;
            }
        }
    }
}

async fn open(storage: &Storage, dir: &std::path::Path, party: Party, observer: bool) -> Store {
    let o = match storage {
        Storage::Sqlite => StoreOptions::new(Store::party_url(dir, party).expect("sqlite url")),
        Storage::Postgres { url, schema_prefix } => StoreOptions::new(url.clone())
            .schema(format!("{schema_prefix}_{}", party.as_str()))
            .kek(warifu_store::atrest::KekSource::FileOrCreate(
                dir.join(format!("{}.kek", party.as_str())),
            )),
    };
    let o = if observer { o.max_connections(2) } else { o };
    Store::open_with(o).await.expect("open a store")
}
