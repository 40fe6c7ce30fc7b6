//! What every party's SQL shares: the backend's query kit (`kit_lite` or `kit_pg`, one fetch
//! helper per shape), backend constants, and `PartyStore`.

pub(super) use super::kit::*;
use super::SQLITE;
use crate::error::{Result, StoreError};
use crate::sql::{check_id, to_u64};
use crate::types::{Answer, Bucket, StoredResponse};

pub(super) const FOR_UPDATE: &str = if SQLITE { "" } else { " FOR UPDATE" };
pub(super) const SKIP_LOCKED: &str = if SQLITE {
    ""
} else {
    " FOR UPDATE SKIP LOCKED"
};

/// `$from, $from+1, …` (`n` placeholders).
pub(super) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs a `SELECT k, COUNT(*) AS n … GROUP BY k` and decodes each group's text key.
pub(super) async fn count_by<K>(
    p: &P,
    sql: &'static str,
    op: &'static str,
    decode: fn(&str) -> Result<K>,
) -> Result<Vec<(K, u64)>> {
    all(&p.reader, op, query(sql), |r| {
        let k: String = get(r, "k")?;
        Ok((decode(&k)?, to_u64(get(r, "n")?, "count")?))
    })
    .await
}

/// Runs a `SELECT b, k, COUNT(*) AS n … GROUP BY b, k` whose `$1` is the window's start and
/// `$2` the bucket width (both milliseconds; `b` is the bucket's start, `k` the key).
pub(super) async fn buckets(
    p: &P,
    sql: &'static str,
    op: &'static str,
    since_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<Bucket>> {
    if bucket_ms <= 0 {
        return Err(StoreError::Invalid("a bucket must be at least 1 ms wide".into()));
    }
    let q = query(sql).bind(since_ms).bind(bucket_ms);
    all(&p.reader, op, q, |r| {
        Ok(Bucket {
            start_ms: get(r, "b")?,
            key: get(r, "k")?,
            count: to_u64(get(r, "n")?, "count")?,
        })
    })
    .await
}

// ------------------------------------------------------------------------------------------
// PartyStore

pub(crate) async fn ping(p: &P) -> Result<()> {
    exec(&p.reader, "ping", query("SELECT 1")).await?;
    Ok(())
}

fn stored_response(r: &DbRow) -> Result<StoredResponse> {
    let status: i64 = get(r, "status")?;
    Ok(StoredResponse {
        status: u16::try_from(status).map_err(|_| StoreError::Corrupt("status"))?,
        body: get(r, "body")?,
        fingerprint: get(r, "fingerprint")?,
        created_at_ms: get(r, "created_at_ms")?,
    })
}

const IDEM_GET: &str = "SELECT status, body, fingerprint, created_at_ms FROM idempotency \
                        WHERE scope = $1 AND key = $2";

pub(crate) async fn idempotency_get(
    p: &P,
    scope: &str,
    key: &str,
) -> Result<Option<StoredResponse>> {
    let q = query(IDEM_GET).bind(scope).bind(key);
    optional(&p.reader, "idempotency_get", q, stored_response).await
}

/// Stores `resp` under (scope, key) unless an answer is there: the stored answer either way.
const IDEM_PUT: &str = "INSERT INTO idempotency (scope, key, status, body, fingerprint, created_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING \
     RETURNING status, body, fingerprint, created_at_ms";

pub(super) async fn idempotency_put_in(
    c: &mut Conn,
    scope: &str,
    key: &str,
    resp: &StoredResponse,
) -> Result<StoredResponse> {
    const OP: &str = "idempotency_put";
    check_id("idempotency scope", scope)?;
    check_id("idempotency key", key)?;
    let q = query(IDEM_PUT)
        .bind(scope)
        .bind(key)
        .bind(i64::from(resp.status))
        .bind(&resp.body)
        .bind(&resp.fingerprint)
        .bind(resp.created_at_ms);
    if let Some(stored) = optional(&mut *c, OP, q, stored_response).await? {
        return Ok(stored);
    }
    let q = query(IDEM_GET).bind(scope).bind(key);
    one(&mut *c, OP, q, stored_response).await
}

// On PostgreSQL outside a transaction, one round trip where a transaction took three: the
// insert alone is atomic, and an answer found in its place is read after it.
write_op!(autocommit idempotency_put = idempotency_put_in(scope: &str => scope.to_owned(),
    key: &str => key.to_owned(), resp: &StoredResponse => resp.clone()) -> StoredResponse);

/// Keeps `answer` of a write's `result` in the write's transaction (see [`Answer`]): the
/// stored answer, or `None` if `answer` made none.
pub(super) async fn keep_answer<T>(
    c: &mut Conn,
    answer: &Answer<T>,
    result: &T,
) -> Result<Option<StoredResponse>> {
    let Some(body) = (answer.body)(result) else {
        return Ok(None);
    };
    let resp = StoredResponse {
        status: 200,
        body,
        fingerprint: answer.fingerprint.clone(),
        created_at_ms: answer.created_at_ms,
    };
    idempotency_put_in(c, &answer.scope, &answer.key, &resp)
        .await
        .map(Some)
}

async fn idempotency_purge_in(c: &mut Conn, before_ms: i64) -> Result<u64> {
    let q = query("DELETE FROM idempotency WHERE created_at_ms < $1").bind(before_ms);
    exec(&mut *c, "idempotency_purge", q).await
}

write_op!(idempotency_purge = idempotency_purge_in(before_ms: i64) -> u64);
