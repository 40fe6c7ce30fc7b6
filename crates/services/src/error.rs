//! Stable error codes and the JSON error body (`{"code": …, "message": …}`) of every service.
//!
//! The codes are part of the API: clients branch on them, so a code is never renamed or
//! reused. `docs/ERRORS.md` lists them with their HTTP status. Messages are for people and
//! never carry a secret (card number, address, key, sealed plaintext) or an internal detail.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Every error code a Warifu service answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the body is not JSON, or not the JSON this endpoint takes.
    MalformedRequest,
    /// 413: the body is larger than [`crate::MAX_BODY`].
    PayloadTooLarge,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 404: no order with this id here (or not this caller's).
    UnknownOrder,
    /// 422: a party named in the request is not in the key center's directory (or not in
    /// the role it is named in).
    UnknownParty,
    /// 422: the request is addressed to another party than this one.
    NotAddressedHere,
    /// 422: a sealed part is tampered, truncated, spliced from another order or not sealed
    /// for this party. Deliberately one opaque code for all of these.
    SealedPartInvalid,
    /// 422: a version-3 part is sealed to a KEM key epoch this party no longer holds (deleted
    /// after its grace period) or never held; fetch its current key and seal again.
    KemKeyUnavailable,
    /// 422: the order was sealed under another key scheme (blom, sok, hybrid) than the one
    /// this party's keys belong to; reseal it under the scheme the deployment uses.
    SchemeMismatch,
    /// 422: the merchant's opened part does not agree with its order form (catalog, prices,
    /// currency, carrier, issuer).
    OrderInvalid,
    /// 422: the order holds goods that a carrier delivers, and its form has no carrier
    /// (a "digital goods only" form); ask for a form with delivery.
    DeliveryRequired,
    /// 410: the order form has expired; fetch a new one.
    FormExpired,
    /// 422: the amount or currency differs between two parties' views of one order.
    AmountMismatch,
    /// 409: a different submission for an order already submitted.
    OrderConflict,
    /// 409: this authenticated message was already received.
    Replay,
    /// 403: the carrier was asked to ship an order without the issuer's approval.
    AuthorizationRequired,
    /// 403: the authenticated peer may not call this endpoint (wrong role or not its order).
    Forbidden,
    /// 403: a party this request involves (the session's peer, the cardholder who sealed the
    /// order, the issuer whose approval it carries) is on the key center's revocation list;
    /// its identity must be re-issued under a new epoch (`id~2`).
    IdentityRevoked,
    /// 401: the endpoint needs a session and the request carries no session headers.
    AuthenticationRequired,
    /// 401: the session id is unknown here (expired or evicted): run the handshake again.
    SessionUnknown,
    /// 401: a handshake proof or a message MAC did not verify.
    AuthenticationFailed,
    /// 401: the message's time is outside the accepted window (check the clocks).
    StaleMessage,
    /// 502: a peer this request needs cannot be reached.
    PeerUnavailable,
    /// 502: a peer failed to prove its identity (handshake or response MAC).
    PeerNotAuthentic,
    /// 502: a peer answered with an error or an answer that makes no sense.
    PeerError,
    /// 401: an operator route (lifecycle commands, dashboards) without the service's operator
    /// token, or on a service where operator access is not configured.
    OperatorRequired,
    /// 409: the order or shipment is not in a state that allows this step (for example a
    /// refund before capture, or delivering a shipment not yet picked up).
    InvalidTransition,
    /// 409: the order cannot take this delivery event yet (its delivery request, capture or
    /// cancellation is still being answered); the carrier sends it again later.
    OrderNotReady,
    /// 404: no card with this id at the issuer (operator card routes).
    UnknownCard,
    /// 404: no merchant webhook endpoint with this id.
    UnknownWebhookEndpoint,
    /// 409: a card or webhook endpoint with this id exists already.
    AlreadyExists,
    /// 503: too many handshakes or sessions in progress; retry later.
    Busy,
    /// 429: too many key derivations for unknown identities from this source or in all;
    /// retry after the `Retry-After` seconds.
    RateLimited,
    /// 500: something failed inside this service (storage); details are in its log.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 35] = [
        ErrorCode::MalformedRequest,
        ErrorCode::PayloadTooLarge,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::UnknownOrder,
        ErrorCode::UnknownParty,
        ErrorCode::NotAddressedHere,
        ErrorCode::SealedPartInvalid,
        ErrorCode::KemKeyUnavailable,
        ErrorCode::SchemeMismatch,
        ErrorCode::OrderInvalid,
        ErrorCode::DeliveryRequired,
        ErrorCode::FormExpired,
        ErrorCode::AmountMismatch,
        ErrorCode::OrderConflict,
        ErrorCode::Replay,
        ErrorCode::AuthorizationRequired,
        ErrorCode::Forbidden,
        ErrorCode::IdentityRevoked,
        ErrorCode::AuthenticationRequired,
        ErrorCode::SessionUnknown,
        ErrorCode::AuthenticationFailed,
        ErrorCode::StaleMessage,
        ErrorCode::PeerUnavailable,
        ErrorCode::PeerNotAuthentic,
        ErrorCode::PeerError,
        ErrorCode::OperatorRequired,
        ErrorCode::InvalidTransition,
        ErrorCode::OrderNotReady,
        ErrorCode::UnknownCard,
        ErrorCode::UnknownWebhookEndpoint,
        ErrorCode::AlreadyExists,
        ErrorCode::Busy,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
    ];

    /// The code as it appears in the JSON body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UnknownOrder => "unknown_order",
            ErrorCode::UnknownParty => "unknown_party",
            ErrorCode::NotAddressedHere => "not_addressed_here",
            ErrorCode::SealedPartInvalid => "sealed_part_invalid",
            ErrorCode::KemKeyUnavailable => "kem_key_unavailable",
            ErrorCode::SchemeMismatch => "scheme_mismatch",
            ErrorCode::OrderInvalid => "order_invalid",
            ErrorCode::DeliveryRequired => "delivery_required",
            ErrorCode::FormExpired => "form_expired",
            ErrorCode::AmountMismatch => "amount_mismatch",
            ErrorCode::OrderConflict => "order_conflict",
            ErrorCode::Replay => "replay",
            ErrorCode::AuthorizationRequired => "authorization_required",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::IdentityRevoked => "identity_revoked",
            ErrorCode::AuthenticationRequired => "authentication_required",
            ErrorCode::SessionUnknown => "session_unknown",
            ErrorCode::AuthenticationFailed => "authentication_failed",
            ErrorCode::StaleMessage => "stale_message",
            ErrorCode::PeerUnavailable => "peer_unavailable",
            ErrorCode::PeerNotAuthentic => "peer_not_authentic",
            ErrorCode::PeerError => "peer_error",
            ErrorCode::OperatorRequired => "operator_required",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::OrderNotReady => "order_not_ready",
            ErrorCode::UnknownCard => "unknown_card",
            ErrorCode::UnknownWebhookEndpoint => "unknown_webhook_endpoint",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Busy => "busy",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the code is sent with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::MalformedRequest => StatusCode::BAD_REQUEST,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::NotFound
            | ErrorCode::UnknownOrder
            | ErrorCode::UnknownCard
            | ErrorCode::UnknownWebhookEndpoint => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UnknownParty
            | ErrorCode::NotAddressedHere
            | ErrorCode::SealedPartInvalid
            | ErrorCode::KemKeyUnavailable
            | ErrorCode::SchemeMismatch
            | ErrorCode::OrderInvalid
            | ErrorCode::DeliveryRequired
            | ErrorCode::AmountMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::FormExpired => StatusCode::GONE,
            ErrorCode::OrderConflict | ErrorCode::Replay => StatusCode::CONFLICT,
            ErrorCode::AuthorizationRequired
            | ErrorCode::Forbidden
            | ErrorCode::IdentityRevoked => StatusCode::FORBIDDEN,
            ErrorCode::AuthenticationRequired
            | ErrorCode::SessionUnknown
            | ErrorCode::AuthenticationFailed
            | ErrorCode::StaleMessage
            | ErrorCode::OperatorRequired => StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidTransition | ErrorCode::OrderNotReady | ErrorCode::AlreadyExists => {
                StatusCode::CONFLICT
            }
            ErrorCode::PeerUnavailable | ErrorCode::PeerNotAuthentic | ErrorCode::PeerError => {
                StatusCode::BAD_GATEWAY
            }
            ErrorCode::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code for its JSON name.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The stable code (see [`ErrorCode`]); a client may meet codes newer than itself.
    #[schema(value_type = ErrorCode)]
    pub code: String,
    /// A human message; never a secret.
    pub message: String,
}

/// An error a handler returns: a code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AppError {
    /// The stable code.
    pub code: ErrorCode,
    /// The human message.
    pub message: String,
}

impl AppError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError {
            code,
            message: message.into(),
        }
    }

    /// The opaque error for any sealed part that does not open.
    pub fn sealed() -> AppError {
        AppError::new(
            ErrorCode::SealedPartInvalid,
            "the sealed part was tampered with, truncated, taken from another order, or not sealed for this party",
        )
    }

    /// A revoked identity (the core's `Revoked`, from a key source wrapped in
    /// `warifu_core::revocation::Revocable`). The identifier is public (it is in the list).
    pub fn revoked(id: &str) -> AppError {
        AppError::new(
            ErrorCode::IdentityRevoked,
            format!(
                "{id} is on the key center's revocation list; its holder needs a key of a new epoch"
            ),
        )
    }

    /// A sealed part (or forwarded part) that did not open: `identity_revoked` when a party it
    /// needs a key with is revoked, `kem_key_unavailable` when its KEM key epoch is gone
    /// (sealed format version 3), else the one opaque [`AppError::sealed`].
    pub fn unopened(e: &warifu_core::Error) -> AppError {
        match e {
            warifu_core::Error::Revoked(id) => AppError::revoked(id),
            warifu_core::Error::KemKeyUnavailable { epoch } => AppError::new(
                ErrorCode::KemKeyUnavailable,
                format!(
                    "the part is sealed to KEM key epoch {epoch}, which this party no longer holds; fetch its current key and seal again"
                ),
            ),
            _ => AppError::sealed(),
        }
    }

    /// Refuses an order whose header names another key scheme than `ours` (checked before
    /// opening, so the answer is a clear `scheme_mismatch`, not an opaque failure to open).
    pub fn check_scheme(
        sealed_under: warifu_core::keysource::Scheme,
        ours: warifu_core::keysource::Scheme,
    ) -> AppResult<()> {
        if sealed_under == ours {
            return Ok(());
        }
        let name = |s: warifu_core::keysource::Scheme| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("code {}", s.code()))
        };
        Err(AppError::new(
            ErrorCode::SchemeMismatch,
            format!(
                "the order was sealed under the {} key scheme, but this party uses {}",
                name(sealed_under),
                name(ours)
            ),
        ))
    }

    /// A storage failure: logged here with its detail, answered without it.
    pub fn internal(context: &str, detail: &dyn core::fmt::Display) -> AppError {
        tracing::error!(%detail, "{context}");
        AppError::new(
            ErrorCode::Internal,
            format!("internal error while {context}; see the service's log"),
        )
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.as_str().to_owned(),
            message: self.message,
        };
        (self.code.status(), Json(body)).into_response()
    }
}

/// The result type of handlers.
pub type AppResult<T> = Result<T, AppError>;

/// Removes quoted values from a parser's message (serde echoes the offending value, which in
/// an order could be a card number), keeping the position and the expectation.
pub fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut quote: Option<char> = None;
    for c in msg.chars() {
        match quote {
            Some(q) if c == q => {
                out.push_str("<redacted>");
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '`' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        out.push_str("<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {c}");
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
            let json = serde_json::to_string(&c).expect("json");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert!(c.status().is_client_error() || c.status().is_server_error());
        }
    }

    #[test]
    fn another_scheme_is_a_clear_stable_error() {
        use warifu_core::keysource::Scheme;
        assert!(AppError::check_scheme(Scheme::Hybrid, Scheme::Hybrid).is_ok());
        let e = AppError::check_scheme(Scheme::Blom, Scheme::Hybrid).expect_err("mismatch");
        assert_eq!(e.code, ErrorCode::SchemeMismatch);
        assert_eq!(e.code.as_str(), "scheme_mismatch");
        assert_eq!(e.code.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            e.message.contains("blom") && e.message.contains("hybrid"),
            "{}",
            e.message
        );
    }

    #[test]
    fn redaction_hides_quoted_values() {
        let m = redact_quoted("invalid type: string \"4111111111111111\", expected u64 at line 1");
        assert!(!m.contains("4111"), "{m}");
        assert!(m.contains("expected u64"));
        assert!(!redact_quoted("unknown field `4111111111111111").contains("4111"));
    }
}
