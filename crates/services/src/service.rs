//! What every service shares: the finishing layers of a router (fallbacks, body limit, request
//! log, operator access), serving with graceful shutdown, health, fresh identifiers and JSON answers.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use warifu_core::PartyId;
use warifu_core::rand::{OsRandom, Randomness};
use warifu_store::{PartyStore, StoreError};

use crate::MAX_BODY;
use crate::auth::{self, Guard};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::operator;
use crate::peer::ClientError;

/// A service's router: the handshake routes, its `public` routes, and its `authenticated`
/// routes behind the session guard, with the finishing layers of [`finish`].
pub fn assemble(guard: Arc<Guard>, public: Router, authenticated: Router) -> Router {
    let authenticated = authenticated.route_layer(middleware::from_fn_with_state(
        guard.clone(),
        auth::authenticate,
    ));
    let access = guard.operator().clone();
    finish(auth::routes(guard).merge(public).merge(authenticated)).layer(middleware::from_fn(
        move |req, next| operator::attach(access.clone(), req, next),
    ))
}

/// The `/healthz` answer: storage reachable, and who this party is.
pub async fn health<S: PartyStore + ?Sized>(
    store: &S,
    party: &PartyId,
) -> AppResult<Json<serde_json::Value>> {
    store
        .ping()
        .await
        .map_err(store_error("checking storage"))?;
    Ok(Json(
        serde_json::json!({"status": "ok", "party": party.as_str()}),
    ))
}

/// Adds the fallbacks (JSON 404 and 405), the body limit and the request log to a service's
/// routes.
pub fn finish(router: Router) -> Router {
    router
        .fallback(auth::not_found)
        .method_not_allowed_fallback(auth::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(log_request))
}

async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
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
