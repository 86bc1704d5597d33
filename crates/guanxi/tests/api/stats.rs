//! Customer statistics (issue 5 §9; seed 001 M1 §2.4.3–2.4.5 value, source and region
//! statistics, M7 七 customer-growth trend): counts per dimension with dictionary labels, the
//! list's filter, the caller's read scope, and growth per month, week and day.

use guanxi_store::sql::Sql;
use guanxi_testkit::{Reply, TestApp, TestClient, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::s;
use crate::records::urlencode;

/// `(value, label, count)` of each group.
fn groups(reply: &Reply) -> Vec<(Option<String>, String, i64)> {
    reply.data()["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            (
                g["value"].as_str().map(str::to_owned),
                s(g, "label").to_owned(),
                g["count"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn g(value: Option<&str>, label: &str, count: i64) -> (Option<String>, String, i64) {
    (value.map(str::to_owned), label.to_owned(), count)
}

async fn stats(client: &TestClient, query: &str) -> Reply {
    client.get(&format!("/api/v1/customers/stats?{query}")).await
}

/// Six customers of the administrator, of several types, sources, levels and provinces; empty
/// values count as a group of their own, listed last.
async fn sample(app: &TestApp) {
    for (name, t, source, level, province) in [
        ("甲公司", "enterprise", "referral", "A", "广东省"),
        ("乙公司", "enterprise", "referral", "B", "广东省"),
        ("丙公司", "enterprise", "exhibition", "A", "北京市"),
        ("丁机关", "government", "website", "", "北京市"),
        ("戊个人", "individual", "", "C", "浙江省"),
        ("己公司", "enterprise", "referral", "A", "广东省"),
    ] {
        let mut body = json!({"name": name, "customer_type": t});
        for (k, v) in [("source", source), ("level", level), ("province", province)] {
            if !v.is_empty() {
                body[k] = json!(v);
            }
        }
        app.create("customer", body).await;
    }
}

#[tokio::test]
async fn customers_are_counted_by_each_dimension_with_labels_for_a_chart() {
    let app = spawn_app().await;
    sample(&app).await;
    let by_type = stats(&app, "by=customer_type").await;
    assert_eq!(by_type.status, StatusCode::OK, "{}", by_type.text);
    assert_eq!(by_type.data()["label"], "客户类型");
    assert_eq!(by_type.data()["total"], 6);
    assert_eq!(
        groups(&by_type),
        vec![
            g(Some("enterprise"), "企业", 4),
            g(Some("government"), "政府机关", 1),
            g(Some("individual"), "个人", 1)
        ]
    );
    assert_eq!(
        groups(&stats(&app, "by=source").await),
        vec![
            g(Some("referral"), "客户介绍", 3),
            g(Some("exhibition"), "展会", 1),
            g(Some("website"), "官网", 1),
            g(None, "未填写", 1)
        ]
    );
    assert_eq!(
        groups(&stats(&app, "by=level").await),
        vec![
            g(Some("A"), "A类（重要）", 3),
            g(Some("B"), "B类（普通）", 1),
            g(Some("C"), "C类（一般）", 1),
            g(None, "未填写", 1)
        ]
    );
    assert_eq!(
        groups(&stats(&app, "by=province").await),
        vec![
            g(Some("广东省"), "广东省", 3),
            g(Some("北京市"), "北京市", 2),
            g(Some("浙江省"), "浙江省", 1)
        ]
    );
    let admin_id = app.user_id.clone().unwrap_or_default();
    assert_eq!(
        groups(&stats(&app, "by=owner").await),
        vec![g(Some(&admin_id), "测试管理员", 6)]
    );
    assert_eq!(
        groups(&stats(&app, "by=status").await),
        vec![g(Some("prospect"), "潜在", 6)]
    );
    // English labels on request.
    let en = app
        .read(
            app.client
                .get(format!("{}/api/v1/customers/stats?by=customer_type", app.base_url))
                .header("accept-language", "en"),
        )
        .await;
    assert_eq!(en.data()["label"], "Type");
    assert_eq!(en.data()["groups"][0]["label"], "Enterprise");
    // The list's filter narrows the counts.
    let filter = urlencode(r#"{"field":"province","op":"eq","value":"广东省"}"#);
    assert_eq!(
        groups(&stats(&app, &format!("by=source&filter={filter}")).await),
        vec![g(Some("referral"), "客户介绍", 3)]
    );
    // value_tier counts once the customer object has that field; until then it is unknown.
    let has_tier = app.get("/api/v1/meta/objects/customer").await.data()["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["key"] == "value_tier");
    let tier = stats(&app, "by=value_tier").await;
    if has_tier {
        assert_eq!(tier.status, StatusCode::OK, "{}", tier.text);
    } else {
        assert_eq!(
            (tier.status, tier.code()),
            (StatusCode::BAD_REQUEST, "unknown_dimension"),
            "{}",
            tier.text
        );
    }
    // Bad parameters.
    let unknown = stats(&app, "by=shoe_size").await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::BAD_REQUEST, "unknown_dimension")
    );
    assert!(
        unknown.body["error"]["details"]["dimensions"]
            .as_array()
            .is_some_and(|d| d.len() > 5)
    );
    let bad_filter = stats(
        &app,
        &format!(
            "by=source&filter={}",
            urlencode(r#"{"field":"nope","op":"eq","value":1}"#)
        ),
    )
    .await;
    assert_eq!(bad_filter.code(), "invalid_query");
    assert_eq!(stats(&app, "by=source&group=1").await.code(), "invalid_query");
    assert_eq!(
        app.anonymous().get("/api/v1/customers/stats").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_salesperson_counts_only_the_customers_it_may_read() {
    let app = spawn_app().await;
    let east = s(&app.create("department", json!({"name": "华东销售部"})).await, "id").to_owned();
    let north = s(&app.create("department", json!({"name": "华北销售部"})).await, "id").to_owned();
    let (li_id, li) = app.user("li_sales", &["salesperson"], Some(&east), None).await;
    let (zhou_id, zhou) = app.user("zhou_sales", &["salesperson"], Some(&east), None).await;
    let (_, wang) = app.user("wang_sales", &["salesperson"], Some(&north), None).await;
    for name in ["李一", "李二"] {
        li.create("customer", json!({"name": name, "source": "referral"})).await;
    }
    zhou.create("customer", json!({"name": "周一", "source": "website"}))
        .await;
    wang.create("customer", json!({"name": "王一", "source": "referral"}))
        .await;
    app.create("customer", json!({"name": "总部客户", "source": "referral"}))
        .await;

    // The salesperson reads its department: its own and its colleague's customers.
    let by_owner = stats(&li, "by=owner").await;
    assert_eq!(by_owner.status, StatusCode::OK, "{}", by_owner.text);
    assert_eq!(
        groups(&by_owner),
        vec![g(Some(&li_id), "li_sales", 2), g(Some(&zhou_id), "zhou_sales", 1)]
    );
    assert_eq!(
        groups(&stats(&li, "by=source").await),
        vec![g(Some("referral"), "客户介绍", 2), g(Some("website"), "官网", 1)]
    );
    assert_eq!(stats(&wang, "by=source").await.data()["total"], 1);
    assert_eq!(
        stats(&app, "by=source").await.data()["total"],
        5,
        "the administrator counts all"
    );
    let by_dept = stats(&app, "by=department").await;
    assert!(
        groups(&by_dept).contains(&g(Some(&east), "华东销售部", 3)),
        "{}",
        by_dept.text
    );
    let growth = li.get("/api/v1/customers/stats/growth?interval=day").await;
    assert_eq!(growth.data()["total"], 3, "{}", growth.text);
    // A role without customer access gets nothing.
    let (_, nobody) = app.user("no_role", &[], None, None).await;
    assert_eq!(stats(&nobody, "by=source").await.status, StatusCode::FORBIDDEN);
}

/// Moves a customer's creation time (the API never lets anyone set it).
async fn created_at(app: &TestApp, name: &str, at: &str) {
    let mut sql = Sql::of(app.state.db.backend(), "UPDATE customers SET created_at = ");
    sql.bind(at).push(" WHERE name = ").bind(name);
    sql.query()
        .execute(app.state.db.writer())
        .await
        .expect("set created_at");
}

fn buckets(reply: &Reply) -> Vec<(String, i64, i64)> {
    reply.data()["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                s(b, "period").to_owned(),
                b["count"].as_i64().unwrap_or(-1),
                b["cumulative"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn b(period: &str, count: i64, cumulative: i64) -> (String, i64, i64) {
    (period.to_owned(), count, cumulative)
}

#[tokio::test]
async fn growth_counts_new_customers_per_month_week_and_day_in_china_time() {
    let app = spawn_app().await;
    for (name, at) in [
        ("老客户", "2025-12-20T02:00:00.000000Z"),
        // 2026-01-01 00:30 in Beijing is still 2025-12-31 in UTC: it counts for January.
        ("元旦客户", "2025-12-31T16:30:00.000000Z"),
        ("一月客户", "2026-01-15T04:00:00.000000Z"),
        ("三月客户甲", "2026-03-02T04:00:00.000000Z"),
        ("三月客户乙", "2026-03-08T04:00:00.000000Z"),
        ("后来的客户", "2026-05-01T04:00:00.000000Z"),
    ] {
        app.create("customer", json!({"name": name, "source": "referral"}))
            .await;
        created_at(&app, name, at).await;
    }
    let months = app
        .get("/api/v1/customers/stats/growth?interval=month&from=2026-01-01&to=2026-03-31")
        .await;
    assert_eq!(months.status, StatusCode::OK, "{}", months.text);
    assert_eq!(months.data()["base"], 1, "one customer before January");
    assert_eq!(months.data()["total"], 4);
    assert_eq!(
        buckets(&months),
        vec![b("2026-01", 2, 3), b("2026-02", 0, 3), b("2026-03", 2, 5)],
        "empty months are listed too"
    );
    // Weeks start on Monday: 2026-03-02 is a Monday, 2026-03-08 a Sunday of the same week.
    let weeks = app
        .get("/api/v1/customers/stats/growth?interval=week&from=2026-03-01&to=2026-03-10")
        .await;
    assert_eq!(
        buckets(&weeks),
        vec![b("2026-02-23", 0, 3), b("2026-03-02", 2, 5), b("2026-03-09", 0, 5)]
    );
    assert_eq!(weeks.data()["from"], "2026-02-23", "whole weeks");
    let days = app
        .get("/api/v1/customers/stats/growth?interval=day&from=2025-12-31&to=2026-01-01")
        .await;
    assert_eq!(buckets(&days), vec![b("2025-12-31", 0, 1), b("2026-01-01", 1, 2)]);
    // The list's filter applies.
    let filter = urlencode(r#"{"field":"name","op":"contains","value":"三月"}"#);
    let filtered = app
        .get(&format!(
            "/api/v1/customers/stats/growth?interval=month&from=2026-01-01&to=2026-03-31&filter={filter}"
        ))
        .await;
    assert_eq!(
        buckets(&filtered),
        vec![b("2026-01", 0, 0), b("2026-02", 0, 0), b("2026-03", 2, 2)]
    );
    // Defaults: the last twelve months up to today.
    let default = app.get("/api/v1/customers/stats/growth").await;
    assert_eq!(default.data()["interval"], "month");
    assert_eq!(default.data()["buckets"].as_array().map(Vec::len), Some(12));
    // Bad parameters.
    for (query, what) in [
        ("interval=year", "unknown interval"),
        ("from=2026-03-01&to=2026-01-01", "from after to"),
        ("from=2026-02-30", "not a date"),
        ("interval=day&from=2000-01-01&to=2026-01-01", "too many periods"),
        ("by=source", "unknown parameter"),
    ] {
        let r = app.get(&format!("/api/v1/customers/stats/growth?{query}")).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query"),
            "{what}: {}",
            r.text
        );
    }
}

/// Period bounds at the edge of the calendar are refused with a clear 422, never a 500: a day or
/// week step past 9999-12-31 would leave the calendar.
#[tokio::test]
async fn growth_periods_at_the_edge_of_the_calendar_are_refused() {
    let app = spawn_app().await;
    for interval in ["day", "week", "month"] {
        let reply = app
            .get(&format!(
                "/api/v1/customers/stats/growth?interval={interval}&from=9999-12-31&to=9999-12-31"
            ))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{interval}: {}",
            reply.text
        );
        assert_eq!(reply.code(), "invalid_query", "{}", reply.text);
    }
}
