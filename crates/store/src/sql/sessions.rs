//! Session replay records (`session_seen`, migration 8): insert-once per (session, seq), and
//! the purge of closed time windows.

use super::SQLITE;
use super::common::*;
use crate::error::Result;
use crate::sql::{check_id, to_i64};

/// The replay record's insert. On PostgreSQL it does not wait for its own flush: a replay
/// record lost in a crash of the database server itself (not of a replica) only reopens the
/// last moments' requests, whose own writes are idempotent. `set_config(…, true)` holds for the
/// statement's own implicit transaction, so it is one round trip instead of four (BEGIN, SET
/// LOCAL, INSERT, COMMIT).
const INSERT_SEEN: &str = if SQLITE {
    "INSERT INTO session_seen (session, seq, until_s) VALUES ($1, $2, $3) \
     ON CONFLICT (session, seq) DO NOTHING"
} else {
    "WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true)) \
     INSERT INTO session_seen (session, seq, until_s) SELECT $1, $2, $3 FROM unflushed \
     ON CONFLICT (session, seq) DO NOTHING"
};

/// Records (session, seq): `true` the first time.
async fn session_seen_in(c: &mut Conn, session: &str, seq: u64, until_s: u64) -> Result<bool> {
    check_id("session", session)?;
    let q = query(INSERT_SEEN)
        .bind(session)
        .bind(to_i64(seq, "seq")?)
        .bind(to_i64(until_s, "until_s")?);
    Ok(exec(&mut *c, "session_seen", q).await? == 1)
}

write_op!(autocommit session_seen = session_seen_in(session: &str => session.to_owned(),
    seq: u64, until_s: u64) -> bool);

async fn session_seen_purge_in(c: &mut Conn, now_s: u64) -> Result<u64> {
    let q =
        query("DELETE FROM session_seen WHERE until_s < $1").bind(to_i64(now_s, "now_s")?);
    exec(&mut *c, "session_seen_purge", q).await
}

write_op!(session_seen_purge = session_seen_purge_in(now_s: u64) -> u64);
