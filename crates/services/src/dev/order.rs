//! One order across every party, for a deployment that can read all three stores (`warifu
//! up`): the messages between cardholder, merchant, issuer and carrier with their times, drawn
//! as an inline SVG sequence diagram from each party's stored records, events and outbox; and
//! the field × party disclosure matrix read back from each party's store ([`super::holdings`]).

use maud::{Markup, PreEscaped, html};
use warifu_core::OrderId;
use warifu_core::Role;
use warifu_core::policy::{Field, Policy};
use warifu_store::{CarrierStore, IssuerStore, MerchantStore, ShipmentStatus, StoreError};

use super::holdings::{self, Cell, Holdings};
use crate::http::dashboard::{heads, money, time_ms};
use crate::merchant::worker::{FACT_DELIVERY, FACT_PROOF};
use crate::protocol::cardholder_merchant::OrderOutcome;

/// The three parties' stores.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    /// The merchant's.
    pub merchant: &'a dyn MerchantStore,
    /// The issuer's.
    pub issuer: &'a dyn IssuerStore,
    /// The carrier's.
    pub carrier: &'a dyn CarrierStore,
}

impl core::fmt::Debug for Stores<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Stores { .. }")
    }
}

/// A lane of the sequence diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The cardholder's wallet.
    Cardholder,
    /// The merchant.
    Merchant,
    /// The issuer.
    Issuer,
    /// The carrier.
    Carrier,
}

impl Lane {
    const ALL: [Lane; 4] = [
        Lane::Cardholder,
        Lane::Merchant,
        Lane::Issuer,
        Lane::Carrier,
    ];

    fn name(self) -> &'static str {
        match self {
            Lane::Cardholder => "cardholder",
            Lane::Merchant => "merchant",
            Lane::Issuer => "issuer",
            Lane::Carrier => "carrier",
        }
    }

    fn x(self) -> i64 {
        match self {
            Lane::Cardholder => 150,
            Lane::Merchant => 340,
            Lane::Issuer => 530,
            Lane::Carrier => 720,
        }
    }
}

/// One message (or, `from == to`, one step inside a party) of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// Who sent it.
    pub from: Lane,
    /// Who received it.
    pub to: Lane,
    /// What it was.
    pub label: String,
    /// Which store recorded it.
    pub source: &'static str,
}

/// The label of the cardholder's submission: the timeline's times count from it.
const SUBMISSION: &str = "sealed order (merchant, issuer, carrier parts)";

/// A time offset in words: `+312 ms`, `+4.2 s`, `−26.8 s` (before the submission).
fn offset(dt: i64) -> String {
    let sign = if dt < 0 { "−" } else { "+" };
    let a = dt.unsigned_abs();
    if a < 1000 {
        format!("{sign}{a} ms")
    } else {
        format!("{sign}{}.{} s", a / 1000, (a % 1000) / 100)
    }
}

/// The order's messages, oldest first, from each party's store.
pub async fn messages(
    s: Stores<'_>,
    merchant_id: &str,
    order_id: &OrderId,
) -> Result<Vec<Message>, StoreError> {
    let mut out = Vec::new();
    let mut push = |at_ms, from, to, label: String, source| {
        out.push(Message {
            at_ms,
            from,
            to,
            label,
            source,
        })
    };
    if let Some(f) = s.merchant.get_order_form(order_id).await? {
        push(
            f.created_at_ms,
            Lane::Merchant,
            Lane::Cardholder,
            "order form (catalog, policy)".into(),
            "merchant: order form",
        );
    }
    let order = s.merchant.get_order(order_id).await?;
    if let Some(o) = &order {
        push(
            o.created_at_ms,
            Lane::Cardholder,
            Lane::Merchant,
            SUBMISSION.into(),
            "merchant: order",
        );
        for m in s.merchant.outbox_for_order(order_id).await? {
            let (to, label) = match m.kind.as_str() {
                "authorize" => (Lane::Issuer, "authorize (issuer part)".to_owned()),
                "ship" => (
                    Lane::Carrier,
                    "delivery request (carrier part, issuer's approval)".to_owned(),
                ),
                other => {
                    let to = if other.contains("ship") || other.contains("track") {
                        Lane::Carrier
                    } else {
                        Lane::Issuer
                    };
                    (to, other.replace('_', " "))
                }
            };
            let label = if m.attempts > 1 {
                format!("{label} ({} attempts)", m.attempts)
            } else {
                label
            };
            push(
                m.created_at_ms,
                Lane::Merchant,
                to,
                label,
                "merchant: outbox",
            );
        }
    }
    if let Some(a) = s.issuer.get_authorization(merchant_id, order_id).await? {
        let label = match a.decline_code {
            Some(c) => format!("declined ({})", c.as_str()),
            None => format!("approved, {} held", money(a.amount, &a.currency)),
        };
        push(
            a.created_at_ms,
            Lane::Issuer,
            Lane::Merchant,
            label,
            "issuer: authorization",
        );
        if a.updated_at_ms > a.created_at_ms {
            push(
                a.updated_at_ms,
                Lane::Issuer,
                Lane::Merchant,
                format!("payment {}", a.status.as_str()),
                "issuer: authorization",
            );
        }
    }
    if let Some(sh) = s.carrier.get_shipment(merchant_id, order_id).await? {
        push(
            sh.created_at_ms,
            Lane::Carrier,
            Lane::Merchant,
            format!("accepted, tracking {}", sh.tracking_number),
            "carrier: shipment",
        );
        for e in s.carrier.shipment_events(&sh.tracking_number).await? {
            if e.status == ShipmentStatus::Accepted {
                continue;
            }
            let label = match &e.note {
                Some(n) => format!("{} ({n})", e.status.as_str()),
                None => e.status.as_str().replace('_', " "),
            };
            push(
                e.at_ms,
                Lane::Carrier,
                Lane::Carrier,
                label,
                "carrier: events",
            );
        }
    }
    // The cardholder's cancel (its first answer is kept under the "cancel" scope).
    if let Some(c) = s.merchant.idempotency_get("cancel", order_id).await? {
        push(
            c.created_at_ms,
            Lane::Cardholder,
            Lane::Merchant,
            "cancel".into(),
            "merchant: cancel",
        );
    }
    // What the merchant learned from the carrier's tracking (the last status, and the proof).
    for f in s.merchant.order_facts(order_id).await? {
        let label = match f.kind.as_str() {
            FACT_DELIVERY => format!(
                "tracking: {} (the merchant learns)",
                String::from_utf8_lossy(&f.body).replace('_', " ")
            ),
            FACT_PROOF => "proof of delivery (kept by the merchant)".to_owned(),
            _ => continue,
        };
        push(
            f.updated_at_ms,
            Lane::Carrier,
            Lane::Merchant,
            label,
            "merchant: order facts",
        );
    }
    if let Some(first) = s.merchant.idempotency_get("submit", order_id).await?
        && let Ok(o) = serde_json::from_slice::<OrderOutcome>(&first.body)
    {
        push(
            first.created_at_ms,
            Lane::Merchant,
            Lane::Cardholder,
            format!("answer: {} (issuer's receipt)", o.state),
            "merchant: first answer",
        );
    }
    out.sort_by_key(|m| m.at_ms);
    Ok(out)
}

/// The sequence diagram of `messages` as inline SVG, with a text table after it for screen
/// readers and copying.
pub fn timeline(messages: &[Message]) -> Markup {
    const TOP: i64 = 56;
    const ROW: i64 = 38;
    const WIDTH: i64 = 880;
    let height = TOP + ROW * i64::try_from(messages.len()).unwrap_or(0) + 24;
    // Times count from the cardholder's submission, not from the form's issue (a cardholder
    // may take minutes to fill a form): the form shows a negative offset.
    let t0 = messages
        .iter()
        .find(|m| m.label == SUBMISSION)
        .or(messages.first())
        .map(|m| m.at_ms)
        .unwrap_or(0);
    let mut svg = String::new();
    svg.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-labelledby=\"tl-title\">"
    ));
    svg.push_str("<title id=\"tl-title\">Sequence of the order's messages between cardholder, merchant, issuer and carrier</title>");
    svg.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#1b1f24\"/></marker></defs>");
    for lane in Lane::ALL {
        let x = lane.x();
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"6\" width=\"120\" height=\"26\" rx=\"4\" fill=\"#123\"/><text x=\"{x}\" y=\"24\" text-anchor=\"middle\" fill=\"#fff\">{}</text><line x1=\"{x}\" y1=\"32\" x2=\"{x}\" y2=\"{}\" stroke=\"#8c959f\" stroke-dasharray=\"4 3\"/>",
            x - 60,
            lane.name(),
            height - 8
        ));
    }
    for (i, m) in messages.iter().enumerate() {
        let y = TOP + ROW * i64::try_from(i).unwrap_or(0) + 14;
        let dt = m.at_ms - t0;
        svg.push_str(&format!(
            "<text x=\"4\" y=\"{}\" fill=\"#57606a\">{}</text><text x=\"4\" y=\"{}\" fill=\"#8c959f\" font-size=\"10\">{}</text>",
            y + 4,
            offset(dt),
            y + 16,
            escape(&time_ms(m.at_ms)[11..])
        ));
        let (x1, x2) = (m.from.x(), m.to.x());
        if x1 == x2 {
            // A step inside a party: a loop towards the middle, its label beside it, so the
            // rightmost lane's labels stay inside the picture.
            let (dir, anchor) = if m.from == Lane::Carrier {
                (-1, "end")
            } else {
                (1, "start")
            };
            svg.push_str(&format!(
                "<path d=\"M{x1},{} h{} v14 h{}\" fill=\"none\" stroke=\"#1b1f24\" marker-end=\"url(#arrow)\"/><text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
                y - 4,
                40 * dir,
                -38 * dir,
                x1 + 46 * dir,
                y + 7,
                escape(&m.label)
            ));
        } else {
            let mid = (x1 + x2) / 2;
            svg.push_str(&format!(
                "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#0b5cad\" stroke-width=\"1.6\" marker-end=\"url(#arrow)\"/><text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                y - 5,
                escape(&m.label)
            ));
        }
    }
    svg.push_str("</svg>");
    html! {
        figure {
            (PreEscaped(svg))
            figcaption.muted { "Offsets count from the sealed order's arrival at the merchant (the order form was issued before it). Times from each party's own records: order forms, orders and outbox at the merchant, authorizations at the issuer, shipments and events at the carrier." }
        }
        details {
            summary { "The same messages as a table" }
            table {
                (heads(&["Time (UTC)", "From", "To", "Message", "Recorded in"]))
                tbody {
                    @for m in messages {
                        tr { td { (time_ms(m.at_ms)) } td { (m.from.name()) } td { (m.to.name()) } td { (m.label) } td { (m.source) } }
                    }
                }
            }
        }
    }
}

/// Escapes text for SVG/HTML.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What each party holds about the order, read back from its own store.
pub async fn holdings_of(
    s: Stores<'_>,
    merchant_id: &str,
    order_id: &OrderId,
) -> Result<[(Role, Holdings); 3], StoreError> {
    Ok([
        (
            Role::Merchant,
            holdings::merchant(s.merchant, order_id).await?,
        ),
        (
            Role::Issuer,
            holdings::issuer(s.issuer, merchant_id, order_id).await?,
        ),
        (
            Role::Carrier,
            holdings::carrier(s.carrier, merchant_id, order_id).await?,
        ),
    ])
}

/// Whether each party (merchant, issuer, carrier, as in [`holdings_of`]) received anything of
/// the order: the merchant the sealed order, the issuer an authorization request, the carrier a
/// delivery request. The carrier of a declined or a digital order received nothing.
pub async fn received_by(
    s: Stores<'_>,
    merchant_id: &str,
    order_id: &OrderId,
) -> Result<[bool; 3], StoreError> {
    Ok([
        s.merchant.get_order(order_id).await?.is_some(),
        s.issuer
            .get_authorization(merchant_id, order_id)
            .await?
            .is_some(),
        s.carrier
            .get_shipment(merchant_id, order_id)
            .await?
            .is_some(),
    ])
}

/// The cell of `field` at a party: as [`holdings::cell`], except that a party that received
/// nothing of the order shows "never received" (—), not "received, not kept" (○).
pub fn cell(policy: &Policy, role: Role, held: &Holdings, received: bool, field: Field) -> Cell {
    match holdings::cell(policy, role, held, field) {
        Cell::NotKept if !received => Cell::Never,
        c => c,
    }
}

/// The field × party matrix: what each party holds, against what the policy gave it (and
/// `received`, per party as in [`received_by`], whether it was given anything at all).
pub fn matrix(policy: &Policy, held: &[(Role, Holdings); 3], received: &[bool; 3]) -> Markup {
    html! {
        table.matrix {
            caption.muted { "What each party holds about this order, read back from its own database" }
            thead { tr {
                th scope="col" { "Field" }
                @for (r, _) in held { th scope="col" { (r.as_str()) } }
            } }
            tbody {
                @for f in Field::ALL {
                    tr {
                        th scope="row" { (f.name().replace('_', " ")) }
                        @for ((r, h), got) in held.iter().zip(received) {
                            @let c = cell(policy, *r, h, *got, f);
                            td class=(match c { Cell::Holds => "yes", Cell::Leak => "leak", _ => "no" })
                               data-cell=(format!("{}:{}", f.name(), r.as_str())) {
                                (c.symbol())
                            }
                        }
                    }
                }
            }
        }
        p.muted { "✔ holds · ○ received under the disclosure policy, not kept · — never received · LEAK held without the policy giving it" }
    }
}

/// The whole picture of one order: the timeline and the matrix.
pub async fn across(
    s: Stores<'_>,
    policy: &Policy,
    merchant_id: &str,
    order_id: &OrderId,
) -> Result<Markup, StoreError> {
    let msgs = messages(s, merchant_id, order_id).await?;
    let held = holdings_of(s, merchant_id, order_id).await?;
    let received = received_by(s, merchant_id, order_id).await?;
    Ok(html! {
        h2 { "The order across every party" }
        (timeline(&msgs))
        h2 { "Who holds which field" }
        (matrix(policy, &held, &received))
    })
}

/// Whether the matrix has a leak (a field held without the policy giving it).
pub fn has_leak(policy: &Policy, held: &[(Role, Holdings); 3]) -> bool {
    held.iter().any(|(r, h)| {
        Field::ALL
            .into_iter()
            .any(|f| holdings::cell(policy, *r, h, f) == Cell::Leak)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_in_words_and_loops_inside_the_picture() {
        assert_eq!(offset(0), "+0 ms");
        assert_eq!(offset(312), "+312 ms");
        assert_eq!(offset(4_250), "+4.2 s");
        assert_eq!(offset(-26_810), "−26.8 s");
        let m = |from, to, at_ms, label: &str| Message {
            at_ms,
            from,
            to,
            label: label.into(),
            source: "test",
        };
        let svg = timeline(&[
            m(
                Lane::Merchant,
                Lane::Cardholder,
                0,
                "order form (catalog, policy)",
            ),
            m(Lane::Cardholder, Lane::Merchant, 26_810, SUBMISSION),
            m(Lane::Carrier, Lane::Carrier, 27_000, "delivered"),
        ])
        .into_string();
        assert!(
            svg.contains(">−26.8 s</text>") && svg.contains(">+0 ms</text>"),
            "{svg}"
        );
        // The carrier's own step loops left, its label ends before the lane.
        assert!(
            svg.contains("text-anchor=\"end\">delivered</text>"),
            "{svg}"
        );
    }
}
