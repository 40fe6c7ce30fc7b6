//! The merchant's webhooks to the shop's own backend: the delivery worker and the operator's
//! routes (endpoints, the delivery log, replay). docs/WEBHOOKS.md is the receiver's guide.
//!
//! Events are recorded by the store in the transaction of each order's state change
//! (`warifu_store::event_type` maps the changes to events); [`Deliverer`] claims due
//! deliveries (an order's events to one endpoint strictly in order: a later one waits until
//! the earlier one was acknowledged), POSTs the signed body, logs every attempt (status,
//! latency, error) and retries with exponential backoff and jitter until the retry window
//! (3 days by default) is over; then the delivery is `failed` until the operator replays it.
//! A retry or replay carries the same event id and body, with a fresh signature time.
//!
//! An endpoint's signing secret is never stored: it is `whsec_` and the base64url
//! HMAC-SHA256 under the merchant's secret self-pairing key (only the merchant's key file
//! derives it) of the endpoint id and a random salt kept in the database; rotating the secret
//! draws a new salt. Re-keying the merchant changes every endpoint's secret (rotate them).

use std::sync::Arc;
use std::time::{Duration, Instant};
use warifu_core::OrderId;

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::rand::Randomness as _;
use warifu_store::{
    AttemptOutcome, DeliveryFilter, DeliveryStatus, EndpointChange, StoreError, WebhookAttempt,
    WebhookDelivery, WebhookEndpoint, is_event_type,
};

use super::state::MerchantState;
use super::worker::backoff;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::service::store_error;
use crate::protocol::operator::{
    PATH_WEBHOOK_DELIVERIES, PATH_WEBHOOK_ENDPOINT, PATH_WEBHOOK_ENDPOINTS, PATH_WEBHOOK_REPLAY,
    WebhookAttemptView, WebhookDeliveryList, WebhookDeliveryView, WebhookEndpointChange,
    WebhookEndpointCreated, WebhookEndpointList, WebhookEndpointRequest, WebhookEndpointView,
    WebhookReplayAnswer, WebhookReplayRequest,
};
use crate::protocol::webhooks::{
    EVENT_ID_HEADER, EVENT_TYPE_HEADER, SECRET_PREFIX, SIGNATURE_HEADER, WebhookEventBody, sign,
};
use crate::session::operator::Operator;
use crate::session::server::JsonBody;

/// The label of the secret derivation (versioned).
pub const SECRET_LABEL: &[u8] = b"warifu/v1/webhook-secret";

/// How the deliverer paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOptions {
    /// How long to sleep when nothing is due.
    pub poll_interval: Duration,
    /// How long one attempt may take (connect, send, answer).
    pub timeout: Duration,
    /// How many deliveries to claim and send at once.
    pub batch: u32,
    /// The first retry delay; it doubles on each attempt…
    pub backoff_base: Duration,
    /// …up to this.
    pub backoff_max: Duration,
    /// How long after its first attempt a delivery is retried before it is `failed`.
    pub retry_for: Duration,
}

impl Default for WebhookOptions {
    fn default() -> WebhookOptions {
        WebhookOptions {
            poll_interval: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            batch: 32,
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
            retry_for: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

impl WebhookOptions {
    /// Short delays for tests and demos.
    pub fn fast() -> WebhookOptions {
        WebhookOptions {
            poll_interval: Duration::from_millis(20),
            timeout: Duration::from_millis(500),
            batch: 32,
            backoff_base: Duration::from_millis(30),
            backoff_max: Duration::from_millis(300),
            retry_for: Duration::from_secs(60),
        }
    }

    /// A claimed delivery is leased for longer than an attempt can take.
    fn lease(&self) -> Duration {
        self.timeout.saturating_mul(2) + Duration::from_secs(5)
    }
}

/// The signing secret of `endpoint_id` with `salt` (see the module documentation).
pub fn endpoint_secret(st: &MerchantState, endpoint_id: &str, salt: &[u8]) -> AppResult<String> {
    let key = st
        .keys
        .shared_secret(st.id())
        .map_err(|e| AppError::internal("deriving a webhook secret", &e))?;
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
        .map_err(|e| AppError::internal("deriving a webhook secret", &e))?;
    m.update(SECRET_LABEL);
    m.update(&[0]);
    m.update(endpoint_id.as_bytes());
    m.update(&[0]);
    m.update(salt);
    let tag = m.finalize().into_bytes();
    Ok(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..])
    ))
}

fn new_salt() -> AppResult<Vec<u8>> {
    let mut salt = vec![0u8; 32];
    warifu_core::rand::OsRandom
        .fill(&mut salt)
        .map_err(|e| AppError::internal("drawing a webhook salt", &e))?;
    Ok(salt)
}

// ------------------------------------------------------------------------------------------
// Delivery

/// A running deliverer; [`DelivererHandle::stop`] lets the attempts in hand finish.
#[derive(Debug)]
pub struct DelivererHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DelivererHandle {
    /// Stops claiming, waits for the attempts in hand, and returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the webhook deliverer task failed");
        }
    }
}

/// The merchant's webhook deliverer (one per replica; replicas share the work safely).
#[derive(Debug)]
pub struct Deliverer;

impl Deliverer {
    /// Starts delivering for `state` on the current tokio runtime.
    pub fn start(state: Arc<MerchantState>, opts: WebhookOptions) -> DelivererHandle {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run(state, opts, rx));
        DelivererHandle { stop: tx, task }
    }

    /// Claims the due deliveries once and sends them; returns how many.
    pub async fn tick(state: &Arc<MerchantState>, opts: &WebhookOptions) -> AppResult<usize> {
        tick(state, opts, &client(opts)?).await
    }
}

fn client(opts: &WebhookOptions) -> AppResult<reqwest::Client> {
    crate::http::tls::client(|b| {
        b.timeout(opts.timeout)
            .connect_timeout(opts.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("warifu-webhooks/", env!("CARGO_PKG_VERSION")))
    })
    .map_err(|e| AppError::internal("building the webhook client", &e))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn run(st: Arc<MerchantState>, opts: WebhookOptions, mut stop: watch::Receiver<bool>) {
    let http = match client(&opts) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the webhook deliverer cannot start");
            return;
        }
    };
    tracing::info!(merchant = %st.id(), "webhook deliverer started");
    loop {
        if *stop.borrow() {
            break;
        }
        let n = match tick(&st, &opts, &http).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "webhook deliverer: claiming failed");
                0
            }
        };
        if n >= opts.batch.max(1) as usize {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(opts.poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!(merchant = %st.id(), "webhook deliverer stopped");
}

async fn tick(
    st: &Arc<MerchantState>,
    opts: &WebhookOptions,
    http: &reqwest::Client,
) -> AppResult<usize> {
    let claimed = st
        .store
        .claim_webhooks(st.clock().now_ms(), ms(opts.lease()), opts.batch.max(1))
        .await
        .map_err(store_error("claiming webhook deliveries"))?;
    let n = claimed.len();
    let mut set = JoinSet::new();
    for d in claimed {
        let (st, opts, http) = (st.clone(), opts.clone(), http.clone());
        set.spawn(async move { attempt(&st, &opts, &http, d).await });
    }
    while let Some(r) = set.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "a webhook delivery task failed");
        }
    }
    Ok(n)
}

/// One attempt of one delivery: send, log, and decide what comes next.
async fn attempt(
    st: &MerchantState,
    opts: &WebhookOptions,
    http: &reqwest::Client,
    d: WebhookDelivery,
) {
    let at = st.clock().now_ms();
    let started = Instant::now();
    let result = send(st, http, &d).await;
    let latency_ms = ms(started.elapsed());
    let (http_status, error) = match result {
        Ok(s) if (200..300).contains(&s) => (Some(s), None),
        Ok(s) => (Some(s), Some(format!("HTTP {s}"))),
        Err(e) => (None, Some(e)),
    };
    let outcome = match &error {
        None => AttemptOutcome::Delivered,
        Some(_) => {
            let now = st.clock().now_ms();
            let first = d.first_attempt_at_ms.unwrap_or(at);
            if now.saturating_sub(first) >= ms(opts.retry_for) {
                AttemptOutcome::GiveUp
            } else {
                let delay = backoff(d.attempts, opts.backoff_base, opts.backoff_max);
                AttemptOutcome::Retry(now.saturating_add(ms(delay)))
            }
        }
    };
    let ev = &d.event;
    match (&outcome, &error) {
        (AttemptOutcome::Delivered, _) => tracing::info!(
            order_id = %ev.order_id, event_id = %ev.event_id, event = %ev.event_type,
            endpoint = %d.endpoint_id, latency_ms, "webhook delivered"
        ),
        (AttemptOutcome::GiveUp, Some(e)) => tracing::error!(
            order_id = %ev.order_id, event_id = %ev.event_id, endpoint = %d.endpoint_id,
            attempts = d.attempts, error = %e, "webhook failed after its retry window; replay it"
        ),
        (_, e) => tracing::warn!(
            order_id = %ev.order_id, event_id = %ev.event_id, endpoint = %d.endpoint_id,
            attempts = d.attempts, error = ?e, "webhook not acknowledged; kept for a retry"
        ),
    }
    let log = WebhookAttempt {
        delivery_id: d.delivery_id,
        attempt: d.attempts,
        at_ms: at,
        http_status,
        latency_ms,
        error,
    };
    if let Err(e) = st.store.record_webhook_attempt(&log, outcome).await {
        tracing::warn!(order_id = %ev.order_id, error = %e, "cannot record a webhook attempt; its lease will expire and it is sent again");
    }
}

/// POSTs the signed event; the endpoint's status, or why there is none (never the URL,
/// which may carry a credential).
async fn send(
    st: &MerchantState,
    http: &reqwest::Client,
    d: &WebhookDelivery,
) -> Result<u16, String> {
    let secret = endpoint_secret(st, &d.endpoint_id, &d.secret_salt).map_err(|e| e.message)?;
    let body = serde_json::to_vec(&WebhookEventBody::from(&d.event)).map_err(|e| e.to_string())?;
    let t = st.clock().now_ms() / 1000;
    let r = http
        .post(&d.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, sign(&secret, t, &body))
        .header(EVENT_ID_HEADER, &d.event.event_id)
        .header(EVENT_TYPE_HEADER, &d.event.event_type)
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = r.status().as_u16();
    // Drain (bounded by the client's timeout) so the connection can be reused.
    let _ = r.bytes().await;
    Ok(status)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else if e.is_redirect() {
        "redirected (not followed)".into()
    } else {
        let mut s = String::from("request failed");
        let mut src = std::error::Error::source(e);
        while let Some(x) = src {
            s = format!("{s}: {x}");
            src = x.source();
        }
        s.chars().take(200).collect()
    }
}

// ------------------------------------------------------------------------------------------
// The operator's routes

/// The operator's webhook routes.
pub(super) fn routes() -> OpenApiRouter<Arc<MerchantState>> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, add_endpoint))
        .routes(routes!(change_endpoint))
        .routes(routes!(deliveries))
        .routes(routes!(replay))
}

fn view(e: WebhookEndpoint) -> WebhookEndpointView {
    WebhookEndpointView {
        endpoint_id: e.endpoint_id,
        url: e.url,
        events: e.events,
        enabled: e.enabled,
        created_at_ms: e.created_at_ms,
        updated_at_ms: e.updated_at_ms,
    }
}

fn malformed(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::MalformedRequest, message)
}

fn check_url(url: &str) -> AppResult<()> {
    let u = reqwest::Url::parse(url).map_err(|_| malformed("the webhook URL does not parse"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() || url.len() > 2048 {
        return Err(malformed(
            "a webhook URL is an http:// or https:// URL with a host (at most 2048 bytes)",
        ));
    }
    Ok(())
}

fn check_events(events: &[String]) -> AppResult<()> {
    match events.iter().find(|e| !is_event_type(e)) {
        Some(bad) => Err(malformed(format!(
            "unknown event type {bad:?}; known: {}",
            warifu_store::EVENT_TYPES.join(", ")
        ))),
        None => Ok(()),
    }
}

async fn endpoint(st: &MerchantState, id: &str) -> AppResult<WebhookEndpoint> {
    st.store
        .webhook_endpoints()
        .await
        .map_err(store_error("reading webhook endpoints"))?
        .into_iter()
        .find(|e| e.endpoint_id == id)
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::UnknownWebhookEndpoint,
                "no webhook endpoint with this id",
            )
        })
}

#[utoipa::path(get, path = PATH_WEBHOOK_ENDPOINTS, responses((status = 200, description = "The webhook endpoints (never their secrets)", body = WebhookEndpointList)))]
async fn list_endpoints(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
) -> AppResult<Json<WebhookEndpointList>> {
    let endpoints = st
        .store
        .webhook_endpoints()
        .await
        .map_err(store_error("reading webhook endpoints"))?;
    Ok(Json(WebhookEndpointList {
        endpoints: endpoints.into_iter().map(view).collect(),
    }))
}

/// Adds an endpoint of the shop's backend; the answer carries its signing secret, once.
#[utoipa::path(post, path = PATH_WEBHOOK_ENDPOINTS, request_body = WebhookEndpointRequest, responses((status = 200, description = "The endpoint and its signing secret (shown only now)", body = WebhookEndpointCreated)))]
async fn add_endpoint(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    JsonBody(req): JsonBody<WebhookEndpointRequest>,
) -> AppResult<Json<WebhookEndpointCreated>> {
    let id_ok = (1..=64).contains(&req.endpoint_id.len())
        && req
            .endpoint_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(malformed(
            "an endpoint id is 1–64 characters of a–z, 0–9, '-' and '_'",
        ));
    }
    check_url(&req.url)?;
    check_events(&req.events)?;
    let now = st.clock().now_ms();
    let e = WebhookEndpoint {
        endpoint_id: req.endpoint_id,
        url: req.url,
        events: req.events,
        secret_salt: new_salt()?,
        enabled: true,
        created_at_ms: now,
        updated_at_ms: now,
    };
    match st.store.add_webhook_endpoint(&e).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(AppError::new(
                ErrorCode::AlreadyExists,
                "a webhook endpoint with this id exists",
            ));
        }
        Err(e) => return Err(store_error("adding a webhook endpoint")(e)),
    }
    tracing::info!(endpoint = %e.endpoint_id, "webhook endpoint added");
    let secret = endpoint_secret(&st, &e.endpoint_id, &e.secret_salt)?;
    Ok(Json(WebhookEndpointCreated {
        endpoint: view(e),
        secret: Some(secret),
    }))
}

/// Changes an endpoint: URL, event types, enabled, or a new secret (answered once).
#[utoipa::path(post, path = PATH_WEBHOOK_ENDPOINT, request_body = WebhookEndpointChange, responses((status = 200, description = "The endpoint (and its new secret if rotated)", body = WebhookEndpointCreated)))]
async fn change_endpoint(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    Path(endpoint_id): Path<String>,
    JsonBody(req): JsonBody<WebhookEndpointChange>,
) -> AppResult<Json<WebhookEndpointCreated>> {
    if let Some(u) = &req.url {
        check_url(u)?;
    }
    check_events(req.events.as_deref().unwrap_or_default())?;
    let salt = if req.rotate_secret {
        Some(new_salt()?)
    } else {
        None
    };
    let change = EndpointChange {
        url: req.url,
        events: req.events,
        enabled: req.enabled,
        secret_salt: salt.clone(),
    };
    let found = st
        .store
        .change_webhook_endpoint(&endpoint_id, &change, st.clock().now_ms())
        .await
        .map_err(store_error("changing a webhook endpoint"))?;
    if !found {
        return Err(AppError::new(
            ErrorCode::UnknownWebhookEndpoint,
            "no webhook endpoint with this id",
        ));
    }
    tracing::info!(endpoint = %endpoint_id, rotated = req.rotate_secret, "webhook endpoint changed");
    let e = endpoint(&st, &endpoint_id).await?;
    let secret = match salt {
        Some(s) => Some(endpoint_secret(&st, &endpoint_id, &s)?),
        None => None,
    };
    Ok(Json(WebhookEndpointCreated {
        endpoint: view(e),
        secret,
    }))
}

/// `?order_id=&endpoint_id=&event_id=&status=&limit=&offset=` of the delivery log.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    order_id: Option<OrderId>,
    endpoint_id: Option<String>,
    event_id: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[utoipa::path(get, path = PATH_WEBHOOK_DELIVERIES, params(
        ("order_id" = Option<String>, Query, description = "Only this order's"),
        ("endpoint_id" = Option<String>, Query, description = "Only to this endpoint"),
        ("event_id" = Option<String>, Query, description = "Only this event's"),
        ("status" = Option<String>, Query, description = "pending, delivered or failed"),
        ("limit" = Option<u32>, Query, description = "At most this many (default 100)"),
        ("offset" = Option<u32>, Query, description = "Skip this many")
    ), responses((status = 200, description = "The delivery log, newest first, each with its attempts (status, latency, error)", body = WebhookDeliveryList)))]
async fn deliveries(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    Query(q): Query<DeliveryQuery>,
) -> AppResult<Json<WebhookDeliveryList>> {
    let status = match q.status.as_deref() {
        Some(s) => Some(
            DeliveryStatus::parse(s)
                .ok_or_else(|| malformed("a delivery status is pending, delivered or failed"))?,
        ),
        None => None,
    };
    let filter = DeliveryFilter {
        order_id: q.order_id,
        endpoint_id: q.endpoint_id,
        status,
        event_id: q.event_id,
        limit: Some(q.limit.unwrap_or(100).min(1000)),
        offset: q.offset,
    };
    let store = &st.store;
    let list = store
        .webhook_deliveries(&filter)
        .await
        .map_err(store_error("listing webhook deliveries"))?;
    let mut out = Vec::with_capacity(list.len());
    for d in list {
        let log = store
            .webhook_attempts(d.delivery_id)
            .await
            .map_err(store_error("reading webhook attempts"))?;
        out.push(WebhookDeliveryView {
            delivery_id: d.delivery_id,
            event_id: d.event.event_id,
            event_type: d.event.event_type,
            order_id: d.event.order_id,
            endpoint_id: d.endpoint_id,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at_ms: d.next_attempt_at_ms,
            last_status: d.last_status,
            last_error: d.last_error,
            delivered_at_ms: d.delivered_at_ms,
            created_at_ms: d.event.created_at_ms,
            log: log
                .into_iter()
                .map(|a| WebhookAttemptView {
                    attempt: a.attempt,
                    at_ms: a.at_ms,
                    http_status: a.http_status,
                    latency_ms: a.latency_ms,
                    error: a.error,
                })
                .collect(),
        });
    }
    let counts = store
        .count_webhooks_by_status()
        .await
        .map_err(store_error("counting webhook deliveries"))?;
    let count = |s| {
        counts
            .iter()
            .find(|(k, _)| *k == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    Ok(Json(WebhookDeliveryList {
        deliveries: out,
        pending: count(DeliveryStatus::Pending),
        failed: count(DeliveryStatus::Failed),
    }))
}

/// Sends deliveries again: one event's (whatever their status), or every failed one that
/// matches; each with a fresh retry window and the same event id.
#[utoipa::path(post, path = PATH_WEBHOOK_REPLAY, request_body = WebhookReplayRequest, responses((status = 200, description = "How many deliveries were queued again", body = WebhookReplayAnswer)))]
async fn replay(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    JsonBody(req): JsonBody<WebhookReplayRequest>,
) -> AppResult<Json<WebhookReplayAnswer>> {
    if let Some(id) = &req.endpoint_id {
        endpoint(&st, id).await?;
    }
    let filter = DeliveryFilter {
        order_id: req.order_id,
        endpoint_id: req.endpoint_id,
        event_id: req.event_id,
        ..DeliveryFilter::default()
    };
    let replayed = st
        .store
        .replay_webhooks(&filter, st.clock().now_ms())
        .await
        .map_err(store_error("replaying webhooks"))?;
    tracing::info!(replayed, "webhook deliveries replayed");
    Ok(Json(WebhookReplayAnswer { replayed }))
}
