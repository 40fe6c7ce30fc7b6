//! The carrier's dashboard: its shipments with their destinations (the carrier is entitled
//! to them), parcels, statuses and histories. It never holds card data or the goods list.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use maud::html;

use super::state::CarrierState;
use crate::error::AppError;
use warifu_store::ShipmentStatus;

use crate::http::charts::{self, Bar, Series, Window};
use crate::http::dashboard::{self as kit, heads, state_class, time_ms};
use crate::session::operator::Operator;

/// The dashboard routes, to merge into the carrier's public router.
pub fn routes() -> Router<Arc<CarrierState>> {
    kit::party_routes(get(dashboard), CarrierState::id, CarrierState::guard)
}

/// A status's colour: delivered good, returned bad, cancelled grey, the others in turn.
fn tone(s: ShipmentStatus) -> &'static str {
    match s {
        ShipmentStatus::Delivered => charts::GOOD,
        ShipmentStatus::Returned => charts::BAD,
        ShipmentStatus::Cancelled => charts::NEUTRAL,
        ShipmentStatus::Accepted => charts::PALETTE[0],
        ShipmentStatus::PickedUp => charts::PALETTE[1],
        ShipmentStatus::InTransit => charts::PALETTE[2],
        _ => charts::PALETTE[3],
    }
}

async fn dashboard(
    State(st): State<Arc<CarrierState>>,
    op: Result<Operator, AppError>,
) -> Response {
    let who = st.id().as_str().to_owned();
    if let Some(r) = kit::require(op, &who) {
        return r;
    }
    let store = st.store();
    let shipments = match store.list_shipments(200, 0).await {
        Ok(s) => s,
        Err(e) => return kit::store_failure(&who, &e),
    };
    let mut rows = Vec::with_capacity(shipments.len());
    for s in shipments {
        match store.shipment_events(&s.tracking_number).await {
            Ok(ev) => rows.push((s, ev)),
            Err(e) => return kit::store_failure(&who, &e),
        }
    }
    let w = Window::recent(st.clock().now_ms());
    let (events, now) = match (
        store.shipment_event_buckets(w.start_ms, w.bucket_ms).await,
        store.count_shipments_by_status().await,
    ) {
        (Ok(e), Ok(n)) => (e, n),
        (Err(e), _) | (_, Err(e)) => return kit::store_failure(&who, &e),
    };
    let by_status: Vec<Series> = ShipmentStatus::ALL
        .iter()
        .map(|s| Series {
            name: s.as_str().into(),
            tone: tone(*s),
            counts: w.counts(&events, |k| k == s.as_str()),
        })
        .filter(|s| s.counts.iter().any(|n| *n > 0))
        .collect();
    let now: Vec<Bar> = now
        .into_iter()
        .map(|(s, n)| Bar {
            label: s.as_str().into(),
            count: n,
            tone: tone(s),
        })
        .collect();
    let body = html! {
        h1 { "Carrier dashboard" }
        p.muted { "What " (who) " holds: the shipments merchants asked it to deliver, with the destination each cardholder sealed for it. It never receives card data or the list of goods." }
        section.charts aria-label="charts" {
            (charts::columns("shipment-events", "Shipments by status per minute", "status changes", &w, &by_status))
            (charts::bars("shipment-status", "Shipments by status now", "shipments", &now))
        }
        @if rows.is_empty() {
            p { "No shipments yet." }
        } @else {
            table.wide {
                (heads(&["Tracking", "Merchant", "Order", "Status", "Addressee", "Address", "Parcel", "History", "Accepted"]))
                tbody {
                    @for (s, events) in &rows {
                        tr id=(format!("shipment-{}", s.tracking_number)) {
                            td { code { (s.tracking_number) } }
                            td { (s.merchant_id) }
                            td { code { (s.order_id) } }
                            td { span class=(state_class(s.status.as_str())) { (s.status.as_str()) } }
                            td { (s.addressee.expose()) }
                            td { (s.address.expose()) }
                            td { (s.parcel) }
                            td {
                                @if events.is_empty() { span.muted { "—" } }
                                @for e in events {
                                    (time_ms(e.at_ms)) " " (e.status.as_str())
                                    @if let Some(n) = &e.note { " (" (n) ")" }
                                    br;
                                }
                            }
                            td { (time_ms(s.created_at_ms)) }
                        }
                    }
                }
            }
        }
    };
    kit::dashboard("Carrier dashboard", &who, body)
}
