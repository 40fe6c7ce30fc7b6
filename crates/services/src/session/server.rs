//! The responder side of mutual confirmation (claim 5) over HTTP: the handshake endpoints, a
//! bounded table of pending handshakes and sessions with expiry, and the middleware that
//! verifies every request of a session and signs every response.
//!
//! The cryptography is `warifu_core::session`; this module only carries it. A request in a
//! session carries the headers `Warifu-Session`, `Warifu-Seq`, `Warifu-Time` and `Warifu-Mac`
//! (MAC over session, sequence, time, method, path with query and the body's digest); the
//! response carries the same headers with a MAC over the request's MAC, the status and the
//! body, so a response cannot be replayed onto another request.
//!
//! Every body in a session, request and response, empty or not, is a sealed record
//! (`application/vnd.warifu.sealed`, PROTOCOL.md §12.4): the middleware opens the request's
//! record before the handler runs (handlers see the plain JSON) and seals the handler's answer,
//! so nothing of a session's content crosses the wire in clear. Errors raised before a
//! request is verified (unknown session, bad MAC, replay, stale, too large, not sealed) are
//! neither sealed nor signed: they carry no order data, and the client treats them as
//! failures, never as answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::keysource::KeySource;
use warifu_core::rand::OsRandom;
use warifu_core::session::{
    Challenge, Confirm, Hello, MessageAuth, PendingHandshake, RECORD_OVERHEAD, SEALED_CONTENT_TYPE,
    SESSION_LIFETIME, Session,
};
use warifu_core::{Error as CoreError, PartyId};

use super::headers::{read_auth, write_auth};
use super::operator::OperatorAccess;
use crate::error::{AppError, AppResult, ErrorCode, redact_quoted};
use crate::protocol::handshake::{PATH_CONFIRM, PATH_HELLO, SessionEstablished};
use crate::{MAX_BODY, now_unix};

/// The longest path (with query) accepted on an authenticated request.
pub const MAX_PATH: usize = 2048;

/// Bounds of the handshake and session tables.
#[derive(Debug, Clone, Copy)]
pub struct GuardLimits {
    /// Most handshakes waiting for their confirm; the oldest is dropped beyond it.
    pub max_pending: usize,
    /// How long a handshake may wait for its confirm.
    pub pending_ttl: Duration,
    /// Most live sessions; expired ones are purged first, then the oldest is dropped.
    pub max_sessions: usize,
}

impl Default for GuardLimits {
    fn default() -> GuardLimits {
        GuardLimits {
            max_pending: 4096,
            pending_ttl: Duration::from_secs(30),
            max_sessions: 65_536,
        }
    }
}

struct Tables {
    pending: HashMap<[u8; 32], (PendingHandshake, Instant)>,
    sessions: HashMap<String, (Arc<Mutex<Session>>, Instant)>,
}

/// A party's responder state: its keys, pending handshakes and live sessions.
pub struct Guard {
    keys: Arc<dyn KeySource>,
    tables: Mutex<Tables>,
    limits: GuardLimits,
    operator: Arc<OperatorAccess>,
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

impl Guard {
    /// A guard for the holder of `keys`.
    pub fn new(keys: Arc<dyn KeySource>, limits: GuardLimits) -> Guard {
        Guard {
            keys,
            tables: Mutex::new(Tables {
                pending: HashMap::new(),
                sessions: HashMap::new(),
            }),
            limits,
            operator: Arc::default(),
        }
    }

    /// How this service admits its operators (disabled until set).
    pub fn operator(&self) -> &Arc<OperatorAccess> {
        &self.operator
    }

    /// This party's identifier.
    pub fn owner(&self) -> &PartyId {
        self.keys.owner()
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many sessions and pending handshakes are held.
    pub fn counts(&self) -> (usize, usize) {
        let t = self.tables();
        (t.sessions.len(), t.pending.len())
    }

    /// Answers message 1 with message 2.
    pub fn hello(&self, hello: &Hello) -> AppResult<Challenge> {
        let now = now_unix();
        let (pending, challenge) =
            PendingHandshake::respond(self.keys.as_ref(), hello, now, &mut OsRandom)
                .map_err(handshake_error)?;
        let mut t = self.tables();
        let ttl = self.limits.pending_ttl;
        t.pending.retain(|_, (_, at)| at.elapsed() < ttl);
        if t.pending.len() >= self.limits.max_pending
            && let Some(oldest) = t
                .pending
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| *k)
        {
            t.pending.remove(&oldest);
        }
        t.pending
            .insert(challenge.nonce_r, (pending, Instant::now()));
        Ok(challenge)
    }

    /// Checks message 3; on success the session is live.
    pub fn confirm(&self, confirm: &Confirm) -> AppResult<SessionEstablished> {
        let pending = {
            let mut t = self.tables();
            t.pending.remove(&confirm.nonce_r)
        };
        let ttl = self.limits.pending_ttl;
        let Some((pending, _)) = pending.filter(|(_, at)| at.elapsed() < ttl) else {
            return Err(AppError::new(
                ErrorCode::AuthenticationFailed,
                "no handshake is waiting for this confirmation (expired or already used)",
            ));
        };
        let initiator = pending.initiator().clone();
        let confirmed_at = now_unix();
        let session = pending.confirm(confirm, confirmed_at).map_err(|e| {
            tracing::warn!(peer = %initiator, "handshake confirmation refused");
            handshake_error(e)
        })?;
        let id = session.id().to_owned();
        tracing::info!(peer = %initiator, session = %id, "session established");
        let mut t = self.tables();
        let now = now_unix();
        if t.sessions.len() >= self.limits.max_sessions {
            t.sessions
                .retain(|_, (s, _)| s.lock().map(|s| !s.expired(now)).unwrap_or(false));
        }
        if t.sessions.len() >= self.limits.max_sessions
            && let Some(oldest) = t
                .sessions
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            t.sessions.remove(&oldest);
        }
        t.sessions
            .insert(id.clone(), (Arc::new(Mutex::new(session)), Instant::now()));
        Ok(SessionEstablished {
            session: id,
            expires_at: confirmed_at.saturating_add(SESSION_LIFETIME),
        })
    }

    fn session(&self, id: &str) -> Option<Arc<Mutex<Session>>> {
        let mut t = self.tables();
        let s = t.sessions.get(id).map(|(s, _)| s.clone())?;
        let expired = s.lock().map(|s| s.expired(now_unix())).unwrap_or(true);
        if expired {
            t.sessions.remove(id);
            return None;
        }
        Some(s)
    }
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
    JsonBody(h): JsonBody<Hello>,
) -> AppResult<Json<Challenge>> {
    g.hello(&h).map(Json)
}

/// Handshake message 3: on success the session is live.
#[utoipa::path(
    post,
    path = PATH_CONFIRM,
    request_body = crate::protocol::schema::Confirm,
    responses((status = 200, description = "The session is established", body = SessionEstablished))
)]
async fn confirm(
    State(g): State<Arc<Guard>>,
    JsonBody(c): JsonBody<Confirm>,
) -> AppResult<Json<SessionEstablished>> {
    g.confirm(&c).map(Json)
}

/// Middleware: verifies the request's session MAC and opens its record, sets [`Peer`], runs
/// the handler and seals and signs its response. Mount it on every route that handles sealed
/// data.
pub async fn authenticate(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    match verify(&guard, req).await {
        Ok((req, auth, session)) => {
            let response = next.run(req).await;
            sign(response, &auth, &session).await
        }
        Err(e) => e.into_response(),
    }
}

async fn verify(
    guard: &Guard,
    req: Request,
) -> AppResult<(Request, MessageAuth, Arc<Mutex<Session>>)> {
    let (mut parts, body) = req.into_parts();
    let auth = read_auth(&parts.headers)?;
    let Some(session) = guard.session(&auth.session) else {
        return Err(AppError::new(
            ErrorCode::SessionUnknown,
            "unknown or expired session: run the handshake again",
        ));
    };
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
    let (peer, body) = {
        let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
        let body = s
            .open_request(&auth, parts.method.as_str(), path, &record, now_unix())
            .map_err(|e| match e {
                CoreError::Replay => AppError::new(
                    ErrorCode::Replay,
                    "this message was already received (replayed)",
                ),
                CoreError::Stale => AppError::new(ErrorCode::StaleMessage, e.to_string()),
                _ => AppError::new(
                    ErrorCode::AuthenticationFailed,
                    "the message MAC or its sealed record does not verify",
                ),
            })?;
        (s.peer().clone(), body)
    };
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
    req.extensions_mut().insert(Peer(peer));
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

async fn sign(response: Response, auth: &MessageAuth, session: &Mutex<Session>) -> Response {
    let (mut parts, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return AppError::internal("buffering a response", &e).into_response(),
    };
    let sealed = session
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .seal_response(
            auth,
            parts.status.as_u16(),
            &body,
            now_unix(),
            &mut OsRandom,
        );
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

    #[test]
    fn tables_are_bounded_and_a_confirmation_is_single_use() {
        let master = Master::generate(4, &mut SeededRandom::new(b"guard")).expect("master");
        let id = |s: &str| PartyId::parse(s).expect("id");
        let merchant = Arc::new(master.personal_key(&id("merchant:m")));
        let guard = Guard::new(
            merchant.clone(),
            GuardLimits {
                max_pending: 2,
                pending_ttl: Duration::from_secs(30),
                max_sessions: 1,
            },
        );
        let alice = master.personal_key(&id("cardholder:a"));
        let mut rng = SeededRandom::new(b"hellos");
        let mut starts = Vec::new();
        for _ in 0..3 {
            let (init, hello) =
                Initiator::start(&alice, merchant.owner(), now_unix(), &mut rng).expect("start");
            let challenge = guard.hello(&hello).expect("challenge");
            starts.push((init, challenge));
        }
        assert_eq!(guard.counts(), (0, 2), "pending handshakes are bounded");
        let mut confirms = Vec::new();
        for (init, challenge) in starts {
            let (_, confirm) = init.finish(&challenge).expect("finish");
            confirms.push(confirm);
        }
        // The oldest was evicted; the others confirm once each.
        assert!(guard.confirm(&confirms[0]).is_err());
        assert!(guard.confirm(&confirms[1]).is_ok());
        assert!(guard.confirm(&confirms[1]).is_err(), "confirmation reused");
        assert!(guard.confirm(&confirms[2]).is_ok());
        assert_eq!(guard.counts(), (1, 0), "sessions are bounded");
    }
}
