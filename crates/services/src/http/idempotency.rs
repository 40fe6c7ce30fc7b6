//! The first answer under a key, replayed to every retry of the same request: a retry gets the
//! same status and body and moves nothing twice; a different request under the same key is an
//! `order_conflict`. The merchant's submissions, cancellations and refunds and the issuer's
//! authorizations and payment steps all answer this way.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use warifu_store::{Answer, PartyStore, StoredResponse};

use super::service::{json_bytes, store_error, to_json};
use crate::error::{AppError, AppResult, ErrorCode};

/// One request's place in a party's idempotency records.
#[derive(Debug, Clone, Copy)]
pub struct Idempotent<'a> {
    /// The kind of answer (`submit`, `cancel`, `authorize:<merchant>`, …).
    pub scope: &'a str,
    /// The request's key in its scope (an order id, `<order id>/<refund id>`, …).
    pub key: &'a str,
    /// The request's fingerprint ([`super::service::fingerprint`]).
    pub fp: &'a [u8],
    /// What another request under the same key is told (`order_conflict`).
    pub conflict: &'static str,
}

impl Idempotent<'_> {
    /// The stored `first` answer again if it answered this request, else `order_conflict`.
    pub fn replay(&self, first: StoredResponse) -> AppResult<Response> {
        if first.fingerprint != self.fp {
            tracing::warn!(
                scope = self.scope,
                key = self.key,
                "a different request under a key already answered"
            );
            return Err(AppError::new(ErrorCode::OrderConflict, self.conflict));
        }
        Ok(json_bytes(
            StatusCode::from_u16(first.status).unwrap_or(StatusCode::OK),
            first.body,
        ))
    }

    /// The first answer stored under the key, if there is one (see [`Idempotent::replay`]).
    pub async fn earlier<S: PartyStore + ?Sized>(&self, store: &S) -> AppResult<Option<Response>> {
        match store
            .idempotency_get(self.scope, self.key)
            .await
            .map_err(store_error("reading an earlier answer"))?
        {
            Some(first) => self.replay(first).map(Some),
            None => Ok(None),
        }
    }

    /// The first answer to keep in the request's own write (one commit, not two): `body`
    /// makes it from the write's result, or `None` to keep none (the caller then answers with
    /// [`Idempotent::answer`], or its error).
    pub fn keep<T>(
        &self,
        now_ms: i64,
        body: impl Fn(&T) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Answer<T> {
        Answer {
            scope: self.scope.to_owned(),
            key: self.key.to_owned(),
            fingerprint: self.fp.to_vec(),
            created_at_ms: now_ms,
            body: std::sync::Arc::new(body),
        }
    }

    /// Stores `answer` (status 200, made at `now_ms`) as the first answer, unless a
    /// concurrent request stored one first, and answers with whichever is stored.
    pub async fn answer<S: PartyStore + ?Sized, T: Serialize>(
        &self,
        store: &S,
        answer: &T,
        now_ms: i64,
    ) -> AppResult<Response> {
        let stored = store
            .idempotency_put(
                self.scope,
                self.key,
                &StoredResponse {
                    status: 200,
                    body: to_json(answer)?,
                    fingerprint: self.fp.to_vec(),
                    created_at_ms: now_ms,
                },
            )
            .await
            .map_err(store_error("recording the answer"))?;
        self.replay(stored)
    }
}
