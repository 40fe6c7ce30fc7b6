//! The wallet page's state: the deployment and configuration, the unlocked session and its
//! drafts, and the helpers every handler uses (page, redirect, the CSRF-checked POST form).
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::history;
use super::vault::{Vault, VaultData};
use super::views;
use anyhow::{Context, Result};
use axum::Form;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use warifu_core::PartyId;
use warifu_core::order::{Order, OrderForm};
use warifu_core::rand::{OsRandom, Randomness};
use warifu_core::sealed::SealedOrder;
use warifu_core::secret::Secret;
use warifu_core::sok::KeyScheme;
use warifu_services::cardholder::Cardholder;
use warifu_services::carrier::CarrierState;
use warifu_services::http::dashboard as shared;
use warifu_services::issuer::IssuerState;
use warifu_services::merchant::MerchantState;

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
    /// The key center's revocation list (read when the wallet is unlocked), if any.
    pub revocations: Option<PathBuf>,
    /// The merchant to shop at.
    pub merchant: PartyId,
    /// A payment link to open after unlocking.
    pub link: Option<String>,
    /// The wallet file.
    pub vault: PathBuf,
    /// The local deployment, when there is one.
    pub deployment: Option<Deployment>,
    /// What a new wallet may be filled with (the demo cardholder), if anything.
    pub seed: Option<VaultData>,
}

/// One open form the cardholder is filling.
pub(crate) struct Draft {
    pub(crate) form: OrderForm,
    pub(crate) input: HashMap<String, String>,
    pub(crate) pending: Option<(Order, PartyId, String)>,
    pub(crate) sealed: Option<SealedOrder>,
}

/// An unlocked wallet.
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
    pub(crate) wallet: Cardholder,
    /// The open wallet file; read it through [`Session::vault`], change it through
    /// `handlers::save_change`, which see what another process (`wallet buy`) wrote.
    pub(crate) vault: tokio::sync::Mutex<Vault>,
    pub(crate) vault_path: PathBuf,
    /// The wallet passphrase, to reopen the file after another process changed it.
    pub(crate) pass: Secret,
    /// The wallet file's version last read or written here.
    pub(crate) stamp: Mutex<history::Stamp>,
    pub(crate) drafts: Mutex<Vec<Draft>>,
}

pub(crate) struct App {
    pub(crate) cfg: WebConfig,
    pub(crate) boot_csrf: String,
    pub(crate) session: Mutex<Option<Arc<Session>>>,
}

pub(crate) type Shared = Arc<App>;

pub(crate) const COOKIE: &str = "warifu_wallet";
pub(crate) const MAX_DRAFTS: usize = 16;

pub(crate) fn random_token() -> Result<String> {
    let mut b = [0u8; 24];
    OsRandom.fill(&mut b).context("cannot draw random bytes")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

pub(crate) fn same(a: &str, b: &str) -> bool {
    warifu_core::secret::ct_eq(a, b)
}
pub(crate) fn page(status: StatusCode, title: &str, nav: Markup, body: Markup) -> Response {
    shared::respond(
        status,
        shared::layout(title, "cardholder's wallet", nav, body),
    )
}

pub(crate) fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

impl App {
    pub(crate) fn current(&self) -> Option<Arc<Session>> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The unlocked session whose cookie the request carries.
    pub(crate) fn session(&self, headers: &HeaderMap) -> Option<Arc<Session>> {
        let s = self.current()?;
        let presented = warifu_services::session::operator::cookie(headers, COOKIE)?;
        same(&presented, &s.cookie).then_some(s)
    }

    pub(crate) fn key_paths_text(&self) -> String {
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
pub(crate) fn authorized(
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
pub(crate) struct Posted {
    pub(crate) s: Arc<Session>,
    pub(crate) form: HashMap<String, String>,
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

pub(crate) fn field(form: &HashMap<String, String>, k: &str) -> String {
    form.get(k).map(|s| s.trim().to_owned()).unwrap_or_default()
}
pub(crate) fn problem(s: &Session, status: StatusCode, title: &str, message: String) -> Response {
    page(
        status,
        title,
        views::nav(&s.csrf),
        html! { h1 { (title) } p.error role="alert" { (message) } p { a href="/shop" { "Start a new order" } } },
    )
}

impl Session {
    /// The wallet file's contents, reopened first if another process (`wallet buy`) changed
    /// the file since this page last read or wrote it.
    pub(crate) async fn vault(&self) -> tokio::sync::MutexGuard<'_, Vault> {
        let mut v = self.vault.lock().await;
        let now = history::stamp(&self.vault_path);
        let mut seen = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if now != *seen {
            match Vault::open(&self.vault_path, &self.pass) {
                Ok(fresh) => {
                    *v = fresh;
                    *seen = now;
                }
                Err(e) => tracing::warn!(error = %e, "cannot reread the wallet file"),
            }
        }
        v
    }

    /// Notes that the wallet file on disk is the version this page just wrote.
    pub(crate) fn wrote(&self) {
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = history::stamp(&self.vault_path);
    }

    pub(crate) fn keep_draft(&self, d: Draft) {
        let mut drafts = self.drafts.lock().unwrap_or_else(|p| p.into_inner());
        drafts.retain(|x| x.form.order_id != d.form.order_id);
        drafts.push(d);
        let excess = drafts.len().saturating_sub(MAX_DRAFTS);
        drafts.drain(..excess);
    }

    pub(crate) fn take_draft(&self, id: &str) -> Option<Draft> {
        let mut drafts = self.drafts.lock().unwrap_or_else(|p| p.into_inner());
        let i = drafts.iter().position(|d| d.form.order_id == id)?;
        Some(drafts.remove(i))
    }
}
