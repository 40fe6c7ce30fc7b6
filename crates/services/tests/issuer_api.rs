//! The issuer's card administration over HTTP (issue 16): enroll with the rules of `warifu
//! issuer enroll` (same refusals), block and unblock (a purchase on a blocked card is
//! declined `blocked`, and approved again after), change the limit (never below what is
//! used; the books still balance), list cards with the last four digits only (the number is
//! in no answer), a statement showing a partly refunded order's refund (issue 18), the
//! settlement; every route needs the operator token.

mod common;

use common::{Db, Fill};
use serde_json::{Value, json};
use warifu_services::protocol::cardholder_issuer::Statement;
use warifu_services::protocol::operator::{
    AdminCard, AdminCardList, PATH_ADMIN_CARDS, PATH_ADMIN_SETTLEMENT, PATH_ADMIN_STATEMENT,
    PATH_CARD_BLOCK, PATH_CARD_LIMIT, PATH_CARD_UNBLOCK, Settlement, card_path,
};
use warifu_services::session::operator::OperatorAuth;

const TOKEN: &str = "issuer-operator-token-0123456789";
const NEW_CARD: &str = "4556737586899855";

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, post: bool, path: &str, body: Option<Value>) -> (u16, Vec<u8>) {
        let url = format!("{}{path}", self.base);
        let mut r = if post {
            self.http.post(url)
        } else {
            self.http.get(url)
        }
        .bearer_auth(TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.bytes().await.expect("body").to_vec())
    }

    async fn ok<T: serde::de::DeserializeOwned>(
        &self,
        post: bool,
        path: &str,
        body: Option<Value>,
    ) -> T {
        let (status, bytes) = self.call(post, path, body).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&bytes));
        assert!(!common::contains(&bytes, NEW_CARD.as_bytes()));
        assert!(!common::contains(&bytes, common::CARD.as_bytes()));
        serde_json::from_slice(&bytes).expect("json")
    }

    async fn refused(&self, post: bool, path: &str, body: Option<Value>) -> (u16, String) {
        let (status, bytes) = self.call(post, path, body).await;
        assert!(!common::contains(&bytes, NEW_CARD.as_bytes()));
        (status, common::error_code(&bytes))
    }
}

fn enroll_body(card_id: &str, number: &str) -> Value {
    json!({
        "card_id": card_id,
        "cardholder": "cardholder:jiro@mail.example",
        "name": "Jiro Sato",
        "number": number,
        "expiry": "2034-11",
        "credit_limit": 50_000,
    })
}

async fn card_administration(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    env.local
        .issuer
        .guard()
        .operator()
        .set(OperatorAuth::token(TOKEN));
    let api = Api {
        base: env.local.endpoint(&env.issuer()).expect("issuer endpoint"),
        http: warifu_services::http::tls::client(|b| b).expect("http client"),
    };

    // Without the token: operator_required, nothing enrolled.
    let r = api
        .http
        .post(format!("{}{PATH_ADMIN_CARDS}", api.base))
        .json(&enroll_body("c-2", NEW_CARD))
        .send()
        .await
        .expect("no token");
    assert_eq!(r.status().as_u16(), 401);

    // The enrollment rules, over HTTP.
    for (body, code) in [
        (enroll_body("c-2", "4556737586899856"), "malformed_request"),
        (enroll_body("c-2", "12"), "malformed_request"),
        (
            json!({"card_id": "c-2", "cardholder": "merchant:shop.example", "name": "X",
                   "number": NEW_CARD, "expiry": "2034-11", "credit_limit": 1}),
            "malformed_request",
        ),
        (
            json!({"card_id": "c-2", "cardholder": "cardholder:jiro@mail.example", "name": "X",
                   "number": NEW_CARD, "expiry": "2034-13", "credit_limit": 1}),
            "malformed_request",
        ),
        (enroll_body("card-1", NEW_CARD), "already_exists"),
    ] {
        let (status, got) = api.refused(true, PATH_ADMIN_CARDS, Some(body)).await;
        assert_eq!(got, code);
        assert_eq!(status, if code == "already_exists" { 409 } else { 400 });
    }
    let card: AdminCard = api
        .ok(
            true,
            PATH_ADMIN_CARDS,
            Some(enroll_body("c-2", "4556 7375 8689 9855")),
        )
        .await;
    assert_eq!(card.last4, "9855");
    assert_eq!((card.status.as_str(), card.available), ("active", 50_000));
    let list: AdminCardList = api
        .ok(false, &format!("{PATH_ADMIN_CARDS}?limit=10"), None)
        .await;
    assert_eq!(list.cards.len(), 2);
    let mine: AdminCardList = api
        .ok(
            false,
            &format!("{PATH_ADMIN_CARDS}?cardholder=cardholder:hanako@mail.example"),
            None,
        )
        .await;
    assert_eq!(mine.cards.len(), 1);
    assert_eq!(mine.cards[0].last4, &common::CARD[12..]);

    // Block: a purchase is declined `blocked`; unblock: approved again.
    let blocked: AdminCard = api
        .ok(true, &card_path(PATH_CARD_BLOCK, "card-1"), Some(json!({})))
        .await;
    assert_eq!(blocked.status, "blocked");
    let p = env.buy(false, &Fill::default()).await;
    assert_eq!(p.outcome.state, "declined");
    let d = p.outcome.decision.expect("decision");
    assert_eq!(
        d.reason.map(|r| r.as_str().to_owned()).as_deref(),
        Some("blocked")
    );
    let active: AdminCard = api
        .ok(
            true,
            &card_path(PATH_CARD_UNBLOCK, "card-1"),
            Some(json!({})),
        )
        .await;
    assert_eq!(active.status, "active");
    let p = env.buy(false, &Fill::default()).await;
    assert_eq!(p.outcome.state, "captured");
    let amount = p.outcome.payment.as_ref().expect("payment").captured;
    assert!(amount > 0);
    assert_eq!(
        api.refused(true, &card_path(PATH_CARD_BLOCK, "nope"), Some(json!({})))
            .await,
        (404, "unknown_card".to_owned())
    );

    // The limit: not below what is used; raising it raises what is available.
    let (status, code) = api
        .refused(
            true,
            &card_path(PATH_CARD_LIMIT, "card-1"),
            Some(json!({"credit_limit": amount - 1})),
        )
        .await;
    assert_eq!((status, code.as_str()), (409, "invalid_transition"));
    let raised: AdminCard = api
        .ok(
            true,
            &card_path(PATH_CARD_LIMIT, "card-1"),
            Some(json!({"credit_limit": 200_000})),
        )
        .await;
    assert_eq!(raised.credit_limit, 200_000);
    assert_eq!(raised.available, 200_000 - amount);
    let lowered: AdminCard = api
        .ok(
            true,
            &card_path(PATH_CARD_LIMIT, "card-1"),
            Some(json!({"credit_limit": amount})),
        )
        .await;
    assert_eq!(lowered.available, 0);
    let audit = env.local.issuer.store().audit().await.expect("audit");
    assert!(audit.is_clean(), "{audit:?}");

    // A partial refund shows on the statement (issue 18).
    let m = env.local.endpoint(&env.merchant()).expect("merchant");
    let r = api
        .http
        .post(format!("{m}/v1/admin/orders/{}/refund", p.outcome.order_id))
        .json(&json!({"amount": 500}))
        .send()
        .await
        .expect("refund");
    assert_eq!(r.status().as_u16(), 200);
    let s: Statement = api
        .ok(
            false,
            &PATH_ADMIN_STATEMENT.replace("{cardholder}", env.alice_id.as_str()),
            None,
        )
        .await;
    let e = s
        .entries
        .iter()
        .find(|e| e.order_id == p.outcome.order_id)
        .expect("entry");
    assert_eq!((e.captured, e.refunded), (amount, 500));
    let st: Settlement = api
        .ok(
            false,
            &PATH_ADMIN_SETTLEMENT.replace("{merchant}", env.merchant().as_str()),
            None,
        )
        .await;
    assert_eq!((st.captured, st.refunded), (amount, 500));
    assert_eq!(st.net, i64::try_from(amount).expect("amount") - 500);
    let (status, code) = api
        .refused(
            false,
            &PATH_ADMIN_SETTLEMENT.replace("{merchant}", "issuer:bank.example"),
            None,
        )
        .await;
    assert_eq!((status, code.as_str()), (400, "malformed_request"));
    // The number never reached the logs.
    let logs = common::logs();
    let text = logs.lock().expect("logs").clone();
    assert!(!common::contains(&text, NEW_CARD.as_bytes()));
    common::finish(env).await;
}

common::on_both_databases!(card_administration: card_administration_sqlite, card_administration_postgres; threads = 4);
