//! The issuer operator's card SQL: changing a credit limit with its balanced ledger movement.

use super::common::*;
use crate::error::{Result, StoreError};
use crate::sql::{check_id, to_i64};

async fn set_card_limit_in(c: &mut Conn, card_id: &str, limit: u64, now_ms: i64) -> Result<bool> {
    const OP: &str = "set_card_limit";
    check_id("card id", card_id)?;
    let limit = to_i64(limit, "credit limit")?;
    let sql =
        format!("SELECT credit_limit, available FROM issuer_cards WHERE card_id = $1{FOR_UPDATE}");
    let q = query(&sql).bind(card_id);
    let Some((old, available)) = optional(&mut *c, OP, q, |r| {
        Ok((get::<i64>(r, "credit_limit")?, get::<i64>(r, "available")?))
    })
    .await?
    else {
        return Ok(false);
    };
    let delta = limit
        .checked_sub(old)
        .ok_or(StoreError::OutOfRange("credit limit"))?;
    let now_available = available
        .checked_add(delta)
        .ok_or(StoreError::OutOfRange("available credit"))?;
    if now_available < 0 {
        return Err(StoreError::Conflict(format!(
            "the card already uses {} of its limit",
            old - available
        )));
    }
    if delta == 0 {
        return Ok(true);
    }
    let q = query(
        "UPDATE issuer_cards SET credit_limit = $2, available = available + $3 WHERE card_id = $1",
    )
    .bind(card_id)
    .bind(limit)
    .bind(delta);
    exec(&mut *c, OP, q).await?;
    let q = query(
        "INSERT INTO issuer_ledger (movement_id, kind, account, amount, created_at_ms) \
         VALUES ($1, 'limit', $2, $3, $5), ($1, 'limit', 'issuer:credit', $4, $5)",
    )
    .bind(format!("{card_id}:limit:{now_ms}"))
    .bind(format!("card:{card_id}:available"))
    .bind(delta)
    .bind(-delta)
    .bind(now_ms);
    exec(&mut *c, OP, q).await?;
    Ok(true)
}

write_op!(set_card_limit = set_card_limit_in(card_id: &str => card_id.to_owned(), limit: u64,
    now_ms: i64) -> bool);
