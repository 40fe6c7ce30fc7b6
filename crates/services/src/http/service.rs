//! What every service shares: the finishing layers of a router (fallbacks, body limit, request
//! metrics and span, operator access), the operations routes (`/healthz`, `/readyz`,
//! `/metrics`, `/openapi.json`), serving with graceful shutdown on SIGTERM or Ctrl-C with a
//! bounded drain, fresh identifiers and JSON answers.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{
    DefaultBodyLimit, FromRequestParts, MatchedPath, RawPathParams, Request, State,
};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tracing::Instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::keysource::KeySource;
use warifu_core::rand::{OsRandom, Randomness};
use warifu_core::{PartyId, Role};
use warifu_store::{CarrierStore, IssuerStore, MerchantStore, PartyStore, StoreError};

use super::listen::{Limits, serve_limited};
use super::metrics::{self, Metrics, label};
use super::openapi;
use super::tls::ServerTls;
use crate::MAX_BODY;
use crate::directory::SharedDirectory;
use crate::error::{AppError, ErrorCode};
use crate::session::client::ClientError;
use crate::session::operator;
use crate::session::server::{self, Guard};

/// How long a stopping service waits for in-flight requests before dropping them.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);
/// How long the readiness check waits for the store.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What a service's readiness check and scrape-time metrics read: its keys, its store, and
/// the peers it must find in the key center's directory. Each party builds one in its
/// `app()`.
#[derive(Clone)]
pub struct Ops {
    service: &'static str,
    role: Role,
    keys: Arc<dyn KeySource>,
    store: Arc<dyn PartyStore>,
    holdings: Holdings,
    peers: Option<PeerList>,
}

/// The directory and the peers (with their roles) a service must find in it.
type PeerList = (Arc<SharedDirectory>, Vec<(PartyId, Role)>);

#[derive(Clone)]
enum Holdings {
    Merchant(Arc<dyn MerchantStore>),
    Issuer(Arc<dyn IssuerStore>),
    Carrier(Arc<dyn CarrierStore>),
}

impl core::fmt::Debug for Ops {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Ops {{ service: {}, keys: <redacted> }}", self.service)
    }
}

impl Ops {
    /// A merchant's: orders by state come from `store`.
    pub fn merchant(keys: Arc<dyn KeySource>, store: Arc<dyn MerchantStore>) -> Ops {
        Ops {
            service: "merchant",
            role: Role::Merchant,
            keys,
            store: store.clone(),
            holdings: Holdings::Merchant(store),
            peers: None,
        }
    }

    /// An issuer's: authorizations by result come from `store`.
    pub fn issuer(keys: Arc<dyn KeySource>, store: Arc<dyn IssuerStore>) -> Ops {
        Ops {
            service: "issuer",
            role: Role::Issuer,
            keys,
            store: store.clone(),
            holdings: Holdings::Issuer(store),
            peers: None,
        }
    }

    /// A carrier's: shipments by status come from `store`.
    pub fn carrier(keys: Arc<dyn KeySource>, store: Arc<dyn CarrierStore>) -> Ops {
        Ops {
            service: "carrier",
            role: Role::Carrier,
            keys,
            store: store.clone(),
            holdings: Holdings::Carrier(store),
            peers: None,
        }
    }

    /// The service is ready only while each of `peers` is listed in `directory` in its role
    /// (the merchant: its issuers and its carrier).
    pub fn with_peers(
        mut self,
        directory: Arc<SharedDirectory>,
        peers: impl IntoIterator<Item = (PartyId, Role)>,
    ) -> Ops {
        self.peers = Some((directory, peers.into_iter().collect()));
        self
    }

    /// The service's short name.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Runs the readiness checks: storage reachable, keys loaded, peers resolvable.
    pub async fn readiness(&self) -> Readiness {
        let mut checks = BTreeMap::new();
        let storage = match tokio::time::timeout(READY_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => Check::ok(format!("{:?} answers", self.store.backend())),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: the store does not answer");
                Check::failed("the store does not answer; see the service's log")
            }
            Err(_) => Check::failed(format!(
                "the store did not answer within {} s",
                READY_TIMEOUT.as_secs()
            )),
        };
        checks.insert("storage".to_owned(), storage);
        checks.insert("keys".to_owned(), self.check_keys());
        checks.insert("peers".to_owned(), self.check_peers());
        let failing: Vec<String> = checks
            .iter()
            .filter(|(_, c)| !c.ok)
            .map(|(n, _)| n.clone())
            .collect();
        Readiness {
            status: if failing.is_empty() {
                "ready"
            } else {
                "not_ready"
            }
            .to_owned(),
            service: self.service.to_owned(),
            party: self.keys.owner().to_string(),
            checks,
            failing,
        }
    }

    fn check_keys(&self) -> Check {
        let owner = self.keys.owner();
        if owner.role() != self.role {
            return Check::failed(format!(
                "the loaded key is {owner}'s, not a {}'s",
                self.role
            ));
        }
        // A pairwise key with the first peer proves the key material is usable (cached after
        // the first derivation).
        if let Some((_, peers)) = &self.peers
            && let Some((peer, _)) = peers.first()
            && self.keys.shared_secret(peer).is_err()
        {
            return Check::failed(format!("no pairwise key with {peer} can be derived"));
        }
        Check::ok(format!(
            "{owner}, {} scheme",
            scheme_name(self.keys.as_ref())
        ))
    }

    fn check_peers(&self) -> Check {
        let Some((directory, peers)) = &self.peers else {
            return Check::ok("this service calls no peer".to_owned());
        };
        let dir = directory.get();
        let problems: Vec<String> = peers
            .iter()
            .filter_map(|(id, role)| dir.lookup(id, *role).err().map(|e| e.to_string()))
            .collect();
        if problems.is_empty() {
            Check::ok(format!("{} peer(s) listed in the directory", peers.len()))
        } else {
            Check::failed(problems.join("; "))
        }
    }

    /// Refreshes the scrape-time gauges of `metrics` from the store and the guard.
    pub async fn refresh(&self, metrics: &Metrics, guard: &Guard) {
        let (sessions, pending) = guard.counts();
        metrics.set_one(metrics::SESSIONS, count(sessions as u64));
        metrics.set_one(metrics::PENDING_HANDSHAKES, count(pending as u64));
        let result = match &self.holdings {
            Holdings::Merchant(s) => refresh_merchant(s.as_ref(), metrics).await,
            Holdings::Issuer(s) => refresh_issuer(s.as_ref(), metrics).await,
            Holdings::Carrier(s) => refresh_carrier(s.as_ref(), metrics).await,
        };
        let up = match result {
            Ok(()) => 1,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the store does not answer");
                0
            }
        };
        metrics.set_one(metrics::STORAGE_UP, up);
    }
}

fn scheme_name(keys: &dyn KeySource) -> String {
    serde_json::to_value(keys.scheme())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("code {}", keys.scheme().code()))
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn refresh_merchant(s: &dyn MerchantStore, m: &Metrics) -> Result<(), StoreError> {
    let states = s.count_orders_by_state().await?;
    m.set(
        metrics::ORDERS,
        states
            .into_iter()
            .map(|(state, n)| (vec![label("state", state.as_str())], count(n))),
    );
    m.set_one(metrics::OUTBOX_PENDING, count(s.outbox_pending().await?));
    Ok(())
}

async fn refresh_issuer(s: &dyn IssuerStore, m: &Metrics) -> Result<(), StoreError> {
    let mut by_result: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut by_state: BTreeMap<&str, u64> = BTreeMap::new();
    for (status, code, n) in s.count_authorizations().await? {
        let key = match code {
            None => ("approved", ""),
            Some(c) => ("declined", c.as_str()),
        };
        *by_result.entry(key).or_default() += n;
        *by_state.entry(status.as_str()).or_default() += n;
    }
    m.set(
        metrics::AUTHORIZATIONS,
        by_result.into_iter().map(|((result, reason), n)| {
            (
                vec![label("result", result), label("reason", reason)],
                count(n),
            )
        }),
    );
    m.set(
        metrics::AUTHORIZATIONS_BY_STATE,
        by_state
            .into_iter()
            .map(|(state, n)| (vec![label("state", state)], count(n))),
    );
    Ok(())
}

async fn refresh_carrier(s: &dyn CarrierStore, m: &Metrics) -> Result<(), StoreError> {
    let by_status = s.count_shipments_by_status().await?;
    m.set(
        metrics::SHIPMENTS,
        by_status
            .into_iter()
            .map(|(status, n)| (vec![label("status", status.as_str())], count(n))),
    );
    m.set_one(metrics::PUSH_PENDING, count(s.pushes_pending().await?));
    Ok(())
}

/// One readiness check's result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// What was found (never a secret).
    pub detail: String,
}

impl Check {
    fn ok(detail: String) -> Check {
        Check { ok: true, detail }
    }
    fn failed(detail: impl Into<String>) -> Check {
        Check {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// The `/readyz` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` (HTTP 200) or `not_ready` (HTTP 503).
    pub status: String,
    /// The service: `merchant`, `issuer` or `carrier`.
    pub service: String,
    /// The party's identifier.
    pub party: String,
    /// Each check by name: `storage`, `keys`, `peers`.
    pub checks: BTreeMap<String, Check>,
    /// The names of the checks that failed.
    pub failing: Vec<String>,
}

/// The `/healthz` answer: the process is alive and serving.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The service: `merchant`, `issuer` or `carrier`.
    pub service: String,
    /// The party's identifier.
    pub party: String,
}

/// What the operations routes and the request middleware share.
struct OpsState {
    ops: Ops,
    metrics: Arc<Metrics>,
    guard: Arc<Guard>,
    document: OnceLock<Vec<u8>>,
}

/// Liveness: the process is alive and serving requests.
#[utoipa::path(
    get,
    path = "/healthz",
    responses((status = 200, description = "The process is alive", body = Health))
)]
async fn healthz(State(st): State<Arc<OpsState>>) -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        service: st.ops.service.to_owned(),
        party: st.guard.owner().to_string(),
    })
}

/// Readiness: storage reachable, keys loaded, peers listed in the key center's directory.
#[utoipa::path(
    get,
    path = "/readyz",
    responses(
        (status = 200, description = "Ready: every check passed", body = Readiness),
        (status = 503, description = "Not ready: `failing` names the failed checks", body = Readiness)
    )
)]
async fn readyz(State(st): State<Arc<OpsState>>) -> Response {
    let r = st.ops.readiness().await;
    let status = if r.failing.is_empty() {
        StatusCode::OK
    } else {
        tracing::warn!(failing = ?r.failing, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(r)).into_response()
}

/// Prometheus metrics (OpenMetrics text): request latency by route template and status, and
/// what the party holds (orders by state, authorizations by result, shipments by status).
#[utoipa::path(
    get,
    path = "/metrics",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String))
)]
async fn metrics_handler(State(st): State<Arc<OpsState>>) -> Response {
    let _scrape = st.metrics.lock_scrape().await;
    st.ops.refresh(&st.metrics, &st.guard).await;
    match st.metrics.encode() {
        Ok(text) => {
            let mut r = text.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            r
        }
        Err(e) => AppError::internal("encoding the metrics", &e).into_response(),
    }
}

/// This service's OpenAPI 3 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    responses((status = 200, description = "This OpenAPI document (JSON)"))
)]
async fn openapi_json(State(st): State<Arc<OpsState>>) -> Response {
    match st.document.get() {
        Some(doc) => json_bytes(StatusCode::OK, doc.clone()),
        None => AppError::internal("serving the API document", &"not built").into_response(),
    }
}

/// The router and OpenAPI document of a service: the handshake routes, its `public` routes,
/// its `authenticated` routes behind the session guard, the operations routes, and the
/// finishing layers. Every route comes from an [`OpenApiRouter`], so it is documented.
///
/// `pages` are the service's HTML pages (dashboards): they are served but are not part of
/// the API document.
pub fn build(
    guard: Arc<Guard>,
    public: OpenApiRouter,
    authenticated: OpenApiRouter,
    pages: Router,
    ops: Ops,
) -> (Router, utoipa::openapi::OpenApi) {
    let service = ops.service;
    guard.use_store(ops.store.clone());
    let (auth_router, mut auth_api) = authenticated.split_for_parts();
    openapi::require(&mut auth_api, openapi::SESSION);
    let auth_router = auth_router.route_layer(middleware::from_fn_with_state(
        guard.clone(),
        server::authenticate,
    ));
    let state = Arc::new(OpsState {
        ops,
        metrics: Arc::new(Metrics::new(service)),
        guard: guard.clone(),
        document: OnceLock::new(),
    });
    let ops_routes = OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_handler))
        .routes(routes!(openapi_json))
        .with_state(state.clone());
    let (router, mut api) = server::api_routes(guard.clone())
        .merge(public)
        .merge(ops_routes)
        .split_for_parts();
    api.merge(auth_api);
    let api = openapi::finish(service, api);
    match serde_json::to_vec(&api) {
        Ok(doc) => {
            let _ = state.document.set(doc);
        }
        Err(e) => tracing::error!(error = %e, "cannot encode the API document"),
    }
    let access = guard.operator().clone();
    let router = router
        .merge(auth_router)
        .merge(pages)
        .fallback(server::not_found)
        .method_not_allowed_fallback(server::method_not_allowed)
        .layer(middleware::from_fn(json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(move |req, next| {
            operator::attach(access.clone(), req, next)
        }))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), track));
    (router, api)
}

/// Middleware: an error answer in plain text (an extractor's rejection, such as a bad query
/// string) becomes `{code, message}` with the stable code of its status, like every other
/// error. HTML pages and signed session answers are left as they are.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    let signed = response.headers().contains_key("warifu-mac");
    if !(status.is_client_error() || status.is_server_error()) || !plain || signed {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Busy,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        s if s.is_client_error() => ErrorCode::MalformedRequest,
        _ => ErrorCode::Internal,
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned()
    } else {
        crate::error::redact_quoted(&text)
    };
    let mut answer = AppError::new(code, message).into_response();
    *answer.status_mut() = status;
    answer
}

/// [`build`]'s router alone.
pub fn assemble_with(
    guard: Arc<Guard>,
    public: OpenApiRouter,
    authenticated: OpenApiRouter,
    pages: Router,
    ops: Ops,
) -> Router {
    build(guard, public, authenticated, pages, ops).0
}

/// The longest `order_id` put into a log span.
const MAX_LOGGED_ID: usize = 64;

/// Middleware: a span per request carrying the service, method, route template and the
/// `order_id` path parameter when the route has one; the request's latency into the
/// service's histogram; a debug line per request.
async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| metrics::UNMATCHED.to_owned());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (mut parts, body) = req.into_parts();
    let order_id = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok()
        .and_then(|p| {
            p.iter()
                .find(|(k, _)| *k == "order_id")
                .map(|(_, v)| v.chars().take(MAX_LOGGED_ID).collect::<String>())
        });
    let req = Request::from_parts(parts, body);
    let span = tracing::info_span!(
        "request",
        service = m.service(),
        %method,
        route = %route,
        order_id = tracing::field::Empty,
    );
    if let Some(id) = &order_id {
        span.record("order_id", tracing::field::display(id));
    }
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    m.observe(method.as_str(), &route, status, elapsed);
    span.in_scope(|| {
        // `method`, `path` and `micros` are also read by `warifu bench`'s per-route timing.
        tracing::debug!(
            %method,
            %path,
            status,
            micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "request"
        );
    });
    response
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes in-flight requests
/// for at most [`DRAIN_TIME`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_drain(listener, app, shutdown, DRAIN_TIME).await
}

/// Serves `app` on `listener` until `shutdown` completes; then it accepts no new connection,
/// lets in-flight requests finish, and after `drain` drops those still running. Connections
/// are capped and timed out by the default [`Limits`], and use the process's TLS if set
/// ([`ServerTls::process_default`]).
pub async fn serve_with_drain(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    serve_limited(
        listener,
        app,
        shutdown,
        drain,
        Limits::default(),
        ServerTls::process_default(),
    )
    .await
}

/// Completes on SIGTERM or Ctrl-C (SIGINT), whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

/// A fresh random identifier: `prefix` followed by `bytes` random bytes in lowercase hex.
pub fn random_id(prefix: &str, bytes: usize) -> Result<String, AppError> {
    let mut buf = vec![0u8; bytes];
    OsRandom
        .fill(&mut buf)
        .map_err(|e| AppError::internal("drawing a random identifier", &e))?;
    let mut s = String::with_capacity(prefix.len() + 2 * bytes);
    s.push_str(prefix);
    for b in buf {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(s)
}

/// SHA-256 of the concatenation of `parts`, each prefixed by its length.
pub fn fingerprint(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().to_vec()
}

/// A response whose body is already-encoded JSON.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Encodes a value as a 200 JSON response body.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(value).map_err(|e| AppError::internal("encoding an answer", &e))
}

/// A storage failure as an answer (the detail goes to the log only).
pub fn store_error(context: &'static str) -> impl Fn(StoreError) -> AppError {
    move |e| AppError::internal(context, &e)
}

/// A failed call to a peer as this service's answer.
pub fn peer_error(e: ClientError) -> AppError {
    match &e {
        ClientError::Unavailable { peer, .. } => AppError::new(
            ErrorCode::PeerUnavailable,
            format!("{peer} cannot be reached; the order is kept and a retry resumes it"),
        ),
        ClientError::NotAuthentic { peer, .. } => AppError::new(
            ErrorCode::PeerNotAuthentic,
            format!("{peer} failed to prove its identity; nothing was sent to it"),
        ),
        ClientError::Refused {
            peer,
            code,
            message,
            verified,
            ..
        } => {
            // A peer's authenticated verdict on the order itself is passed on with its code.
            let relayed = ErrorCode::parse(code).filter(|c| {
                *verified
                    && matches!(
                        c,
                        ErrorCode::SealedPartInvalid
                            | ErrorCode::AmountMismatch
                            | ErrorCode::OrderInvalid
                            | ErrorCode::OrderConflict
                    )
            });
            AppError::new(
                relayed.unwrap_or(ErrorCode::PeerError),
                format!("{peer} refused: {code}: {message}"),
            )
        }
        ClientError::Protocol { peer, detail } => AppError::new(
            ErrorCode::PeerError,
            format!("{peer} answered unexpectedly: {detail}"),
        ),
        ClientError::Key { peer, .. } => AppError::new(
            ErrorCode::UnknownParty,
            format!("this party has no key for {peer}"),
        ),
    }
}
