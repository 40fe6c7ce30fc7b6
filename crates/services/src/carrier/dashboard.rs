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
use crate::http::dashboard::{self as kit, heads, state_class, time_ms};
use crate::session::operator::Operator;

/// The dashboard routes, to merge into the carrier's public router.
pub fn routes() -> Router<Arc<CarrierState>> {
    kit::party_routes(get(dashboard), CarrierState::id, CarrierState::guard)
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
    let body = html! {
        h1 { "Carrier dashboard" }
        p.muted { "What " (who) " holds: the shipments merchants asked it to deliver, with the destination each cardholder sealed for it. It never receives card data or the list of goods." }
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
