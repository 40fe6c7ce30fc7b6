//! The simulator's invariants over the three parties' databases (read through the observer
//! stores), after every step ([`always`]) and at quiescence ([`at_rest`]).

use std::collections::BTreeMap;
use warifu_core::OrderId;

use warifu_store::{
    AuthorizationRecord, CarrierStore, IssuerStore, MerchantStore, OrderFilter, OrderRecord,
    ShipmentRecord, Store,
};

/// What the simulator itself did to an order (its model), against which the stores are
/// checked.
#[derive(Debug, Clone, Default)]
pub struct OrderModel {
    /// The order id, once sealed.
    pub order_id: Option<String>,
    /// The order total.
    pub amount: u64,
    /// Whether the form had a carrier.
    pub carrier: bool,
    /// Whether the order holds an item that ships.
    pub physical: bool,
    /// The merchant answered the submission with 200.
    pub acknowledged: bool,
    /// A cancellation was accepted (answered 200, or committed before an outage answer)
    /// while the parcel was not delivered.
    pub cancelled_undelivered: bool,
    /// A cancellation was accepted at all.
    pub cancelled: bool,
    /// The most the operator's refunds may have refunded (requests not refused, each
    /// distinct refund id once; a full refund counts the whole amount).
    pub op_upper: u64,
    /// The operator's refund ids used on this order, with their amounts.
    pub op_ids: BTreeMap<String, u64>,
    /// The largest `refunded` and `captured` any 200 answer reported.
    pub reported_refunded: u64,
    /// See `reported_refunded`.
    pub reported_captured: u64,
    /// The merchant state seen after the last step.
    pub last_state: Option<String>,
    /// The shipment status seen after the last step.
    pub last_shipment: Option<String>,
}

/// One failed invariant.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: &'static str,
    /// The order (index in the schedule's buys), if about one.
    pub order: Option<usize>,
    /// What was seen.
    pub detail: String,
}

/// Everything the three parties hold, read at one point.
pub struct Snapshot {
    /// Merchant orders by id.
    pub orders: BTreeMap<String, OrderRecord>,
    /// Issuer authorizations by order id.
    pub auths: BTreeMap<String, AuthorizationRecord>,
    /// Carrier shipments by order id.
    pub ships: BTreeMap<String, ShipmentRecord>,
    /// The issuer's audit is clean, or why not.
    pub audit: Result<(), String>,
    /// Outbox messages not done.
    pub pending: u64,
}

/// Reads the three databases.
pub async fn snapshot(obs: &[Store; 3]) -> Snapshot {
    let orders = MerchantStore::list_orders(
        &obs[0],
        &OrderFilter {
            limit: Some(100_000),
            ..OrderFilter::default()
        },
    )
    .await
    .expect("merchant orders");
    let auths = obs[1]
        .list_authorizations(100_000, 0)
        .await
        .expect("authorizations");
    let ships = obs[2].list_shipments(100_000, 0).await.expect("shipments");
    let audit = obs[1].audit().await.expect("audit");
    let sum = obs[1].ledger_sum().await.expect("ledger sum");
    let audit = if audit.is_clean() && sum == 0 {
        Ok(())
    } else {
        Err(format!("{audit:?}, ledger_sum {sum}"))
    };
    Snapshot {
        orders: orders
            .into_iter()
            .map(|o| (o.order_id.to_string(), o))
            .collect(),
        auths: auths
            .into_iter()
            .map(|a| (a.order_id.to_string(), a))
            .collect(),
        ships: ships
            .into_iter()
            .map(|s| (s.order_id.to_string(), s))
            .collect(),
        audit,
        pending: obs[0].outbox_pending().await.expect("outbox"),
    }
}

fn v(out: &mut Vec<Violation>, invariant: &'static str, order: Option<usize>, detail: String) {
    out.push(Violation {
        invariant,
        order,
        detail,
    });
}

/// Merchant states after which nothing more may happen (a delivered order may still be
/// refunded by its operator).
const FINAL: &[&str] = &["declined", "voided", "refunded", "failed"];
/// Shipment statuses after which the parcel does not move.
const SHIP_FINAL: &[&str] = &["delivered", "returned", "cancelled"];

/// The invariants that hold after every step.
pub fn always(snap: &Snapshot, model: &mut [OrderModel], out: &mut Vec<Violation>) {
    if let Err(e) = &snap.audit {
        v(out, "ledger_balanced", None, e.clone());
    }
    let index: BTreeMap<&str, usize> = model
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.order_id.as_deref().map(|o| (o, i)))
        .collect();
    for id in snap.auths.keys() {
        if !snap.orders.contains_key(id) {
            v(
                out,
                "no_orphans",
                index.get(id.as_str()).copied(),
                format!("authorization for {id} the merchant does not know"),
            );
        }
    }
    for (id, s) in &snap.ships {
        let ok = snap.orders.get(id).is_some_and(|o| o.carrier_id.is_some())
            && snap
                .auths
                .get(id)
                .is_some_and(AuthorizationRecord::approved);
        if !ok {
            v(
                out,
                "no_orphans",
                index.get(id.as_str()).copied(),
                format!(
                    "shipment {} ({}) without an order with a carrier and an approved authorization",
                    s.tracking_number, s.status
                ),
            );
        }
    }
    for (i, m) in model.iter_mut().enumerate() {
        let Some(id) = m.order_id.clone() else {
            continue;
        };
        let o = Some(i);
        let order = snap.orders.get(&id);
        if m.acknowledged && order.is_none() {
            v(
                out,
                "acknowledged_recorded",
                o,
                "the merchant answered 200 but holds no order".into(),
            );
        }
        let auth = snap.auths.get(&id);
        let ship = snap.ships.get(&id);
        if let Some(a) = auth {
            if a.refunded > a.captured || a.captured > a.amount || a.held + a.captured > a.amount {
                v(
                    out,
                    "refund_within_capture",
                    o,
                    format!(
                        "amount {} held {} captured {} refunded {}",
                        a.amount, a.held, a.captured, a.refunded
                    ),
                );
            }
            if let Some(ord) = order
                && ord.amount != a.amount
            {
                v(
                    out,
                    "amounts_agree",
                    o,
                    format!("merchant {} issuer {}", ord.amount, a.amount),
                );
            }
            let full_refund_allowed =
                m.cancelled || ship.is_some_and(|s| s.status.as_str() == "returned");
            if !full_refund_allowed && a.refunded > m.op_upper {
                v(
                    out,
                    "refund_not_twice",
                    o,
                    format!(
                        "refunded {} but the operator asked for at most {} and no cancel or return happened",
                        a.refunded, m.op_upper
                    ),
                );
            }
            if a.refunded < m.reported_refunded.min(a.captured) || a.captured < m.reported_captured
            {
                v(
                    out,
                    "answers_hold",
                    o,
                    format!(
                        "an answer reported captured {} refunded {}; the issuer holds captured {} refunded {}",
                        m.reported_captured, m.reported_refunded, a.captured, a.refunded
                    ),
                );
            }
        } else if m.reported_captured > 0 {
            v(
                out,
                "answers_hold",
                o,
                "an answer reported a capture the issuer does not hold".into(),
            );
        }
        if let Some(s) = ship {
            let st = s.status.as_str();
            if st == "delivered" {
                if m.cancelled_undelivered {
                    v(
                        out,
                        "no_delivery_after_cancel",
                        o,
                        format!(
                            "parcel {} delivered after the cancellation was accepted",
                            s.tracking_number
                        ),
                    );
                }
                if let Some(a) = auth
                    && a.refunded > m.op_upper
                {
                    v(
                        out,
                        "no_delivered_refunded_without_return",
                        o,
                        format!(
                            "parcel delivered, {} refunded, the operator refunded at most {}",
                            a.refunded, m.op_upper
                        ),
                    );
                }
            }
            if let Some(prev) = &m.last_shipment
                && SHIP_FINAL.contains(&prev.as_str())
                && prev != st
            {
                v(
                    out,
                    "carrier_final_stays",
                    o,
                    format!("shipment {prev} → {st}"),
                );
            }
            m.last_shipment = Some(st.to_owned());
        }
        if let Some(ord) = order {
            let st = ord.state.as_str();
            if m.physical && ord.carrier_id.is_none() {
                v(
                    out,
                    "physical_needs_carrier",
                    o,
                    format!("physical goods accepted with no carrier ({st})"),
                );
            }
            if let Some(prev) = &m.last_state {
                let left_final = FINAL.contains(&prev.as_str()) && prev != st;
                let left_delivered = prev == "delivered" && !matches!(st, "delivered" | "refunded");
                if left_final || left_delivered {
                    v(
                        out,
                        "final_states_stay",
                        o,
                        format!("merchant order {prev} → {st}"),
                    );
                }
            }
            m.last_state = Some(st.to_owned());
        }
    }
}

/// The agreement of the three parties at rest: for each merchant state, the issuer's
/// authorization statuses and the carrier's shipment statuses it may rest with (`-`: no
/// record). `delivered` with `refunded` only when the operator's refunds cover the refund
/// (goodwill after delivery); money: `net` = captured − refunded at the issuer.
///
/// | merchant  | issuer                            | carrier                      | net  |
/// |-----------|-----------------------------------|------------------------------|------|
/// | declined  | declined                          | -                            | 0    |
/// | voided    | voided                            | -, cancelled, returned       | 0    |
/// | refunded  | refunded                          | -, cancelled, returned, (delivered: operator refund) | 0 |
/// | delivered | captured                          | delivered                    | > 0  |
/// | captured  | captured (digital goods only)     | -                            | > 0  |
/// | failed    | -, declined, voided, refunded     | -, cancelled, returned       | 0    |
pub const AGREEMENT: &[(&str, &[&str], &[&str], bool)] = &[
    ("declined", &["declined"], &["-"], false),
    (
        "voided",
        &["voided"],
        &["-", "cancelled", "returned"],
        false,
    ),
    (
        "refunded",
        &["refunded"],
        &["-", "cancelled", "returned", "delivered"],
        false,
    ),
    ("delivered", &["captured"], &["delivered"], true),
    ("captured", &["captured"], &["-"], true),
    (
        "failed",
        &["-", "declined", "voided", "refunded"],
        &["-", "cancelled", "returned"],
        false,
    ),
];

/// The invariants that hold once nothing is pending.
pub async fn at_rest(
    snap: &Snapshot,
    obs: &[Store; 3],
    model: &[OrderModel],
    out: &mut Vec<Violation>,
) {
    if snap.pending > 0 {
        v(
            out,
            "rests",
            None,
            format!("{} outbox messages still pending", snap.pending),
        );
    }
    let index: BTreeMap<&str, usize> = model
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.order_id.as_deref().map(|o| (o, i)))
        .collect();
    for (id, ord) in &snap.orders {
        let i = index.get(id.as_str()).copied();
        let m = i.map(|i| &model[i]);
        let st = ord.state.as_str();
        let auth = snap.auths.get(id);
        let ship = snap.ships.get(id);
        let (ist, net, held) = match auth {
            Some(a) => (
                a.status.as_str(),
                a.captured.saturating_sub(a.refunded),
                a.held,
            ),
            None => ("-", 0, 0),
        };
        let cst = ship.map_or("-", |s| s.status.as_str());
        let Some((_, issuer_ok, carrier_ok, pays)) = AGREEMENT.iter().find(|r| r.0 == st) else {
            v(
                out,
                "rests",
                i,
                format!("merchant order rests in {st} (issuer {ist}, carrier {cst})"),
            );
            continue;
        };
        let carrier_fits = carrier_ok.contains(&cst)
            && !(st == "refunded"
                && cst == "delivered"
                && m.is_some_and(|m| auth.is_some_and(|a| a.refunded > m.op_upper)));
        let digital_ok = st != "captured" || ord.carrier_id.is_none();
        if !issuer_ok.contains(&ist)
            || !carrier_fits
            || !digital_ok
            || held != 0
            || (net > 0) != *pays
        {
            v(
                out,
                "agreement",
                i,
                format!(
                    "merchant {st} (carrier {:?}), issuer {ist} net {net} held {held}, carrier {cst}",
                    ord.carrier_id
                ),
            );
        }
        if let Some(m) = m
            && (m.cancelled_undelivered || cst == "returned")
            && net != 0
        {
            v(
                out,
                "cancelled_pays_nothing",
                i,
                format!("merchant {st}, issuer {ist} net {net}, carrier {cst}"),
            );
        }
        if let Some(a) = auth
            && a.captured > 0
        {
            let facts = obs[0].order_facts(&OrderId::from(id)).await.expect("facts");
            let paid = facts
                .iter()
                .find(|f| f.kind == "payment")
                .and_then(|f| serde_json::from_slice::<serde_json::Value>(&f.body).ok());
            let seen = paid
                .as_ref()
                .map(|p| (p["captured"].as_u64(), p["refunded"].as_u64()));
            if seen != Some((Some(a.captured), Some(a.refunded))) {
                v(
                    out,
                    "merchant_knows_payment",
                    i,
                    format!(
                        "merchant {st} last saw {seen:?}; issuer captured {} refunded {}",
                        a.captured, a.refunded
                    ),
                );
            }
        }
    }
    for (id, s) in &snap.ships {
        if !SHIP_FINAL.contains(&s.status.as_str()) {
            v(
                out,
                "rests",
                index.get(id.as_str()).copied(),
                format!("shipment {} rests {}", s.tracking_number, s.status),
            );
        }
    }
}
