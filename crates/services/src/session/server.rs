//! The responder side of mutual confirmation (claim 5) over HTTP, stateless across replicas
//! (PROTOCOL.md §12.5): the handshake endpoints, the middleware that verifies every request
//! of a session and seals and signs every response, the limits on key derivations for
//! unknown identities, and the replay records.
//!
//! The cryptography is `warifu_core::session`; this module only carries it. The responder
//! keeps nothing per handshake: its challenge's `nonce_r` is a cookie it checks when message
//! 3 comes back carrying the Hello ([`Responder::confirm`]). It keeps nothing per session
//! either: the session is a ticket (the session keys sealed under the party's ticket key) that
//! the initiator carries as its `Warifu-Session` header. Every replica holding the party's key
//! derives the same cookie and ticket keys, so any replica answers any message.
//!
//! A request in a session carries the headers `Warifu-Session` (the ticket), `Warifu-Seq`,
//! `Warifu-Time` and `Warifu-Mac` (MAC over session, sequence, time, method, path with query
//! and the body's digest); the response carries the same headers with a MAC over the
//! request's MAC, the status and the body, so a response cannot be replayed onto another
//! request. A request is accepted once: its (session, seq) is recorded before the handler
//! runs, in the party's database when its replicas share one (PostgreSQL), else in this
//! process ([`ReplayMode`]).
//!
//! Every body in a session, request and response, empty or not, is a sealed record
//! (`application/vnd.warifu.sealed`, PROTOCOL.md §12.4): the middleware opens the request's
//! record before the handler runs (handlers see the plain JSON) and seals the handler's answer,
//! so nothing of a session's content crosses the wire in clear. Errors raised before a
//! request is verified (unknown session, bad MAC, replay, stale, too large, not sealed) are
//! neither sealed nor signed: they carry no order data, and the client treats them as
//! failures, never as answers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::keysource::KeySource;
use warifu_core::rand::{OsRandom, Randomness};
use warifu_core::revocation::Revocations;
use warifu_core::secret::Key32;
use warifu_core::session::{
    Challenge, Hello, HelloConfirm, MessageAuth, RECORD_NONCE_LEN, RECORD_OVERHEAD, ReplayWindow,
    Responder, SEALED_CONTENT_TYPE, Session, TIME_WINDOW, check_hello,
};
use warifu_core::{Error as CoreError, PartyId};
use warifu_store::{Backend, PartyStore};

use super::headers::{read_auth, write_auth};
use super::operator::OperatorAccess;
use crate::MAX_BODY;
use crate::clock::Clock;
use crate::error::{AppError, AppResult, ErrorCode, redact_quoted};
use crate::protocol::handshake::{PATH_CONFIRM, PATH_HELLO, SessionEstablished};

/// The longest path (with query) accepted on an authenticated request.
pub const MAX_PATH: usize = 2048;

/// Where a party's replicas record the requests they accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplayMode {
    /// The database when it is PostgreSQL (replicas share it), else this process.
    #[default]
    Auto,
    /// This process only: exact for one replica (a session whose records were dropped, or
    /// that this process never saw, is told to handshake again unless its request is newer
    /// than anything dropped).
    Memory,
    /// The party's database (table `session_seen`): exact across replicas.
    Database,
}

/// A token bucket's sustained rate (per second) and burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// The most tokens held (the burst allowed after a quiet time).
    pub burst: f64,
}

/// The responder's bounds: key derivations for identities it has not seen prove themselves,
/// what it remembers, and where replay records go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardLimits {
    /// Key derivations for unknown identities, per source address.
    pub unknown_per_source: Rate,
    /// Key derivations for unknown identities, in all.
    pub unknown_global: Rate,
    /// Identities remembered as proven (a confirmed handshake): their hellos are never
    /// rate-limited.
    pub known_peers: usize,
    /// Sessions whose replay windows this process keeps (memory mode).
    pub max_sessions: usize,
    /// Where accepted requests are recorded.
    pub replay: ReplayMode,
}

static PROCESS_LIMITS: OnceLock<GuardLimits> = OnceLock::new();

impl GuardLimits {
    /// The built-in defaults: 20 derivations per second per source (burst 40), 500 per
    /// second in all (burst 1000), 65,536 known peers and sessions, replay records by
    /// [`ReplayMode::Auto`].
    pub const BUILTIN: GuardLimits = GuardLimits {
        unknown_per_source: Rate {
            per_second: 20.0,
            burst: 40.0,
        },
        unknown_global: Rate {
            per_second: 500.0,
            burst: 1000.0,
        },
        known_peers: 65_536,
        max_sessions: 65_536,
        replay: ReplayMode::Auto,
    };

    /// Sets the limits every guard of this process takes by default (a service's flags); the
    /// first call wins. Returns whether it was set.
    pub fn set_process_default(limits: GuardLimits) -> bool {
        PROCESS_LIMITS.set(limits).is_ok()
    }
}

impl Default for GuardLimits {
    /// The process's limits if [`GuardLimits::set_process_default`] set them, else
    /// [`GuardLimits::BUILTIN`].
    fn default() -> GuardLimits {
        PROCESS_LIMITS
            .get()
            .copied()
            .unwrap_or(GuardLimits::BUILTIN)
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let gained = now.duration_since(self.at).as_secs_f64() * rate.per_second;
        self.tokens = (self.tokens + gained).min(rate.burst);
        self.at = now;
    }

    /// Takes a token, or says in how many seconds one will be there.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), u64> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / rate.per_second.max(1e-3);
        Err(wait.ceil().max(1.0) as u64)
    }
}

/// How many source addresses the per-source limit tracks at most.
const MAX_SOURCES: usize = 65_536;

/// The limits on key derivations for identities not yet proven here.
#[derive(Debug)]
struct Derivations {
    global: Mutex<Bucket>,
    sources: Mutex<HashMap<IpAddr, Bucket>>,
    known: Mutex<HashMap<PartyId, ()>>,
}

/// The replay windows of memory mode: a session unknown here is accepted only if it started,
/// or its request was sent, after `floor` (this process's start, then the newest request of
/// any window dropped), so a dropped window never reopens an old request.
#[derive(Debug)]
struct Windows {
    map: HashMap<String, (ReplayWindow, u64, u64)>,
    floor: u64,
}

enum Verdict {
    Fresh,
    Replayed,
    Unknown,
}

/// A party's responder: its keys, its stateless [`Responder`], the derivation limits and
/// the replay records.
pub struct Guard {
    keys: Arc<dyn KeySource>,
    responder: Responder,
    limits: Mutex<GuardLimits>,
    derivations: Derivations,
    windows: Mutex<Windows>,
    store: OnceLock<Arc<dyn PartyStore>>,
    last_purge: AtomicU64,
    operator: Arc<OperatorAccess>,
    revocations: OnceLock<Revocations>,
    clock: Clock,
}

impl core::fmt::Debug for Guard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Guard {{ owner: {}, keys: <redacted> }}",
            self.keys.owner()
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Guard {
    /// A guard for the holder of `keys`. Its cookie and ticket keys come from the key
    /// ([`Responder::new`]); a key that cannot serve its own identifier (a predistributed
    /// table) gets random ones, valid at this process only (one replica).
    pub fn new(keys: Arc<dyn KeySource>, limits: GuardLimits) -> Guard {
        let responder = Responder::new(keys.as_ref()).unwrap_or_else(|e| {
            tracing::warn!(
                error = %e,
                "this key cannot derive the responder secret: cookies and tickets are valid at this process only"
            );
            let mut secret = [0u8; 32];
            let drawn = OsRandom.fill(&mut secret);
            if drawn.is_err() {
                tracing::error!("the random source failed: every handshake will fail");
            }
            Responder::from_secret(keys.owner().clone(), &Key32::from_bytes(secret))
                .unwrap_or_else(|_| unreachable!("HKDF-Expand of 32 bytes cannot fail"))
        });
        let clock = Clock::system();
        let now = clock.now_unix();
        Guard {
            derivations: Derivations {
                global: Mutex::new(Bucket::full(limits.unknown_global)),
                sources: Mutex::new(HashMap::new()),
                known: Mutex::new(HashMap::new()),
            },
            windows: Mutex::new(Windows {
                map: HashMap::new(),
                floor: now.saturating_sub(1),
            }),
            keys,
            responder,
            limits: Mutex::new(limits),
            store: OnceLock::new(),
            last_purge: AtomicU64::new(now),
            operator: Arc::default(),
            revocations: OnceLock::new(),
            clock,
        }
    }

    /// The guard reading `clock` (sessions' expiry, messages' freshness, replay windows)
    /// instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Guard {
        let now = clock.now_unix();
        self.windows
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .floor = now.saturating_sub(1);
        self.last_purge = AtomicU64::new(now);
        self.clock = clock;
        self
    }

    /// The clock this party reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// How this service admits its operators (disabled until set).
    pub fn operator(&self) -> &Arc<OperatorAccess> {
        &self.operator
    }

    /// This party's identifier.
    pub fn owner(&self) -> &PartyId {
        self.keys.owner()
    }

    /// Replaces the limits (a service's flags, or a test).
    pub fn set_limits(&self, limits: GuardLimits) {
        *lock(&self.limits) = limits;
    }

    /// The party's store, where replay records go in [`ReplayMode::Database`] (and
    /// [`ReplayMode::Auto`] on PostgreSQL). Set once, when the service's router is built.
    pub fn use_store(&self, store: Arc<dyn PartyStore>) {
        let _ = self.store.set(store);
    }

    /// The revocations this party holds: a session whose peer is revoked is refused at its
    /// next request (`identity_revoked`), even though its ticket was issued before. Set once,
    /// with the key source wrapped in `Revocable` over the same list (which refuses new
    /// handshakes).
    pub fn use_revocations(&self, revocations: Revocations) {
        let _ = self.revocations.set(revocations);
    }

    /// The store replay records go to, if they go to one.
    fn replay_store(&self) -> Option<&Arc<dyn PartyStore>> {
        let store = self.store.get()?;
        match lock(&self.limits).replay {
            ReplayMode::Memory => None,
            ReplayMode::Database => Some(store),
            ReplayMode::Auto => (store.backend() == Backend::Postgres).then_some(store),
        }
    }

    /// How many sessions this process keeps replay windows of, and pending handshakes (none:
    /// the responder is stateless).
    pub fn counts(&self) -> (usize, usize) {
        (lock(&self.windows).map.len(), 0)
    }

    /// Whether a key derivation for `peer` from `source` may run now: always for an identity
    /// proven here before; otherwise one token of its source's bucket and of the global one.
    fn may_derive(&self, peer: &PartyId, source: Option<IpAddr>) -> AppResult<()> {
        if lock(&self.derivations.known).contains_key(peer) {
            return Ok(());
        }
        let limits = *lock(&self.limits);
        let now = Instant::now();
        if let Some(ip) = source {
            let mut sources = lock(&self.derivations.sources);
            if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
                // Forget the sources whose buckets are full again: they carry no history.
                sources.retain(|_, b| {
                    b.refill(limits.unknown_per_source, now);
                    b.tokens < limits.unknown_per_source.burst
                });
            }
            if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
                return Err(rate_limited(1));
            }
            sources
                .entry(ip)
                .or_insert_with(|| Bucket::full(limits.unknown_per_source))
                .take(limits.unknown_per_source, now)
                .map_err(rate_limited)?;
        }
        lock(&self.derivations.global)
            .take(limits.unknown_global, now)
            .map_err(rate_limited)
    }

    fn remember(&self, peer: &PartyId) {
        let cap = lock(&self.limits).known_peers;
        let mut known = lock(&self.derivations.known);
        if known.len() >= cap && !known.contains_key(peer) {
            // Proven identities are few and come back; start over rather than scan.
            known.clear();
        }
        known.insert(peer.clone(), ());
    }

    /// Answers message 1 with message 2 (from `source`, for the derivation limits).
    pub fn hello(&self, hello: &Hello, source: Option<IpAddr>) -> AppResult<Challenge> {
        let now = self.clock.now_unix();
        check_hello(hello, self.owner(), now).map_err(handshake_error)?;
        self.may_derive(&hello.initiator, source)?;
        self.responder
            .challenge(self.keys.as_ref(), hello, now)
            .map_err(handshake_error)
    }

    /// Checks message 3; on success the session is established and its ticket handed out.
    pub fn confirm(&self, msg: &HelloConfirm) -> AppResult<SessionEstablished> {
        let initiator = msg.hello.initiator.clone();
        let session = self
            .responder
            .confirm(self.keys.as_ref(), msg, self.clock.now_unix())
            .map_err(|e| {
                tracing::warn!(peer = %initiator, "handshake confirmation refused");
                handshake_error(e)
            })?;
        let mut nonce = [0u8; RECORD_NONCE_LEN];
        OsRandom
            .fill(&mut nonce)
            .map_err(|e| AppError::internal("drawing a ticket nonce", &e))?;
        let ticket = self
            .responder
            .ticket(&session, &nonce)
            .map_err(|e| AppError::internal("sealing a ticket", &e))?;
        self.remember(&initiator);
        tracing::info!(peer = %initiator, session = %session.key_id(), "session established");
        Ok(SessionEstablished {
            session: session.key_id().to_owned(),
            expires_at: session.expires_at(),
            ticket,
        })
    }

    /// Records that request `auth` of `session` was accepted; whether it is fresh.
    async fn record(&self, session: &Session, auth: &MessageAuth) -> AppResult<Verdict> {
        let now = self.clock.now_unix();
        if let Some(store) = self.replay_store() {
            let until = auth.time.saturating_add(TIME_WINDOW + 1);
            let first = store
                .session_seen(session.key_id(), auth.seq, until)
                .await
                .map_err(|e| AppError::internal("recording a session request", &e))?;
            self.purge_now_and_then(store, now);
            return Ok(if first {
                Verdict::Fresh
            } else {
                Verdict::Replayed
            });
        }
        let max = lock(&self.limits).max_sessions.max(1);
        let mut w = lock(&self.windows);
        if let Some((window, newest, _)) = w.map.get_mut(session.key_id()) {
            *newest = (*newest).max(auth.time);
            return Ok(if window.accept(auth.seq) {
                Verdict::Fresh
            } else {
                Verdict::Replayed
            });
        }
        let started = session
            .expires_at()
            .saturating_sub(warifu_core::session::SESSION_LIFETIME);
        if started <= w.floor && auth.time <= w.floor {
            return Ok(Verdict::Unknown);
        }
        if w.map.len() >= max {
            w.map.retain(|_, (_, _, expires)| *expires >= now);
        }
        if w.map.len() >= max
            && let Some((victim, newest)) = w
                .map
                .iter()
                .min_by_key(|(_, (_, newest, _))| *newest)
                .map(|(k, (_, newest, _))| (k.clone(), *newest))
        {
            w.map.remove(&victim);
            w.floor = w.floor.max(newest);
        }
        let mut window = ReplayWindow::default();
        let fresh = window.accept(auth.seq);
        w.map.insert(
            session.key_id().to_owned(),
            (window, auth.time, session.expires_at()),
        );
        Ok(if fresh {
            Verdict::Fresh
        } else {
            Verdict::Replayed
        })
    }

    /// Deletes closed replay records at most once a minute, in the background.
    fn purge_now_and_then(&self, store: &Arc<dyn PartyStore>, now: u64) {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now < last.saturating_add(60)
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.session_seen_purge(now).await {
                tracing::warn!(error = %e, "purging replay records failed");
            }
        });
    }
}

fn rate_limited(retry_after: u64) -> AppError {
    AppError::new(
        ErrorCode::RateLimited,
        format!(
            "too many handshakes from identities this party does not know yet; retry in {retry_after} s"
        ),
    )
}

/// The authenticated identity of the peer of the current request (set by [`authenticate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer(pub PartyId);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, AppError> {
        parts.extensions.get::<Peer>().cloned().ok_or_else(|| {
            AppError::new(
                ErrorCode::AuthenticationRequired,
                "this endpoint needs an authenticated session",
            )
        })
    }
}

fn handshake_error(e: CoreError) -> AppError {
    match e {
        CoreError::UnsupportedVersion { .. } => {
            AppError::new(ErrorCode::MalformedRequest, e.to_string())
        }
        CoreError::HeaderMismatch(m) => AppError::new(ErrorCode::NotAddressedHere, m),
        CoreError::Stale => AppError::new(ErrorCode::StaleMessage, e.to_string()),
        CoreError::Revoked(id) => AppError::revoked(&id),
        CoreError::NoPairwiseKey { .. } | CoreError::InvalidIdentifier(_) => {
            AppError::new(ErrorCode::UnknownParty, e.to_string())
        }
        CoreError::Decrypt => AppError::new(
            ErrorCode::AuthenticationFailed,
            "the handshake proof does not verify: the initiator does not hold the key of the identifier it claims",
        ),
        other => AppError::internal("answering a handshake", &other),
    }
}

/// The handshake routes (`POST /v1/handshake/hello`, `POST /v1/handshake/confirm`).
pub fn routes(guard: Arc<Guard>) -> Router {
    api_routes(guard).into()
}

/// The handshake routes with their OpenAPI documentation.
pub fn api_routes(guard: Arc<Guard>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(hello))
        .routes(routes!(confirm))
        .with_state(guard)
}

/// Handshake message 1 → message 2 (mutual confirmation, claim 5).
#[utoipa::path(
    post,
    path = PATH_HELLO,
    request_body = crate::protocol::schema::Hello,
    responses((status = 200, description = "Message 2: the responder's challenge", body = crate::protocol::schema::Challenge))
)]
async fn hello(
    State(g): State<Arc<Guard>>,
    Source(source): Source,
    JsonBody(h): JsonBody<Hello>,
) -> Response {
    match g.hello(&h, source) {
        Ok(c) => Json(c).into_response(),
        Err(e) if e.code == ErrorCode::RateLimited => {
            let mut r = e.into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Err(e) => e.into_response(),
    }
}

/// The client's address, when the listener recorded it.
struct Source(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Source, AppError> {
        Ok(Source(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Handshake message 3: on success the session is live.
#[utoipa::path(
    post,
    path = PATH_CONFIRM,
    request_body = crate::protocol::schema::Confirm,
    responses((status = 200, description = "The session is established: its ticket", body = SessionEstablished))
)]
async fn confirm(
    State(g): State<Arc<Guard>>,
    JsonBody(c): JsonBody<ConfirmBody>,
) -> AppResult<Json<SessionEstablished>> {
    match c {
        ConfirmBody::Stateless(c) => g.confirm(&c).map(Json),
        ConfirmBody::Bare(_) => Err(AppError::new(
            ErrorCode::AuthenticationFailed,
            "no handshake is waiting for this confirmation: this responder keeps none, message 3 carries its hello (PROTOCOL.md §12.5)",
        )),
    }
}

/// Message 3 as sent: with its Hello (§12.5), or bare as before revision 6.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ConfirmBody {
    Stateless(HelloConfirm),
    Bare(#[allow(dead_code, reason = "only its shape is checked")] warifu_core::session::Confirm),
}

/// Middleware: verifies the request's session MAC and opens its record, sets [`Peer`], runs
/// the handler and seals and signs its response. Mount it on every route that handles sealed
/// data.
pub async fn authenticate(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    match verify(&guard, req).await {
        Ok((req, auth, session)) => {
            let response = next.run(req).await;
            sign(response, &auth, &session, guard.clock.now_unix()).await
        }
        Err(e) => e.into_response(),
    }
}

fn session_unknown() -> AppError {
    AppError::new(
        ErrorCode::SessionUnknown,
        "unknown or expired session: run the handshake again",
    )
}

async fn verify(guard: &Guard, req: Request) -> AppResult<(Request, MessageAuth, Session)> {
    let (mut parts, body) = req.into_parts();
    let auth = read_auth(&parts.headers)?;
    let Ok(mut session) = guard
        .responder
        .resume(&auth.session, guard.clock.now_unix())
    else {
        return Err(session_unknown());
    };
    if let Some(revocations) = guard.revocations.get()
        && let Err(CoreError::Revoked(id)) = revocations.check(session.peer())
    {
        tracing::warn!(peer = %id, "request in a session of a revoked identity refused");
        return Err(AppError::revoked(&id));
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if path.len() > MAX_PATH {
        return Err(AppError::new(ErrorCode::MalformedRequest, "path too long"));
    }
    if !is_sealed(&parts.headers) {
        return Err(AppError::new(
            ErrorCode::MalformedRequest,
            format!(
                "a request in a session carries its body as a sealed record ({SEALED_CONTENT_TYPE}), even an empty one"
            ),
        ));
    }
    let record = to_bytes(body, MAX_BODY + RECORD_OVERHEAD)
        .await
        .map_err(|_| too_large())?;
    let replayed = || {
        AppError::new(
            ErrorCode::Replay,
            "this message was already received (replayed)",
        )
    };
    let body = session
        .open_request(
            &auth,
            parts.method.as_str(),
            path,
            &record,
            guard.clock.now_unix(),
        )
        .map_err(|e| match e {
            CoreError::Replay => replayed(),
            CoreError::Stale => AppError::new(ErrorCode::StaleMessage, e.to_string()),
            _ => AppError::new(
                ErrorCode::AuthenticationFailed,
                "the message MAC or its sealed record does not verify",
            ),
        })?;
    // Only an authentic request reaches the replay records.
    match guard.record(&session, &auth).await? {
        Verdict::Fresh => {}
        Verdict::Replayed => return Err(replayed()),
        Verdict::Unknown => return Err(session_unknown()),
    }
    // The handler sees the plain body, as JSON (the only body a session request carries).
    if body.is_empty() {
        parts.headers.remove(header::CONTENT_TYPE);
    } else {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut().insert(Peer(session.peer().clone()));
    Ok((req, auth, session))
}

fn is_sealed(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(SEALED_CONTENT_TYPE))
        })
}

async fn sign(response: Response, auth: &MessageAuth, session: &Session, now: u64) -> Response {
    let (mut parts, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return AppError::internal("buffering a response", &e).into_response(),
    };
    let sealed = session.seal_response(auth, parts.status.as_u16(), &body, now, &mut OsRandom);
    let (signed, record) = match sealed {
        Ok(s) => s,
        Err(e) => return AppError::internal("sealing a response", &e).into_response(),
    };
    write_auth(&mut parts.headers, &signed);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SEALED_CONTENT_TYPE),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    Response::from_parts(parts, Body::from(record))
}

/// Reads a body of at most [`MAX_BODY`] bytes.
pub async fn read_limited(body: Body) -> AppResult<Bytes> {
    to_bytes(body, MAX_BODY).await.map_err(|_| too_large())
}

fn too_large() -> AppError {
    AppError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body exceeds {} KiB", MAX_BODY / 1024),
    )
}

/// A JSON body whose rejections are [`AppError`]s with stable codes and no echoed values.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody<T>, AppError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    return Err(too_large());
                }
                Err(AppError::new(
                    ErrorCode::MalformedRequest,
                    redact_quoted(&rejection.body_text()),
                ))
            }
        }
    }
}

/// The fallback for unknown routes.
pub async fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "no such endpoint")
}

/// The fallback for a known route with the wrong method.
pub async fn method_not_allowed() -> AppError {
    AppError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take this method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use warifu_core::blom::Master;
    use warifu_core::rand::SeededRandom;
    use warifu_core::session::Initiator;

    fn limits(per_source: f64, global: f64) -> GuardLimits {
        GuardLimits {
            unknown_per_source: Rate {
                per_second: per_source,
                burst: per_source,
            },
            unknown_global: Rate {
                per_second: global,
                burst: global,
            },
            ..GuardLimits::BUILTIN
        }
    }

    #[test]
    fn unknown_identities_are_rate_limited_and_proven_ones_are_not() {
        let master = Master::generate(4, &mut SeededRandom::new(b"guard")).expect("master");
        let id = |s: &str| PartyId::parse(s).expect("id");
        let merchant = Arc::new(master.personal_key(&id("merchant:m")));
        let guard = Guard::new(merchant.clone(), limits(2.0, 3.0));
        let alice = master.personal_key(&id("cardholder:a"));
        let flood: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let mut rng = SeededRandom::new(b"hellos");
        let mut hello_from = |who: &str, source| {
            let key = master.personal_key(&id(who));
            let (_, hello) =
                Initiator::start(&key, merchant.owner(), Clock::system().now_unix(), &mut rng)
                    .expect("start");
            guard.hello(&hello, Some(source)).map(|_| ())
        };
        // Two per source, then 429; another source gets the global bucket's last token.
        assert!(hello_from("cardholder:x1", flood).is_ok());
        assert!(hello_from("cardholder:x2", flood).is_ok());
        let refused = hello_from("cardholder:x3", flood).expect_err("limited");
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(hello_from("cardholder:y1", other).is_ok());
        assert_eq!(
            hello_from("cardholder:y2", other).expect_err("global").code,
            ErrorCode::RateLimited
        );
        // A proven identity is never limited: alice confirms once (through a fresh guard's
        // budget), then hellos freely from the exhausted source.
        let fresh = Guard::new(merchant.clone(), limits(1.0, 1.0));
        let (init, hello) = Initiator::start(
            &alice,
            merchant.owner(),
            Clock::system().now_unix(),
            &mut SeededRandom::new(b"a"),
        )
        .expect("start");
        let challenge = fresh.hello(&hello, Some(flood)).expect("challenge");
        let (_, confirm) = init.finish(&challenge).expect("finish");
        let established = fresh
            .confirm(&HelloConfirm::new(hello.clone(), confirm))
            .expect("confirm");
        assert_eq!(established.expires_at, hello.time + 3600);
        for _ in 0..5 {
            assert!(
                fresh.hello(&hello, Some(flood)).is_ok(),
                "a proven peer was limited"
            );
        }
        assert_eq!(fresh.counts(), (0, 0), "nothing kept per handshake");
    }

    #[test]
    fn buckets_refill_at_their_rate() {
        let rate = Rate {
            per_second: 10.0,
            burst: 2.0,
        };
        let mut b = Bucket::full(rate);
        let t0 = Instant::now();
        assert!(b.take(rate, t0).is_ok() && b.take(rate, t0).is_ok());
        assert_eq!(b.take(rate, t0), Err(1));
        assert!(
            b.take(rate, t0 + std::time::Duration::from_millis(150))
                .is_ok()
        );
    }
}
