//! The issuer's dashboard: cards (last four digits only), authorizations with their holds,
//! captures and refunds, ledger balances and the audit of its books. It never holds a
//! destination.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use maud::html;
use warifu_core::order::PaymentMethod;

use super::state::IssuerState;
use crate::error::AppError;
use crate::http::charts::{self, Series, Window};
use crate::http::dashboard::{self as kit, heads, last4, money, state_class, time_ms};
use crate::session::operator::Operator;

/// The dashboard routes, to merge into the issuer's public router.
pub fn routes() -> Router<Arc<IssuerState>> {
    kit::party_routes(get(dashboard), IssuerState::id, IssuerState::guard)
}

/// A payment method in words.
pub fn method_words(m: PaymentMethod) -> String {
    match m {
        PaymentMethod::LumpSum => "lump sum".into(),
        PaymentMethod::Installments { count } => format!("{count} instalments"),
        PaymentMethod::Revolving => "revolving".into(),
        PaymentMethod::Bonus => "bonus".into(),
    }
}

fn signed(amount: i64, currency: &str) -> String {
    let m = money(amount.unsigned_abs(), currency);
    if amount < 0 { format!("−{m}") } else { m }
}

async fn dashboard(State(st): State<Arc<IssuerState>>, op: Result<Operator, AppError>) -> Response {
    let who = st.id().as_str().to_owned();
    if let Some(r) = kit::require(op, &who) {
        return r;
    }
    let store = st.store();
    let (cards, auths, audit) = match (
        store.list_cards(200, 0).await,
        store.list_authorizations(200, 0).await,
        store.audit().await,
    ) {
        (Ok(c), Ok(a), Ok(d)) => (c, a, d),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return kit::store_failure(&who, &e);
        }
    };
    let currency = cards
        .first()
        .map(|c| c.currency.clone())
        .unwrap_or_else(|| "JPY".into());
    let mut accounts: Vec<String> = Vec::new();
    for c in &cards {
        accounts.push(format!("card:{}:available", c.card_id));
        accounts.push(format!("card:{}:held", c.card_id));
    }
    let merchants: BTreeSet<&str> = auths.iter().map(|a| a.merchant_id.as_str()).collect();
    accounts.extend(merchants.iter().map(|m| format!("merchant:{m}")));
    accounts.push("issuer:credit".into());
    let mut balances = Vec::with_capacity(accounts.len());
    for a in accounts {
        match store.ledger_balance(&a).await {
            Ok(b) => balances.push((a, b)),
            Err(e) => return kit::store_failure(&who, &e),
        }
    }
    let mut settlements = Vec::new();
    for m in &merchants {
        match store.settlement_report(m).await {
            Ok(days) => settlements.push((m.to_string(), days)),
            Err(e) => return kit::store_failure(&who, &e),
        }
    }
    let w = Window::recent(st.clock().now_ms());
    let decisions = match store.authorization_buckets(w.start_ms, w.bucket_ms).await {
        Ok(d) => d,
        Err(e) => return kit::store_failure(&who, &e),
    };
    let body = html! {
        h1 { "Issuer dashboard" }
        p.muted { "What " (who) " holds: enrolled cards, the authorizations merchants asked for, and its double-entry ledger. It never receives a delivery destination." }
        section.charts aria-label="charts" {
            (charts::columns("authorizations-per-minute", "Authorizations per minute", "decisions", &w, &[
                Series { name: "approved".into(), tone: charts::GOOD, counts: w.counts(&decisions, |k| k == "approved") },
                Series { name: "declined".into(), tone: charts::BAD, counts: w.counts(&decisions, |k| k != "approved") },
            ]))
            (charts::bars("decline-codes", "Approvals and decline codes, last 3 h", "decisions",
                &charts::totals(&decisions, charts::outcome_tone)))
        }
        h2 { "Books" }
        p {
            @if audit.is_clean() {
                span.yes { "✔ balanced" }
            } @else {
                span.leak { "✘ out of balance" }
            }
            " — ledger sum " (audit.ledger_sum) ", unbalanced movements " (audit.unbalanced_movements)
            ", cards checked " (audit.cards)
        }
        h2 { "Cards" }
        table {
            (heads(&["Card", "Cardholder", "Name on card", "Number", "Expiry", "Status", "Limit", "Available"]))
            tbody {
                @for c in &cards {
                    tr {
                        td { code { (c.card_id) } }
                        td { (c.cardholder_id) }
                        td { (c.holder_name) }
                        td { (last4(c.number.expose())) }
                        td { (format!("{}-{:02}", c.expiry.year, c.expiry.month)) }
                        td { span class=(state_class(c.status.as_str())) { (c.status.as_str()) } }
                        td.num { (money(c.credit_limit, &c.currency)) }
                        td.num { (money(c.available, &c.currency)) }
                    }
                }
            }
        }
        h2 { "Authorizations, captures and refunds" }
        @if auths.is_empty() {
            p { "No authorizations yet." }
        } @else {
            table.wide {
                (heads(&["Order", "Merchant", "Status", "Amount", "Payment", "Held", "Captured", "Refunded", "Card · authorization", "Decided · updated (UTC)"]))
                tbody {
                    @for a in &auths {
                        tr id=(format!("auth-{}", a.order_id)) {
                            td { code { (a.order_id) } }
                            td { (a.merchant_id) }
                            td {
                                span class=(state_class(a.status.as_str())) { (a.status.as_str()) }
                                @if let Some(c) = a.decline_code { " " span.muted { "(" (c.as_str()) ")" } }
                            }
                            td.num { (money(a.amount, &a.currency)) }
                            td {
                                (method_words(a.payment_method))
                                @let sched = a.schedule();
                                @if sched.len() > 1 {
                                    br; span.muted.schedule { (sched.iter().map(|x| money(*x, &a.currency)).collect::<Vec<_>>().join(" + ")) }
                                }
                            }
                            td.num { (money(a.held, &a.currency)) }
                            td.num { (money(a.captured, &a.currency)) }
                            td.num { (money(a.refunded, &a.currency)) }
                            td { (a.card_id.as_deref().unwrap_or("—")) br; code { (a.authorization_id) } }
                            td { (time_ms(a.created_at_ms)) br; span.muted { (time_ms(a.updated_at_ms)) } }
                        }
                    }
                }
            }
        }
        h2 { "Ledger balances" }
        table {
            (heads(&["Account", "Balance"]))
            tbody {
                @for (a, b) in &balances {
                    tr { td { code { (a) } } td.num { (signed(*b, &currency)) } }
                }
            }
        }
        @if !settlements.is_empty() {
            h2 { "Settlement by day (UTC)" }
            table {
                (heads(&["Merchant", "Day", "Captured", "Refunded"]))
                tbody {
                    @for (m, days) in &settlements {
                        @for d in days {
                            tr {
                                td { (m) }
                                td { (time_ms(d.day * 86_400_000).get(..10).unwrap_or_default()) }
                                td.num { (money(d.captured, &currency)) }
                                td.num { (money(d.refunded, &currency)) }
                            }
                        }
                    }
                }
            }
        }
    };
    kit::dashboard("Issuer dashboard", &who, body)
}
