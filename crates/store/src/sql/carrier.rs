//! The carrier's SQL: shipments and their tracking events.

use warifu_core::OrderId;
use warifu_core::secret::Secret;

use std::sync::Arc;

use super::common::*;
use super::datakeys::with_keys;
use crate::atrest::{DESTINATION, Keyring, Sealed};
use crate::error::{Result, StoreError};
use crate::rules;
use crate::sql::{check_id, short};
use crate::types::*;

const SHIP_COLS: &str = "tracking_number, merchant_id, order_id, cardholder_id, addressee, address, \
     destination_enc, key_id, parcel, status, issuer_id, delivered_at_ms, created_at_ms, \
     updated_at_ms";

/// A destination as encrypted: the JSON array `[addressee, address]`.
fn destination_plain(addressee: &Secret, address: &Secret) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    serde_json::to_vec(&(addressee.expose(), address.expose()))
        .map(zeroize::Zeroizing::new)
        .map_err(|_| StoreError::Invalid("the destination".into()))
}

/// A shipment row; its destination decrypted with `ring` (a tombstone has none; a row from
/// before schema version 5 not encrypted yet keeps it in `addressee` and `address`).
fn ship_row(ring: &Keyring, r: &DbRow) -> Result<ShipmentRecord> {
    let status: String = get(r, "status")?;
    let tracking_number: String = get(r, "tracking_number")?;
    let (addressee, address) = match get::<Option<i64>>(r, "key_id")? {
        None => (get::<String>(r, "addressee")?, get::<String>(r, "address")?),
        Some(key_id) => {
            let blob: Vec<u8> = get(r, "destination_enc")?;
            let plain = ring.open(DESTINATION, &tracking_number, key_id, &blob)?;
            serde_json::from_slice::<(String, String)>(&plain)
                .map_err(|_| StoreError::Corrupt(DESTINATION))?
        }
    };
    Ok(ShipmentRecord {
        tracking_number,
        merchant_id: get(r, "merchant_id")?,
        order_id: get::<String>(r, "order_id")?.into(),
        cardholder_id: get(r, "cardholder_id")?,
        addressee: Secret::new(addressee),
        address: Secret::new(address),
        parcel: get(r, "parcel")?,
        status: ShipmentStatus::decode(&status)?,
        issuer_id: get(r, "issuer_id")?,
        delivered_at_ms: get(r, "delivered_at_ms")?,
        created_at_ms: get(r, "created_at_ms")?,
        updated_at_ms: get(r, "updated_at_ms")?,
    })
}

fn ship_by_order() -> String {
    format!("SELECT {SHIP_COLS} FROM carrier_shipments WHERE merchant_id = $1 AND order_id = $2")
}

async fn add_event(
    c: &mut Conn,
    tracking: &str,
    status: ShipmentStatus,
    note: Option<&str>,
    at_ms: i64,
    op: &'static str,
) -> Result<()> {
    let q = query(
        "INSERT INTO carrier_events (tracking_number, status, note, at_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(tracking)
    .bind(status.as_str())
    .bind(note.map(short))
    .bind(at_ms);
    exec(&mut *c, op, q).await?;
    Ok(())
}

async fn accept_shipment_in(
    c: &mut Conn,
    s: &NewShipment,
    destination: &Sealed,
    ring: &Keyring,
) -> Result<Inserted<ShipmentRecord>> {
    const OP: &str = "accept_shipment";
    check_id("merchant id", &s.merchant_id)?;
    check_id("order id", &s.order_id)?;
    check_id("tracking number", &s.tracking_number)?;
    check_id("issuer id", &s.issuer_id)?;
    let q = query(
        "INSERT INTO carrier_shipments (tracking_number, merchant_id, order_id, cardholder_id, \
         addressee, address, parcel, status, created_at_ms, updated_at_ms, issuer_id, \
         header_digest, destination_enc, key_id) \
         VALUES ($1, $2, $3, $4, '', '', $5, $6, $7, $7, $8, $9, $10, $11) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&s.tracking_number)
    .bind(&s.merchant_id)
    .bind(s.order_id.as_str())
    .bind(&s.cardholder_id)
    .bind(&s.parcel)
    .bind(ShipmentStatus::Accepted.as_str())
    .bind(s.now_ms)
    .bind(&s.issuer_id)
    .bind(&s.header_digest[..])
    .bind(&destination.blob)
    .bind(destination.key_id);
    if exec(&mut *c, OP, q).await? == 0 {
        let sql = ship_by_order();
        let q = query(&sql).bind(&s.merchant_id).bind(s.order_id.as_str());
        return match optional(&mut *c, OP, q, |r| ship_row(ring, r)).await? {
            Some(record) => Ok(Inserted {
                record,
                created: false,
            }),
            None => Err(StoreError::Conflict(
                "the tracking number is already used for another shipment".into(),
            )),
        };
    }
    add_event(
        c,
        &s.tracking_number,
        ShipmentStatus::Accepted,
        None,
        s.now_ms,
        OP,
    )
    .await?;
    Ok(Inserted {
        record: ShipmentRecord {
            tracking_number: s.tracking_number.clone(),
            merchant_id: s.merchant_id.clone(),
            order_id: s.order_id.clone(),
            cardholder_id: s.cardholder_id.clone(),
            addressee: s.addressee.clone(),
            address: s.address.clone(),
            parcel: s.parcel.clone(),
            status: ShipmentStatus::Accepted,
            issuer_id: Some(s.issuer_id.clone()),
            delivered_at_ms: None,
            created_at_ms: s.now_ms,
            updated_at_ms: s.now_ms,
        },
        created: true,
    })
}

write_op!(accept_shipment_tx = accept_shipment_in(s: &NewShipment => s.clone(),
    destination: &Sealed => destination.clone(), ring: &Arc<Keyring> => ring.clone())
    -> Inserted<ShipmentRecord>);

/// Accepts a shipment, its destination encrypted under the active data key.
pub(crate) async fn accept_shipment(p: &P, s: &NewShipment) -> Result<Inserted<ShipmentRecord>> {
    let plain = destination_plain(&s.addressee, &s.address)?;
    let plain = &plain;
    with_keys(p, |ring| async move {
        let sealed = ring.seal(DESTINATION, &s.tracking_number, plain)?;
        accept_shipment_tx(p, s, &sealed, &ring).await
    })
    .await
}

pub(crate) async fn get_shipment(
    p: &P,
    merchant_id: &str,
    order_id: &OrderId,
) -> Result<Option<ShipmentRecord>> {
    let sql = ship_by_order();
    with_keys(p, |ring| {
        let q = query(&sql).bind(merchant_id).bind(order_id.as_str());
        async move { optional(&p.reader, "get_shipment", q, |r| ship_row(&ring, r)).await }
    })
    .await
}

pub(crate) async fn shipment_by_tracking(p: &P, tracking: &str) -> Result<Option<ShipmentRecord>> {
    let sql = format!("SELECT {SHIP_COLS} FROM carrier_shipments WHERE tracking_number = $1");
    with_keys(p, |ring| {
        let q = query(&sql).bind(tracking);
        async move { optional(&p.reader, "shipment_by_tracking", q, |r| ship_row(&ring, r)).await }
    })
    .await
}

async fn advance_shipment_in(
    c: &mut Conn,
    tracking: &str,
    from: ShipmentStatus,
    to: ShipmentStatus,
    note: &Option<String>,
    now_ms: i64,
) -> Result<bool> {
    const OP: &str = "advance_shipment";
    if !rules::shipment_move(from, to) {
        return Err(StoreError::Conflict(format!(
            "a shipment that is {from} cannot become {to}"
        )));
    }
    let q = query(
        "UPDATE carrier_shipments SET status = $3, updated_at_ms = $4, \
         delivered_at_ms = COALESCE(delivered_at_ms, $5) \
         WHERE tracking_number = $1 AND status = $2 RETURNING merchant_id, order_id",
    )
    .bind(tracking)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(now_ms)
    .bind((to == ShipmentStatus::Delivered).then_some(now_ms));
    let moved = optional(&mut *c, OP, q, |r| {
        Ok((get::<String>(r, "merchant_id")?, get::<String>(r, "order_id")?))
    })
    .await?;
    let Some((merchant_id, order_id)) = moved else {
        let q =
            query_scalar("SELECT status FROM carrier_shipments WHERE tracking_number = $1")
                .bind(tracking);
        let exists: Option<String> = scalar_opt(&mut *c, OP, q).await?;
        return match exists {
            None => Err(StoreError::NotFound("shipment")),
            Some(_) => Ok(false),
        };
    };
    add_event(c, tracking, to, note.as_deref(), now_ms, OP).await?;
    if rules::shipment_pushed(to) {
        let q = query(
            "INSERT INTO carrier_outbox (tracking_number, merchant_id, order_id, status, at_ms, \
             state, attempts, next_attempt_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $5, $5)",
        )
        .bind(tracking)
        .bind(&merchant_id)
        .bind(&order_id)
        .bind(to.as_str())
        .bind(now_ms)
        .bind(PushState::Pending.as_str());
        exec(&mut *c, OP, q).await?;
    }
    Ok(true)
}

write_op!(advance_shipment = advance_shipment_in(tracking: &str => tracking.to_owned(),
    from: ShipmentStatus, to: ShipmentStatus, note: Option<&str> => note.map(str::to_owned),
    now_ms: i64) -> bool);

async fn cancel_shipment_in(
    c: &mut Conn,
    merchant_id: &str,
    order_id: &OrderId,
    tombstone_tracking: &str,
    now_ms: i64,
    ring: &Keyring,
) -> Result<ShipmentCancel> {
    const OP: &str = "cancel_shipment";
    check_id("merchant id", merchant_id)?;
    check_id("order id", order_id)?;
    check_id("tracking number", tombstone_tracking)?;
    // A tombstone first, unless a shipment exists (then its row is locked and moved): a
    // concurrent shipment request either comes first (and is cancelled here) or finds the
    // tombstone.
    let q = query(
        "INSERT INTO carrier_shipments (tracking_number, merchant_id, order_id, \
         cardholder_id, addressee, address, parcel, status, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, '', '', '', '', $4, $5, $5) ON CONFLICT DO NOTHING",
    )
    .bind(tombstone_tracking)
    .bind(merchant_id)
    .bind(order_id.as_str())
    .bind(ShipmentStatus::Cancelled.as_str())
    .bind(now_ms);
    if exec(&mut *c, OP, q).await? == 1 {
        add_event(
            c,
            tombstone_tracking,
            ShipmentStatus::Cancelled,
            Some("cancelled before any shipment request"),
            now_ms,
            OP,
        )
        .await?;
        return Ok(ShipmentCancel {
            record: ShipmentRecord {
                tracking_number: tombstone_tracking.to_owned(),
                merchant_id: merchant_id.to_owned(),
                order_id: order_id.to_owned(),
                cardholder_id: String::new(),
                addressee: Secret::new(String::new()),
                address: Secret::new(String::new()),
                parcel: String::new(),
                status: ShipmentStatus::Cancelled,
                issuer_id: None,
                delivered_at_ms: None,
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
            },
            applied: true,
        });
    }
    let sql = format!("{}{FOR_UPDATE}", ship_by_order());
    let q = query(&sql).bind(merchant_id).bind(order_id.as_str());
    let Some(mut rec) = optional(&mut *c, OP, q, |r| ship_row(ring, r)).await? else {
        return Err(StoreError::Conflict(
            "the tracking number is already used for another shipment".into(),
        ));
    };
    let to = rules::shipment_cancel(Some(rec.status))?;
    if to == rec.status {
        return Ok(ShipmentCancel {
            record: rec,
            applied: false,
        });
    }
    let q = query(
        "UPDATE carrier_shipments SET status = $3, updated_at_ms = $4 \
         WHERE tracking_number = $1 AND status = $2",
    )
    .bind(&rec.tracking_number)
    .bind(rec.status.as_str())
    .bind(to.as_str())
    .bind(now_ms);
    if exec(&mut *c, OP, q).await? != 1 {
        return Err(StoreError::Conflict(
            "the shipment moved during the cancellation; retry".into(),
        ));
    }
    add_event(
        c,
        &rec.tracking_number,
        to,
        Some("cancelled by the merchant"),
        now_ms,
        OP,
    )
    .await?;
    rec.status = to;
    rec.updated_at_ms = now_ms;
    Ok(ShipmentCancel {
        record: rec,
        applied: true,
    })
}

write_op!(cancel_shipment_tx = cancel_shipment_in(merchant_id: &str => merchant_id.to_owned(),
    order_id: &OrderId => order_id.to_owned(),
    tombstone_tracking: &str => tombstone_tracking.to_owned(), now_ms: i64,
    ring: &Arc<Keyring> => ring.clone()) -> ShipmentCancel);

pub(crate) async fn cancel_shipment(
    p: &P,
    merchant_id: &str,
    order_id: &OrderId,
    tombstone_tracking: &str,
    now_ms: i64,
) -> Result<ShipmentCancel> {
    with_keys(p, |ring| async move {
        cancel_shipment_tx(p, merchant_id, order_id, tombstone_tracking, now_ms, &ring).await
    })
    .await
}

pub(crate) async fn shipment_header_digest(p: &P, tracking: &str) -> Result<Option<[u8; 32]>> {
    let q = query("SELECT header_digest FROM carrier_shipments WHERE tracking_number = $1")
        .bind(tracking);
    let digest: Option<Option<Vec<u8>>> = optional(&p.reader, "shipment_header_digest", q, |r| {
        get(r, "header_digest")
    })
    .await?;
    digest
        .flatten()
        .map(|d| {
            <[u8; 32]>::try_from(d.as_slice()).map_err(|_| StoreError::Corrupt("header_digest"))
        })
        .transpose()
}

pub(crate) async fn shipment_events(p: &P, tracking: &str) -> Result<Vec<ShipmentEvent>> {
    let q = query(
        "SELECT status, note, at_ms FROM carrier_events WHERE tracking_number = $1 ORDER BY id",
    )
    .bind(tracking);
    all(&p.reader, "shipment_events", q, |r| {
        let s: String = get(r, "status")?;
        Ok(ShipmentEvent {
            status: ShipmentStatus::decode(&s)?,
            at_ms: get(r, "at_ms")?,
            note: get(r, "note")?,
        })
    })
    .await
}

pub(crate) async fn list_shipments(p: &P, limit: u32, offset: u32) -> Result<Vec<ShipmentRecord>> {
    let sql = format!(
        "SELECT {SHIP_COLS} FROM carrier_shipments \
         ORDER BY created_at_ms DESC, tracking_number DESC LIMIT $1 OFFSET $2"
    );
    with_keys(p, |ring| {
        let q = query(&sql)
            .bind(i64::from(limit))
            .bind(i64::from(offset));
        async move { all(&p.reader, "list_shipments", q, |r| ship_row(&ring, r)).await }
    })
    .await
}

pub(crate) async fn count_shipments_by_status(p: &P) -> Result<Vec<(ShipmentStatus, u64)>> {
    count_by(
        p,
        "SELECT status AS k, COUNT(*) AS n FROM carrier_shipments GROUP BY status ORDER BY status",
        "count_shipments_by_status",
        ShipmentStatus::decode,
    )
    .await
}

const PUSH_COLS: &str = "o.id, o.tracking_number, o.merchant_id, o.order_id, o.status, o.at_ms, \
     o.state, o.attempts, o.next_attempt_at_ms, o.first_attempt_at_ms, o.last_error, \
     o.done_at_ms, o.created_at_ms, s.issuer_id, s.header_digest, s.delivered_at_ms";

const PUSH_FROM: &str =
    "carrier_outbox o JOIN carrier_shipments s ON s.tracking_number = o.tracking_number";

fn push_row(r: &DbRow) -> Result<DeliveryPush> {
    let status: String = get(r, "status")?;
    let state: String = get(r, "state")?;
    let attempts: i64 = get(r, "attempts")?;
    let digest: Option<Vec<u8>> = get(r, "header_digest")?;
    Ok(DeliveryPush {
        id: get(r, "id")?,
        tracking_number: get(r, "tracking_number")?,
        merchant_id: get(r, "merchant_id")?,
        order_id: get::<String>(r, "order_id")?.into(),
        status: ShipmentStatus::decode(&status)?,
        at_ms: get(r, "at_ms")?,
        state: PushState::parse(&state).ok_or(StoreError::Corrupt("push state"))?,
        attempts: u32::try_from(attempts).map_err(|_| StoreError::Corrupt("attempts"))?,
        next_attempt_at_ms: get(r, "next_attempt_at_ms")?,
        first_attempt_at_ms: get(r, "first_attempt_at_ms")?,
        last_error: get(r, "last_error")?,
        done_at_ms: get(r, "done_at_ms")?,
        created_at_ms: get(r, "created_at_ms")?,
        issuer_id: get(r, "issuer_id")?,
        header_digest: digest
            .map(|d| {
                <[u8; 32]>::try_from(d.as_slice())
                    .map_err(|_| StoreError::Corrupt("header_digest"))
            })
            .transpose()?,
        delivered_at_ms: get(r, "delivered_at_ms")?,
    })
}

/// Claims due pushes, each only once every earlier push of its shipment is done (one
/// shipment's events reach the merchant in order, across replicas too).
async fn claim_pushes_in(
    c: &mut Conn,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<DeliveryPush>> {
    const OP: &str = "claim_pushes";
    let sql = format!(
        "SELECT o.id FROM carrier_outbox o \
         WHERE o.state = 'pending' AND o.next_attempt_at_ms <= $1 \
         AND NOT EXISTS (SELECT 1 FROM carrier_outbox b WHERE b.tracking_number = o.tracking_number \
           AND b.id < o.id AND b.state = 'pending') \
         ORDER BY o.next_attempt_at_ms, o.id LIMIT $2{SKIP_LOCKED}"
    );
    let q = query_scalar(&sql).bind(now_ms).bind(i64::from(limit));
    let ids: Vec<i64> = scalars(&mut *c, OP, q).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let q = query(
            "UPDATE carrier_outbox SET attempts = attempts + 1, next_attempt_at_ms = $2, \
             first_attempt_at_ms = COALESCE(first_attempt_at_ms, $3) WHERE id = $1",
        )
        .bind(id)
        .bind(now_ms.saturating_add(lease_ms.max(0)))
        .bind(now_ms);
        exec(&mut *c, OP, q).await?;
        let sql = format!("SELECT {PUSH_COLS} FROM {PUSH_FROM} WHERE o.id = $1");
        out.push(one(&mut *c, OP, query(&sql).bind(id), push_row).await?);
    }
    Ok(out)
}

write_op!(claim_pushes = claim_pushes_in(now_ms: i64, lease_ms: i64, limit: u32)
    -> Vec<DeliveryPush>);

async fn finish_push_in(c: &mut Conn, id: i64, outcome: &PushOutcome, now_ms: i64) -> Result<()> {
    const OP: &str = "finish_push";
    let (state, next, error, done) = match outcome {
        PushOutcome::Sent => (PushState::Sent, None, None, Some(now_ms)),
        PushOutcome::Refused(e) => (PushState::Refused, None, Some(short(e)), Some(now_ms)),
        PushOutcome::Retry { at_ms, error } => {
            (PushState::Pending, Some(*at_ms), Some(short(error)), None)
        }
        PushOutcome::GiveUp(e) => (PushState::Failed, None, Some(short(e)), Some(now_ms)),
    };
    let q = query(
        "UPDATE carrier_outbox SET state = $2, next_attempt_at_ms = COALESCE($3, next_attempt_at_ms), \
         last_error = COALESCE($4, last_error), done_at_ms = $5 \
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(next)
    .bind(error)
    .bind(done);
    if exec(&mut *c, OP, q).await? == 0 {
        let q = query_scalar("SELECT id FROM carrier_outbox WHERE id = $1").bind(id);
        let exists: Option<i64> = scalar_opt(&mut *c, OP, q).await?;
        if exists.is_none() {
            return Err(StoreError::NotFound("delivery push"));
        }
    }
    Ok(())
}

write_op!(finish_push = finish_push_in(id: i64, outcome: &PushOutcome => outcome.clone(),
    now_ms: i64) -> ());

pub(crate) async fn pushes_for(p: &P, tracking: &str) -> Result<Vec<DeliveryPush>> {
    let sql = format!("SELECT {PUSH_COLS} FROM {PUSH_FROM} WHERE o.tracking_number = $1 ORDER BY o.id");
    let q = query(&sql).bind(tracking);
    all(&p.reader, "pushes_for", q, push_row).await
}

pub(crate) async fn pushes_pending(p: &P) -> Result<u64> {
    let q = query_scalar("SELECT COUNT(*) FROM carrier_outbox WHERE state = 'pending'");
    count(&p.reader, "pushes_pending", q).await
}

bucket_query!(
    /// Shipment events by the bucket they happened in, under the status they moved to.
    shipment_event_buckets = "SELECT (at_ms / $2) * $2 AS b, status AS k, COUNT(*) AS n \
         FROM carrier_events WHERE at_ms >= $1 GROUP BY b, k ORDER BY b, k"
);
