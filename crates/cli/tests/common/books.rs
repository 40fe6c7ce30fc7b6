//! The parties' books: where a test deployment's databases are (SQLite or PostgreSQL, under one
//! test key-encryption key), what its cardholders buy, and the invariants every order must
//! keep across the merchant's, the issuer's and the carrier's stores (nothing lost, nothing
//! authorized, captured or shipped twice, every order at rest).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use warifu_core::keysource::KeySource;
use warifu_core::order::{Order, OrderForm};
use warifu_core::sok::{KeyScheme, PartyKeys};
use warifu_services::cardholder::Cardholder;
use warifu_services::dev::fixture;
use warifu_services::directory::SharedDirectory;
use warifu_store::{
    AuthorizationRecord, AuthorizationStatus, CarrierStore, IssuerStore, MerchantStore,
    OrderFilter, OrderRecord, OrderState, Party, ShipmentRecord, ShipmentStatus, Store,
    StoreOptions,
};

use super::{MERCHANT, path};

/// The cardholder's name on every card [`card_number`] makes and every order [`order_for`] fills.
pub const CARDHOLDER_NAME: &str = "Crash Tester";

#[allow(unused_imports, reason = "each test binary uses some")]
pub use warifu_services::dev::fixture::{card_number, error_code};

/// The key-encryption key of every party's data at rest in this test (issue 15): PostgreSQL
/// deployments must name one; SQLite ones use it too, so the test's own reads share it.
pub const TEST_KEK: &str = "6b656b206f662074686520637261736820746573742c206e6f74206120736563";

/// `warifu` (see [`super::warifu`]) with the data at rest under [`TEST_KEK`].
pub fn warifu() -> Command {
    let mut c = super::warifu();
    c.env_remove("WARIFU_DATA_KEK_FILE")
        .env("WARIFU_DATA_KEK", TEST_KEK);
    c
}

/// A port free at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Where the parties' databases are.
#[derive(Clone)]
pub enum Db {
    /// SQLite files in this data directory.
    Sqlite(PathBuf),
    /// One schema per party, `{prefix}_{party}`, in this PostgreSQL database.
    Postgres { url: String, prefix: String },
}

impl Db {
    pub fn args(&self, party: Party) -> Vec<String> {
        match self {
            Db::Sqlite(dir) => vec!["--data".into(), path(dir).into()],
            Db::Postgres { url, prefix } => vec![
                "--db".into(),
                url.clone(),
                "--schema".into(),
                format!("{prefix}_{}", party.as_str()),
            ],
        }
    }

    pub async fn open(&self, party: Party) -> Store {
        let o = match self {
            Db::Sqlite(dir) => StoreOptions::new(Store::party_url(dir, party).expect("url")),
            Db::Postgres { url, prefix } => {
                StoreOptions::new(url.clone()).schema(format!("{prefix}_{}", party.as_str()))
            }
        };
        let kek = warifu_store::atrest::Kek::from_hex(TEST_KEK).expect("kek");
        Store::open_with(o.kek(warifu_store::atrest::KekSource::Key(kek)))
            .await
            .expect("open a party's store")
    }

    /// Drops the PostgreSQL schemas of the three parties (nothing for SQLite).
    pub async fn drop_schemas(&self) {
        if let Db::Postgres { url, prefix } = self {
            for p in [Party::Merchant, Party::Issuer, Party::Carrier] {
                let _ = Store::drop_postgres_schema(url, &format!("{prefix}_{}", p.as_str())).await;
            }
        }
    }
}

/// What a cardholder was told: the merchant acknowledged the order with this outcome.
#[derive(Debug, Clone)]
pub struct Ack {
    pub order_id: String,
    pub approved: bool,
    pub state: String,
    /// The cardholder cancelled it afterwards and the merchant took the cancel.
    pub cancelled: bool,
}

/// One `TEA-001` paid in one sum by [`CARDHOLDER_NAME`] with `number`, shipped when the form
/// has a carrier.
pub fn order_for(form: &OrderForm, number: &str) -> warifu_core::Result<Order> {
    fixture::order_for(form, &[("TEA-001", 1)], CARDHOLDER_NAME, number)
}

/// What the three databases hold at the end.
pub struct Books {
    pub orders: Vec<OrderRecord>,
    pub authorizations: Vec<AuthorizationRecord>,
    pub shipments: Vec<ShipmentRecord>,
    /// Σ captured − refunded in the issuer's settlement report for the merchant.
    pub settled: i64,
    pub audit_problems: Vec<String>,
}

/// Merchant states an order may rest in once the worker is done: the final ones, and
/// `captured` (paid, waiting for the carrier's delivery, which only a carrier operator moves).
pub fn resting(s: OrderState) -> bool {
    s.is_final() || s == OrderState::Captured
}

/// Every violation of the crash-test invariants (empty when all hold).
pub fn problems(acks: &[Ack], b: &Books) -> Vec<String> {
    let mut out = b.audit_problems.clone();
    let orders: BTreeMap<&str, &OrderRecord> =
        b.orders.iter().map(|o| (o.order_id.as_str(), o)).collect();
    if orders.len() != b.orders.len() {
        out.push("the merchant holds an order id twice".into());
    }
    // 1. Every acknowledged order is there and rests; approved ones were paid, declined not.
    for a in acks {
        match orders.get(a.order_id.as_str()) {
            None => out.push(format!("acknowledged order {} is lost", a.order_id)),
            Some(o) if !resting(o.state) => out.push(format!(
                "acknowledged order {} is stuck in {} (acknowledged as {})",
                a.order_id,
                o.state.as_str(),
                a.state
            )),
            Some(o) if a.approved && o.state == OrderState::Declined => out.push(format!(
                "order {} was acknowledged approved but is declined",
                a.order_id
            )),
            Some(o) if !a.approved && o.state != OrderState::Declined => out.push(format!(
                "order {} was acknowledged declined but is {}",
                a.order_id,
                o.state.as_str()
            )),
            Some(_) => {}
        }
    }
    // 1b. A cancel the merchant took ends with nothing paid: voided or refunded in full.
    for a in acks.iter().filter(|a| a.cancelled) {
        if let Some(o) = orders.get(a.order_id.as_str())
            && !matches!(o.state, OrderState::Voided | OrderState::Refunded)
        {
            out.push(format!(
                "cancelled order {} rests in {}",
                a.order_id,
                o.state.as_str()
            ));
        }
        if let Some(z) = b
            .authorizations
            .iter()
            .find(|z| z.order_id == a.order_id && z.captured != z.refunded)
        {
            out.push(format!(
                "cancelled order {}: the issuer keeps {} (captured {}, refunded {})",
                a.order_id,
                z.captured - z.refunded,
                z.captured,
                z.refunded
            ));
        }
    }
    // Orders nobody heard about (the answer was lost in a crash) must rest too.
    for o in &b.orders {
        if !resting(o.state) {
            out.push(format!(
                "order {} is stuck in {}",
                o.order_id,
                o.state.as_str()
            ));
        }
    }
    // 2. One authorization per order, captured at most once and never beyond the hold.
    let mut auths: BTreeMap<(&str, &str), &AuthorizationRecord> = BTreeMap::new();
    for a in &b.authorizations {
        if auths
            .insert((a.merchant_id.as_str(), a.order_id.as_str()), a)
            .is_some()
        {
            out.push(format!("order {} was authorized twice", a.order_id));
        }
        if a.captured > a.amount || a.refunded > a.captured {
            out.push(format!(
                "order {}: captured {} and refunded {} of {}",
                a.order_id, a.captured, a.refunded, a.amount
            ));
        }
    }
    let mut paid = 0i64;
    for o in &b.orders {
        let auth = auths.get(&(MERCHANT, o.order_id.as_str()));
        let captured_here = matches!(o.state, OrderState::Captured | OrderState::Delivered);
        match (captured_here, auth) {
            (true, Some(a)) if a.status == AuthorizationStatus::Captured => {
                if a.captured != o.amount {
                    out.push(format!(
                        "order {}: the issuer captured {} of {}",
                        o.order_id, a.captured, o.amount
                    ));
                }
                paid += o.amount as i64;
            }
            (true, a) => out.push(format!(
                "order {} is {} at the merchant but {} at the issuer",
                o.order_id,
                o.state.as_str(),
                a.map_or("missing", |a| a.status.as_str())
            )),
            (false, Some(a)) if a.status == AuthorizationStatus::Captured => out.push(format!(
                "order {} is captured at the issuer but {} at the merchant",
                o.order_id,
                o.state.as_str()
            )),
            (false, Some(a)) if a.status == AuthorizationStatus::Held => out.push(format!(
                "order {} still holds money at the issuer while {} at the merchant",
                o.order_id,
                o.state.as_str()
            )),
            _ => {}
        }
    }
    for a in auths.values() {
        if !orders.contains_key(a.order_id.as_str()) {
            out.push(format!(
                "the issuer has an authorization for an order the merchant never stored: {}",
                a.order_id
            ));
        }
    }
    if b.settled != paid {
        out.push(format!(
            "the issuer settled {} for the merchant but the merchant's captured orders total {paid}",
            b.settled
        ));
    }
    // 3. Exactly one shipment per shipped order, and none for an order not shipped.
    let mut shipments: BTreeMap<&str, u32> = BTreeMap::new();
    let tracked: BTreeMap<&str, bool> = b
        .orders
        .iter()
        .map(|o| (o.order_id.as_str(), o.tracking_number.is_some()))
        .collect();
    for s in &b.shipments {
        // A cancel that reached the carrier before the shipment did leaves a tombstone (a
        // cancelled shipment the merchant never got a tracking number for).
        let tombstone = s.status == ShipmentStatus::Cancelled
            && !tracked.get(s.order_id.as_str()).copied().unwrap_or(false);
        if !tombstone {
            *shipments.entry(s.order_id.as_str()).or_default() += 1;
        }
    }
    for o in &b.orders {
        let n = shipments.get(o.order_id.as_str()).copied().unwrap_or(0);
        match (&o.tracking_number, n) {
            (Some(_), 1) | (None, 0) => {}
            (t, n) => out.push(format!(
                "order {} ({}, tracking {:?}) has {n} shipments",
                o.order_id,
                o.state.as_str(),
                t
            )),
        }
    }
    for s in &b.shipments {
        if !orders.contains_key(s.order_id.as_str()) {
            out.push(format!(
                "the carrier ships an order the merchant never stored: {}",
                s.order_id
            ));
        }
    }
    out
}

/// Rows per page when reading a whole list.
const PAGE: u32 = 500;

/// Every row of a list read a page at a time (`page(offset)`, at most [`PAGE`] rows).
async fn every<T, F: Future<Output = warifu_store::Result<Vec<T>>>>(
    mut page: impl FnMut(u32) -> F,
) -> Vec<T> {
    let mut all = Vec::new();
    loop {
        let rows = page(all.len() as u32).await.expect("a page of a list");
        let n = rows.len();
        all.extend(rows);
        if n < PAGE as usize {
            return all;
        }
    }
}

/// What the three parties' databases hold now.
pub async fn read_books(db: &Db) -> Books {
    let (m, i, c) = (
        &db.open(Party::Merchant).await,
        &db.open(Party::Issuer).await,
        &db.open(Party::Carrier).await,
    );
    let orders = every(|offset| async move {
        let page = OrderFilter {
            limit: Some(PAGE),
            offset: Some(offset),
            ..OrderFilter::default()
        };
        m.list_orders(&page).await
    })
    .await;
    let authorizations = every(|offset| i.list_authorizations(PAGE, offset)).await;
    let shipments = every(|offset| c.list_shipments(PAGE, offset)).await;
    let settled = i
        .settlement_report(MERCHANT)
        .await
        .expect("settlement report")
        .iter()
        .map(|d| d.captured as i64 - d.refunded as i64)
        .sum();
    let audit = i.audit().await.expect("audit");
    let mut audit_problems = Vec::new();
    if !audit.is_clean() {
        audit_problems.push(format!("the issuer's audit is not clean: {audit:?}"));
    }
    for s in [m, i, c] {
        s.close().await;
    }
    Books {
        orders,
        authorizations,
        shipments,
        settled,
        audit_problems,
    }
}

/// The key of `id` (`role:name`) from its key file in `keys`.
pub fn key_source(keys: &Path, id: &str) -> Arc<dyn KeySource> {
    let (role, name) = id.split_once(':').expect("role:name");
    let bytes = std::fs::read(keys.join(format!("{role}_{name}.key"))).expect("key file");
    let mut k = PartyKeys::new();
    k.add_file(&bytes, None).expect("a personal key");
    let scheme = k.available().last().copied().unwrap_or(KeyScheme::Hybrid);
    let source = k.key_source(scheme).expect("key source");
    warifu_services::keys::cached(source, 64)
}

/// The cardholder `id` with its key from `keys`, finding parties in `dir`.
pub fn load_cardholder(keys: &Path, id: &str, dir: &Arc<SharedDirectory>) -> Cardholder {
    Cardholder::new(key_source(keys, id), Arc::clone(dir))
}
