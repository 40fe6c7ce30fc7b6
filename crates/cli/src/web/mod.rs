//! The cardholder's wallet as a local web page (`warifu wallet web`, and `warifu up`): unlock,
//! cards and addresses in the wallet's own encrypted file, the merchant's catalog from its
//! order form, the order, a disclosure preview, sealing in this process, and the order's
//! merchant, payment and delivery states.
//!
//! Served on loopback only (requests naming another host are refused), a session cookie
//! (HttpOnly, SameSite=Strict) after unlocking, a CSRF token on every POST form, no secret
//! in a URL or a log line; the full card number leaves this process only sealed for the issuer.

pub mod keys;
pub mod vault;
mod views;

use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use tokio::net::TcpListener;
use warifu_core::PartyId;
use warifu_core::order::{Card, Destination, Expiry, Order, OrderForm, PaymentMethod};
use warifu_core::rand::{OsRandom, Randomness};
use warifu_core::sealed::SealedOrder;
use warifu_core::secret::Secret;
use warifu_core::sok::KeyScheme;
use warifu_core::{Role, order};
use warifu_services::cardholder::Cardholder;
use warifu_services::carrier::CarrierState;
use warifu_services::dev::order::{Stores, across};
use warifu_services::directory::SharedDirectory;
use warifu_services::http::dashboard as shared;
use warifu_services::issuer::IssuerState;
use warifu_services::merchant::MerchantState;
use warifu_store::OrderState;

use vault::{Address, OrderRef, StoredCard, Vault, VaultData};

/// The parties of an in-process deployment (`warifu up`), whose stores the order page reads
/// to draw one order across every party.
#[derive(Clone)]
pub struct Deployment {
    /// The merchant.
    pub merchant: Arc<MerchantState>,
    /// The issuer.
    pub issuer: Arc<IssuerState>,
    /// The carrier.
    pub carrier: Arc<CarrierState>,
}

/// How to run the wallet page.
pub struct WebConfig {
    /// The cardholder's key file(s).
    pub key_paths: Vec<PathBuf>,
    /// The key scheme (default: the strongest the files serve).
    pub scheme: Option<KeyScheme>,
    /// The pairwise-key cache size.
    pub key_cache: usize,
    /// The key center's directory file.
    pub directory: PathBuf,
    /// The merchant to shop at.
    pub merchant: PartyId,
    /// The wallet file.
    pub vault: PathBuf,
    /// The local deployment, when there is one.
    pub deployment: Option<Deployment>,
    /// What a new wallet may be filled with (the demo cardholder), if anything.
    pub seed: Option<VaultData>,
}

/// One open form the cardholder is filling.
struct Draft {
    form: OrderForm,
    input: HashMap<String, String>,
    pending: Option<(Order, PartyId, String)>,
    sealed: Option<SealedOrder>,
}

/// An unlocked wallet.
struct Session {
    cookie: String,
    csrf: String,
    wallet: Cardholder,
    vault: tokio::sync::Mutex<Vault>,
    drafts: Mutex<Vec<Draft>>,
}

struct App {
    cfg: WebConfig,
    boot_csrf: String,
    session: Mutex<Option<Arc<Session>>>,
}

type Shared = Arc<App>;

const COOKIE: &str = "warifu_wallet";
const MAX_DRAFTS: usize = 16;

fn random_token() -> Result<String> {
    let mut b = [0u8; 24];
    OsRandom.fill(&mut b).context("cannot draw random bytes")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `warifu wallet web`
#[derive(Debug, clap::Args)]
pub struct WebArgs {
    /// The cardholder's key file; repeat it for a Blom and a SOK key from two key centers.
    /// A sealed key file's passphrase is asked for on the page.
    #[arg(long, value_name = "FILE", required = true)]
    pub key: Vec<PathBuf>,
    /// Key scheme and pairwise-key cache.
    #[command(flatten)]
    pub keys: crate::cli::KeyUseArgs,
    /// The key center's directory (JSON).
    #[arg(long, value_name = "FILE")]
    pub directory: PathBuf,
    /// The merchant to shop at.
    #[arg(long, value_name = "ID")]
    pub merchant: String,
    /// The wallet file (cards, addresses, orders; encrypted). Default: `wallet.vault` next to
    /// the first key file.
    #[arg(long, value_name = "FILE")]
    pub wallet: Option<PathBuf>,
    /// The port on 127.0.0.1 (0: any free port; the URL is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Runs `warifu wallet web` until Ctrl-C.
pub async fn run(a: &WebArgs) -> Result<()> {
    let vault = match &a.wallet {
        Some(w) => w.clone(),
        None => a
            .key
            .first()
            .and_then(|k| k.parent())
            .unwrap_or(std::path::Path::new("."))
            .join("wallet.vault"),
    };
    let cfg = WebConfig {
        key_paths: a.key.clone(),
        scheme: a.keys.scheme.map(KeyScheme::from),
        key_cache: a.keys.key_cache,
        directory: a.directory.clone(),
        merchant: PartyId::parse(&a.merchant)?,
        vault,
        deployment: None,
        seed: None,
    };
    let (listener, url) = bind(a.port).await?;
    crate::print(&format!(
        "The wallet page is at {url} (loopback only). Press Ctrl-C to stop.\n"
    ))?;
    serve(listener, cfg, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Binds the wallet page on 127.0.0.1:`port` (0: any free port); returns it and its URL.
pub async fn bind(port: u16) -> Result<(TcpListener, String)> {
    let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = l.local_addr().context("cannot read the bound address")?;
    Ok((l, format!("http://{addr}/")))
}

/// Serves the wallet page on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    cfg: WebConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let app = Arc::new(App {
        cfg,
        boot_csrf: random_token()?,
        session: Mutex::new(None),
    });
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .context("the wallet page stopped")
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/unlock", post(unlock))
        .route("/lock", post(lock))
        .route("/wallet", get(wallet_page))
        .route("/wallet/me", post(save_me))
        .route("/wallet/cards", post(add_card))
        .route("/wallet/cards/delete", post(delete_card))
        .route("/wallet/addresses", post(add_address))
        .route("/wallet/addresses/delete", post(delete_address))
        .route("/shop", get(shop))
        .route("/order/preview", post(preview))
        .route("/order/edit", post(edit))
        .route("/order/submit", post(submit))
        .route("/orders", get(orders))
        .route("/orders/{order_id}", get(order_page))
        .route("/orders/{order_id}/cancel", post(cancel))
        .fallback(|| async {
            page(
                StatusCode::NOT_FOUND,
                "Not found",
                html! {},
                html! { h1 { "Not found" } p { a href="/" { "Home" } } },
            )
        })
        .layer(middleware::from_fn(loopback_only))
        .with_state(app)
}

/// Refuses requests whose Host is not a loopback name (DNS rebinding), and logs each request
/// by method, path and status only.
async fn loopback_only(req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(n, _)| n)
        .unwrap_or(host);
    if !matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
        return (StatusCode::MISDIRECTED_REQUEST, "loopback only").into_response();
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let r = next.run(req).await;
    tracing::debug!(%method, %path, status = r.status().as_u16(), "wallet page");
    r
}

fn page(status: StatusCode, title: &str, nav: Markup, body: Markup) -> Response {
    shared::respond(
        status,
        shared::layout(title, "cardholder's wallet", nav, body),
    )
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

impl App {
    fn current(&self) -> Option<Arc<Session>> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The unlocked session whose cookie the request carries.
    fn session(&self, headers: &HeaderMap) -> Option<Arc<Session>> {
        let s = self.current()?;
        let presented = warifu_services::session::operator::cookie(headers, COOKIE)?;
        same(&presented, &s.cookie).then_some(s)
    }

    fn key_paths_text(&self) -> String {
        self.cfg
            .key_paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The session and a checked CSRF token, or the response to give instead.
#[allow(clippy::result_large_err)]
fn authorized(
    app: &App,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Arc<Session>, Response> {
    let Some(s) = app.session(headers) else {
        return Err(redirect("/"));
    };
    let token = form.get("csrf").map(String::as_str).unwrap_or("");
    if !same(token, &s.csrf) {
        tracing::warn!("wallet page: a form without the right CSRF token was refused");
        return Err(page(
            StatusCode::FORBIDDEN,
            "Refused",
            views::nav(&s.csrf),
            html! { h1 { "Refused" } p.error role="alert" { "This form is stale or did not come from this wallet page. Reload the page and try again." } },
        ));
    }
    Ok(s)
}

/// A POST form from the unlocked session, its CSRF token checked (see [`authorized`]).
struct Posted {
    s: Arc<Session>,
    form: HashMap<String, String>,
}

impl FromRequest<Shared> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Shared) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let Form(form) = Form::<HashMap<String, String>>::from_request(req, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let s = authorized(app, &headers, &form)?;
        Ok(Posted { s, form })
    }
}

fn field(form: &HashMap<String, String>, k: &str) -> String {
    form.get(k).map(|s| s.trim().to_owned()).unwrap_or_default()
}

fn unlock_page(app: &App, status: StatusCode, errs: &[String]) -> Response {
    let body = views::unlock(
        &app.boot_csrf,
        &app.key_paths_text(),
        keys::any_sealed(&app.cfg.key_paths),
        &app.cfg.vault.display().to_string(),
        Vault::exists(&app.cfg.vault),
        app.cfg.seed.is_some(),
        errs,
    );
    page(status, "Unlock", html! {}, body)
}

async fn index(State(app): State<Shared>, headers: HeaderMap) -> Response {
    match app.session(&headers) {
        Some(s) => {
            let v = s.vault.lock().await;
            page(
                StatusCode::OK,
                "Wallet",
                views::nav(&s.csrf),
                views::home(s.wallet.id().as_str(), &v.data),
            )
        }
        None => unlock_page(&app, StatusCode::OK, &[]),
    }
}

async fn unlock(State(app): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    if !same(
        form.get("csrf").map(String::as_str).unwrap_or(""),
        &app.boot_csrf,
    ) {
        return unlock_page(
            &app,
            StatusCode::FORBIDDEN,
            &["This form is stale; reload the page and try again.".into()],
        );
    }
    let key_pass = form
        .get("key_passphrase")
        .filter(|p| !p.is_empty())
        .map(|p| Secret::new(p.as_str()));
    let wallet_pass = Secret::new(form.get("wallet_passphrase").cloned().unwrap_or_default());
    let repeat = form.get("wallet_passphrase2").cloned();
    let seed = form.contains_key("seed");
    let app2 = app.clone();
    let opened = tokio::task::spawn_blocking(move || -> Result<(Cardholder, Vault)> {
        let cfg = &app2.cfg;
        let source = keys::load(&cfg.key_paths, cfg.scheme, cfg.key_cache, key_pass.as_ref())?;
        let dir =
            Arc::new(SharedDirectory::from_file(&cfg.directory).with_context(|| {
                format!("cannot read the directory {}", cfg.directory.display())
            })?);
        let vault = if Vault::exists(&cfg.vault) {
            Vault::open(&cfg.vault, &wallet_pass)?
        } else {
            if repeat.as_deref() != Some(wallet_pass.expose()) {
                anyhow::bail!("the two passphrases differ");
            }
            let data = if seed {
                cfg.seed.clone().unwrap_or_default()
            } else {
                VaultData::default()
            };
            Vault::create(&cfg.vault, &wallet_pass, data)?
        };
        Ok((Cardholder::new(source, dir), vault))
    })
    .await;
    let (wallet, vault) = match opened {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            return unlock_page(&app, StatusCode::UNPROCESSABLE_ENTITY, &[format!("{e:#}")]);
        }
        Err(_) => {
            return unlock_page(
                &app,
                StatusCode::INTERNAL_SERVER_ERROR,
                &["unlocking failed".into()],
            );
        }
    };
    let (cookie, csrf) = match (random_token(), random_token()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            return unlock_page(
                &app,
                StatusCode::INTERNAL_SERVER_ERROR,
                &["no randomness".into()],
            );
        }
    };
    tracing::info!(cardholder = %wallet.id(), "wallet unlocked");
    let set = format!("{COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/");
    *app.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Session {
        cookie,
        csrf,
        wallet,
        vault: tokio::sync::Mutex::new(vault),
        drafts: Mutex::new(Vec::new()),
    }));
    let mut r = redirect("/");
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn lock(State(app): State<Shared>, _: Posted) -> Response {
    *app.session.lock().unwrap_or_else(|p| p.into_inner()) = None;
    tracing::info!("wallet locked");
    let mut r = redirect("/");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("warifu_wallet=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}

async fn render_wallet(
    app: &App,
    s: &Session,
    status: StatusCode,
    input: &HashMap<String, String>,
    errs: &[String],
    notice: Option<&str>,
) -> Response {
    let mut list: Vec<String> = Vec::new();
    if let Ok(dir) = SharedDirectory::from_file(&app.cfg.directory) {
        list = dir
            .get()
            .entries()
            .filter(|e| e.role == Role::Issuer)
            .map(|e| e.id.as_str().to_owned())
            .collect();
    }
    let v = s.vault.lock().await;
    page(
        status,
        "Cards & addresses",
        views::nav(&s.csrf),
        views::wallet(&s.csrf, &v.data, &list, input, errs, notice),
    )
}

async fn wallet_page(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(s) = app.session(&headers) else {
        return redirect("/");
    };
    render_wallet(&app, &s, StatusCode::OK, &HashMap::new(), &[], None).await
}

fn text_ok(what: &str, v: &str, errs: &mut Vec<String>) {
    if v.is_empty() {
        errs.push(format!("{what} is required."));
    } else if v.len() > order::MAX_TEXT || v.chars().any(|c| c.is_control() && c != '\n') {
        errs.push(format!(
            "{what} must be at most {} bytes without control characters.",
            order::MAX_TEXT
        ));
    }
}

/// The wallet page again with the form as typed and what is wrong with it; nothing is saved.
async fn wallet_refill(
    app: &App,
    s: &Session,
    status: StatusCode,
    form: &HashMap<String, String>,
    errs: &[String],
) -> Response {
    render_wallet(app, s, status, form, errs, None).await
}

/// Applies `change` to the wallet's data and saves the wallet file; the error if saving failed.
async fn save_change(s: &Session, change: impl FnOnce(&mut VaultData)) -> Result<(), String> {
    let mut v = s.vault.lock().await;
    change(&mut v.data);
    v.save().map_err(|e| format!("{e:#}"))
}

/// Saves `change`; the wallet page with `notice`, and with the error if saving failed.
async fn vault_change(
    app: &App,
    s: &Session,
    notice: &str,
    change: impl FnOnce(&mut VaultData),
) -> Response {
    let errs: Vec<String> = save_change(s, change).await.err().into_iter().collect();
    render_wallet(app, s, StatusCode::OK, &HashMap::new(), &errs, Some(notice)).await
}

/// Saves `change`; the wallet page with `notice`, or the form again if saving failed.
async fn vault_change_or_refill(
    app: &App,
    s: &Session,
    form: &HashMap<String, String>,
    notice: &str,
    change: impl FnOnce(&mut VaultData),
) -> Response {
    match save_change(s, change).await {
        Ok(()) => render_wallet(app, s, StatusCode::OK, &HashMap::new(), &[], Some(notice)).await,
        Err(e) => wallet_refill(app, s, StatusCode::INTERNAL_SERVER_ERROR, form, &[e]).await,
    }
}

async fn save_me(State(app): State<Shared>, Posted { s, form }: Posted) -> Response {
    let mut errs = Vec::new();
    let (name, address, tel, fax) = (
        field(&form, "name"),
        field(&form, "address"),
        field(&form, "telephone"),
        field(&form, "fax"),
    );
    text_ok("Name", &name, &mut errs);
    text_ok("Address", &address, &mut errs);
    text_ok("Telephone", &tel, &mut errs);
    if !errs.is_empty() {
        return wallet_refill(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &form, &errs).await;
    }
    let me = vault::Contact {
        name,
        address,
        telephone: tel,
        fax: (!fax.is_empty()).then_some(fax),
    };
    vault_change_or_refill(&app, &s, &form, "Details saved.", |d| d.me = me).await
}

async fn add_card(State(app): State<Shared>, Posted { s, mut form }: Posted) -> Response {
    let number = Secret::new(
        form.remove("number")
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>(),
    );
    let mut errs = Vec::new();
    let holder = field(&form, "holder_name");
    text_ok("The name on the card", &holder, &mut errs);
    if number.is_blank() {
        errs.push("The card number is required.".into());
    } else if let Err(warifu_core::Error::InvalidOrder(m)) = order::check_card_number(&number) {
        errs.push(format!("The {m}."));
    }
    let month = field(&form, "exp_month")
        .parse::<u8>()
        .ok()
        .filter(|m| (1..=12).contains(m));
    let year = field(&form, "exp_year")
        .parse::<u16>()
        .ok()
        .filter(|y| (2000..=2100).contains(y));
    match (month, year) {
        (None, _) => errs.push("The expiry month must be a number from 1 to 12.".into()),
        (_, None) => errs.push("The expiry year must be a four-digit year.".into()),
        (Some(m), Some(y)) => {
            if (y, m) < order::year_month(warifu_services::now_unix()) {
                errs.push("This card has expired.".into());
            }
        }
    }
    let issuer = match PartyId::parse(&field(&form, "issuer")) {
        Ok(i) if i.role() == Role::Issuer => Some(i),
        _ => {
            errs.push("Choose the card's issuer.".into());
            None
        }
    };
    let (Some(month), Some(year), Some(issuer), true) = (month, year, issuer, errs.is_empty())
    else {
        return wallet_refill(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &form, &errs).await;
    };
    let id = match random_token() {
        Ok(t) => t[..8].to_owned(),
        Err(e) => {
            let errs = [e.to_string()];
            return wallet_refill(&app, &s, StatusCode::INTERNAL_SERVER_ERROR, &form, &errs).await;
        }
    };
    let card = StoredCard {
        id,
        holder_name: holder,
        number,
        expiry: Expiry { year, month },
        issuer,
    };
    let note = format!("Card ending {} added.", card.last4());
    vault_change_or_refill(&app, &s, &form, &note, |d| d.cards.push(card)).await
}

async fn delete_card(State(app): State<Shared>, Posted { s, form }: Posted) -> Response {
    let id = field(&form, "id");
    vault_change(&app, &s, "Card removed.", |d| {
        d.cards.retain(|c| c.id != id)
    })
    .await
}

async fn add_address(State(app): State<Shared>, Posted { s, form }: Posted) -> Response {
    let mut errs = Vec::new();
    let (label, addressee, address) = (
        field(&form, "label"),
        field(&form, "addressee"),
        field(&form, "address"),
    );
    text_ok("The label", &label, &mut errs);
    text_ok("The addressee", &addressee, &mut errs);
    text_ok("The address", &address, &mut errs);
    let Ok(id) = random_token().map(|t| t[..8].to_owned()) else {
        errs.push("no randomness".into());
        return wallet_refill(&app, &s, StatusCode::INTERNAL_SERVER_ERROR, &form, &errs).await;
    };
    if !errs.is_empty() {
        return wallet_refill(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &form, &errs).await;
    }
    let a = Address {
        id,
        label,
        addressee: Secret::new(addressee),
        address: Secret::new(address),
    };
    vault_change(&app, &s, "Address added.", |d| d.addresses.push(a)).await
}

async fn delete_address(State(app): State<Shared>, Posted { s, form }: Posted) -> Response {
    let id = field(&form, "id");
    vault_change(&app, &s, "Address removed.", |d| {
        d.addresses.retain(|a| a.id != id)
    })
    .await
}

fn problem(s: &Session, status: StatusCode, title: &str, message: String) -> Response {
    page(
        status,
        title,
        views::nav(&s.csrf),
        html! { h1 { (title) } p.error role="alert" { (message) } p { a href="/shop" { "Start a new order" } } },
    )
}

impl Session {
    fn keep_draft(&self, d: Draft) {
        let mut drafts = self.drafts.lock().unwrap_or_else(|p| p.into_inner());
        drafts.retain(|x| x.form.order_id != d.form.order_id);
        drafts.push(d);
        let excess = drafts.len().saturating_sub(MAX_DRAFTS);
        drafts.drain(..excess);
    }

    fn take_draft(&self, id: &str) -> Option<Draft> {
        let mut drafts = self.drafts.lock().unwrap_or_else(|p| p.into_inner());
        let i = drafts.iter().position(|d| d.form.order_id == id)?;
        Some(drafts.remove(i))
    }
}

async fn order_form_page(
    s: &Session,
    status: StatusCode,
    form: &OrderForm,
    input: &HashMap<String, String>,
    errs: &[String],
) -> Response {
    let v = s.vault.lock().await;
    page(
        status,
        "Order",
        views::nav(&s.csrf),
        views::order_form(&s.csrf, form, &v.data, input, errs),
    )
}

async fn shop(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(s) = app.session(&headers) else {
        return redirect("/");
    };
    let form = match s.wallet.order_form(&app.cfg.merchant, false).await {
        Ok(f) => f,
        Err(e) => {
            return problem(
                &s,
                StatusCode::BAD_GATEWAY,
                "The merchant cannot be reached",
                format!("{} did not give an order form: {e}", app.cfg.merchant),
            );
        }
    };
    let r = order_form_page(&s, StatusCode::OK, &form, &HashMap::new(), &[]).await;
    s.keep_draft(Draft {
        form,
        input: HashMap::new(),
        pending: None,
        sealed: None,
    });
    r
}

/// Builds the order from the form's input, or says what is wrong.
fn build_order(
    form: &OrderForm,
    data: &VaultData,
    input: &HashMap<String, String>,
) -> std::result::Result<(Order, PartyId, String), Vec<String>> {
    let mut errs = Vec::new();
    let mut picks: Vec<(&str, u32)> = Vec::new();
    for item in &form.catalog {
        let raw = field(input, &format!("qty_{}", item.product_number));
        match raw.parse::<u32>() {
            _ if raw.is_empty() => {}
            Ok(q) if q <= 999 => {
                if q > 0 {
                    picks.push((&item.product_number, q));
                }
            }
            _ => errs.push(format!(
                "The quantity of {} must be a whole number from 0 to 999.",
                item.name
            )),
        }
    }
    if picks.is_empty() && errs.is_empty() {
        errs.push("Choose at least one product: set its quantity to 1 or more.".into());
    }
    let card = data.cards.iter().find(|c| c.id == field(input, "card"));
    if card.is_none() {
        errs.push("Choose a card.".into());
    }
    let method = match field(input, "method").as_str() {
        "lump_sum" => Some(PaymentMethod::LumpSum),
        "revolving" => Some(PaymentMethod::Revolving),
        "bonus" => Some(PaymentMethod::Bonus),
        "installments" => match field(input, "instalments").parse::<u8>() {
            Ok(n) if (2..=60).contains(&n) => Some(PaymentMethod::Installments { count: n }),
            _ => {
                errs.push("The number of instalments must be from 2 to 60.".into());
                None
            }
        },
        _ => {
            errs.push("Choose a payment method.".into());
            None
        }
    };
    let dest = field(input, "destination");
    let destination = if form.carrier.is_none() {
        None
    } else if dest == "gift" {
        let (who, addr) = (field(input, "gift_addressee"), field(input, "gift_address"));
        if who.is_empty() {
            errs.push("Enter the gift's addressee.".into());
        }
        if addr.is_empty() {
            errs.push("Enter the gift's address.".into());
        }
        Some(Destination {
            addressee: Secret::new(who),
            address: Secret::new(addr),
        })
    } else if let Some(a) = dest
        .strip_prefix("addr:")
        .and_then(|id| data.addresses.iter().find(|a| a.id == id))
    {
        Some(Destination {
            addressee: a.addressee.clone(),
            address: a.address.clone(),
        })
    } else {
        errs.push("Choose where the goods go.".into());
        None
    };
    let me = &data.me;
    if me.address.is_empty() || me.telephone.is_empty() {
        errs.push("Fill in your address and telephone under Cards & addresses first.".into());
    }
    if let Some(c) = card
        && !form.accepted_issuers.contains(&c.issuer)
    {
        errs.push(format!(
            "{} does not accept cards of {}; choose another card.",
            form.merchant, c.issuer
        ));
    }
    let (Some(card), Some(method), true) = (card, method, errs.is_empty()) else {
        return Err(errs);
    };
    let (lines, amount) = Order::lines_from(form, &picks).map_err(|e| vec![e.to_string()])?;
    let order = Order {
        cardholder_name: card.holder_name.clone(),
        cardholder_address: me.address.clone(),
        telephone: me.telephone.clone(),
        fax: me.fax.clone(),
        card: Card {
            number: card.number.clone(),
            expiry: card.expiry,
        },
        lines,
        amount,
        currency: form.currency.clone(),
        payment_method: method,
        destination,
    };
    order
        .validate(form, warifu_services::now_unix())
        .map_err(|e| vec![e.to_string()])?;
    Ok((order, card.issuer.clone(), card.last4()))
}

async fn preview(State(app): State<Shared>, Posted { s, form: input }: Posted) -> Response {
    let Some(mut draft) = s.take_draft(&field(&input, "form_id")) else {
        return problem(
            &s,
            StatusCode::GONE,
            "This order form is closed",
            "The order form is no longer open (it was sent, or replaced). Start a new order."
                .into(),
        );
    };
    // Digital goods need a form without a carrier, and physical goods one with a carrier.
    let digital = field(&input, "destination") == "digital";
    if digital == draft.form.carrier.is_some() {
        match s.wallet.order_form(&app.cfg.merchant, digital).await {
            Ok(f) => draft.form = f,
            Err(e) => {
                return problem(
                    &s,
                    StatusCode::BAD_GATEWAY,
                    "The merchant cannot be reached",
                    format!("{e}"),
                );
            }
        }
    }
    let built = {
        let v = s.vault.lock().await;
        build_order(&draft.form, &v.data, &input)
    };
    draft.input = input;
    draft.sealed = None;
    match built {
        Err(errs) => {
            let r = order_form_page(
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &draft.form,
                &draft.input,
                &errs,
            )
            .await;
            draft.pending = None;
            s.keep_draft(draft);
            r
        }
        Ok((order, issuer, last4)) => {
            let body = views::preview(&s.csrf, &draft.form, &order, issuer.as_str(), &[]);
            draft.pending = Some((order, issuer, last4));
            s.keep_draft(draft);
            page(StatusCode::OK, "Preview", views::nav(&s.csrf), body)
        }
    }
}

async fn edit(Posted { s, form: input }: Posted) -> Response {
    let Some(draft) = s.take_draft(&field(&input, "form_id")) else {
        return redirect("/shop");
    };
    let r = order_form_page(&s, StatusCode::OK, &draft.form, &draft.input, &[]).await;
    s.keep_draft(draft);
    r
}

async fn submit(Posted { s, form: input }: Posted) -> Response {
    let Some(mut draft) = s.take_draft(&field(&input, "form_id")) else {
        return problem(
            &s,
            StatusCode::GONE,
            "This order form is closed",
            "The order was already sent, or its form is no longer open. See your orders.".into(),
        );
    };
    let Some((order, issuer, last4)) = draft.pending.clone() else {
        let r = order_form_page(&s, StatusCode::OK, &draft.form, &draft.input, &[]).await;
        s.keep_draft(draft);
        return r;
    };
    // Seal once; a retry after an outage resubmits the same bundle, which the merchant resumes.
    let sealed = match &draft.sealed {
        Some(b) => b.clone(),
        None => match s.wallet.seal(&draft.form, &order, &issuer) {
            Ok(b) => b,
            Err(e) => {
                let body = views::preview(
                    &s.csrf,
                    &draft.form,
                    &order,
                    issuer.as_str(),
                    &[e.to_string()],
                );
                s.keep_draft(draft);
                return page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Preview",
                    views::nav(&s.csrf),
                    body,
                );
            }
        },
    };
    draft.sealed = Some(sealed.clone());
    let order_id = draft.form.order_id.clone();
    let oref = OrderRef {
        order_id: order_id.clone(),
        merchant: draft.form.merchant.clone(),
        issuer: issuer.clone(),
        carrier: draft.form.carrier.clone(),
        amount: order.amount,
        currency: order.currency.clone(),
        summary: views::summary(&order),
        payment: views::payment_words(order.payment_method),
        card_last4: last4,
        policy: draft.form.policy.clone(),
        placed_at_ms: warifu_services::now_ms(),
    };
    match s.wallet.submit(&sealed).await {
        Ok(outcome) => {
            tracing::info!(order_id = %order_id, state = %outcome.state, "order sent from the wallet page");
            let mut v = s.vault.lock().await;
            if !v.data.orders.iter().any(|o| o.order_id == order_id) {
                v.data.orders.push(oref);
            }
            if let Err(e) = v.save() {
                tracing::warn!(error = %e, "cannot save the wallet after an order");
            }
            drop(v);
            redirect(&format!("/orders/{order_id}"))
        }
        Err(e) => {
            tracing::warn!(order_id = %order_id, error = %e, "sending the order failed");
            let body = views::preview(
                &s.csrf,
                &draft.form,
                &order,
                issuer.as_str(),
                &[format!(
                    "The order could not be sent: {e}. Sending again resends the same sealed order."
                )],
            );
            s.keep_draft(draft);
            page(
                StatusCode::BAD_GATEWAY,
                "Preview",
                views::nav(&s.csrf),
                body,
            )
        }
    }
}

async fn orders(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(s) = app.session(&headers) else {
        return redirect("/");
    };
    let v = s.vault.lock().await;
    page(
        StatusCode::OK,
        "Orders",
        views::nav(&s.csrf),
        html! { h1 { "Your orders" } (views::orders_table(&v.data.orders)) },
    )
}

async fn order_page(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Response {
    let Some(s) = app.session(&headers) else {
        return redirect("/");
    };
    let oref = {
        let v = s.vault.lock().await;
        v.data
            .orders
            .iter()
            .find(|o| o.order_id == order_id)
            .cloned()
    };
    let Some(o) = oref else {
        return problem(
            &s,
            StatusCode::NOT_FOUND,
            "No such order",
            "This wallet placed no order with that id.".into(),
        );
    };
    let mut problems = Vec::new();
    let view = match s.wallet.order_view(&o.merchant, &o.order_id).await {
        Ok(v) => {
            if let Some(e) = &v.tracking_error {
                problems.push(format!(
                    "The carrier cannot tell where the parcel is now: {e}"
                ));
            }
            Some(v)
        }
        Err(e) => {
            problems.push(format!(
                "The merchant cannot tell the order's state now: {e}"
            ));
            None
        }
    };
    let across = match &app.cfg.deployment {
        Some(d) => {
            let stores = Stores {
                merchant: d.merchant.store().as_ref(),
                issuer: d.issuer.store().as_ref(),
                carrier: d.carrier.store().as_ref(),
            };
            match across(stores, &o.policy, o.merchant.as_str(), &o.order_id).await {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the parties' stores");
                    None
                }
            }
        }
        None => None,
    };
    let settled = view
        .as_ref()
        .and_then(|v| OrderState::parse(v.merchant_state()))
        .is_some_and(|st| st.is_final());
    let body = views::order_page(&s.csrf, &o, view.as_ref(), &problems, across, settled);
    let markup = if settled {
        shared::layout("Order", "cardholder's wallet", views::nav(&s.csrf), body)
    } else {
        shared::layout_refreshing("Order", "cardholder's wallet", views::nav(&s.csrf), body, 3)
    };
    shared::respond(StatusCode::OK, markup)
}

async fn cancel(Path(order_id): Path<String>, Posted { s, .. }: Posted) -> Response {
    let merchant = {
        let v = s.vault.lock().await;
        v.data
            .orders
            .iter()
            .find(|o| o.order_id == order_id)
            .map(|o| o.merchant.clone())
    };
    let Some(merchant) = merchant else {
        return problem(
            &s,
            StatusCode::NOT_FOUND,
            "No such order",
            "This wallet placed no order with that id.".into(),
        );
    };
    match s.wallet.cancel(&merchant, &order_id).await {
        Ok(out) => {
            tracing::info!(order_id = %order_id, state = %out.state, "order cancelled from the wallet page");
            redirect(&format!("/orders/{order_id}"))
        }
        Err(e) => problem(
            &s,
            StatusCode::CONFLICT,
            "The order cannot be cancelled",
            format!("{e}"),
        ),
    }
}
