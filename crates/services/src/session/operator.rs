//! Operator access: the bearer token that guards a service's operator routes (lifecycle
//! commands such as capture, refund or advancing a shipment, and the read-only dashboards).
//!
//! Parties authenticate each other with sessions (see `server`); the people who run a
//! party authenticate with its operator token, sent as `Authorization: Bearer <token>`. A
//! browser signs in once with the token and then carries a cookie that is not the token: a
//! MAC under a key derived from the token over the cookie's name and its expiry, named per
//! service (`warifu_merchant_op`, `warifu_issuer_op`, `warifu_carrier_op`), so services on
//! one host (cookies ignore ports) neither receive nor overwrite each other's sign-in, and a
//! cookie that leaks reveals no token and expires (12 h). The service keeps only the token's
//! SHA-256 and the cookie key ([`OperatorKey`], wiped on drop) and compares in constant time.
//! Without a configured token every operator route answers `operator_required` (fail
//! closed); [`OperatorAuth::Open`] is for loopback deployments only (`warifu up`, `warifu
//! demo`, tests).

use std::sync::{Arc, RwLock};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{AppError, ErrorCode};

/// How long a sign-in cookie is valid.
pub const COOKIE_LIFETIME_S: u64 = 12 * 3600;

/// The sign-in cookie's name of the party `who` (`warifu_<role>_op`).
pub fn cookie_name(who: &str) -> String {
    let role: String = who
        .split(':')
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(32)
        .collect();
    format!("warifu_{role}_op")
}

fn is_operator_cookie(name: &str) -> bool {
    name.strip_prefix("warifu_")
        .and_then(|r| r.strip_suffix("_op"))
        .is_some_and(|role| !role.is_empty() && role.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a service keeps of its operator token: its SHA-256 (to check a bearer token) and the
/// key its sign-in cookies are MACed under. Wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct OperatorKey {
    digest: [u8; 32],
    cookie_key: [u8; 32],
}

impl OperatorKey {
    /// The key of `token`.
    pub fn new(token: &warifu_core::secret::Secret) -> OperatorKey {
        let digest: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
        let cookie_key: [u8; 32] = Sha256::new()
            .chain_update(b"warifu/v1/operator-cookie\0")
            .chain_update(digest)
            .finalize()
            .into();
        OperatorKey { digest, cookie_key }
    }

    fn mac(&self, name: &str, expires_s: u64) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.cookie_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(name.as_bytes());
        m.update(&[0]);
        m.update(&expires_s.to_be_bytes());
        m.finalize().into_bytes().into()
    }

    /// The value of a cookie `name` valid until `expires_s`: `v1.<expiry>.<MAC hex>`.
    fn cookie_value(&self, name: &str, expires_s: u64) -> String {
        let hex: String = self
            .mac(name, expires_s)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("v1.{expires_s}.{hex}")
    }

    /// Whether `value` is a cookie `name` this key made that has not expired at `now`.
    fn admits_cookie(&self, name: &str, value: &str, now: u64) -> bool {
        let mut parts = value.split('.');
        let (Some("v1"), Some(exp), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(exp) = exp.parse::<u64>() else {
            return false;
        };
        if exp <= now || exp > now + COOKIE_LIFETIME_S + 60 {
            return false;
        }
        let want = self.cookie_value(name, exp);
        want.len() == value.len() && bool::from(want.as_bytes().ct_eq(value.as_bytes()))
    }
}

/// How a service admits operators.
#[derive(Clone, Default)]
pub enum OperatorAuth {
    /// No operator access (the default): every operator route is refused.
    #[default]
    Disabled,
    /// Anyone who reaches the service (loopback deployments only).
    Open,
    /// Holders of the token this key is of.
    Token(OperatorKey),
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
    /// Admits holders of `token` (which should be long and random); the token itself is not
    /// kept.
    pub fn token(token: &str) -> OperatorAuth {
        OperatorAuth::Token(OperatorKey::new(&warifu_core::secret::Secret::new(token)))
    }

    /// Whether a presented token (or none) is admitted.
    pub fn admits(&self, presented: Option<&str>) -> bool {
        match self {
            OperatorAuth::Disabled => false,
            OperatorAuth::Open => true,
            OperatorAuth::Token(key) => presented.is_some_and(|t| {
                let d: [u8; 32] = Sha256::digest(t.as_bytes()).into();
                bool::from(d.ct_eq(&key.digest))
            }),
        }
    }

    /// Whether a request is admitted: by its bearer token, else by a sign-in cookie.
    fn admits_request(&self, headers: &HeaderMap) -> bool {
        match (self, bearer(headers)) {
            (_, Some(t)) => self.admits(Some(t)),
            (OperatorAuth::Token(key), None) => {
                let now = now_s();
                cookies(headers)
                    .filter(|(k, _)| is_operator_cookie(k))
                    .any(|(k, v)| key.admits_cookie(k, v, now))
            }
            (other, None) => other.admits(None),
        }
    }

    /// The `Set-Cookie` value signing a browser in to the dashboard of `who` under `path`
    /// (HttpOnly, SameSite=Strict, 12 h): a MAC, never the token. `None` unless operators are
    /// admitted by a token.
    pub fn sign_in_cookie(&self, who: &str, path: &str) -> Option<String> {
        let OperatorAuth::Token(key) = self else {
            return None;
        };
        let name = cookie_name(who);
        let value = key.cookie_value(&name, now_s() + COOKIE_LIFETIME_S);
        Some(format!(
            "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={COOKIE_LIFETIME_S}"
        ))
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
        if auth.admits_request(&parts.headers) {
            return Ok(Operator);
        }
        let message = match *auth {
            OperatorAuth::Disabled => "operator access is not configured on this service",
            _ => "this route needs the service's operator token",
        };
        Err(AppError::new(ErrorCode::OperatorRequired, message))
    }
}

/// The bearer token a request presents.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Every cookie among a request's `Cookie` headers, as (name, value).
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
}

/// The value of the cookie `name` among a request's `Cookie` headers, if it carries one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers)
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

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                header::HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn sign_in_cookie_is_a_mac_per_service() {
        let token = "s3cret-token-0123456789";
        let a = OperatorAuth::token(token);
        let set = a
            .sign_in_cookie("carrier:post.example", "/dashboard")
            .expect("cookie");
        assert!(set.starts_with("warifu_carrier_op=v1."), "{set}");
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains(token), "the token is never in the cookie");
        let pair = set.split(';').next().expect("pair");
        assert!(a.admits_request(&headers(&[("cookie", pair)])));
        // The merchant's cookie sits beside it under its own name.
        let both = format!("warifu_merchant_op=v1.1.00; {pair}");
        assert!(a.admits_request(&headers(&[("cookie", &both)])));
        // Another token's cookie, an altered one, a renamed one, an expired one: refused.
        let other = OperatorAuth::token("another-token-0123456789")
            .sign_in_cookie("carrier:post.example", "/dashboard")
            .expect("cookie");
        let other_pair = other.split(';').next().expect("pair");
        assert!(!a.admits_request(&headers(&[("cookie", other_pair)])));
        let mut altered = pair.to_owned();
        let last = altered.pop().expect("char");
        altered.push(if last == '0' { '1' } else { '0' });
        assert!(!a.admits_request(&headers(&[("cookie", &altered)])));
        let renamed = pair.replace("warifu_carrier_op", "warifu_issuer_op");
        assert!(!a.admits_request(&headers(&[("cookie", &renamed)])));
        let OperatorAuth::Token(key) = &a else {
            unreachable!()
        };
        let old = key.cookie_value("warifu_carrier_op", 1000);
        assert!(!key.admits_cookie("warifu_carrier_op", &old, 2000));
        assert!(key.admits_cookie("warifu_carrier_op", &old, 999));
        // The raw token as a cookie (what older builds set) is not a sign-in.
        let raw = format!("warifu_operator={token}");
        assert!(!a.admits_request(&headers(&[("cookie", &raw)])));
        let raw = format!("warifu_carrier_op={token}");
        assert!(!a.admits_request(&headers(&[("cookie", &raw)])));
        // Bearer tokens work as before; Open and Disabled set no cookie.
        assert!(a.admits_request(&headers(&[("authorization", &format!("Bearer {token}"))])));
        assert!(!a.admits_request(&headers(&[("authorization", "Bearer nope")])));
        assert!(OperatorAuth::Open.sign_in_cookie("x:y", "/").is_none());
        assert!(OperatorAuth::Disabled.sign_in_cookie("x:y", "/").is_none());
        assert_eq!(cookie_name("merchant:shop.example"), "warifu_merchant_op");
    }
}
