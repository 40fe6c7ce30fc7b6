//! The order page's disclosure matrix marks a party that received nothing of an order "—",
//! never "○ received" (issue 12.6): the carrier of a digital or a declined order.

mod common;

use common::{Db, Fill, OTHER_CARD, start};
use warifu_core::OrderId;
use warifu_core::policy::Field;
use warifu_services::dev::order::{Stores, across};

/// The symbol of every cell of the rendered matrix in the column of `party`.
fn column(html: &str, party: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in Field::ALL {
        let key = format!("data-cell=\"{}:{party}\">", f.name());
        let at = html.find(&key).unwrap_or_else(|| panic!("no cell {key}"));
        let rest = &html[at + key.len()..];
        let end = rest.find("</td>").expect("cell end");
        out.push((f.name().to_owned(), rest[..end].to_owned()));
    }
    out
}

#[tokio::test]
async fn a_party_that_received_nothing_shows_a_dash() {
    let Some(env) = start(Db::Sqlite).await else {
        return;
    };
    let stores = Stores {
        merchant: env.local.merchant.store().as_ref(),
        issuer: env.local.issuer.store().as_ref(),
        carrier: env.local.carrier.store().as_ref(),
    };
    let merchant = env.merchant();
    let render = |order_id: String, policy: warifu_core::policy::Policy| {
        let merchant = merchant.clone();
        async move {
            across(
                stores,
                &policy,
                merchant.as_str(),
                &OrderId::from(&order_id),
            )
            .await
            .expect("across")
            .into_string()
        }
    };

    // A digital order: no carrier at all.
    let fill = Fill::default();
    let digital = env
        .alice
        .purchase(&env.merchant(), &env.issuer(), true, |f| fill.order(f))
        .await
        .expect("digital purchase");
    let html = render(
        digital.outcome.order_id.to_string(),
        digital.form.policy.clone(),
    )
    .await;
    for (field, symbol) in column(&html, "carrier") {
        assert_eq!(symbol, "—", "digital order, carrier, {field}");
    }

    // A declined order (a card nobody holds): the carrier never received a delivery request.
    let declined_fill = Fill {
        number: OTHER_CARD.into(),
        ..Fill::default()
    };
    let declined = env
        .alice
        .purchase(&env.merchant(), &env.issuer(), false, |f| {
            declined_fill.order(f)
        })
        .await
        .expect("declined purchase");
    assert!(
        declined
            .outcome
            .decision
            .as_ref()
            .is_some_and(|d| !d.approved()),
        "{:?}",
        declined.outcome
    );
    let html = render(
        declined.outcome.order_id.to_string(),
        declined.form.policy.clone(),
    )
    .await;
    for (field, symbol) in column(&html, "carrier") {
        assert_eq!(symbol, "—", "declined order, carrier, {field}");
    }

    // A shipped order: the carrier holds the destination it was given.
    let shipped = env
        .alice
        .purchase(&env.merchant(), &env.issuer(), false, |f| fill.order(f))
        .await
        .expect("physical purchase");
    let mut html = String::new();
    for _ in 0..100 {
        html = render(
            shipped.outcome.order_id.to_string(),
            shipped.form.policy.clone(),
        )
        .await;
        if column(&html, "carrier")
            .iter()
            .any(|(f, s)| f == "delivery_destination" && s == "✔")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let carrier = column(&html, "carrier");
    assert!(
        carrier
            .iter()
            .any(|(f, s)| f == "delivery_destination" && s == "✔"),
        "{carrier:?}"
    );
    env.stop().await;
}
