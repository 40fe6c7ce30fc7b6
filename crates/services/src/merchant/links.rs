//! Payment links: a URL the merchant hands out (on a page, in a mail, as a QR code) that names
//! the merchant, its endpoint and what to order, `ENDPOINT/pay?merchant=ID&items=PN:QTY,…`. A
//! cardholder's wallet (`warifu wallet web`) opens it: it checks the merchant and endpoint
//! against the key center's directory, asks that merchant for a fresh order form over the
//! sealed session as for any order, and shows the disclosure preview. The link carries no price
//! and no secret: prices come from the merchant's form, so a link altered by anyone can at most
//! propose other goods, which the cardholder sees before sealing.
//!
//! Routes: `POST /v1/admin/payment-links` (operator) checks the items against the catalog and
//! answers the link, its QR code's URL and the total; `GET /pay` (public) describes a link (a
//! page with the QR code for a browser, JSON otherwise); `GET /pay/qr.svg` (public) is the QR
//! code of the link as SVG.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{PreEscaped, html};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::PartyId;

use super::state::MerchantState;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::dashboard as kit;
use crate::session::operator::Operator;
use crate::session::server::JsonBody;

/// The operator's route creating a link.
pub const PATH_LINKS: &str = "/v1/admin/payment-links";
/// The public route a link points at.
pub const PATH_PAY: &str = "/pay";
/// The public route of a link's QR code (SVG).
pub const PATH_PAY_QR: &str = "/pay/qr.svg";
/// The most items a link names.
pub const MAX_LINK_ITEMS: usize = 20;
/// The most of one item a link orders.
pub const MAX_LINK_QUANTITY: u32 = 999;

/// One line of a link: a product of the catalog and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkItem {
    /// The catalog's product number.
    pub product_number: String,
    /// How many (1–999).
    pub quantity: u32,
}

/// What the operator asks a link for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// What the link orders (1–20 distinct products of the catalog).
    pub items: Vec<LinkItem>,
}

/// A payment link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentLink {
    /// The merchant.
    pub merchant: String,
    /// The merchant's endpoint, as the key center's directory lists it.
    pub endpoint: String,
    /// What it orders.
    pub items: Vec<LinkItem>,
    /// The link to hand out.
    pub url: String,
    /// Its QR code, an SVG image.
    pub qr_svg_url: String,
    /// What it costs at today's catalog prices, in minor units (the order form decides).
    pub total: u64,
    /// The catalog's currency.
    pub currency: String,
}

/// A link as a wallet reads it: the merchant, its endpoint and the items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRef {
    /// The merchant it names.
    pub merchant: PartyId,
    /// The endpoint it points at (`scheme://host:port`).
    pub endpoint: String,
    /// What it orders.
    pub items: Vec<LinkItem>,
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::OrderInvalid, message)
}

/// Parses `TEA-001:2,CUP-002:1`, checking sizes, quantities and duplicates.
pub fn parse_items(text: &str) -> Result<Vec<LinkItem>, AppError> {
    let mut items: Vec<LinkItem> = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (pn, q) = part
            .rsplit_once(':')
            .ok_or_else(|| bad(format!("{part:?} is not PRODUCT-NUMBER:QUANTITY")))?;
        let quantity: u32 = q
            .parse()
            .map_err(|_| bad(format!("the quantity of {pn:?} is not a number")))?;
        items.push(LinkItem {
            product_number: pn.to_owned(),
            quantity,
        });
    }
    check_items(&items)?;
    Ok(items)
}

fn check_items(items: &[LinkItem]) -> Result<(), AppError> {
    if items.is_empty() || items.len() > MAX_LINK_ITEMS {
        return Err(bad(format!(
            "a payment link names 1 to {MAX_LINK_ITEMS} products"
        )));
    }
    for (i, it) in items.iter().enumerate() {
        if !(1..=MAX_LINK_QUANTITY).contains(&it.quantity) {
            return Err(bad(format!(
                "the quantity of {} must be 1 to {MAX_LINK_QUANTITY}",
                it.product_number
            )));
        }
        let ok = !it.product_number.is_empty()
            && it.product_number.len() <= 64
            && it
                .product_number
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return Err(bad("a product number is 1–64 letters, digits, - _ ."));
        }
        if items[..i]
            .iter()
            .any(|x| x.product_number == it.product_number)
        {
            return Err(bad(format!("{} is named twice", it.product_number)));
        }
    }
    Ok(())
}

fn items_text(items: &[LinkItem]) -> String {
    items
        .iter()
        .map(|i| format!("{}:{}", i.product_number, i.quantity))
        .collect::<Vec<_>>()
        .join(",")
}

/// The query string of a link (identifiers and product numbers need no escaping: they are
/// checked to be URL-safe).
fn query(merchant: &PartyId, items: &[LinkItem]) -> String {
    format!("merchant={}&items={}", merchant.as_str(), items_text(items))
}

/// Reads a link: its endpoint (scheme, host and port), the merchant and the items.
pub fn parse_link(url: &str) -> Result<LinkRef, AppError> {
    let u = reqwest::Url::parse(url.trim()).map_err(|e| bad(format!("not a payment link: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.path() != PATH_PAY {
        return Err(bad(format!(
            "not a payment link: expected http(s)://HOST:PORT{PATH_PAY}?merchant=…&items=…"
        )));
    }
    let host = u
        .host_str()
        .ok_or_else(|| bad("the payment link names no host"))?;
    let endpoint = match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    };
    let mut merchant = None;
    let mut items = None;
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "merchant" => merchant = Some(v.into_owned()),
            "items" => items = Some(v.into_owned()),
            _ => {}
        }
    }
    let merchant = PartyId::parse(merchant.as_deref().unwrap_or(""))
        .ok()
        .filter(|m| m.role() == warifu_core::Role::Merchant)
        .ok_or_else(|| bad("the payment link names no merchant"))?;
    let items = parse_items(items.as_deref().unwrap_or(""))?;
    Ok(LinkRef {
        merchant,
        endpoint,
        items,
    })
}

/// The link for `items` at `st`, checked against its catalog.
pub fn link(st: &MerchantState, items: Vec<LinkItem>) -> AppResult<PaymentLink> {
    check_items(&items)?;
    let c = &st.config;
    let mut total: u64 = 0;
    for it in &items {
        let item = c
            .catalog
            .iter()
            .find(|x| x.product_number == it.product_number)
            .ok_or_else(|| bad(format!("{} is not in the catalog", it.product_number)))?;
        total = item
            .unit_price
            .checked_mul(u64::from(it.quantity))
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| bad("the total is too large"))?;
    }
    let endpoint = st
        .peers
        .directory()
        .get()
        .get(st.id())
        .map(|e| e.endpoint.clone())
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::UnknownParty,
                "the key center's directory does not list this merchant's endpoint",
            )
        })?;
    let q = query(st.id(), &items);
    Ok(PaymentLink {
        merchant: st.id().as_str().to_owned(),
        url: format!("{endpoint}{PATH_PAY}?{q}"),
        qr_svg_url: format!("{endpoint}{PATH_PAY_QR}?{q}"),
        endpoint,
        items,
        total,
        currency: c.currency.clone(),
    })
}

/// The QR code of `text` as an SVG document.
pub fn qr_svg(text: &str) -> AppResult<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| bad(format!("no QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build())
}

/// The operator's and the public routes of payment links.
pub(super) fn routes() -> OpenApiRouter<Arc<MerchantState>> {
    OpenApiRouter::new()
        .routes(routes!(create_link))
        .routes(routes!(pay))
        .routes(routes!(pay_qr))
}

/// The operator creates a payment link for catalog items.
#[utoipa::path(post, path = "/v1/admin/payment-links", request_body = LinkRequest,
    responses((status = 200, description = "The link, its QR code's URL and the total", body = PaymentLink)))]
async fn create_link(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    JsonBody(req): JsonBody<LinkRequest>,
) -> AppResult<Json<PaymentLink>> {
    let l = link(&st, req.items)?;
    tracing::info!(items = l.items.len(), "payment link created");
    Ok(Json(l))
}

/// A link's query.
#[derive(Debug, Deserialize)]
struct PayQuery {
    merchant: String,
    items: String,
}

fn link_of(st: &MerchantState, q: &PayQuery) -> AppResult<PaymentLink> {
    if q.merchant != st.id().as_str() {
        return Err(AppError::new(
            ErrorCode::NotAddressedHere,
            format!(
                "this link names {}, but this is {}",
                q.merchant.chars().take(80).collect::<String>(),
                st.id()
            ),
        ));
    }
    link(st, parse_items(&q.items)?)
}

/// A payment link: a page with its QR code for a browser (`Accept: text/html`), else JSON.
#[utoipa::path(get, path = "/pay",
    params(("merchant" = String, Query, description = "The merchant's identifier"),
           ("items" = String, Query, description = "PRODUCT-NUMBER:QUANTITY, comma-separated")),
    responses((status = 200, description = "The link (JSON, or an HTML page for a browser)", body = PaymentLink)))]
async fn pay(
    State(st): State<Arc<MerchantState>>,
    headers: HeaderMap,
    Query(q): Query<PayQuery>,
) -> AppResult<Response> {
    let l = link_of(&st, &q)?;
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if !wants_html {
        return Ok(Json(l).into_response());
    }
    let svg = qr_svg(&l.url)?;
    let body = html! {
        h1 { "Pay " (st.id()) }
        p { "Open this link in your Warifu wallet: paste it on the wallet page's " strong { "Pay a link" } " page, or start " code { "warifu wallet web --link '" (l.url) "'" } "." }
        table {
            (kit::heads(&["Product", "Quantity"]))
            tbody { @for i in &l.items { tr { td { code { (i.product_number) } } td.num { (i.quantity) } } } }
        }
        p { "About " (kit::money(l.total, &l.currency)) " at today's prices; your wallet shows the order form's amount and what each party receives before anything is sealed." }
        figure id="qr" { (PreEscaped(svg)) figcaption.muted { code { (l.url) } } }
    };
    Ok(kit::respond(
        StatusCode::OK,
        kit::layout("Payment link", st.id().as_str(), html! {}, body),
    ))
}

/// A payment link's QR code (SVG).
#[utoipa::path(get, path = "/pay/qr.svg",
    params(("merchant" = String, Query, description = "The merchant's identifier"),
           ("items" = String, Query, description = "PRODUCT-NUMBER:QUANTITY, comma-separated")),
    responses((status = 200, description = "The QR code of the link", content_type = "image/svg+xml", body = String)))]
async fn pay_qr(
    State(st): State<Arc<MerchantState>>,
    Query(q): Query<PayQuery>,
) -> AppResult<Response> {
    let l = link_of(&st, &q)?;
    let mut r = qr_svg(&l.url)?.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_reads_back_and_bad_ones_are_refused() {
        let l = parse_link(
            "http://127.0.0.1:8080/pay?merchant=merchant:shop.example&items=TEA-001:2,CUP-002:1",
        )
        .expect("link");
        assert_eq!(l.endpoint, "http://127.0.0.1:8080");
        assert_eq!(l.merchant.as_str(), "merchant:shop.example");
        assert_eq!(l.items.len(), 2);
        assert_eq!(l.items[0].quantity, 2);
        for bad in [
            "127.0.0.1:8080/pay?merchant=merchant:shop.example&items=TEA-001:1",
            "http://127.0.0.1:8080/other?merchant=merchant:shop.example&items=TEA-001:1",
            "http://127.0.0.1:8080/pay?merchant=issuer:bank.example&items=TEA-001:1",
            "http://127.0.0.1:8080/pay?merchant=merchant:shop.example&items=",
            "http://127.0.0.1:8080/pay?merchant=merchant:shop.example&items=TEA-001:0",
            "http://127.0.0.1:8080/pay?merchant=merchant:shop.example&items=TEA-001:1,TEA-001:2",
            "http://127.0.0.1:8080/pay?merchant=merchant:shop.example&items=TEA%3C001:1",
        ] {
            assert!(parse_link(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_qr_code_is_an_svg() {
        let svg = qr_svg("http://127.0.0.1:8080/pay?merchant=merchant:shop.example&items=A:1")
            .expect("svg");
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    }
}
