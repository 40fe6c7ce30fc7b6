//! Shared set-up of the services' integration tests: a local deployment on SQLite or
//! PostgreSQL with a small k, an enrolled cardholder, orders, captured logs.
#![allow(dead_code)]

mod raw;
pub use raw::*;

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use warifu_core::PartyId;
use warifu_core::order::{Card, Destination, Expiry, Order, OrderForm, PaymentMethod};
use warifu_core::sealed::SealedOrder;
use warifu_services::cardholder::{Cardholder, Purchase};
use warifu_services::dev::local::{Local, LocalOptions, Storage};
use warifu_services::session::operator::OperatorAuth;
use warifu_store::ShipmentRecord;

/// The card number of the test cardholder (Luhn-valid, distinctive for the leak scan).
pub const CARD: &str = "4539148803436467";
/// Another valid card number nobody holds.
pub const OTHER_CARD: &str = "5298473021193759";
/// The test cardholder's name as on the card.
pub const NAME: &str = "Hanako Yamada";
/// The delivery address (distinctive for the leak scan).
pub const ADDRESS: &str = "7-3-1 Hongo, Bunkyo-ku, Tokyo 113-8654";
/// The addressee.
pub const ADDRESSEE: &str = "Taro Suzuki-Giftee";
/// The card's expiry.
pub const EXPIRY: Expiry = Expiry {
    year: 2035,
    month: 7,
};
/// The collusion bound used in tests (small for speed).
pub const K: u32 = 16;

/// Which database the parties use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// SQLite files in a temporary directory.
    Sqlite,
    /// Schemas in the test PostgreSQL database.
    Postgres,
}

/// The PostgreSQL URL of the tests.
pub fn postgres_url() -> String {
    std::env::var("WARIFU_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether PostgreSQL tests are skipped on purpose.
pub fn skip_postgres() -> bool {
    std::env::var("WARIFU_SKIP_POSTGRES").is_ok_and(|v| v == "1")
}

/// A shared sink of every log line of the test process.
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace,hyper=info,h2=info,reqwest=debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A running test deployment.
pub struct Env {
    /// The deployment.
    pub local: Local,
    /// Its data directory (kept alive).
    pub tmp: tempfile::TempDir,
    /// The enrolled cardholder.
    pub alice: Cardholder,
    /// Its identifier.
    pub alice_id: PartyId,
    /// Which database.
    pub db: Db,
    /// The PostgreSQL schema prefix, if on PostgreSQL.
    pub schema_prefix: Option<String>,
}

/// Parses an identifier.
pub fn id(s: &str) -> PartyId {
    PartyId::parse(s).expect("identifier")
}

fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "wt_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The options of a deployment in `dir`, on PostgreSQL under `schema_prefix` if given, else
/// on SQLite.
pub fn options(dir: &std::path::Path, schema_prefix: Option<&str>) -> LocalOptions {
    let mut opts = LocalOptions::new(dir, K);
    if let Some(prefix) = schema_prefix {
        opts.storage = Storage::Postgres {
            url: postgres_url(),
            schema_prefix: prefix.to_owned(),
        };
    }
    opts
}

/// The test cardholder's identifier.
pub fn alice_id() -> PartyId {
    id("cardholder:hanako@mail.example")
}

/// Starts a deployment on `db` with the test cardholder enrolled (limit 100 000 JPY).
/// Returns `None` only when PostgreSQL is skipped on purpose (WARIFU_SKIP_POSTGRES=1).
pub async fn start(db: Db) -> Option<Env> {
    logs();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut schema_prefix = None;
    if db == Db::Postgres {
        if skip_postgres() {
            eprintln!("WARIFU_SKIP_POSTGRES=1: skipping a PostgreSQL test");
            return None;
        }
        schema_prefix = Some(unique_prefix());
    }
    let local = match Local::start(options(tmp.path(), schema_prefix.as_deref())).await {
        Ok(l) => l,
        Err(e) if db == Db::Postgres => panic!(
            "PostgreSQL at {} is unreachable or refused ({e}); start it, point WARIFU_TEST_POSTGRES \
             at one, or set WARIFU_SKIP_POSTGRES=1",
            postgres_url()
        ),
        Err(e) => panic!("cannot start the deployment: {e}"),
    };
    local
        .enroll("card-1", &alice_id(), NAME, CARD, EXPIRY, 100_000, "JPY")
        .await
        .expect("enroll");
    Some(Env::with_local(local, tmp, db, schema_prefix))
}

/// Two tests of one scenario `async fn $scenario(db: Db)`: `$sqlite` on SQLite and
/// `$postgres` on PostgreSQL.
#[allow(unused_macros)]
macro_rules! on_both_databases {
    ($scenario:ident: $sqlite:ident, $postgres:ident) => {
        $crate::common::on_both_databases!($scenario: $sqlite, $postgres; threads = 2);
    };
    ($scenario:ident: $sqlite:ident, $postgres:ident; threads = $threads:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
        async fn $sqlite() {
            $scenario($crate::common::Db::Sqlite).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
        async fn $postgres() {
            $scenario($crate::common::Db::Postgres).await;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_databases;

impl Env {
    /// The environment of a running deployment `local` (in `tmp`, on `db`) whose test
    /// cardholder is enrolled.
    pub fn with_local(
        local: Local,
        tmp: tempfile::TempDir,
        db: Db,
        schema_prefix: Option<String>,
    ) -> Env {
        let alice_id = alice_id();
        let alice = local.cardholder(&alice_id).expect("cardholder");
        Env {
            local,
            tmp,
            alice,
            alice_id,
            db,
            schema_prefix,
        }
    }
    /// The test cardholder buys `fill` from the merchant, paying at the issuer (with the
    /// carrier unless `digital`).
    pub async fn buy(&self, digital: bool, fill: &Fill) -> Purchase {
        self.alice
            .purchase(&self.merchant(), &self.issuer(), digital, |f| fill.order(f))
            .await
            .expect("purchase")
    }
    /// The test cardholder buys `Fill::default()` with a carrier, asks the carrier for its
    /// tracking and the issuer for its statement, checking each answer; the purchase and the
    /// statement.
    pub async fn buy_track_and_state(
        &self,
    ) -> (
        Purchase,
        warifu_services::protocol::cardholder_issuer::Statement,
    ) {
        let p = self.buy(false, &Fill::default()).await;
        assert_eq!(p.outcome.state, "captured", "{:?}", p.outcome);
        let order_id = &p.form.order_id;
        let t = self
            .alice
            .tracking(&self.carrier(), &self.merchant(), order_id)
            .await
            .expect("tracking");
        let dest = t.destination.expect("the cardholder sees its destination");
        assert_eq!(dest.address.expose(), ADDRESS);
        let statement = self
            .alice
            .statement(&self.issuer())
            .await
            .expect("statement");
        assert!(statement.entries.iter().any(|e| e.order_id == order_id));
        (p, statement)
    }
    /// A bundle of `Fill::default()` sealed by the test cardholder on a fresh form of
    /// `merchant` (not submitted), for the issuer.
    pub async fn sealed_at(
        &self,
        merchant: &PartyId,
        digital: bool,
    ) -> (OrderForm, Order, SealedOrder) {
        let form = self
            .alice
            .order_form(merchant, digital)
            .await
            .expect("form");
        let order = Fill::default().order(&form).expect("order");
        let sealed = self
            .alice
            .seal(&form, &order, &self.issuer())
            .await
            .expect("seal");
        (form, order, sealed)
    }
    /// The test card's available credit at the issuer.
    pub async fn available(&self) -> u64 {
        self.local
            .issuer
            .store()
            .get_card("card-1")
            .await
            .expect("read")
            .expect("card")
            .available
    }
    /// The carrier's shipments (the first ten).
    pub async fn shipments(&self) -> Vec<ShipmentRecord> {
        self.local
            .carrier
            .store()
            .list_shipments(10, 0)
            .await
            .expect("shipments")
    }
    /// The merchant's endpoint and a session of the test cardholder with it, by a handshake
    /// run by hand.
    pub async fn alice_session(&self) -> (String, warifu_core::session::Session) {
        let endpoint = self.local.endpoint(&self.merchant()).expect("endpoint");
        let keys = self.local.issue(&self.alice_id).expect("key");
        let session = raw_handshake(keys.as_ref(), &self.merchant(), &endpoint).await;
        (endpoint, session)
    }
    /// Lets the carrier's operator in with `token`; the carrier's endpoint.
    pub fn carrier_operator(&self, token: &str) -> String {
        self.local
            .carrier
            .guard()
            .operator()
            .set(OperatorAuth::token(token));
        self.local.endpoint(&self.carrier()).expect("carrier")
    }
    /// The merchant's identifier.
    pub fn merchant(&self) -> PartyId {
        self.local.merchant.id().clone()
    }
    /// The issuer's identifier.
    pub fn issuer(&self) -> PartyId {
        self.local.issuer.id().clone()
    }
    /// The carrier's identifier.
    pub fn carrier(&self) -> PartyId {
        self.local.carrier.id().clone()
    }
    /// Stops the deployment.
    pub async fn stop(self) {
        self.local.stop().await;
    }
}

/// What to put in an order.
#[derive(Debug, Clone)]
pub struct Fill {
    /// The name to write.
    pub name: String,
    /// The card number to write.
    pub number: String,
    /// The expiry to write.
    pub expiry: Expiry,
    /// Lines (product number, quantity).
    pub picks: Vec<(&'static str, u32)>,
}

impl Default for Fill {
    fn default() -> Fill {
        Fill {
            name: NAME.into(),
            number: CARD.into(),
            expiry: EXPIRY,
            picks: vec![("TEA-001", 2), ("CUP-002", 1)],
        }
    }
}

impl Fill {
    /// The order for `form`.
    pub fn order(&self, form: &OrderForm) -> Result<Order, warifu_core::Error> {
        let picks: Vec<(&str, u32)> = if form.carrier.is_some() {
            self.picks.clone()
        } else {
            vec![("EBOOK-003", 1)]
        };
        let (lines, amount) = Order::lines_from(form, &picks)?;
        Ok(Order {
            cardholder_name: self.name.clone(),
            cardholder_address: "1-1 Chiyoda, Chiyoda-ku, Tokyo".into(),
            telephone: "+81-3-0000-1111".into(),
            fax: Some("+81-3-0000-2222".into()),
            card: Card {
                number: self.number.as_str().into(),
                expiry: self.expiry,
            },
            lines,
            amount,
            currency: form.currency.clone(),
            payment_method: PaymentMethod::Installments { count: 3 },
            destination: form.carrier.as_ref().map(|_| Destination {
                addressee: ADDRESSEE.into(),
                address: ADDRESS.into(),
            }),
        })
    }
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The forms a secret can take in storage: as is, and in lowercase hex (PostgreSQL's bytea
/// text form).
pub fn encodings(secret: &str) -> Vec<Vec<u8>> {
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    vec![secret.as_bytes().to_vec(), hex.into_bytes()]
}

/// Every row of every table of a party's PostgreSQL schema, as text (`row::text`).
pub async fn pg_dump(prefix: &str, party: &str) -> Vec<u8> {
    let pool = sqlx::PgPool::connect(&postgres_url())
        .await
        .expect("connect to PostgreSQL");
    let schema = format!("{prefix}_{party}");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(&schema)
    .fetch_all(&pool)
    .await
    .expect("list tables");
    assert!(!tables.is_empty(), "schema {schema} has no tables");
    let mut out = Vec::new();
    for t in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT x::text FROM \"{schema}\".\"{t}\" x"))
                .fetch_all(&pool)
                .await
                .expect("dump table");
        for r in rows {
            out.extend_from_slice(t.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(r.as_bytes());
            out.push(b'\n');
        }
    }
    pool.close().await;
    out
}

/// Drops the three schemas of a PostgreSQL deployment.
pub async fn pg_drop(prefix: &str) {
    let Ok(pool) = sqlx::PgPool::connect(&postgres_url()).await else {
        return;
    };
    for party in ["merchant", "issuer", "carrier"] {
        let _ = sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS \"{prefix}_{party}\" CASCADE"
        ))
        .execute(&pool)
        .await;
    }
    pool.close().await;
}

/// Stops the deployment and drops its PostgreSQL schemas.
pub async fn finish(env: Env) {
    let prefix = env.schema_prefix.clone();
    env.stop().await;
    if let Some(p) = prefix {
        pg_drop(&p).await;
    }
}

/// Reads until the server closes the connection (or 5 s pass); returns what was read and
/// how long it took.
pub async fn until_closed(s: &mut tokio::net::TcpStream) -> (String, std::time::Duration) {
    use tokio::io::AsyncReadExt as _;
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

/// Serves `app` on a free loopback port within `limits` (over TLS if given): its address, and
/// a sender that stops it.
pub async fn serve_app(
    app: axum::Router,
    limits: warifu_services::http::listen::Limits,
    tls: Option<warifu_services::http::tls::ServerTls>,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(warifu_services::http::listen::serve_limited(
        listener,
        app,
        async move {
            let _ = rx.await;
        },
        std::time::Duration::from_secs(1),
        limits,
        tls,
    ));
    (addr, tx)
}
