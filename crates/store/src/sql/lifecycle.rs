// The merchant lifecycle's SQL (order facts), included after `ops.rs` once per backend.
// (An included file cannot carry inner doc comments: see `sql/mod.rs`.)

async fn put_order_fact_in(c: &mut Conn, f: &OrderFact) -> Result<()> {
    check_id("order id", &f.order_id)?;
    check_id("fact kind", &f.kind)?;
    sqlx::query(
        "INSERT INTO merchant_order_facts (order_id, kind, body, updated_at_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (order_id, kind) \
         DO UPDATE SET body = excluded.body, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(&f.order_id)
    .bind(&f.kind)
    .bind(&f.body)
    .bind(f.updated_at_ms)
    .execute(&mut *c)
    .await
    .map_err(err("put_order_fact"))?;
    Ok(())
}

write_op!(put_order_fact, put_order_fact_in, (f: &OrderFact => f.clone()) -> ());

pub(crate) async fn order_facts(p: &P, order_id: &str) -> Result<Vec<OrderFact>> {
    let rows = sqlx::query(
        "SELECT order_id, kind, body, updated_at_ms FROM merchant_order_facts \
         WHERE order_id = $1 ORDER BY kind",
    )
    .bind(order_id)
    .fetch_all(&p.reader)
    .await
    .map_err(err("order_facts"))?;
    rows.iter()
        .map(|r| {
            Ok(OrderFact {
                order_id: get(r, "order_id")?,
                kind: get(r, "kind")?,
                body: get(r, "body")?,
                updated_at_ms: get(r, "updated_at_ms")?,
            })
        })
        .collect()
}
