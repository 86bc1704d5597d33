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
    let period = rule.period(today);
    let mut ensure = Sql::of(
        backend,
        "INSERT INTO number_sequences (rule_key, period, last_value) VALUES (",
    );
    ensure
        .bind(rule_key)
        .push(", ")
        .bind(period.as_str())
        .push(", 0) ON CONFLICT (rule_key, period) DO NOTHING");
    ensure.query().execute(&mut *conn).await?;
    let mut bump = Sql::of(
        backend,
        "UPDATE number_sequences SET last_value = last_value + 1 WHERE rule_key = ",
    );
    bump.bind(rule_key)
        .push(" AND period = ")
        .bind(period.as_str())
        .push(" RETURNING last_value");
    let row = bump.query().fetch_one(&mut *conn).await?;
    let value: i64 = row.try_get("last_value")?;
    Ok(rule.format(&period, value))
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
    let mut ensure = Sql::of(
        backend,
        "INSERT INTO number_sequences (rule_key, period, last_value) VALUES (",
    );
    ensure
        .bind(rule_key)
        .push(", ")
        .bind(period.as_str())
        .push(", 0) ON CONFLICT (rule_key, period) DO NOTHING");
    ensure.query().execute(&mut *conn).await?;
    let step = i64::try_from(count).map_err(anyhow::Error::from)?;
    let mut bump = Sql::of(backend, "UPDATE number_sequences SET last_value = last_value + ");
    bump.bind(step)
        .push(" WHERE rule_key = ")
        .bind(rule_key)
        .push(" AND period = ")
        .bind(period.as_str())
        .push(" RETURNING last_value");
    let row = bump.query().fetch_one(&mut *conn).await?;
    let last: i64 = row.try_get("last_value")?;
    Ok((last - step + 1..=last).map(|v| rule.format(&period, v)).collect())
}
