//! The merchant's dashboard: its orders, their states, amounts, goods and tracking numbers.
//! It holds no card number and no destination, and shows none.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use maud::html;
use warifu_core::sealed::Disclosed;
use warifu_store::OrderFilter;

use super::state::MerchantState;
use crate::error::AppError;
use crate::http::charts::{self, Series, Window};
use crate::http::dashboard::{self as kit, heads, money, state_class, time_ms};
use crate::session::operator::Operator;

/// The dashboard routes, to merge into the merchant's public router.
pub fn routes() -> Router<Arc<MerchantState>> {
    kit::party_routes(get(dashboard), MerchantState::id, MerchantState::guard)
}

/// What the merchant's view says was bought: `2 × Sencha (TEA-001)`, one per line.
fn goods(view_json: &str) -> Vec<String> {
    let Ok(view) = serde_json::from_str::<Disclosed>(view_json) else {
        return vec!["(unreadable view)".into()];
    };
    view.lines
        .unwrap_or_default()
        .iter()
        .map(|l| {
            format!(
                "{} × {}{}",
                l.quantity
                    .map(|q| q.to_string())
                    .unwrap_or_else(|| "?".into()),
                l.product_name.as_deref().unwrap_or("?"),
                l.product_number
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

fn payment(view_json: &str) -> String {
    serde_json::from_str::<Disclosed>(view_json)
        .ok()
        .and_then(|v| v.payment_method)
        .map(|m| match m {
            warifu_core::order::PaymentMethod::LumpSum => "lump sum".to_owned(),
            warifu_core::order::PaymentMethod::Installments { count } => {
                format!("{count} instalments")
            }
            warifu_core::order::PaymentMethod::Revolving => "revolving".to_owned(),
            warifu_core::order::PaymentMethod::Bonus => "bonus".to_owned(),
        })
        .unwrap_or_else(|| "—".into())
}

async fn dashboard(
    State(st): State<Arc<MerchantState>>,
    op: Result<Operator, AppError>,
) -> Response {
    let who = st.id().as_str().to_owned();
    if let Some(r) = kit::require(op, &who) {
        return r;
    }
    let store = st.store();
    let counts = match store.count_orders_by_state().await {
        Ok(c) => c,
        Err(e) => return kit::store_failure(&who, &e),
    };
    let orders = match store
        .list_orders(&OrderFilter {
            limit: Some(200),
            ..OrderFilter::default()
        })
        .await
    {
        Ok(o) => o,
        Err(e) => return kit::store_failure(&who, &e),
    };
    let pending = store.outbox_pending().await.unwrap_or(0);
    let w = Window::recent(st.clock().now_ms());
    let (orders_by_minute, backlog) = match (
        store.order_buckets(w.start_ms, w.bucket_ms).await,
        store.outbox_pending_buckets(w.start_ms, w.bucket_ms).await,
    ) {
        (Ok(o), Ok(b)) => (o, b),
        (Err(e), _) | (_, Err(e)) => return kit::store_failure(&who, &e),
    };
    let backlog_series: Vec<Series> = charts::totals(&backlog, |_| charts::NEUTRAL)
        .iter()
        .zip(charts::PALETTE.iter().cycle())
        .map(|(kind, tone)| Series {
            name: kind.label.clone(),
            tone,
            counts: w.counts(&backlog, |k| k == kind.label),
        })
        .collect();
    let body = html! {
        h1 { "Merchant dashboard" }
        p.muted { "What " (who) " holds: its own part of each order. It never receives a card number or a delivery destination." }
        section.charts aria-label="charts" {
            (charts::columns("orders-per-minute", "Orders per minute", "orders", &w, &[Series {
                name: "orders".into(),
                tone: charts::PALETTE[0],
                counts: w.counts(&orders_by_minute, |_| true),
            }]))
            (charts::columns("outbox-backlog", "Outbox backlog by minute enqueued", "messages waiting", &w, &backlog_series))
            (charts::bars("order-outcomes", "Approvals and declines by code, last 3 h", "orders",
                &charts::totals(&orders_by_minute, charts::outcome_tone)))
        }
        h2 { "Orders by state" }
        table {
            (heads(&["State", "Orders"]))
            tbody {
                @for (s, n) in &counts {
                    tr { td { span class=(state_class(s.as_str())) { (s.as_str()) } } td.num { (n) } }
                }
                tr {
                    td { "outbox: messages not yet done" br; span.muted { "includes each shipped order's delivery check, kept until the carrier reports delivery" } }
                    td.num id="outbox-pending" { (pending) }
                }
            }
        }
        h2 { "Orders" }
        @if orders.is_empty() {
            p { "No orders yet." }
        } @else {
            table.wide {
                (heads(&["Order", "State", "Amount", "Goods", "Payment", "Cardholder", "Issuer · authorization", "Carrier · tracking", "Received · updated (UTC)"]))
                tbody {
                    @for o in &orders {
                        tr id=(format!("order-{}", o.order_id)) {
                            td { code { (o.order_id) } }
                            td {
                                span class=(state_class(o.state.as_str())) { (o.state.as_str()) }
                                @if let Some(c) = &o.decline_code { " " span.muted { "(" (c) ")" } }
                            }
                            td.num { (money(o.amount, &o.currency)) }
                            td { @for g in goods(&o.merchant_view) { (g) br; } }
                            td { (payment(&o.merchant_view)) }
                            td { (o.cardholder_id) }
                            td { (o.issuer_id) br; span.muted { (o.authorization_id.as_deref().unwrap_or("—")) } }
                            td { (o.carrier_id.as_deref().unwrap_or("— (digital)")) br; span.muted { (o.tracking_number.as_deref().unwrap_or("—")) } }
                            td { (time_ms(o.created_at_ms)) br; span.muted { (time_ms(o.updated_at_ms)) } }
                        }
                    }
                }
            }
        }
    };
    kit::dashboard("Merchant dashboard", &who, body)
}
