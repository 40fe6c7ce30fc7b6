//! The kit of the server-rendered HTML pages: layout and style, the security headers, money,
//! times and state badges, table heads, and the operator sign-in and routes that every party's
//! read-only dashboard (`GET /dashboard`) shares. The dashboards themselves live with their
//! party (`merchant::dashboard`, …); the picture of one order across every party in `dev`.
//!
//! Pages are maud templates compiled into the binary: no JavaScript, no external asset, a
//! little inline CSS, every value escaped by the template engine. Responses carry a strict
//! Content-Security-Policy and `Cache-Control: no-store`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Form, Router};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use warifu_core::PartyId;

use crate::error::AppError;
use crate::session::operator::{Operator, OperatorAccess};
use crate::session::server::Guard;

/// The dashboard's path on every service.
pub const PATH_DASHBOARD: &str = "/dashboard";
/// The dashboard's login form (`GET` shows it, `POST` sets the operator cookie).
pub const PATH_LOGIN: &str = "/dashboard/login";

/// The style sheet every page inlines.
pub const STYLE: &str = r#"
:root{color-scheme:light;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--accent:#0b5cad;--bad:#b3261e;--good:#1a7f37;--bg2:#f6f8fa}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);margin:0;background:#fff}
header.top{background:#123;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header.top a{color:#fff}
header.top strong{font-size:1.05rem}
main{padding:1rem 1.2rem;max-width:78rem}
h1{font-size:1.4rem;margin:.4rem 0 .8rem}h2{font-size:1.15rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.92rem;max-width:100%}
table.wide{width:100%;font-size:.85rem}
td code,td{overflow-wrap:anywhere}
th,td{border:1px solid var(--line);padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:var(--bg2)}
td.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:var(--accent)}
a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #f2b705;outline-offset:2px}
.muted{color:var(--muted)}
.state{display:inline-block;padding:.05rem .45rem;border-radius:.6rem;background:var(--bg2);border:1px solid var(--line);font-size:.85rem}
.state.good{background:#dafbe1;border-color:#4ac26b}.state.bad{background:#ffebe9;border-color:#ff8182}
.error{border:2px solid var(--bad);background:#ffebe9;padding:.6rem .8rem;margin:.6rem 0;border-radius:.3rem}
.notice{border:2px solid var(--good);background:#dafbe1;padding:.6rem .8rem;margin:.6rem 0;border-radius:.3rem}
form.stack label{display:block;margin:.6rem 0 .15rem;font-weight:600}
form.stack input,form.stack select,form.stack textarea{font:inherit;padding:.3rem .4rem;max-width:100%}
form.stack input:not([type=checkbox]):not([type=radio]),form.stack select,form.stack textarea{min-width:18rem}
form.stack input[type=checkbox],form.stack input[type=radio]{margin:0 .4rem 0 0;vertical-align:middle}
.choice{display:flex;align-items:center;gap:.4rem;margin:.25rem 0}
.choice label{display:inline;margin:0;font-weight:400}
fieldset.method:not(:has(#method_installments:checked)) .count{display:none}
svg{max-width:100%;height:auto}
fieldset{border:1px solid var(--line);margin:.8rem 0;padding:.4rem .9rem .8rem}
legend{font-weight:700}
button{font:inherit;padding:.4rem 1rem;border-radius:.3rem;border:1px solid #1f6feb;background:#1f6feb;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:var(--accent)}
.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid var(--line);border-radius:.4rem;padding:.6rem .8rem;min-width:14rem}
.yes{color:var(--good);font-weight:700}.no{color:var(--muted)}
.leak{color:#fff;background:var(--bad);font-weight:700}
svg text{font:12px system-ui,sans-serif}
.charts{display:flex;flex-wrap:wrap;gap:1rem;margin:.4rem 0 1rem}
figure.chart{margin:0;flex:1 1 26rem;min-width:0;max-width:38rem;border:1px solid var(--line);border-radius:.4rem;padding:.5rem .7rem}
figure.chart svg{display:block;width:100%;margin:.4rem 0}
figure.chart text{fill:var(--muted)}
figure.chart line{stroke:var(--line)}
figure.chart rect,.swatch{fill:var(--c);background:var(--c)}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em;border-radius:.15em;vertical-align:baseline}
.legend{margin:.2rem 0;font-size:.85rem}.legend .key{white-space:nowrap;margin-right:.8rem}
.c-good{--c:#1a7f37}.c-bad{--c:#b3261e}.c-neutral{--c:#8c959f}.c0{--c:#0b5cad}.c1{--c:#8250df}.c2{--c:#bf8700}.c3{--c:#1b7c83}
"#;

/// A whole HTML page: `title`, a header bar naming `who`, and `body`.
pub fn layout(title: &str, who: &str, nav: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (who) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header.top {
                    strong { "Warifu" }
                    span { (who) }
                    nav aria-label="main" { (nav) }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// Like [`layout`], with a `<meta http-equiv="refresh">` every `seconds`.
pub fn layout_refreshing(
    title: &str,
    who: &str,
    nav: Markup,
    body: Markup,
    seconds: u32,
) -> Markup {
    let page = layout(title, who, nav, body).into_string();
    let meta = format!("<meta http-equiv=\"refresh\" content=\"{seconds}\">");
    maud::PreEscaped(page.replacen("<head>", &format!("<head>{meta}"), 1))
}

/// An HTML response with the pages' security headers.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// An amount in minor units, with its currency: `JPY 4,700` or `EUR 12.50`.
pub fn money(amount: u64, currency: &str) -> String {
    let zero_decimals = matches!(currency, "JPY" | "KRW" | "VND" | "CLP" | "ISK");
    let (units, cents) = if zero_decimals {
        (amount, None)
    } else {
        (amount / 100, Some(amount % 100))
    };
    let grouped = grouped(units);
    match cents {
        Some(c) => format!("{currency} {grouped}.{c:02}"),
        None => format!("{currency} {grouped}"),
    }
}

/// A count with its thousands grouped: `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS`.
const DATE_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
/// `YYYY-MM-DD`.
const DATE: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// A Unix time in milliseconds as `YYYY-MM-DD HH:MM:SS` UTC (outside the years 0000–9999, the
/// milliseconds as they are).
pub fn time_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .filter(|t| t.year() >= 0)
        .and_then(|t| t.format(DATE_TIME).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (proleptic Gregorian; outside the years 0000–9999,
/// the days as they are).
pub fn date(days: i64) -> String {
    /// The Julian day of 1970-01-01.
    const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
    days.checked_add(UNIX_EPOCH_JULIAN_DAY)
        .and_then(|jd| i32::try_from(jd).ok())
        .and_then(|jd| Date::from_julian_day(jd).ok())
        .filter(|d| d.year() >= 0)
        .and_then(|d| d.format(DATE).ok())
        .unwrap_or_else(|| format!("{days} days"))
}

/// The CSS class of a state badge: good, bad or neutral.
pub fn state_class(state: &str) -> &'static str {
    match state {
        "authorized" | "approved" | "shipped" | "captured" | "delivered" | "held" | "active"
        | "accepted" | "picked_up" | "in_transit" => "state good",
        "declined" | "failed" | "voided" | "refunded" | "cancelled" | "returned" | "blocked"
        | "expired" | "partially_refunded" => "state bad",
        _ => "state",
    }
}

/// A table's head row: one column header per name.
pub fn heads(cols: &[&str]) -> Markup {
    html! { thead { tr { @for c in cols { th scope="col" { (c) } } } } }
}

/// The last four characters of a card number, masked: `•••• 6467`.
pub fn last4(number: &str) -> String {
    format!("•••• {}", warifu_core::card::last4(number))
}

/// The navigation of a dashboard.
fn dashboard_nav() -> Markup {
    html! { a href=(PATH_DASHBOARD) { "Dashboard" } }
}

/// The answer to a dashboard request that presents no admitted operator token: the login form
/// (401), so a browser can present the token once and keep it in the operator cookie.
pub fn login_page(who: &str, refusal: &AppError, failed: bool) -> Response {
    let body = html! {
        h1 { "Operator sign-in" }
        @if failed {
            p.error role="alert" { "That token is not this service's operator token." }
        } @else {
            p.muted { (refusal.to_string()) }
        }
        form.stack method="post" action=(PATH_LOGIN) {
            label for="token" { "Operator token" }
            input id="token" name="token" type="password" autocomplete="current-password" required;
            p { button type="submit" { "Sign in" } }
        }
        p.muted { "Signing in sets an HttpOnly, SameSite=Strict cookie for this service's dashboard only: a 12-hour proof of the sign-in, not the token." }
    };
    respond(
        StatusCode::UNAUTHORIZED,
        layout("Sign in", who, dashboard_nav(), body),
    )
}

/// The login form's body.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

impl core::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LoginForm { token: <redacted> }")
    }
}

/// `POST /dashboard/login`: checks the token and, if admitted, stores it in the operator
/// cookie (HttpOnly, SameSite=Strict, path `/dashboard`) and goes to the dashboard.
pub fn login(access: &Arc<OperatorAccess>, who: &str, form: Form<LoginForm>) -> Response {
    let token = form.0.token.trim();
    let cookie_safe = !token.is_empty()
        && token.len() <= 512
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'"' && b != b'\\');
    if !cookie_safe || !access.get().admits(Some(token)) {
        tracing::warn!(party = who, "dashboard sign-in refused");
        let refusal = AppError::new(crate::error::ErrorCode::OperatorRequired, "refused");
        return login_page(who, &refusal, true);
    }
    // A MAC under this service's own cookie name, never the token (operator.rs).
    let cookie = access.get().sign_in_cookie(who, PATH_DASHBOARD);
    let mut r = (StatusCode::SEE_OTHER, "").into_response();
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(PATH_DASHBOARD));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The sign-in page shown on `GET /dashboard/login`.
pub fn login_form(who: &str) -> Response {
    let refusal = AppError::new(
        crate::error::ErrorCode::OperatorRequired,
        "Present this service's operator token to see its dashboard.",
    );
    login_page(who, &refusal, false)
}

/// `None` for an admitted operator, else the login form to answer with.
pub fn require(op: Result<Operator, AppError>, who: &str) -> Option<Response> {
    op.err().map(|e| login_page(who, &e, false))
}

/// A party's dashboard routes, to merge into its public router: `dashboard` at
/// [`PATH_DASHBOARD`], and the operator sign-in at [`PATH_LOGIN`] for the party that `id` names
/// and `guard` guards.
pub fn party_routes<S: Send + Sync + 'static>(
    dashboard: MethodRouter<Arc<S>>,
    id: fn(&S) -> &PartyId,
    guard: fn(&S) -> &Arc<Guard>,
) -> Router<Arc<S>> {
    Router::new().route(PATH_DASHBOARD, dashboard).route(
        PATH_LOGIN,
        get(move |State(st): State<Arc<S>>| async move { login_form(id(&st).as_str()) }).post(
            move |State(st): State<Arc<S>>, form: Form<LoginForm>| async move {
                login(guard(&st).operator(), id(&st).as_str(), form)
            },
        ),
    )
}

/// A dashboard page (200) for `who`.
pub fn dashboard(title: &str, who: &str, body: Markup) -> Response {
    respond(
        StatusCode::OK,
        layout_refreshing(title, who, dashboard_nav(), body, 5),
    )
}

/// A page saying the store could not be read (the detail goes to the log only).
pub fn store_failure(who: &str, e: &warifu_store::StoreError) -> Response {
    tracing::error!(party = who, error = %e, "dashboard cannot read the store");
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        layout(
            "Error",
            who,
            dashboard_nav(),
            html! { p.error role="alert" { "The store cannot be read right now; see the service's log." } },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(money(4700, "JPY"), "JPY 4,700");
        assert_eq!(money(1_234_567, "JPY"), "JPY 1,234,567");
        assert_eq!(money(1250, "EUR"), "EUR 12.50");
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(time_ms(0), "1970-01-01 00:00:00");
        assert_eq!(time_ms(951_782_400_000 + 3_661_000), "2000-02-29 01:01:01");
        assert_eq!(time_ms(-1), "1969-12-31 23:59:59");
        assert_eq!(date(19_723), "2024-01-01");
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(-719_528), "0000-01-01");
        assert_eq!(time_ms(253_402_300_799_000), "9999-12-31 23:59:59");
        assert_eq!(last4("4539148803436467"), "•••• 6467");
        assert_eq!(last4("12"), "•••• 12");
    }

    #[test]
    fn heads_as_written_out() {
        let written =
            html! { thead { tr { th scope="col" { "Time (UTC)" } th scope="col" { "From" } } } };
        assert_eq!(
            heads(&["Time (UTC)", "From"]).into_string(),
            written.into_string()
        );
    }

    #[test]
    fn escapes() {
        let m = layout("<t>", "x", html! {}, html! { p { ("<script>&") } });
        let s = m.into_string();
        assert!(s.contains("&lt;script&gt;&amp;"));
        assert!(!s.contains("<script>"));
    }
}
