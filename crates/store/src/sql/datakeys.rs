//! The data keys' SQL (see `atrest`): loading and creating the keys, rotation, the
//! re-encryption pass (which also encrypts rows left in plaintext by schema versions < 5),
//! retiring and re-wrapping keys.

use std::future::Future;
use std::sync::Arc;

use super::SQLITE;
use super::common::*;
use crate::atrest::{
    CARD_NUMBER, DESTINATION, DataKeyInfo, Kek, Keyring, PURPOSE_DATA, PURPOSE_LOOKUP, Sealed,
    WrappedKey, is_unknown_key, new_wrapped, rewrap, rewrap_kem,
};
use crate::error::{Result, StoreError};
use crate::sql::to_u64;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

async fn wrapped_keys(p: &P) -> Result<Vec<WrappedKey>> {
    let q = query(
        "SELECT key_id, purpose, wrapped, created_at_ms, retired_at_ms FROM data_keys \
         ORDER BY key_id",
    );
    all(&p.reader, "data_keys", q, |r| {
        Ok(WrappedKey {
            key_id: get(r, "key_id")?,
            purpose: get(r, "purpose")?,
            wrapped: get(r, "wrapped")?,
            created_at_ms: get(r, "created_at_ms")?,
            retired_at_ms: get(r, "retired_at_ms")?,
        })
    })
    .await
}

async fn insert_keys_in(c: &mut Conn, keys: &[WrappedKey]) -> Result<u64> {
    let mut n = 0;
    for w in keys {
        let q = query(
            "INSERT INTO data_keys (key_id, purpose, wrapped, created_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(w.key_id)
        .bind(&w.purpose)
        .bind(&w.wrapped)
        .bind(w.created_at_ms);
        n += exec(&mut *c, "insert_data_key", q).await?;
    }
    Ok(n)
}

write_op!(insert_keys = insert_keys_in(keys: &[WrappedKey] => keys.to_vec()) -> u64);

/// Loads the stored keys, making the lookup key (id 1) and the first data key (id 2) if
/// there are none (two stores starting together: one insert wins, both load it).
async fn load(p: &P, kek: &Kek) -> Result<Keyring> {
    if let Some(ring) = Keyring::unwrap_all(kek, &wrapped_keys(p).await?)? {
        return Ok(ring);
    }
    let now = now_ms();
    let first = [
        new_wrapped(kek, 1, PURPOSE_LOOKUP, now)?,
        new_wrapped(kek, 2, PURPOSE_DATA, now)?,
    ];
    insert_keys(p, &first).await?;
    Keyring::unwrap_all(kek, &wrapped_keys(p).await?)?
        .ok_or_else(|| StoreError::DataKey("the data keys are incomplete".into()))
}

/// The store's keys: the loaded ones while younger than `atrest::REFRESH` (unless `force`),
/// else loaded again. The first load also encrypts rows left in plaintext.
pub(crate) async fn keyring(p: &P, force: bool) -> Result<Arc<Keyring>> {
    if !force && let Some(r) = p.at_rest.cached(true) {
        return Ok(r);
    }
    let _one = p.at_rest.lock_loading().await;
    if !force && let Some(r) = p.at_rest.cached(true) {
        return Ok(r);
    }
    let kek = p.at_rest.kek()?;
    let ring = match load(p, &kek).await {
        Ok(r) => p.at_rest.install(r),
        // A refresh that fails (the database busy, the KEK rotated under a running store)
        // keeps the keys in hand; a row under a key they lack still fails.
        Err(e) => match p.at_rest.cached(false) {
            Some(old) if !force => return Ok(old),
            _ => return Err(e),
        },
    };
    if p.at_rest.legacy_pending() {
        reencrypt_with(p, ring.clone(), 256, true, &mut 0).await?;
        p.at_rest.legacy_finished();
    }
    Ok(ring)
}

/// Runs `f` with the store's keys; if it meets a row under a key they lack (another store
/// rotated), loads the keys again and runs it once more.
pub(crate) async fn with_keys<T, F, Fut>(p: &P, f: F) -> Result<T>
where
    F: Fn(Arc<Keyring>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    match f(keyring(p, false).await?).await {
        Err(e) if is_unknown_key(&e) => f(keyring(p, true).await?).await,
        r => r,
    }
}

/// A row to move under the active key: its id, the key it is under (`None`: plaintext),
/// and its new ciphertext (and, for a card, its new keyed hash).
#[derive(Debug, Clone)]
pub(crate) struct Move {
    row: String,
    from: Option<i64>,
    to: Sealed,
    mac: Option<Vec<u8>>,
}

async fn move_rows_in(c: &mut Conn, cards: bool, moves: &[Move], legacy: bool) -> Result<u64> {
    if SQLITE && legacy {
        // Overwrite the freed plaintext instead of leaving it in the file's free space.
        exec(
            &mut *c,
            "secure_delete",
            query("PRAGMA secure_delete = ON"),
        )
        .await?;
    }
    let mut n = 0;
    for m in moves {
        let q = if cards {
            query(
                "UPDATE issuer_cards SET number = '', number_enc = $1, key_id = $2, \
                 number_mac = $3 WHERE card_id = $4 AND key_id IS NOT DISTINCT FROM $5",
            )
            .bind(&m.to.blob)
            .bind(m.to.key_id)
            .bind(&m.mac)
        } else {
            query(
                "UPDATE carrier_shipments SET addressee = '', address = '', \
                 destination_enc = $1, key_id = $2 \
                 WHERE tracking_number = $3 AND key_id IS NOT DISTINCT FROM $4",
            )
            .bind(&m.to.blob)
            .bind(m.to.key_id)
        };
        n += exec(&mut *c, "reencrypt", q.bind(&m.row).bind(m.from)).await?;
    }
    Ok(n)
}

write_op!(move_rows = move_rows_in(cards: bool, moves: &[Move] => moves.to_vec(), legacy: bool)
    -> u64);

/// The plaintext of a row to move: its stored text if never encrypted, else decrypted.
fn plain_of(
    ring: &Keyring,
    column: &'static str,
    row: &str,
    key_id: Option<i64>,
    enc: Option<&[u8]>,
    text: impl FnOnce() -> Result<Vec<u8>>,
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    match (key_id, enc) {
        (None, _) => Ok(zeroize::Zeroizing::new(text()?)),
        (Some(k), Some(blob)) => ring.open(column, row, k, blob),
        (Some(_), None) => Err(StoreError::Corrupt(column)),
    }
}

/// One batch of rows of one table not under the active key (or, `legacy`, only plaintext
/// ones), moved. Returns (rows selected, rows moved).
async fn move_batch(
    p: &P,
    ring: &Keyring,
    cards: bool,
    batch: u32,
    legacy: bool,
) -> Result<(usize, u64)> {
    let other = if legacy { "" } else { " OR key_id <> $2" };
    let sql = if cards {
        format!(
            "SELECT card_id AS row_id, key_id, number_enc AS enc, number AS a, '' AS b \
             FROM issuer_cards WHERE (key_id IS NULL AND number <> ''){other} \
             ORDER BY card_id LIMIT $1"
        )
    } else {
        format!(
            "SELECT tracking_number AS row_id, key_id, destination_enc AS enc, \
             addressee AS a, address AS b FROM carrier_shipments \
             WHERE (key_id IS NULL AND (addressee <> '' OR address <> '')){other} \
             ORDER BY tracking_number LIMIT $1"
        )
    };
    let mut q = query(&sql).bind(i64::from(batch));
    if !legacy {
        q = q.bind(ring.active());
    }
    let rows = all(&p.reader, "reencrypt", q, |r| {
        Ok((
            get::<String>(r, "row_id")?,
            get::<Option<i64>>(r, "key_id")?,
            get::<Option<Vec<u8>>>(r, "enc")?,
            get::<String>(r, "a")?,
            get::<String>(r, "b")?,
        ))
    })
    .await?;
    let column = if cards { CARD_NUMBER } else { DESTINATION };
    let mut moves = Vec::with_capacity(rows.len());
    for (row, key_id, enc, a, b) in &rows {
        let plain = plain_of(ring, column, row, *key_id, enc.as_deref(), || {
            if cards {
                Ok(a.as_bytes().to_vec())
            } else {
                serde_json::to_vec(&(a, b)).map_err(|_| StoreError::Corrupt(column))
            }
        })?;
        let mac = if cards {
            let number = std::str::from_utf8(&plain).map_err(|_| StoreError::Corrupt(column))?;
            Some(ring.number_mac(number))
        } else {
            None
        };
        moves.push(Move {
            row: row.clone(),
            from: *key_id,
            to: ring.seal(column, row, &plain)?,
            mac,
        });
    }
    if moves.is_empty() {
        return Ok((0, 0));
    }
    let n = move_rows(p, cards, &moves, legacy).await?;
    Ok((rows.len(), n))
}

/// Moves the rows (see `move_batch`) with `ring`, counting them in `moved`; stops at a row
/// under a key it lacks.
async fn reencrypt_with(
    p: &P,
    ring: Arc<Keyring>,
    batch: u32,
    legacy: bool,
    moved: &mut u64,
) -> Result<()> {
    let before = *moved;
    for cards in [true, false] {
        loop {
            match move_batch(p, &ring, cards, batch, legacy).await? {
                (0, _) => break,
                (_, n) => *moved += n,
            }
        }
    }
    let moved = *moved - before;
    if SQLITE && legacy && moved > 0 {
        // Push the pages with the overwritten plaintext into the file and empty the WAL.
        exec(
            &p.writer,
            "checkpoint",
            query("PRAGMA wal_checkpoint(TRUNCATE)"),
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn reencrypt(p: &P, batch: u32, legacy: bool) -> Result<u64> {
    let mut moved = 0;
    loop {
        let ring = keyring(p, true).await?;
        match reencrypt_with(p, ring, batch, legacy, &mut moved).await {
            Ok(()) => return Ok(moved),
            // A row under a key newer than ours: another store rotated; load again.
            Err(e) if is_unknown_key(&e) => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn rotate_in(c: &mut Conn, w: &WrappedKey) -> Result<u64> {
    let n = insert_keys_in(c, std::slice::from_ref(w)).await?;
    if n == 0 {
        return Err(StoreError::Conflict(
            "another data-key rotation ran at the same time; retry".into(),
        ));
    }
    let q = query(
        "UPDATE data_keys SET retired_at_ms = $1 WHERE purpose = $2 AND key_id < $3 \
         AND retired_at_ms IS NULL",
    )
    .bind(w.created_at_ms)
    .bind(PURPOSE_DATA)
    .bind(w.key_id);
    exec(&mut *c, "rotate_data_key", q).await
}

write_op!(rotate_key = rotate_in(w: &WrappedKey => w.clone()) -> u64);

pub(crate) async fn rotate_data_key(p: &P, now_ms: i64) -> Result<i64> {
    keyring(p, true).await?;
    let kek = p.at_rest.kek()?;
    let next = wrapped_keys(p)
        .await?
        .iter()
        .map(|w| w.key_id)
        .max()
        .unwrap_or(0)
        + 1;
    rotate_key(p, &new_wrapped(&kek, next, PURPOSE_DATA, now_ms)?).await?;
    Ok(keyring(p, true).await?.active())
}

async fn retire_in(c: &mut Conn, before_ms: i64) -> Result<Vec<i64>> {
    let q = query(
        "DELETE FROM data_keys WHERE purpose = $1 AND retired_at_ms IS NOT NULL \
         AND retired_at_ms < $2 \
         AND key_id NOT IN (SELECT key_id FROM issuer_cards WHERE key_id IS NOT NULL) \
         AND key_id NOT IN (SELECT key_id FROM carrier_shipments WHERE key_id IS NOT NULL) \
         RETURNING key_id",
    )
    .bind(PURPOSE_DATA)
    .bind(before_ms);
    let mut ids = all(&mut *c, "retire_data_keys", q, |r| get::<i64>(r, "key_id")).await?;
    ids.sort_unstable();
    Ok(ids)
}

write_op!(retire = retire_in(before_ms: i64) -> Vec<i64>);

pub(crate) async fn retire_data_keys(p: &P, before_ms: i64) -> Result<Vec<i64>> {
    let ids = retire(p, before_ms).await?;
    keyring(p, true).await?;
    Ok(ids)
}

/// A re-wrap: the row's id (key id or KEM epoch), its wrapped bytes now and after.
type Rewrap = (i64, Vec<u8>, Vec<u8>);

async fn rewrap_in(c: &mut Conn, rows: &[Rewrap], kem_rows: &[Rewrap]) -> Result<u64> {
    let mut n = 0;
    for (id, old, new) in rows {
        let q = query("UPDATE data_keys SET wrapped = $1 WHERE key_id = $2 AND wrapped = $3")
            .bind(new)
            .bind(*id)
            .bind(old);
        n += exec(&mut *c, "rewrap_data_keys", q).await?;
    }
    // The KEM key ring (issue 19) is wrapped under the same KEK: re-wrapped in the same
    // transaction, or a KEK rotation would lock the party out of its own parts.
    for (epoch, old, new) in kem_rows {
        let q = query("UPDATE kem_keys SET wrapped = $1 WHERE epoch = $2 AND wrapped = $3")
            .bind(new)
            .bind(*epoch)
            .bind(old);
        n += exec(&mut *c, "rewrap_kem_keys", q).await?;
    }
    if n != (rows.len() + kem_rows.len()) as u64 {
        return Err(StoreError::Conflict(
            "the data keys changed during the re-wrap; retry".into(),
        ));
    }
    Ok(n)
}

write_op!(rewrap_all = rewrap_in(rows: &[Rewrap] => rows.to_vec(),
    kem_rows: &[Rewrap] => kem_rows.to_vec()) -> u64);

pub(crate) async fn rewrap_data_keys(p: &P, new: &Kek) -> Result<usize> {
    keyring(p, true).await?;
    let old = p.at_rest.kek()?;
    let rows = wrapped_keys(p)
        .await?
        .into_iter()
        .map(|w| Ok((w.key_id, w.wrapped.clone(), rewrap(&old, new, &w)?)))
        .collect::<Result<Vec<_>>>()?;
    let kem_rows = super::kemkeys::kem_key_rows(p)
        .await?
        .into_iter()
        .map(|k| Ok((k.epoch, k.wrapped.clone(), rewrap_kem(&old, new, &k)?)))
        .collect::<Result<Vec<_>>>()?;
    rewrap_all(p, &rows, &kem_rows).await?;
    p.at_rest.set_kek(new.clone());
    keyring(p, true).await?;
    Ok(rows.len())
}

pub(crate) async fn data_key_info(p: &P) -> Result<Vec<DataKeyInfo>> {
    let keys = wrapped_keys(p).await?;
    let q = query(
        "SELECT key_id, COUNT(*) AS n FROM (SELECT key_id FROM issuer_cards \
         WHERE key_id IS NOT NULL UNION ALL SELECT key_id FROM carrier_shipments \
         WHERE key_id IS NOT NULL) AS t GROUP BY key_id",
    );
    let counts = all(&p.reader, "data_keys", q, |r| {
        Ok((get::<i64>(r, "key_id")?, to_u64(get(r, "n")?, "count")?))
    })
    .await?;
    let active = keys
        .iter()
        .filter(|w| w.purpose == PURPOSE_DATA)
        .map(|w| w.key_id)
        .max();
    Ok(keys
        .into_iter()
        .map(|w| DataKeyInfo {
            active: Some(w.key_id) == active,
            rows: counts
                .iter()
                .find(|(k, _)| *k == w.key_id)
                .map_or(0, |(_, n)| *n),
            key_id: w.key_id,
            purpose: w.purpose,
            created_at_ms: w.created_at_ms,
            retired_at_ms: w.retired_at_ms,
        })
        .collect())
}

pub(crate) async fn card_ids_by_number(p: &P, number: &str) -> Result<Vec<String>> {
    let ring = keyring(p, false).await?;
    let q = query("SELECT card_id FROM issuer_cards WHERE number_mac = $1 ORDER BY card_id")
        .bind(ring.number_mac(number));
    all(&p.reader, "card_ids_by_number", q, |r| get(r, "card_id")).await
}
