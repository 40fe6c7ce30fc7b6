//! The KEM key ring's SQL (`kem_keys`, migration 9): the wrapped rows, inserting an epoch
//! once, deleting epochs.

use warifu_core::kem::{KemId, KemSecretKey};

use super::common::*;
use crate::atrest::{unwrap_kem, wrap_kem};
use crate::error::{Result, StoreError};
use crate::kemkeys::{KemKeyRow, StoredKemKey};

/// Every stored epoch's key, unwrapped under the store's key-encryption key.
pub(crate) async fn kem_keys(p: &P) -> Result<Vec<StoredKemKey>> {
    let kek = p.at_rest.kek()?;
    kem_key_rows(p)
        .await?
        .into_iter()
        .map(|row| {
            let secret = unwrap_kem(&kek, &row)?;
            let kem = match row.kem.as_str() {
                "x25519-hkdf-sha256" => KemId::X25519HkdfSha256,
                _ => return Err(StoreError::Corrupt("kem_keys.kem")),
            };
            let epoch = u32::try_from(row.epoch).map_err(|_| StoreError::Corrupt("kem_keys.epoch"))?;
            let key = KemSecretKey::from_bytes(kem, epoch, secret.as_ref())
                .map_err(|_| StoreError::Corrupt("kem_keys.wrapped"))?;
            Ok(StoredKemKey {
                key,
                created_at_ms: row.created_at_ms,
            })
        })
        .collect()
}

/// Stores `key` wrapped; `false` if its epoch is taken (another replica rotated first).
pub(crate) async fn add_kem_key(p: &P, key: &KemSecretKey, now_ms: i64) -> Result<bool> {
    let kek = p.at_rest.kek()?;
    let mut row = KemKeyRow {
        epoch: i64::from(key.epoch()),
        kem: key.kem().name().to_owned(),
        wrapped: Vec::new(),
        created_at_ms: now_ms,
    };
    row.wrapped = wrap_kem(&kek, &row, key.expose_bytes())?;
    insert_kem_key(p, &row).await
}

pub(crate) async fn kem_key_rows(p: &P) -> Result<Vec<KemKeyRow>> {
    let q = query("SELECT epoch, kem, wrapped, created_at_ms FROM kem_keys ORDER BY epoch");
    all(&p.reader, "kem_keys", q, |r| {
        Ok(KemKeyRow {
            epoch: get(r, "epoch")?,
            kem: get(r, "kem")?,
            wrapped: get(r, "wrapped")?,
            created_at_ms: get(r, "created_at_ms")?,
        })
    })
    .await
}

async fn insert_kem_key_in(c: &mut Conn, row: &KemKeyRow) -> Result<bool> {
    let q = query(
        "INSERT INTO kem_keys (epoch, kem, wrapped, created_at_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (epoch) DO NOTHING",
    )
    .bind(row.epoch)
    .bind(&row.kem)
    .bind(&row.wrapped)
    .bind(row.created_at_ms);
    Ok(exec(&mut *c, "insert_kem_key", q).await? == 1)
}

write_op!(insert_kem_key = insert_kem_key_in(row: &KemKeyRow => row.clone()) -> bool);

async fn delete_kem_keys_in(c: &mut Conn, epochs: &[i64]) -> Result<u64> {
    let mut n = 0;
    for e in epochs {
        let q = query("DELETE FROM kem_keys WHERE epoch = $1").bind(*e);
        n += exec(&mut *c, "delete_kem_keys", q).await?;
    }
    Ok(n)
}

write_op!(delete_kem_keys = delete_kem_keys_in(epochs: &[i64] => epochs.to_vec()) -> u64);
