//! Operator access: the bearer token that guards a service's operator routes (lifecycle
//! commands such as capture, refund or advancing a shipment, and the read-only dashboards).
//!
//! Parties authenticate each other with sessions (see `server`); the people who run a
//! party authenticate with its operator token, sent as `Authorization: Bearer <token>` or, for
//! a browser, as the `warifu_operator` cookie. The service keeps only the token's SHA-256 and
//! compares in constant time. Without a configured token every operator route answers
//! `operator_required` (fail closed); [`OperatorAuth::Open`] is for loopback deployments only
//! (`warifu up`, `warifu demo`, tests).

use std::sync::{Arc, RwLock};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AppError, ErrorCode};

/// The name of the cookie a browser carries the operator token in.
pub const COOKIE: &str = "warifu_operator";

/// How a service admits operators.
#[derive(Clone, Default)]
pub enum OperatorAuth {
    /// No operator access (the default): every operator route is refused.
    #[default]
    Disabled,
    /// Anyone who reaches the service (loopback deployments only).
    Open,
    /// Holders of the token whose SHA-256 this is.
    Token([u8; 32]),
}

impl core::fmt::Debug for OperatorAuth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            OperatorAuth::Disabled => "OperatorAuth::Disabled",
            OperatorAuth::Open => "OperatorAuth::Open",
            OperatorAuth::Token(_) => "OperatorAuth::Token(<redacted>)",
        })
    }
}

impl OperatorAuth {
    /// Admits holders of `token` (which should be long and random).
    pub fn token(token: &str) -> OperatorAuth {
        OperatorAuth::Token(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether a presented token (or none) is admitted.
    pub fn admits(&self, presented: Option<&str>) -> bool {
        match self {
            OperatorAuth::Disabled => false,
            OperatorAuth::Open => true,
            OperatorAuth::Token(digest) => presented.is_some_and(|t| {
                let d: [u8; 32] = Sha256::digest(t.as_bytes()).into();
                bool::from(d.ct_eq(digest))
            }),
        }
    }
}

/// A service's current operator access, replaceable while it runs.
#[derive(Debug, Default)]
pub struct OperatorAccess(RwLock<Arc<OperatorAuth>>);

impl OperatorAccess {
    /// Sets how operators are admitted from now on.
    pub fn set(&self, auth: OperatorAuth) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(auth);
    }

    /// How operators are admitted now.
    pub fn get(&self) -> Arc<OperatorAuth> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Middleware: puts the service's current [`OperatorAuth`] into the request's extensions for
/// the [`Operator`] extractor.
pub async fn attach(access: Arc<OperatorAccess>, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(access.get());
    next.run(req).await
}

/// Proof that the request comes from an operator of this service; extract it in a handler
/// to make the route an operator route.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Operator, AppError> {
        let auth = parts
            .extensions
            .get::<Arc<OperatorAuth>>()
            .cloned()
            .unwrap_or_default();
        if auth.admits(presented_token(parts).as_deref()) {
            return Ok(Operator);
        }
        let message = match *auth {
            OperatorAuth::Disabled => "operator access is not configured on this service",
            _ => "this route needs the service's operator token",
        };
        Err(AppError::new(ErrorCode::OperatorRequired, message))
    }
}

/// The token a request presents: the bearer token, else the operator cookie.
fn presented_token(parts: &Parts) -> Option<String> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(t) = bearer {
        return Some(t.to_owned());
    }
    cookie(&parts.headers, COOKIE)
}

/// The value of the cookie `name` among a request's `Cookie` headers, if it carries one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_the_token() {
        let a = OperatorAuth::token("s3cret-token");
        assert!(a.admits(Some("s3cret-token")));
        assert!(!a.admits(Some("s3cret-tokeN")));
        assert!(!a.admits(None));
        assert!(!OperatorAuth::Disabled.admits(Some("s3cret-token")));
        assert!(OperatorAuth::Open.admits(None));
        assert!(!format!("{a:?}").contains("s3cret"));
    }

    #[test]
    fn reads_bearer_then_cookie() {
        let (mut parts, ()) = axum::http::Request::builder()
            .header(header::COOKIE, "a=b; warifu_operator=from-cookie")
            .body(())
            .map(|r| r.into_parts())
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(presented_token(&parts).as_deref(), Some("from-cookie"));
        parts.headers.insert(
            header::AUTHORIZATION,
            header::HeaderValue::from_static("Bearer from-header"),
        );
        assert_eq!(presented_token(&parts).as_deref(), Some("from-header"));
    }
}
