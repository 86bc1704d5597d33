//! Human-readable numbers (`CM000001`). The counter row is incremented inside the creating
//! transaction: on PostgreSQL the row lock serialises concurrent creators across app servers,
//! on SQLite the single writer does; a rolled-back create never consumed a number anyone saw.
//! A unique index on every numbered column backs this up.

use guanxi_core::NumberingRule;
use sqlx::Row;

use crate::db::Backend;
use crate::error::StoreResult;
use crate::sql::Sql;

/// Takes the next number for `rule_key` under `rule`, inside the caller's transaction.
pub async fn next_number(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    rule_key: &str,
    rule: &NumberingRule,
    today: time::Date,
) -> StoreResult<String> {
    let mut numbers = next_numbers(conn, backend, rule_key, rule, today, 1).await?;
    numbers
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no number handed out for {rule_key}").into())
}

/// Hands out `count` consecutive numbers of a rule in one step (batch creates): the counter
/// moves by `count` at once, so the numbers are as unique and gap-free as one at a time.
pub async fn next_numbers(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    rule_key: &str,
    rule: &NumberingRule,
    today: time::Date,
    count: usize,
) -> StoreResult<Vec<String>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let period = rule.period(today);
    let step = i64::try_from(count).map_err(anyhow::Error::from)?;
    // One upsert creates the period's counter or moves it on (row-locked on PostgreSQL, under
    // the single writer on SQLite), so concurrent creates never share a number.
    let mut bump = Sql::of(
        backend,
        "INSERT INTO number_sequences (rule_key, period, last_value) VALUES (",
    );
    bump.bind(rule_key)
        .push(", ")
        .bind(period.as_str())
        .push(", ")
        .bind(step)
        .push(
            ") ON CONFLICT (rule_key, period) DO UPDATE SET last_value = number_sequences.last_value + excluded.last_value \
             RETURNING last_value",
        );
    let row = bump.query().fetch_one(&mut *conn).await?;
    let last: i64 = row.try_get("last_value")?;
    Ok((last - step + 1..=last).map(|v| rule.format(&period, v)).collect())
}
