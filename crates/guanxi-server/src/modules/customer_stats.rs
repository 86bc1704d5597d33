//! Customer statistics (issue 5 §9; seed 001 M1 §2.4.3–2.4.5 客户价值/来源/区域统计, M7 七
//! 客户增长趋势): `GET /api/v1/customers/stats?by=…` counts customers per type, source, level,
//! value tier, province, city, industry, status, owner or department, and
//! `GET /api/v1/customers/stats/growth` counts new customers per day, week or month with a
//! cumulative line. Both take the list's `filter` and count only what the caller may read
//! (the engine groups in SQL within the read scope); labels come from the data dictionary, the
//! workflow, or the users and departments, in the caller's language, ready for a chart.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use guanxi_core::filter::parse_filter_text;
use guanxi_core::meta::FieldType;
use guanxi_core::time_fmt::{format_date, format_utc, parse_date, today_shanghai};
use guanxi_core::{DomainError, Label};
use guanxi_store::records::{GroupCount, Interval};
use guanxi_store::sql::{Bind, Sql};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset};
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{ApiQuery, CurrentActor, RequestLang};
use crate::routes::data;
use crate::state::AppState;

const OBJECT: &str = "customer";
/// Most periods one growth chart may have.
pub const MAX_BUCKETS: usize = 1000;

/// Dimensions `by` accepts, and the field each counts. `value_tier` counts once the customer
/// object has that field (another part of issue 5 adds it); until then it is an unknown field.
pub const DIMENSIONS: &[(&str, &str)] = &[
    ("customer_type", "customer_type"),
    ("source", "source"),
    ("level", "level"),
    ("value_tier", "value_tier"),
    ("industry", "industry"),
    ("credit_status", "credit_status"),
    ("status", "status"),
    ("province", "province"),
    ("city", "city"),
    ("owner", "owner_id"),
    ("department", "department_id"),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/customers/stats", get(customer_stats))
        .route("/api/v1/customers/stats/growth", get(customer_growth))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// customer_type, source, level, value_tier, industry, credit_status, status, province,
    /// city, owner or department.
    by: Option<String>,
    /// The list's filter syntax (JSON), e.g. `{"field":"province","op":"eq","value":"广东省"}`.
    filter: Option<String>,
}

/// One bar or slice of a chart.
#[derive(Debug, Serialize)]
pub struct Group {
    /// The stored value (`null` for customers where the field is empty).
    pub value: Option<String>,
    /// What to show for it, in the caller's language.
    pub label: String,
    pub count: i64,
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub by: String,
    pub field: String,
    /// The dimension's name in the caller's language.
    pub label: String,
    pub total: i64,
    pub groups: Vec<Group>,
}

fn unknown_dimension(by: &str) -> ApiError {
    let names: Vec<&str> = DIMENSIONS.iter().map(|(d, _)| *d).collect();
    ApiError::bad_request(
        "unknown_dimension",
        format!("不能按“{by}”统计客户；可用：{}", names.join("、")),
        format!("customers cannot be counted by '{by}'; use one of {}", names.join(", ")),
    )
    .with_details(serde_json::json!({"dimensions": names}))
}

/// Display names by id from a table with an id and a name column.
async fn names_of(state: &AppState, table: &str, column: &str, ids: &[String]) -> ApiResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for part in ids.chunks(500) {
        let mut sql = Sql::of(state.db.backend(), "SELECT \"id\", ");
        sql.ident(column)
            .push(" AS name FROM ")
            .ident(table)
            .push(" WHERE \"id\" IN (")
            .bind_list(part.iter().map(|i| Bind::Text(i.clone())))
            .push(")");
        let rows = sql
            .query()
            .fetch_all(state.db.reader())
            .await
            .map_err(ApiError::internal)?;
        for r in rows {
            out.insert(
                r.try_get::<String, _>("id").map_err(ApiError::internal)?,
                r.try_get::<String, _>("name").map_err(ApiError::internal)?,
            );
        }
    }
    Ok(out)
}

/// Customers counted per value of one dimension, largest first, with labels for a chart.
#[utoipa::path(get, path = "/api/v1/customers/stats", tag = "customers", operation_id = "customer_stats",
    params(StatsParams),
    responses((status = 200, description = "`{by, field, label, total, groups: [{value, label, count}]}`"),
        (status = 400, body = ErrorEnvelope, description = "unknown_dimension"), (status = 403, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn customer_stats(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    RequestLang(lang): RequestLang,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> ApiResult<impl IntoResponse> {
    let by = p.by.unwrap_or_else(|| "customer_type".into());
    let Some((_, field_key)) = DIMENSIONS.iter().find(|(d, _)| *d == by) else {
        return Err(unknown_dimension(&by));
    };
    let view = state.engine.object_for(&actor, OBJECT)?;
    // A dimension whose field does not exist (yet) or is hidden from the caller.
    let Some(field) = view.field(field_key).cloned() else {
        return Err(unknown_dimension(&by));
    };
    let filter = p.filter.as_deref().map(|f| parse_filter_text(&view, f)).transpose()?;
    let counts = state
        .engine
        .count_by_field(&actor, OBJECT, filter.as_ref(), field_key)
        .await?;
    let snapshot = state.engine.catalog().snapshot();
    let ids: Vec<String> = counts.iter().filter_map(|g| g.value.clone()).collect();
    let names = match *field_key {
        "owner_id" => names_of(&state, "users", "display_name", &ids).await?,
        "department_id" => names_of(&state, "departments", "name", &ids).await?,
        _ => BTreeMap::new(),
    };
    let label_of = |g: &GroupCount| -> String {
        let Some(value) = &g.value else {
            let empty = if *field_key == "owner_id" {
                Label::new("公海（无负责人）", "Pool (no owner)")
            } else {
                Label::new("未填写", "Not set")
            };
            return empty.get(lang).to_owned();
        };
        let found = match &field.field_type {
            FieldType::Select { dict } => snapshot
                .dictionary(dict)
                .and_then(|items| items.iter().find(|i| i.value == *value))
                .map(|i| i.label.get(lang).to_owned()),
            FieldType::State => view
                .state_machine
                .as_ref()
                .and_then(|m| m.states.iter().find(|s| s.key == *value))
                .map(|s| s.label.get(lang).to_owned()),
            _ => names.get(value).cloned(),
        };
        found.unwrap_or_else(|| value.clone())
    };
    let groups: Vec<Group> = counts
        .iter()
        .map(|g| Group {
            value: g.value.clone(),
            label: label_of(g),
            count: g.count,
        })
        .collect();
    Ok(data(Stats {
        by,
        field: (*field_key).to_owned(),
        label: field.label.get(lang).to_owned(),
        total: groups.iter().map(|g| g.count).sum(),
        groups,
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrowthParams {
    /// `month` (default), `week` (weeks start on Monday) or `day`.
    interval: Option<String>,
    /// First day, `YYYY-MM-DD` (China time). Default: 12 months, 12 weeks or 30 days back.
    from: Option<String>,
    /// Last day, inclusive, `YYYY-MM-DD`. Default: today.
    to: Option<String>,
    /// The list's filter syntax (JSON).
    filter: Option<String>,
}

/// One period of a growth chart.
#[derive(Debug, Serialize)]
pub struct Bucket {
    /// `2026-11`, the week's Monday `2026-11-16`, or `2026-11-22`.
    pub period: String,
    /// The period's first day.
    pub start: String,
    /// Customers created in the period.
    pub count: i64,
    /// Customers created up to the end of the period (including those before `from`).
    pub cumulative: i64,
}

#[derive(Debug, Serialize)]
pub struct Growth {
    pub interval: Interval,
    pub from: String,
    pub to: String,
    /// Customers created before `from`.
    pub base: i64,
    /// Customers created from `from` to `to`.
    pub total: i64,
    pub buckets: Vec<Bucket>,
}

fn bad_query(zh: String, en: String) -> ApiError {
    DomainError::invalid_query(zh, en).into()
}

/// A period bound: a calendar date between the years 1900 and 9000, so that stepping through
/// the periods (a day, a week, a month past the end) cannot leave the calendar.
fn parse_day(name: &str, s: &str) -> ApiResult<Date> {
    parse_date(s)
        .filter(|d| (1900..=9000).contains(&d.year()))
        .ok_or_else(|| {
            bad_query(
                format!("{name} 应为 1900 至 9000 年间 YYYY-MM-DD 格式的日期，而不是“{s}”"),
                format!("{name} must be a date like 2026-11-22 between the years 1900 and 9000, not '{s}'"),
            )
        })
}

fn first_of_month(d: Date) -> Date {
    d.replace_day(1).unwrap_or(d)
}

fn monday_of(d: Date) -> Date {
    d - Duration::days(i64::from(d.weekday().number_days_from_monday()))
}

fn next_month(d: Date) -> Date {
    let (y, m) = match d.month() {
        Month::December => (d.year() + 1, Month::January),
        m => (d.year(), m.next()),
    };
    Date::from_calendar_date(y, m, 1).unwrap_or(d)
}

fn months_back(d: Date, n: u32) -> Date {
    let mut out = first_of_month(d);
    for _ in 0..n {
        out = first_of_month(out - Duration::days(1));
    }
    out
}

/// The stored UTC form of a China-time midnight.
fn shanghai_midnight_utc(d: Date) -> String {
    let offset = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    format_utc(OffsetDateTime::new_in_offset(d, Time::MIDNIGHT, offset))
}

/// The periods from `from` to `to` (inclusive): (key, first day).
fn periods(interval: Interval, from: Date, to: Date) -> Vec<(String, Date)> {
    let mut out = Vec::new();
    let mut start = match interval {
        Interval::Day => from,
        Interval::Week => monday_of(from),
        Interval::Month => first_of_month(from),
    };
    while start <= to && out.len() <= MAX_BUCKETS {
        let key = match interval {
            Interval::Month => format_date(start).get(..7).unwrap_or_default().to_owned(),
            _ => format_date(start),
        };
        out.push((key, start));
        start = match interval {
            Interval::Day => start + Duration::days(1),
            Interval::Week => start + Duration::days(7),
            Interval::Month => next_month(start),
        };
    }
    out
}

/// New customers per day, week or month (China time) with a cumulative count.
#[utoipa::path(get, path = "/api/v1/customers/stats/growth", tag = "customers", operation_id = "customer_growth",
    params(GrowthParams),
    responses((status = 200, description = "`{interval, from, to, base, total, buckets: [{period, start, count, cumulative}]}`"),
        (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn customer_growth(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(p): ApiQuery<GrowthParams>,
) -> ApiResult<impl IntoResponse> {
    let interval = match p.interval.as_deref().unwrap_or("month") {
        "month" => Interval::Month,
        "week" => Interval::Week,
        "day" => Interval::Day,
        other => {
            return Err(bad_query(
                format!("interval 只能是 month、week 或 day，而不是“{other}”"),
                format!("interval must be month, week or day, not '{other}'"),
            ));
        }
    };
    let to = match &p.to {
        Some(t) => parse_day("to", t)?,
        None => today_shanghai(),
    };
    let from = match &p.from {
        Some(f) => parse_day("from", f)?,
        None => match interval {
            Interval::Month => months_back(to, 11),
            Interval::Week => monday_of(to) - Duration::weeks(11),
            Interval::Day => to - Duration::days(29),
        },
    };
    if from > to {
        return Err(bad_query("from 不能晚于 to".into(), "from must not be after to".into()));
    }
    let buckets = periods(interval, from, to);
    if buckets.len() > MAX_BUCKETS {
        return Err(bad_query(
            format!("时间段过多（最多{MAX_BUCKETS}个），请缩小范围或改用更长的间隔"),
            format!("too many periods (at most {MAX_BUCKETS}); narrow the range or use a longer interval"),
        ));
    }
    let view = state.engine.object_for(&actor, OBJECT)?;
    let filter = p.filter.as_deref().map(|f| parse_filter_text(&view, f)).transpose()?;
    // Whole periods: a month chart from the 15th still counts the whole first month.
    let first = buckets.first().map_or(from, |(_, d)| *d);
    let end = to + Duration::days(1);
    let (base, counts) = state
        .engine
        .count_by_period(
            &actor,
            OBJECT,
            filter.as_ref(),
            interval,
            &shanghai_midnight_utc(first),
            &shanghai_midnight_utc(end),
        )
        .await?;
    let by_period: BTreeMap<String, i64> = counts
        .into_iter()
        .filter_map(|g| g.value.map(|v| (v, g.count)))
        .collect();
    let mut cumulative = base;
    let buckets: Vec<Bucket> = buckets
        .into_iter()
        .map(|(period, start)| {
            let count = by_period.get(&period).copied().unwrap_or(0);
            cumulative += count;
            Bucket {
                period,
                start: format_date(start),
                count,
                cumulative,
            }
        })
        .collect();
    Ok(data(Growth {
        interval,
        from: format_date(first),
        to: format_date(to),
        base,
        total: cumulative - base,
        buckets,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn periods_cover_the_range_in_whole_units() {
        let months = periods(Interval::Month, date!(2026 - 11 - 15), date!(2027 - 02 - 01));
        let keys: Vec<&str> = months.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["2026-11", "2026-12", "2027-01", "2027-02"]);
        let weeks = periods(Interval::Week, date!(2026 - 11 - 22), date!(2026 - 11 - 30));
        let keys: Vec<&str> = weeks.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["2026-11-16", "2026-11-23", "2026-11-30"],
            "weeks start on Monday"
        );
        assert_eq!(
            periods(Interval::Day, date!(2026 - 02 - 27), date!(2026 - 03 - 01)).len(),
            3
        );
        assert_eq!(months_back(date!(2026 - 03 - 31), 11), date!(2025 - 04 - 01));
    }

    #[test]
    fn china_midnight_is_four_pm_utc_the_day_before() {
        assert_eq!(
            shanghai_midnight_utc(date!(2026 - 11 - 22)),
            "2026-11-21T16:00:00.000000Z"
        );
    }

    #[test]
    fn dimensions_are_unique() {
        let mut names: Vec<&str> = DIMENSIONS.iter().map(|(d, _)| *d).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DIMENSIONS.len());
    }
}
