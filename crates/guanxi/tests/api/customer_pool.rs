//! The customer public pool (公海) and value classification (issue 5 §6; seed 000 §3.1.5,
//! seed 001 M1 §2.4.3): who sees pool customers, claim and release with their limits and
//! errors, the automatic reclaim job and its daily scheduling, the follow-up hook behind it,
//! and the classification rules and job.

use std::time::{Duration, Instant};

use guanxi_core::time_fmt::format_utc;
use guanxi_testkit::{TestApp, TestClient, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};
use time::OffsetDateTime;

use crate::helpers::s;

async fn department(app: &TestApp, name: &str) -> String {
    let d = app.create("department", json!({"name": name})).await;
    s(&d, "id").to_owned()
}

fn days_ago(days: i64) -> String {
    format_utc(OffsetDateTime::now_utc() - time::Duration::days(days))
}

async fn ids(client: &TestClient, path: &str) -> Vec<String> {
    let reply = client.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let mut out: Vec<String> = reply
        .data()
        .as_array()
        .map(|a| a.iter().map(|r| s(r, "id").to_owned()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Starts a job through `path` and waits for its result.
async fn run_job(client: &TestClient, path: &str) -> Json {
    let reply = client.post(path, &json!({})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let id = reply.data()["job_id"].as_str().unwrap_or_default().to_owned();
    let start = Instant::now();
    loop {
        let job = client.get(&format!("/api/v1/jobs/{id}")).await;
        let status = job.data()["status"].as_str().unwrap_or_default().to_owned();
        if status == "done" || status == "failed" {
            assert_eq!(status, "done", "{}", job.text);
            return job.data()["result"].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "job still {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn history_actions(client: &TestClient, id: &str) -> Vec<Json> {
    let h = client.get(&format!("/api/v1/records/customer/{id}/history")).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    h.data().as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_salesperson_sees_pool_customers_but_not_other_peoples() {
    let app = spawn_app().await;
    let (east, west) = (
        department(&app, "华东分公司").await,
        department(&app, "华西分公司").await,
    );
    let (_, me) = app.user("sales_east", &["salesperson"], Some(&east), None).await;
    let (other_id, _) = app.user("sales_west", &["salesperson"], Some(&west), None).await;
    let (_, partner) = app.user("partner_east", &["partner"], Some(&east), None).await;
    let pool = app
        .create(
            "customer",
            json!({"name": "公海客户", "owner_id": null, "department_id": west}),
        )
        .await;
    let theirs = app
        .create(
            "customer",
            json!({"name": "别人的客户", "owner_id": other_id, "department_id": west}),
        )
        .await;
    let mine = me.create("customer", json!({"name": "我的客户"})).await;
    let (pool_id, theirs_id) = (s(&pool, "id").to_owned(), s(&theirs, "id").to_owned());

    assert_eq!(
        ids(&me, "/api/v1/records/customer?total=exact").await,
        sorted(vec![pool_id.clone(), s(&mine, "id").to_owned()]),
        "own department plus the pool, nobody else's"
    );
    let count = me.get("/api/v1/records/customer?total=exact").await;
    assert_eq!(count.body["meta"]["total"], 2);
    assert_eq!(ids(&me, "/api/v1/customers/pool").await, vec![pool_id.clone()]);
    let searched = me.get("/api/v1/customers/pool?q=公海&total=exact").await;
    assert_eq!(searched.body["meta"]["total"], 1, "{}", searched.text);

    let path = format!("/api/v1/records/customer/{pool_id}");
    assert_eq!(me.get(&path).await.status, StatusCode::OK);
    assert_eq!(history_actions(&me, &pool_id).await.len(), 1);
    assert_eq!(
        me.get(&format!("/api/v1/records/customer/{theirs_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let change = me.patch(&path, &json!({"version": 1, "remark": "改一下"})).await;
    assert_eq!(
        change.status,
        StatusCode::FORBIDDEN,
        "seeing the pool is not owning it: {}",
        change.text
    );
    assert_eq!(me.delete(&path).await.status, StatusCode::FORBIDDEN);

    // Seeing the pool comes with the claim permission: a partner of the same department
    // without it sees neither.
    assert_eq!(partner.get(&path).await.status, StatusCode::NOT_FOUND);
    assert!(ids(&partner, "/api/v1/customers/pool").await.is_empty());
    // The administrator sees everything.
    assert_eq!(ids(&app, "/api/v1/customers/pool").await, vec![pool_id]);
}

#[tokio::test]
async fn claiming_and_releasing_follow_the_rules_and_leave_a_trail() {
    let app = spawn_app().await;
    let east = department(&app, "华东分公司").await;
    let (manager_id, manager) = app.user("manager_east", &["sales_manager"], Some(&east), None).await;
    let (me_id, me) = app
        .user("sales_east", &["salesperson"], Some(&east), Some(&manager_id))
        .await;
    let (_, agent) = app.user("agent", &["service_agent"], Some(&east), None).await;
    let pool = app
        .create("customer", json!({"name": "公海客户甲", "owner_id": null}))
        .await;
    let pool_id = s(&pool, "id").to_owned();

    let refused = agent
        .post(&format!("/api/v1/customers/{pool_id}/claim"), &json!({}))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "no customer.claim: {}",
        refused.text
    );

    let claimed = me.post(&format!("/api/v1/customers/{pool_id}/claim"), &json!({})).await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.text);
    assert_eq!(claimed.data()["owner_id"], me_id.as_str());
    assert_eq!(claimed.data()["department_id"], east.as_str());
    assert!(claimed.data()["claimed_at"].is_string());
    assert_eq!(claimed.data()["version"], 2);

    for (who, client) in [("the owner", &me), ("a manager", &manager)] {
        let again = client
            .post(&format!("/api/v1/customers/{pool_id}/claim"), &json!({}))
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{who}: {}", again.text);
        assert_eq!(again.code(), "not_in_pool");
    }
    let missing = me
        .post(&format!("/api/v1/customers/{}/claim", uuid::Uuid::now_v7()), &json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let release = format!("/api/v1/customers/{pool_id}/release");
    let no_reason = me.post(&release, &json!({"reason": "  "})).await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_reason.body["error"]["field_codes"]["reason"], json!(["required"]));
    assert_eq!(
        me.post(&release, &json!({"reason": "x", "bogus": 1})).await.code(),
        "invalid_body"
    );
    let stale = me.post(&release, &json!({"reason": "客户无需求", "version": 1})).await;
    assert_eq!(stale.code(), "version_conflict");
    let released = me.post(&release, &json!({"reason": "客户无需求", "version": 2})).await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.text);
    assert!(released.data()["owner_id"].is_null());
    assert_eq!(released.data()["release_reason"], "客户无需求");
    assert!(released.data()["claimed_at"].is_null());
    let again = manager.post(&release, &json!({"reason": "再退一次"})).await;
    assert_eq!(again.code(), "not_owned", "{}", again.text);

    let trail = history_actions(&app, &pool_id).await;
    let actions: Vec<&str> = trail.iter().map(|e| e["action"].as_str().unwrap_or_default()).collect();
    assert_eq!(actions, ["create", "claim", "release"]);
    assert!(
        trail[2]["changes"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["field"] == "owner_id" && c["remark"] == "客户无需求")),
        "{trail:?}"
    );
    assert_eq!(trail[1]["actor_id"], me_id.as_str());

    // A manager may give back a subordinate's customer; a salesperson not someone else's.
    let mine = me.create("customer", json!({"name": "销售的客户"})).await;
    let mine_path = format!("/api/v1/customers/{}/release", s(&mine, "id"));
    let by_manager = manager.post(&mine_path, &json!({"reason": "重新分配"})).await;
    assert_eq!(by_manager.status, StatusCode::OK, "{}", by_manager.text);
    let (_, colleague) = app.user("sales_east2", &["salesperson"], Some(&east), None).await;
    let theirs = colleague.create("customer", json!({"name": "同事的客户"})).await;
    let by_me = me
        .post(
            &format!("/api/v1/customers/{}/release", s(&theirs, "id")),
            &json!({"reason": "不是我的"}),
        )
        .await;
    assert_eq!(by_me.status, StatusCode::FORBIDDEN, "{}", by_me.text);

    // The limit per salesperson (pool.max_owned_per_user).
    let bad = app
        .patch("/api/v1/admin/settings", &json!({"pool.max_owned_per_user": -1}))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    let set = app
        .patch("/api/v1/admin/settings", &json!({"pool.max_owned_per_user": 1}))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    me.create("customer", json!({"name": "又一个客户"})).await;
    let limited = me.post(&format!("/api/v1/customers/{pool_id}/claim"), &json!({})).await;
    assert_eq!(limited.status, StatusCode::CONFLICT);
    assert_eq!(limited.code(), "pool_limit_reached", "{}", limited.text);
    let still = app.get(&format!("/api/v1/records/customer/{pool_id}")).await;
    assert!(still.data()["owner_id"].is_null(), "a refused claim changes nothing");
    let by_other = colleague
        .post(&format!("/api/v1/customers/{pool_id}/claim"), &json!({}))
        .await;
    assert_eq!(by_other.code(), "pool_limit_reached", "the colleague owns one too");
    app.patch("/api/v1/admin/settings", &json!({"pool.max_owned_per_user": 0}))
        .await;
    let unlimited = colleague
        .post(&format!("/api/v1/customers/{pool_id}/claim"), &json!({}))
        .await;
    assert_eq!(unlimited.status, StatusCode::OK, "0 means no limit: {}", unlimited.text);
}

#[tokio::test]
async fn follow_ups_keep_the_last_contact_and_the_reclaim_job_returns_neglected_customers() {
    let app = spawn_app().await;
    let east = department(&app, "华东分公司").await;
    let (me_id, me) = app.user("sales_east", &["salesperson"], Some(&east), None).await;
    let neglected = me
        .create(
            "customer",
            json!({"name": "久未联系", "last_contacted_at": days_ago(40)}),
        )
        .await;
    let recent = me
        .create("customer", json!({"name": "常联系", "last_contacted_at": days_ago(40)}))
        .await;
    let fresh = me.create("customer", json!({"name": "新客户"})).await;

    // A follow-up that happened moves the last contact; one planned for later does not.
    let follow =
        |id: &str, at: String| json!({"customer_id": id, "kind": "call", "subject": "回访", "occurred_at": at});
    let contacted = days_ago(2);
    me.create("follow_up", follow(s(&recent, "id"), contacted.clone()))
        .await;
    me.create("follow_up", follow(s(&neglected, "id"), days_ago(-3))).await;
    let app = &app;
    let read = |id: &str| {
        let path = format!("/api/v1/records/customer/{id}");
        async move { app.get(&path).await }
    };
    let recent_now = read(s(&recent, "id")).await;
    assert_eq!(
        s(recent_now.data(), "last_contacted_at"),
        contacted,
        "{}",
        recent_now.text
    );
    assert_eq!(
        s(read(s(&neglected, "id")).await.data(), "last_contacted_at"),
        s(&neglected, "last_contacted_at"),
        "a planned follow-up is not a contact"
    );

    let off = run_job(app, "/api/v1/customers/reclaim").await;
    assert_eq!(off["skipped"], "off", "{off}");
    assert_eq!(
        me.post("/api/v1/customers/reclaim", &json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    let set = app
        .patch("/api/v1/admin/settings", &json!({"pool.reclaim_after_days": 30}))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    let result = run_job(app, "/api/v1/customers/reclaim").await;
    assert_eq!(result["reclaimed"], 1, "{result}");

    let back = read(s(&neglected, "id")).await;
    assert!(back.data()["owner_id"].is_null());
    assert!(s(back.data(), "release_reason").contains("30"), "{}", back.text);
    let trail = history_actions(app, s(&neglected, "id")).await;
    assert_eq!(trail.last().map(|e| e["action"].clone()), Some(json!("reclaim")));
    for kept in [&recent, &fresh] {
        assert_eq!(read(s(kept, "id")).await.data()["owner_id"], me_id.as_str());
    }
    // The owner lost it but still sees it, in the pool.
    assert_eq!(
        ids(&me, "/api/v1/customers/pool").await,
        vec![s(&neglected, "id").to_owned()]
    );
    // Claiming restarts the clock: a fresh claim is not reclaimed, however old the last contact.
    let claim = me
        .post(&format!("/api/v1/customers/{}/claim", s(&neglected, "id")), &json!({}))
        .await;
    assert_eq!(claim.status, StatusCode::OK, "{}", claim.text);
    let again = run_job(app, "/api/v1/customers/reclaim").await;
    assert_eq!(again["reclaimed"], 0, "{again}");
}

/// Follow-ups created many at once (an import, a dataset) take the chunk-wide hook: one UPDATE
/// for all their customers, with the same rules as one at a time — the latest past follow-up of
/// each customer wins, a planned one does not count, an older one does not move it back.
#[tokio::test]
async fn follow_ups_created_in_a_batch_keep_each_customers_last_contact() {
    let app = spawn_app().await;
    let two = app.create("customer", json!({"name": "两次回访"})).await;
    let planned = app
        .create(
            "customer",
            json!({"name": "只有计划", "last_contacted_at": days_ago(40)}),
        )
        .await;
    let newer_kept = app
        .create(
            "customer",
            json!({"name": "近期已联系", "last_contacted_at": days_ago(1)}),
        )
        .await;
    let follow = |id: &str, at: String| {
        let body = json!({"customer_id": id, "kind": "call", "subject": "批量回访", "occurred_at": at});
        body.as_object().cloned().unwrap_or_default()
    };
    let latest = days_ago(3);
    let rows = vec![
        follow(s(&two, "id"), days_ago(10)),
        follow(s(&two, "id"), latest.clone()),
        follow(s(&planned, "id"), days_ago(-5)),
        follow(s(&newer_kept, "id"), days_ago(20)),
    ];
    let actor = guanxi_core::Actor::system();
    let results = app
        .state
        .engine
        .create_batch(&actor, "follow_up", &rows)
        .await
        .expect("batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let last = |c: &Json| {
        let path = format!("/api/v1/records/customer/{}", s(c, "id"));
        let app = &app;
        async move { app.get(&path).await.data()["last_contacted_at"].clone() }
    };
    assert_eq!(last(&two).await, json!(latest), "the later of two follow-ups");
    assert_eq!(
        last(&planned).await,
        planned["last_contacted_at"],
        "a planned follow-up is no contact"
    );
    assert_eq!(
        last(&newer_kept).await,
        newer_kept["last_contacted_at"],
        "never moved back"
    );
}

#[tokio::test]
async fn the_daily_jobs_are_queued_once_a_day_and_only_when_switched_on() {
    // Without the worker, nothing runs the jobs or the scheduler: the test drives it.
    let app = spawn_app_with(Default::default(), |c| c.run_worker = false).await;
    let schedule = || guanxi_server::modules::pool::schedule_daily(&app.state);
    assert!(schedule().await.expect("schedule").is_empty(), "nothing is switched on");
    app.patch("/api/v1/admin/settings", &json!({"pool.reclaim_after_days": 15}))
        .await;
    assert_eq!(schedule().await.expect("schedule"), ["customer.reclaim"]);
    assert!(schedule().await.expect("schedule").is_empty(), "once a day");
    let saved = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/customers/classification-rules",
            Some(&json!(guanxi_core::classification::ClassificationRules::default())),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    assert_eq!(schedule().await.expect("schedule"), ["customer.classify"]);
    assert!(schedule().await.expect("schedule").is_empty());
}

fn money(yuan: i64) -> Json {
    json!({"amount": yuan * 100, "currency": "CNY"})
}

#[tokio::test]
async fn classification_rules_are_validated_and_the_job_sets_tiers_by_them() {
    let app = spawn_app().await;
    let east = department(&app, "华东分公司").await;
    let (_, me) = app.user("sales_east", &["salesperson"], Some(&east), None).await;
    let rules_path = "/api/v1/customers/classification-rules";
    let defaults = app.get(rules_path).await;
    assert_eq!(defaults.status, StatusCode::OK, "{}", defaults.text);
    assert_eq!(defaults.data()["is_default"], true);
    assert_eq!(defaults.data()["rules"]["tiers"][0]["tier"], "A");
    assert_eq!(me.get(rules_path).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        me.post("/api/v1/customers/classify", &json!({})).await.status,
        StatusCode::FORBIDDEN
    );

    let rules = json!({
        "window_days": 30,
        "amount": [{"min": 1_000_000, "points": 5}],
        "frequency": [{"min": 2, "points": 3}],
        "recency": [{"max_days": 30, "points": 1}],
        "tiers": [{"tier": "A", "min_points": 6}, {"tier": "B", "min_points": 3}, {"tier": "C", "min_points": 0}]
    });
    let app = &app;
    let put = |body: Json| async move { app.send(reqwest::Method::PUT, rules_path, Some(&body)).await };
    let mut bad = rules.clone();
    bad["window_days"] = json!(0);
    bad["tiers"][0]["tier"] = json!("Z");
    bad["tiers"][2]["min_points"] = json!(1);
    let refused = put(bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    let codes = &refused.body["error"]["field_codes"];
    assert_eq!(codes["window_days"], json!(["out_of_range"]));
    assert_eq!(codes["tiers.0.tier"], json!(["invalid_option"]));
    assert_eq!(codes["tiers"], json!(["no_base_tier"]));
    let mut unknown = rules.clone();
    unknown["weights"] = json!(1);
    assert_eq!(put(unknown).await.code(), "invalid_body");
    assert_eq!(
        me.send(reqwest::Method::PUT, rules_path, Some(&rules)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(rules_path).await.data()["is_default"],
        true,
        "refused rules are not saved"
    );
    let saved = put(rules.clone()).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    assert_eq!(app.get(rules_path).await.data()["rules"], rules);

    // 5 + 3 + 1 = 9 → A; 3 + 1 = 4 → B; nothing → C; big but lapsed: 5 → B.
    let customer =
        |name: &str, amount: i64| me.create("customer", json!({"name": name, "total_amount": money(amount)}));
    let star = customer("大客户", 2_000_000).await;
    let busy = customer("常联系的小客户", 0).await;
    let quiet = customer("沉默客户", 500).await;
    let lapsed = customer("流失大客户", 3_000_000).await;
    for (c, days) in [
        (&star, 3),
        (&star, 10),
        (&busy, 5),
        (&busy, 20),
        (&lapsed, 60),
        (&lapsed, 70),
    ] {
        me.create(
            "follow_up",
            json!({"customer_id": s(c, "id"), "kind": "visit", "subject": "拜访", "occurred_at": days_ago(days)}),
        )
        .await;
    }
    let result = run_job(app, "/api/v1/customers/classify").await;
    assert_eq!(result["customers"], 4, "{result}");
    assert_eq!(result["changed"], 4, "{result}");
    assert_eq!(result["tiers"], json!({"A": 1, "B": 2, "C": 1}));
    for (c, tier) in [(&star, "A"), (&busy, "B"), (&quiet, "C"), (&lapsed, "B")] {
        let r = me.get(&format!("/api/v1/records/customer/{}", s(c, "id"))).await;
        assert_eq!(r.data()["value_tier"], tier, "{}", s(c, "name"));
    }
    let trail = history_actions(app, s(&star, "id")).await;
    let last = trail.last().cloned().unwrap_or_default();
    assert_eq!(last["action"], "classify");
    assert_eq!(last["changes"][0]["new"], "A");

    let again = run_job(app, "/api/v1/customers/classify").await;
    assert_eq!(again["changed"], 0, "a second run changes nothing: {again}");
    let typed = me
        .patch(
            &format!("/api/v1/records/customer/{}", s(&quiet, "id")),
            &json!({"version": 2, "value_tier": "A"}),
        )
        .await;
    assert_eq!(
        typed.body["error"]["field_codes"]["value_tier"],
        json!(["read_only"]),
        "tiers come from the rules: {}",
        typed.text
    );
}

/// A salesperson's list is read as two index walks (own department, then the pool) merged by
/// id; pages by cursor and by page number still give every visible customer exactly once, newest
/// first, including a department customer without an owner (which both walks find).
#[tokio::test]
async fn lists_widened_by_the_pool_page_through_every_record_once_in_order() {
    let app = spawn_app().await;
    let (east, west) = (
        department(&app, "华东分公司").await,
        department(&app, "华西分公司").await,
    );
    let (_, me) = app.user("sales_east", &["salesperson"], Some(&east), None).await;
    let (other_id, _) = app.user("sales_west", &["salesperson"], Some(&west), None).await;
    let mut visible = Vec::new();
    for i in 0..5 {
        let pool = app
            .create(
                "customer",
                json!({"name": format!("公海客户{i}"), "owner_id": null, "department_id": west}),
            )
            .await;
        visible.push(s(&pool, "id").to_owned());
        let mine = me.create("customer", json!({"name": format!("我的客户{i}")})).await;
        visible.push(s(&mine, "id").to_owned());
        app.create(
            "customer",
            json!({"name": format!("别人的客户{i}"), "owner_id": other_id, "department_id": west}),
        )
        .await;
    }
    let unowned_here = app
        .create(
            "customer",
            json!({"name": "本部门公海客户", "owner_id": null, "department_id": east}),
        )
        .await;
    visible.push(s(&unowned_here, "id").to_owned());
    visible.sort();
    visible.reverse();

    let mut by_cursor = Vec::new();
    let mut path = "/api/v1/records/customer?limit=3&total=exact".to_owned();
    loop {
        let page = me.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert_eq!(page.body["meta"]["total"], 11, "{}", page.text);
        for r in page.data().as_array().expect("rows") {
            by_cursor.push(s(r, "id").to_owned());
        }
        match page.body["meta"]["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/records/customer?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        by_cursor, visible,
        "cursor pages: each visible customer once, newest first"
    );

    let mut by_page = Vec::new();
    for page in 1..=4 {
        let reply = me.get(&format!("/api/v1/records/customer?limit=3&page={page}")).await;
        for r in reply.data().as_array().expect("rows") {
            by_page.push(s(r, "id").to_owned());
        }
    }
    assert_eq!(by_page, visible, "numbered pages agree");
}

/// A reclaim period beyond ten years (or negative) is refused as a field error and changes
/// nothing, instead of overflowing the reclaim job's date arithmetic.
#[tokio::test]
async fn reclaim_periods_out_of_range_are_refused() {
    let app = spawn_app().await;
    for days in [json!(100_000_000), json!(-1), json!("thirty")] {
        let reply = app
            .patch("/api/v1/admin/settings", &json!({"pool.reclaim_after_days": days}))
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{days}: {}", reply.text);
    }
    let ok = app
        .patch("/api/v1/admin/settings", &json!({"pool.reclaim_after_days": 3650}))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
}
