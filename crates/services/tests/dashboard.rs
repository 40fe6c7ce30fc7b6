//! The party dashboards over real HTTP: the operator token (bearer or the cookie the sign-in
//! form sets) is required, the merchant's page shows the order without card or destination,
//! the issuer's shows only the last four digits, the carrier's shows the destination; and
//! the one-order-across-parties view draws the timeline and a leak-free matrix.

mod common;

use common::{ADDRESS, ADDRESSEE, CARD, Db, Fill};
use reqwest::redirect::Policy;
use warifu_services::dev::order::{Stores, across};
use warifu_services::session::operator::OperatorAuth;

const TOKEN: &str = "op-token-0123456789abcdef";

/// Each dashboard's charts: the title, and a bar's tooltip once an order went through (the
/// outbox may be empty by then, so no bar is expected there).
const MERCHANT_CHARTS: [(&str, Option<&str>); 3] = [
    ("Orders per minute", Some(" UTC · orders: 1</title>")),
    ("Outbox backlog by minute enqueued", None),
    (
        "Approvals and declines by code, last 3 h",
        Some("approved: 1 orders"),
    ),
];
const ISSUER_CHARTS: [(&str, Option<&str>); 2] = [
    (
        "Authorizations per minute",
        Some(" UTC · approved: 1</title>"),
    ),
    (
        "Approvals and decline codes, last 3 h",
        Some("approved: 1 decisions"),
    ),
];
const CARRIER_CHARTS: [(&str, Option<&str>); 2] = [
    (
        "Shipments by status per minute",
        Some(" UTC · accepted: 1</title>"),
    ),
    ("Shipments by status now", Some("shipments")),
];

/// How a chart's `<svg>` names itself.
fn chart_title(title: &str) -> String {
    format!("-title\">{title}</title>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_need_the_token_and_show_only_what_each_party_holds() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    for g in [
        env.local.merchant.guard(),
        env.local.issuer.guard(),
        env.local.carrier.guard(),
    ] {
        g.operator().set(OperatorAuth::token(TOKEN));
    }
    let http = warifu_services::http::tls::client(|b| b.redirect(Policy::none())).expect("client");
    let base = |id| env.local.endpoint(&id).expect("endpoint");
    let (m, i, c) = (
        base(env.merchant()),
        base(env.issuer()),
        base(env.carrier()),
    );
    let bearer = |url: String| {
        http.get(url)
            .header("authorization", format!("Bearer {TOKEN}"))
            .send()
    };
    let page = |url: String| async move {
        let r = bearer(url).await.expect("get");
        assert_eq!(r.status(), 200);
        r.text().await.expect("body")
    };

    // Fresh services: every chart is drawn, empty, and says so (issue 18.10).
    for (url, titles) in [
        (&m, &MERCHANT_CHARTS[..]),
        (&i, &ISSUER_CHARTS[..]),
        (&c, &CARRIER_CHARTS[..]),
    ] {
        let html = page(format!("{url}/dashboard")).await;
        for (title, _) in titles {
            assert!(html.contains(&chart_title(title)), "{title} in {html}");
        }
        assert!(
            html.contains("nothing yet") && !html.contains("<rect"),
            "{html}"
        );
    }

    let fill = Fill::default();
    let p = env
        .alice
        .purchase(&env.merchant(), &env.issuer(), false, |f| fill.order(f))
        .await
        .expect("purchase");
    let order_id = p.form.order_id.clone();

    // No token: the sign-in form, nothing of the orders.
    let r = http
        .get(format!("{m}/dashboard"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);
    let body = r.text().await.expect("body");
    assert!(body.contains("Operator sign-in") && !body.contains(order_id.as_str()));

    // A wrong token at the sign-in form: refused, no cookie.
    let login = |base: String, token: &'static str| {
        http.post(format!("{base}/dashboard/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
    };
    let r = login(m.clone(), "wrong-token").await.expect("post");
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    // The right one: a cookie for the dashboard only.
    let r = login(m.clone(), TOKEN).await.expect("post");
    assert_eq!(r.status(), 303);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("Path=/dashboard"));
    let pair = cookie.split(';').next().expect("pair").to_owned();
    let r = http
        .get(format!("{m}/dashboard"))
        .header("cookie", pair)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get("content-security-policy")
            .is_some_and(|v| v.to_str().unwrap_or("").contains("default-src 'none'"))
    );
    let merchant_page = r.text().await.expect("body");
    assert!(merchant_page.contains(order_id.as_str()));
    assert!(
        !merchant_page.contains(CARD),
        "merchant page: no card number"
    );
    assert!(
        !merchant_page.contains(ADDRESS) && !merchant_page.contains(ADDRESSEE),
        "merchant page: no destination"
    );

    let issuer_page = bearer(format!("{i}/dashboard"))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(issuer_page.contains(order_id.as_str()) && issuer_page.contains("•••• 6467"));
    assert!(!issuer_page.contains(CARD) && !issuer_page.contains(ADDRESS));
    assert!(issuer_page.contains("✔ balanced"));
    let carrier_page = bearer(format!("{c}/dashboard"))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(carrier_page.contains(order_id.as_str()));
    assert!(carrier_page.contains(ADDRESS) && carrier_page.contains(ADDRESSEE));
    assert!(!carrier_page.contains(CARD) && !carrier_page.contains("6467"));

    // After the purchase, each chart draws bars, one with the tooltip of its count.
    for (html, titles) in [
        (&merchant_page, &MERCHANT_CHARTS[..]),
        (&issuer_page, &ISSUER_CHARTS[..]),
        (&carrier_page, &CARRIER_CHARTS[..]),
    ] {
        for (title, bar) in titles {
            let at = html.find(&chart_title(title)).expect(title);
            let start = html[..at].rfind("<figure").expect("figure");
            let figure = &html[start..at + html[at..].find("</figure>").expect("end")];
            assert!(figure.contains("<svg role=\"img\""), "{figure}");
            if let Some(bar) = bar {
                assert!(
                    figure.contains("<rect") && figure.contains(bar),
                    "{title}: {figure}"
                );
            }
        }
    }

    // One order across the parties, from their stores.
    let stores = Stores {
        merchant: env.local.merchant.store().as_ref(),
        issuer: env.local.issuer.store().as_ref(),
        carrier: env.local.carrier.store().as_ref(),
    };
    let html = across(stores, &p.form.policy, env.merchant().as_str(), &order_id)
        .await
        .expect("across")
        .into_string();
    for needle in [
        "<svg",
        "order form",
        "sealed order",
        "authorize (issuer part)",
        "approved",
        "delivery request",
        "accepted, tracking",
        "data-cell=\"card:issuer\"",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    assert!(
        !html.contains("class=\"leak\""),
        "a field held without the policy"
    );
    // Issue 18.3: the offsets count from the submission; the form was issued before it.
    assert!(html.contains(">+0 ms</text>"), "the submission is +0 ms");
    assert!(
        html.contains(">−"),
        "the order form shows a negative offset"
    );
    assert!(!html.contains(CARD) && !html.contains(ADDRESS));
    common::finish(env).await;
}
