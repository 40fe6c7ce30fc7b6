//! The cardholder's wallet as a local web page (`warifu wallet web`, and `warifu up`): unlock,
//! cards and addresses in the wallet's own encrypted file, the merchant's catalog from its
//! order form, the order, a disclosure preview, sealing in this process, and the order's
//! merchant, payment and delivery states.
//!
//! Served on loopback only (requests naming another host are refused), a session cookie
//! (HttpOnly, SameSite=Strict) after unlocking, a CSRF token on every POST form, no secret
//! in a URL or a log line; the full card number leaves this process only sealed for the issuer.
//!
//! Map: `app` (the deployment, the configuration, the unlocked session and its drafts, the
//! page and CSRF helpers) → `handlers` (one function per route) → `views` (HTML), `vault` (the
//! encrypted wallet file), `keys` (the cardholder's key files). This module binds, routes and
//! serves.

mod app;
mod handlers;
pub mod history;
pub mod keys;
pub mod vault;
mod views;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::html;
use tokio::net::TcpListener;
use warifu_core::PartyId;
use warifu_core::sok::KeyScheme;

use crate::support::format::print;
use app::{App, Shared, page, random_token};

pub use app::{Deployment, WebConfig};
use handlers::*;

/// `warifu wallet web`
#[derive(Debug, clap::Args)]
pub struct WebArgs {
    /// The cardholder's key file; repeat it for a Blom and a SOK key from two key centers.
    /// A sealed key file's passphrase is asked for on the page.
    #[arg(long, value_name = "FILE", required = true)]
    pub key: Vec<PathBuf>,
    /// Key scheme and pairwise-key cache.
    #[command(flatten)]
    pub keys: crate::support::flags::KeyUseArgs,
    /// The key center's directory (JSON).
    #[arg(long, value_name = "FILE")]
    pub directory: PathBuf,
    /// The merchant to shop at (default: the one the `--link` names).
    #[arg(long, value_name = "ID", required_unless_present = "link")]
    pub merchant: Option<String>,
    /// A merchant's payment link to open right after unlocking (its shop and disclosure
    /// preview); links can also be pasted on the page.
    #[arg(long, value_name = "URL")]
    pub link: Option<String>,
    /// The wallet file (cards, addresses, orders; encrypted). Default: `wallet.vault` next to
    /// the first key file.
    #[arg(long, value_name = "FILE")]
    pub wallet: Option<PathBuf>,
    /// The port on 127.0.0.1 (0: any free port; the URL is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The key center's signed revocation list, checked under the revocation key in the
    /// directory when the wallet is unlocked: a revoked merchant, issuer or carrier is refused.
    #[arg(long, value_name = "FILE")]
    pub revocations: Option<PathBuf>,
}

/// Runs `warifu wallet web` until Ctrl-C.
pub async fn run(a: &WebArgs) -> Result<()> {
    let vault = a
        .wallet
        .clone()
        .unwrap_or_else(|| history::default_path(&a.key));
    let cfg = WebConfig {
        key_paths: a.key.clone(),
        scheme: a.keys.scheme.map(KeyScheme::from),
        key_cache: a.keys.key_cache,
        directory: a.directory.clone(),
        revocations: a.revocations.clone(),
        merchant: match (&a.merchant, &a.link) {
            (Some(m), _) => PartyId::parse(m)?,
            (None, Some(l)) => warifu_services::merchant::links::parse_link(l)?.merchant,
            (None, None) => anyhow::bail!("give --merchant ID or --link URL"),
        },
        link: a.link.clone(),
        vault,
        deployment: None,
        seed: None,
    };
    let (listener, url) = bind(a.port).await?;
    print(&format!(
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
        .route("/link", get(link_page).post(post_link))
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
