//! Counts for statistics: records grouped by a field, and new records per day, week or month.
//! Grouping happens in SQL (`GROUP BY`), over the same WHERE clause a list uses — the actor's
//! read scope plus the list's filter syntax — so a salesperson's chart counts exactly the records
//! their list shows, and a million rows never travel to Rust.

use guanxi_core::filter::Filter;
use guanxi_core::meta::FieldType;
use guanxi_core::{Actor, DomainError, ObjectDef};
use serde::Serialize;
use sqlx::Row;

use super::Engine;
use super::codec::push_field_expr;
use super::list::push_filter;
use super::scope::{check_query_fields, push_read_scope, require, view_of};
use crate::db::Backend;
use crate::error::StoreResult;
use crate::sql::Sql;

/// Most groups one count returns (the largest first).
pub const MAX_GROUPS: i64 = 1000;

/// One group and its count. `value` is `None` for records where the field is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupCount {
    pub value: Option<String>,
    pub count: i64,
}

/// The length of a period of a growth chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Day,
    /// Weeks start on Monday and are named by that Monday's date.
    Week,
    Month,
}

/// Whether records can be grouped by a field of this type (single text-like values).
pub fn groupable(t: &FieldType) -> bool {
    matches!(
        t,
        FieldType::Text { .. }
            | FieldType::Select { .. }
            | FieldType::State
            | FieldType::Relation { .. }
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url
    )
}

/// The period (in China Standard Time, UTC+8, no daylight saving) of a stored UTC timestamp
/// column: `2026-11-22`, the week's Monday `2026-11-16`, or `2026-11`.
fn push_period(sql: &mut Sql, column: &str, interval: Interval) {
    match sql.backend() {
        Backend::Sqlite => {
            let expr = match interval {
                Interval::Day => format!("strftime('%Y-%m-%d', \"{column}\", '+8 hours')"),
                // 'weekday 0' moves forward to Sunday (or stays on it); six days back is Monday.
                Interval::Week => format!("date(\"{column}\", '+8 hours', 'weekday 0', '-6 days')"),
                Interval::Month => format!("strftime('%Y-%m', \"{column}\", '+8 hours')"),
            };
            sql.push(&expr);
        }
        Backend::Postgres => {
            let local = format!("(\"{column}\"::timestamptz AT TIME ZONE 'Asia/Shanghai')");
            let expr = match interval {
                Interval::Day => format!("to_char({local}, 'YYYY-MM-DD')"),
                Interval::Week => format!("to_char(date_trunc('week', {local}), 'YYYY-MM-DD')"),
                Interval::Month => format!("to_char({local}, 'YYYY-MM')"),
            };
            sql.push(&expr);
        }
    }
}

impl Engine {
    fn stats_where(
        &self,
        sql: &mut Sql,
        actor: &Actor,
        object: &ObjectDef,
        filter: Option<&Filter>,
    ) -> StoreResult<()> {
        let scope = require(actor, object, "read")?;
        sql.push(" FROM ")
            .ident(&object.table)
            .push(" WHERE \"deleted_at\" IS NULL");
        push_read_scope(sql, actor, object, scope);
        if let Some(f) = filter {
            sql.push(" AND ");
            push_filter(sql, f);
        }
        Ok(())
    }

    /// Live records the actor may read (and that match `filter`), counted per value of `field`,
    /// the largest groups first (ties by value, empty last). The field must be visible to the actor and [`groupable`].
    pub async fn count_by_field(
        &self,
        actor: &Actor,
        object_key: &str,
        filter: Option<&Filter>,
        field: &str,
    ) -> StoreResult<Vec<GroupCount>> {
        let full = self.object(object_key)?;
        let view = view_of(&full, actor);
        check_query_fields(&view, filter, &[])?;
        let Some(def) = view.field(field).filter(|f| groupable(&f.field_type)) else {
            return Err(DomainError::invalid_query(
                format!("不能按“{field}”分组统计"),
                format!("records cannot be counted by '{field}'"),
            )
            .into());
        };
        let mut sql = Sql::of(self.db.backend(), "SELECT ");
        push_field_expr(&mut sql, def);
        sql.push(" AS g, count(*) AS n");
        self.stats_where(&mut sql, actor, &view, filter)?;
        sql.push(" GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST LIMIT ")
            .bind(MAX_GROUPS);
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        rows.iter()
            .map(|r| {
                Ok(GroupCount {
                    value: r.try_get::<Option<String>, _>("g")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// New records per period between two stored UTC timestamps (`from` inclusive, `to`
    /// exclusive), by `created_at`, plus how many existed before `from` (the base of a
    /// cumulative line). Periods without records are absent.
    pub async fn count_by_period(
        &self,
        actor: &Actor,
        object_key: &str,
        filter: Option<&Filter>,
        interval: Interval,
        from: &str,
        to: &str,
    ) -> StoreResult<(i64, Vec<GroupCount>)> {
        let full = self.object(object_key)?;
        let view = view_of(&full, actor);
        check_query_fields(&view, filter, &[])?;
        let backend = self.db.backend();
        let mut before = Sql::of(backend, "SELECT count(*) AS n");
        self.stats_where(&mut before, actor, &view, filter)?;
        before.push(" AND \"created_at\" < ").bind(from);
        let base: i64 = before.query().fetch_one(self.db.reader()).await?.try_get("n")?;

        let mut sql = Sql::of(backend, "SELECT ");
        push_period(&mut sql, "created_at", interval);
        sql.push(" AS g, count(*) AS n");
        self.stats_where(&mut sql, actor, &view, filter)?;
        sql.push(" AND \"created_at\" >= ")
            .bind(from)
            .push(" AND \"created_at\" < ")
            .bind(to)
            .push(" GROUP BY 1 ORDER BY 1");
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        let groups = rows
            .iter()
            .map(|r| {
                Ok(GroupCount {
                    value: r.try_get::<Option<String>, _>("g")?,
                    count: r.try_get("n")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((base, groups))
    }
}
