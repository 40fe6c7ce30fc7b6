//! The carrier's SQL: shipments and their tracking events.

use warifu_core::secret::Secret;

use super::common::*;
use crate::error::{Result, StoreError};
use crate::sql::{check_id, short};
use crate::types::*;

const SHIP_COLS: &str = "tracking_number, merchant_id, order_id, cardholder_id, addressee, address, \
     parcel, status, issuer_id, delivered_at_ms, created_at_ms, updated_at_ms";

fn ship_row(r: &DbRow) -> Result<ShipmentRecord> {
    let status: String = get(r, "status")?;
    let addressee: String = get(r, "addressee")?;
    let address: String = get(r, "address")?;
    Ok(ShipmentRecord {
        tracking_number: get(r, "tracking_number")?,
        merchant_id: get(r, "merchant_id")?,
        order_id: get(r, "order_id")?,
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
    let q = sqlx::query(
        "INSERT INTO carrier_events (tracking_number, status, note, at_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(tracking)
    .bind(status.as_str())
    .bind(note.map(short))
    .bind(at_ms);
    exec(&mut *c, op, q).await?;
    Ok(())
}

async fn accept_shipment_in(c: &mut Conn, s: &NewShipment) -> Result<Inserted<ShipmentRecord>> {
    const OP: &str = "accept_shipment";
    check_id("merchant id", &s.merchant_id)?;
    check_id("order id", &s.order_id)?;
    check_id("tracking number", &s.tracking_number)?;
    check_id("issuer id", &s.issuer_id)?;
    let q = sqlx::query(
        "INSERT INTO carrier_shipments (tracking_number, merchant_id, order_id, cardholder_id, \
         addressee, address, parcel, status, created_at_ms, updated_at_ms, issuer_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(&s.tracking_number)
    .bind(&s.merchant_id)
    .bind(&s.order_id)
    .bind(&s.cardholder_id)
    .bind(s.addressee.expose())
    .bind(s.address.expose())
    .bind(&s.parcel)
    .bind(ShipmentStatus::Accepted.as_str())
    .bind(s.now_ms)
    .bind(&s.issuer_id);
    if exec(&mut *c, OP, q).await? == 0 {
        let sql = ship_by_order();
        let q = sqlx::query(&sql).bind(&s.merchant_id).bind(&s.order_id);
        return match optional(&mut *c, OP, q, ship_row).await? {
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

write_op!(accept_shipment = accept_shipment_in(s: &NewShipment => s.clone())
    -> Inserted<ShipmentRecord>);

pub(crate) async fn get_shipment(
    p: &P,
    merchant_id: &str,
    order_id: &str,
) -> Result<Option<ShipmentRecord>> {
    let sql = ship_by_order();
    let q = sqlx::query(&sql).bind(merchant_id).bind(order_id);
    optional(&p.reader, "get_shipment", q, ship_row).await
}

pub(crate) async fn shipment_by_tracking(p: &P, tracking: &str) -> Result<Option<ShipmentRecord>> {
    let sql = format!("SELECT {SHIP_COLS} FROM carrier_shipments WHERE tracking_number = $1");
    let q = sqlx::query(&sql).bind(tracking);
    optional(&p.reader, "shipment_by_tracking", q, ship_row).await
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
    let q = sqlx::query(
        "UPDATE carrier_shipments SET status = $3, updated_at_ms = $4, \
         delivered_at_ms = COALESCE(delivered_at_ms, $5) \
         WHERE tracking_number = $1 AND status = $2",
    )
    .bind(tracking)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(now_ms)
    .bind((to == ShipmentStatus::Delivered).then_some(now_ms));
    if exec(&mut *c, OP, q).await? == 0 {
        let q =
            sqlx::query_scalar("SELECT status FROM carrier_shipments WHERE tracking_number = $1")
                .bind(tracking);
        let exists: Option<String> = scalar_opt(&mut *c, OP, q).await?;
        return match exists {
            None => Err(StoreError::NotFound("shipment")),
            Some(_) => Ok(false),
        };
    }
    add_event(c, tracking, to, note.as_deref(), now_ms, OP).await?;
    Ok(true)
}

write_op!(advance_shipment = advance_shipment_in(tracking: &str => tracking.to_owned(),
    from: ShipmentStatus, to: ShipmentStatus, note: Option<&str> => note.map(str::to_owned),
    now_ms: i64) -> bool);

pub(crate) async fn shipment_events(p: &P, tracking: &str) -> Result<Vec<ShipmentEvent>> {
    let q = sqlx::query(
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
    let q = sqlx::query(&sql)
        .bind(i64::from(limit))
        .bind(i64::from(offset));
    all(&p.reader, "list_shipments", q, ship_row).await
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
