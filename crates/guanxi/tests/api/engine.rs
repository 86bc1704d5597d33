//! Engine features modules build on: numbering, state machines, custom fields, hooks and the
//! job outbox.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use guanxi_core::{Actor, DomainError, Value};
use guanxi_server::AppOptions;
use guanxi_store::hooks::{HookCtx, HookRegistry, RecordHooks, Values};
use guanxi_store::jobs::{JobContext, JobHandler};
use guanxi_store::{Record, StoreError, StoreResult};
use guanxi_testkit::{TestApp, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::helpers::{customer, s};
use crate::records::urlencode;

#[tokio::test]
async fn concurrent_creates_never_share_a_number() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/records/customer", app.base_url);
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"name": format!("并发客户{i}")}))
                .send()
                .await
                .ok()?;
            let body: Json = r.json().await.ok()?;
            body["data"]["number"].as_str().map(str::to_owned)
        }));
    }
    let mut numbers = BTreeSet::new();
    for t in tasks {
        numbers.insert(t.await.ok().flatten().expect("created"));
    }
    assert_eq!(numbers.len(), 40);
    let expected: BTreeSet<String> = (1..=40).map(|n| format!("CM{n:06}")).collect();
    assert_eq!(numbers, expected, "numbers are consecutive and unique");
}

#[tokio::test]
async fn the_customer_lifecycle_allows_only_declared_transitions_and_records_them() {
    let app = spawn_app().await;
    let c = app.create("customer", customer("流程客户")).await;
    let base = format!("/api/v1/records/customer/{}", s(&c, "id"));
    let signed = app
        .post(&format!("{base}/transitions/sign"), &json!({"remark": "合同已签"}))
        .await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.text);
    assert_eq!(signed.data()["status"], "active");
    assert_eq!(signed.data()["version"], 2);

    let again = app.post(&format!("{base}/transitions/sign"), &json!({})).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "invalid_transition")
    );
    let unknown = app.post(&format!("{base}/transitions/teleport"), &json!({})).await;
    assert_eq!(unknown.code(), "invalid_transition");
    let no_reason = app.post(&format!("{base}/transitions/mark_lost"), &json!({})).await;
    assert_eq!(
        no_reason.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "losing a customer needs a reason"
    );
    let stale = app
        .post(
            &format!("{base}/transitions/mark_lost"),
            &json!({"remark": "x", "version": 1}),
        )
        .await;
    assert_eq!(stale.code(), "version_conflict");
    let direct = app.patch(&base, &json!({"version": 2, "status": "lost"})).await;
    assert_eq!(
        direct.body["error"]["field_codes"]["status"][0], "read_only",
        "states change only by transitions"
    );
    let empty_body = app
        .read(
            app.client
                .post(format!("{}{base}/transitions/make_dormant", app.base_url)),
        )
        .await;
    assert_eq!(
        empty_body.status,
        StatusCode::OK,
        "a transition without remark may have no body: {}",
        empty_body.text
    );

    let history = app.get(&format!("{base}/transitions")).await;
    let rows = history.data().as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["from_state"].as_str(), rows[0]["to_state"].as_str()),
        (Some("prospect"), Some("active"))
    );
    assert_eq!(rows[0]["remark"], "合同已签");
    assert_eq!(rows[0]["actor_name"], "测试管理员");
    assert_eq!(rows[1]["action"], "make_dormant");
}

#[tokio::test]
async fn a_transition_that_needs_a_permission_is_refused_without_it() {
    let app = spawn_app().await;
    let c = app.create("customer", customer("权限客户")).await;
    let mut grants = guanxi_core::access::Grants::new();
    let customer_grants = grants.entry("customer".into()).or_default();
    customer_grants.insert("read".into(), guanxi_core::access::Scope::All);
    customer_grants.insert("sign".into(), guanxi_core::access::Scope::All);
    let clerk = Actor {
        id: "clerk".into(),
        name: "柜员".into(),
        department_id: None,
        access: Some(Arc::new(guanxi_core::access::Access {
            grants,
            ..Default::default()
        })),
    };
    let engine = &app.state.engine;
    let err = engine
        .transition(&clerk, "customer", s(&c, "id"), "mark_lost", Some("价格"), None)
        .await;
    assert!(
        matches!(err, Err(StoreError::Domain(DomainError::Forbidden(_)))),
        "{err:?}"
    );
    let ok = engine
        .transition(&clerk, "customer", s(&c, "id"), "sign", None, None)
        .await;
    assert!(ok.is_ok());
    let after = app.get(&format!("/api/v1/records/customer/{}", s(&c, "id"))).await;
    assert_eq!(after.data()["status"], "active");
    assert_eq!(after.data()["updated_by"], "clerk");
}

async fn add_field(app: &TestApp, body: Json) -> guanxi_testkit::Reply {
    app.post("/api/v1/meta/objects/customer/fields", &body).await
}

#[tokio::test]
async fn custom_fields_are_added_at_run_time_and_validated_filtered_and_sorted() {
    let app = spawn_app().await;
    let r = add_field(
        &app,
        json!({"key": "cf_wechat", "label": {"zh": "微信号", "en": "WeChat"}, "type": "text", "max_len": 20}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = add_field(&app, json!({"key": "score", "label": {"zh": "评分", "en": "Score"}, "type": "integer", "min": 0, "max": 100, "required": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "the cf_ prefix is added: {}", r.text);
    assert_eq!(r.data()["key"], "cf_score");
    add_field(&app, json!({"key": "cf_region", "label": {"zh": "大区", "en": "Region"}, "type": "select", "dict": "customer_level"})).await;

    let meta = app.get("/api/v1/meta/objects/customer").await;
    let keys: Vec<&str> = meta.data()["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert!(keys.ends_with(&["cf_wechat", "cf_score", "cf_region"]), "{keys:?}");
    assert!(
        meta.data()["operators"]["cf_score"]
            .as_array()
            .is_some_and(|o| o.contains(&json!("between")))
    );

    let missing = app.post("/api/v1/records/customer", &json!({"name": "无评分"})).await;
    assert_eq!(missing.body["error"]["field_codes"]["cf_score"][0], "required");
    let bad = app
        .post(
            "/api/v1/records/customer",
            &json!({"name": "坏", "cf_score": 101, "cf_wechat": 5, "cf_region": "Q"}),
        )
        .await;
    let codes = &bad.body["error"]["field_codes"];
    assert_eq!(
        (
            codes["cf_score"][0].as_str(),
            codes["cf_wechat"][0].as_str(),
            codes["cf_region"][0].as_str()
        ),
        (Some("out_of_range"), Some("invalid_type"), Some("invalid_option"))
    );

    for (name, score, wechat) in [("甲", 90, "wx_a"), ("乙", 60, "wx_b"), ("丙", 75, "wx_c")] {
        let c = app
            .create(
                "customer",
                json!({"name": name, "cf_score": score, "cf_wechat": wechat}),
            )
            .await;
        assert_eq!(c["cf_score"], score);
    }
    let list = app
        .get("/api/v1/records/customer?sort=-cf_score&fields=name,cf_score")
        .await;
    let order: Vec<&str> = list
        .data()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(order, ["甲", "丙", "乙"]);
    let f = json!({"and": [{"field": "cf_score", "op": "gte", "value": 70}, {"field": "cf_wechat", "op": "starts_with", "value": "wx_"}]});
    let filtered = app
        .get(&format!(
            "/api/v1/records/customer?filter={}&sort=cf_score",
            urlencode(&f.to_string())
        ))
        .await;
    assert_eq!(filtered.body["meta"]["total"], 2, "{}", filtered.text);
    assert_eq!(filtered.data()[0]["name"], "丙");

    let c = &list.data()[0];
    let path = format!("/api/v1/records/customer/{}", s(c, "id"));
    let updated = app.patch(&path, &json!({"version": 1, "cf_score": 95})).await;
    assert_eq!(updated.data()["cf_score"], 95);
    let history = app.get(&format!("{path}/history")).await;
    assert_eq!(
        history.data()[1]["changes"][0],
        json!({"field": "cf_score", "old": 90, "new": 95})
    );

    assert_eq!(
        app.delete("/api/v1/meta/objects/customer/fields/cf_score").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete("/api/v1/meta/objects/customer/fields/name").await.status,
        StatusCode::CONFLICT
    );
    let after = app.get(&path).await;
    assert!(
        after.data().get("cf_score").is_none(),
        "a removed field disappears from records"
    );
}

/// Multi-row creates (single creates grouped by the writer, imports, demo data) do not read
/// their rows back (decision 0017): the record they answer with is made from the values they
/// bound. It must be the record a read then returns, for every kind of value — standard and
/// custom, money, booleans, decimals, multi-selects, dates, numbers and values left out.
#[tokio::test]
async fn a_created_record_is_the_record_stored() {
    let app = spawn_app().await;
    for field in [
        json!({"key": "cf_ratio", "label": {"zh": "比例", "en": "Ratio"}, "type": "decimal"}),
        json!({"key": "cf_budget", "label": {"zh": "预算", "en": "Budget"}, "type": "money"}),
        json!({"key": "cf_vip", "label": {"zh": "贵宾", "en": "VIP"}, "type": "boolean"}),
        json!({"key": "cf_labels", "label": {"zh": "标签二", "en": "Labels"}, "type": "multi_select", "dict": "customer_tag"}),
        json!({"key": "cf_since", "label": {"zh": "合作起始", "en": "Since"}, "type": "date"}),
        json!({"key": "cf_seats", "label": {"zh": "席位", "en": "Seats"}, "type": "integer"}),
    ] {
        let r = add_field(&app, field).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let full = json!({
        "name": "全字段客户有限公司", "customer_type": "enterprise", "level": "A", "phone": "13912345678",
        "email": "all@example.cn", "province": "广东省", "city": "深圳市", "district": "南山区",
        "address": "科技园路1号", "registered_capital": 12_000_000, "established_on": "2001-02-03",
        "employee_count": 250, "is_key_account": true, "tags": ["vip", "new"], "remark": "备注",
        "cf_ratio": 0.25, "cf_budget": {"amount": 880_000, "currency": "USD"}, "cf_vip": false,
        "cf_labels": ["strategic"], "cf_since": "2020-01-01", "cf_seats": 3,
    });
    let whole_number_ratio =
        json!({"name": "整数比例客户", "customer_type": "individual", "cf_ratio": 2.0, "is_key_account": false});
    let bare = json!({"name": "只有名称的客户"});

    // Through the API (the writer's grouped create) and through a batch (imports, demo data).
    let mut created = vec![app.create("customer", full.clone()).await];
    let rows: Vec<_> = [full, whole_number_ratio, bare]
        .into_iter()
        .map(|mut body| {
            body["name"] = json!(format!("{}（批量）", s(&body, "name")));
            body.as_object().cloned().unwrap_or_default()
        })
        .collect();
    let batch = app
        .state
        .engine
        .create_batch(&Actor::system(), "customer", &rows)
        .await
        .expect("batch");
    for result in batch {
        created.push(Json::Object(result.expect("created")));
    }
    assert_eq!(created.len(), 4);
    for record in &created {
        let stored = app.get(&format!("/api/v1/records/customer/{}", s(record, "id"))).await;
        assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
        assert_eq!(record, stored.data(), "the answer of a create is the record stored");
    }
    assert_eq!(
        created[1]["registered_capital"],
        json!({"amount": 12_000_000, "currency": "CNY"})
    );
    assert_eq!(created[1]["cf_budget"], json!({"amount": 880_000, "currency": "USD"}));
    assert_eq!(created[1]["tags"], json!(["vip", "new"]));
    assert_eq!(created[1]["version"], 1);
    assert_eq!(created[3]["is_key_account"], Json::Null);
}

/// A bulk load validates its next rows while the database writes the last ones, and names a
/// customer's id in its contacts before the customer is written (`prepare_batch`,
/// `write_batch`; `demo-data --size`). Each valid row is created with the id it was given when
/// prepared — also when a row at fault sends the batch down the row-by-row path — and an
/// invalid row has no id and keeps its own error.
#[tokio::test]
async fn a_prepared_batch_creates_its_rows_with_the_ids_it_gave_them() {
    let app = spawn_app().await;
    let engine = &app.state.engine;
    let actor = Actor::system();
    let body = |v: Json| v.as_object().cloned().unwrap_or_default();
    let customers = engine
        .prepare_batch(
            &actor,
            "customer",
            &[
                body(customer("预先编号甲有限公司")),
                body(json!({"name": "缺少类型的客户", "customer_type": "no_such_type"})),
                body(customer("预先编号乙有限公司")),
            ],
        )
        .await
        .expect("prepared");
    let first = customers.id(0).expect("a valid row has an id").to_owned();
    let third = customers.id(2).expect("a valid row has an id").to_owned();
    assert!(customers.id(1).is_none(), "an invalid row gets no id");
    assert!(customers.error(1).is_some(), "an invalid row keeps its error");
    // Contacts name the customers before those are written.
    let contacts = engine
        .prepare_batch(
            &actor,
            "contact",
            &[
                body(json!({"customer_id": first, "name": "王伟"})),
                body(json!({"customer_id": third, "name": "李娜"})),
                // Valid on its own, refused by the database check: no such customer.
                body(json!({"customer_id": "00000000-0000-7000-8000-000000000000", "name": "赵敏"})),
            ],
        )
        .await
        .expect("prepared");
    let contact_ids: Vec<Option<String>> = (0..3).map(|i| contacts.id(i).map(str::to_owned)).collect();

    let written = engine
        .write_batch(customers, guanxi_store::records::SearchEntries::Immediate)
        .await
        .expect("written");
    assert_eq!(written.len(), 3);
    assert_eq!(
        written[0]
            .as_ref()
            .map(|r| s(&Json::Object(r.clone()), "id").to_owned())
            .ok(),
        Some(first.clone())
    );
    assert!(written[1].is_err(), "the invalid row is reported at its place");
    assert_eq!(
        written[2]
            .as_ref()
            .map(|r| s(&Json::Object(r.clone()), "id").to_owned())
            .ok(),
        Some(third.clone())
    );

    let written = engine
        .write_batch(contacts, guanxi_store::records::SearchEntries::Immediate)
        .await
        .expect("written");
    for (i, result) in written.iter().take(2).enumerate() {
        let record = Json::Object(result.as_ref().expect("created").clone());
        assert_eq!(Some(s(&record, "id").to_owned()), contact_ids[i], "the prepared id");
        let stored = app.get(&format!("/api/v1/records/contact/{}", s(&record, "id"))).await;
        assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
        assert_eq!(
            s(stored.data(), "customer_id"),
            if i == 0 { first.as_str() } else { third.as_str() }
        );
    }
    assert!(written[2].is_err(), "a contact of no customer is refused");
    let missing = app
        .get(&format!(
            "/api/v1/records/contact/{}",
            contact_ids[2].clone().unwrap_or_default()
        ))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "the refused row wrote nothing");
}

/// A batch larger than one multi-row statement goes out in several, each chunk's audit entries
/// sent with the next chunk's INSERT and the last chunk's at the end (decision 0018): every
/// record of every chunk is stored once and has exactly one create entry.
#[tokio::test]
async fn every_chunk_of_a_large_batch_is_stored_with_its_audit_entries() {
    let app = spawn_app().await;
    // A statement holds at most 3,333 rows (30,000 binds, nine per audit entry): at least three.
    let inputs: Vec<_> = (0..7_000)
        .map(|n| {
            customer(&format!("分块客户{n:04}"))
                .as_object()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let created = app
        .state
        .engine
        .create_batch(&Actor::system(), "customer", &inputs)
        .await
        .expect("batch");
    let ids: BTreeSet<String> = created
        .iter()
        .map(|r| {
            r.as_ref().expect("created")["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 7_000, "every row created once");

    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM customers WHERE name LIKE '分块客户%'")
        .fetch_all(app.state.db.reader())
        .await
        .expect("customers");
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), ids);
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT record_id FROM audit_log WHERE object = 'customer' AND action = 'create'")
            .fetch_all(app.state.db.reader())
            .await
            .expect("audit");
    assert_eq!(audited.len(), 7_000, "one create entry per record, none twice");
    assert_eq!(audited.into_iter().collect::<BTreeSet<_>>(), ids);
}

#[tokio::test]
async fn bad_custom_field_definitions_are_refused() {
    let app = spawn_app().await;
    for (body, field) in [
        (
            json!({"key": "cf_Bad Key", "label": {"zh": "坏", "en": "Bad"}, "type": "text", "max_len": 10}),
            "key",
        ),
        (
            json!({"key": "cf_x", "label": {"zh": "", "en": "X"}, "type": "text", "max_len": 10}),
            "label",
        ),
        (
            json!({"key": "cf_y", "label": {"zh": "Y", "en": "Y"}, "type": "select", "dict": "no_such_dict"}),
            "dict",
        ),
        (
            json!({"key": "cf_z", "label": {"zh": "Z", "en": "Z"}, "type": "relation", "object": "spaceship"}),
            "object",
        ),
        (
            json!({"key": "cf_s", "label": {"zh": "S", "en": "S"}, "type": "state"}),
            "type",
        ),
    ] {
        let r = add_field(&app, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", r.text);
        assert!(r.body["error"]["field_codes"][field].is_array(), "{body}: {}", r.text);
    }
    let wrong_type = add_field(
        &app,
        json!({"key": "cf_q", "label": {"zh": "Q", "en": "Q"}, "type": "hologram"}),
    )
    .await;
    assert_eq!(wrong_type.code(), "invalid_body");
    add_field(
        &app,
        json!({"key": "cf_dup", "label": {"zh": "D", "en": "D"}, "type": "boolean"}),
    )
    .await;
    let dup = add_field(
        &app,
        json!({"key": "cf_dup", "label": {"zh": "D", "en": "D"}, "type": "boolean"}),
    )
    .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_department_tree_refuses_cycles_and_deleting_a_parent() {
    let app = spawn_app().await;
    let hq = app.create("department", json!({"name": "总部", "code": "HQ"})).await;
    let branch = app
        .create(
            "department",
            json!({"name": "华北分公司", "code": "HB", "parent_id": hq["id"]}),
        )
        .await;
    let office = app
        .create("department", json!({"name": "北京办事处", "parent_id": branch["id"]}))
        .await;
    let cycle = app
        .patch(
            &format!("/api/v1/records/department/{}", s(&hq, "id")),
            &json!({"version": 1, "parent_id": office["id"]}),
        )
        .await;
    assert_eq!(
        cycle.body["error"]["field_codes"]["parent_id"][0], "cycle",
        "{}",
        cycle.text
    );
    let own = app
        .patch(
            &format!("/api/v1/records/department/{}", s(&hq, "id")),
            &json!({"version": 1, "parent_id": hq["id"]}),
        )
        .await;
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY);
    let parent = app
        .delete(&format!("/api/v1/records/department/{}", s(&branch, "id")))
        .await;
    assert_eq!(parent.status, StatusCode::CONFLICT);
    assert_eq!(
        app.delete(&format!("/api/v1/records/department/{}", s(&office, "id")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/api/v1/records/department/{}", s(&branch, "id")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let dup = app
        .post(
            "/api/v1/records/department",
            &json!({"name": "另一个总部", "code": "HQ"}),
        )
        .await;
    assert_eq!(dup.body["error"]["field_codes"]["code"][0], "duplicate");
}

/// A test module: stamps a remark on create, queues a welcome job, and fails on demand after
/// its writes, to prove hooks run inside the record's transaction.
struct WelcomeHooks;

#[async_trait]
impl RecordHooks for WelcomeHooks {
    async fn before_create(&self, ctx: &mut HookCtx<'_>, values: &mut Values) -> StoreResult<()> {
        values.push(("remark".into(), Value::Text("由欢迎钩子创建".into())));
        let name = values
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.to_json())
            .unwrap_or_default();
        ctx.enqueue_job("test.welcome", &json!({"name": name})).await?;
        Ok(())
    }

    async fn after_create(&self, _ctx: &mut HookCtx<'_>, record: &Record) -> StoreResult<()> {
        if record.get("name").and_then(|n| n.as_str()) == Some("boom") {
            return Err(DomainError::conflict("钩子拒绝", "refused by hook").into());
        }
        Ok(())
    }
}

/// Fails the first `fail_times` runs, then succeeds with progress.
struct FlakyJob {
    runs: Arc<AtomicUsize>,
    fail_times: usize,
}

#[async_trait]
impl JobHandler for FlakyJob {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<Option<Json>> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_times {
            anyhow::bail!("transient failure {n}");
        }
        ctx.progress(10, Some(10)).await?;
        Ok(Some(json!({"welcomed": ctx.payload["name"]})))
    }
}

async fn wait_for_job(app: &TestApp, id: &str, status: &str) -> Json {
    for _ in 0..300 {
        let r = app.get(&format!("/api/v1/jobs/{id}")).await;
        if r.data()["status"] == status {
            return r.data().clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} never reached {status}");
}

async fn job_ids(app: &TestApp) -> Vec<String> {
    let rows = sqlx::query_scalar::<_, String>("SELECT id FROM jobs ORDER BY id")
        .fetch_all(app.state.db.reader())
        .await;
    rows.unwrap_or_default()
}

fn welcome_app_options(runs: Arc<AtomicUsize>, fail_times: usize) -> AppOptions {
    let mut hooks = HookRegistry::default();
    hooks.register("customer", Arc::new(WelcomeHooks));
    AppOptions {
        hooks,
        jobs: vec![("test.welcome".into(), Arc::new(FlakyJob { runs, fail_times }))],
    }
}

#[tokio::test]
async fn hooks_and_their_jobs_commit_or_roll_back_with_the_change() {
    let runs = Arc::new(AtomicUsize::new(0));
    let app = spawn_app_with(welcome_app_options(runs.clone(), 2), |c| c.job_retry_base_ms = 5).await;
    let c = app.create("customer", customer("欢迎客户")).await;
    assert_eq!(c["remark"], "由欢迎钩子创建", "before_create may add values");
    let ids = job_ids(&app).await;
    assert_eq!(ids.len(), 1);
    let job = wait_for_job(&app, &ids[0], "done").await;
    assert_eq!(job["attempts"], 3, "failed twice, retried with backoff, then succeeded");
    assert_eq!(job["result"], json!({"welcomed": "欢迎客户"}));
    assert_eq!(
        (job["progress_done"].as_i64(), job["progress_total"].as_i64()),
        (Some(10), Some(10))
    );

    let boom = app.post("/api/v1/records/customer", &customer("boom")).await;
    assert_eq!(boom.status, StatusCode::CONFLICT);
    assert_eq!(
        job_ids(&app).await.len(),
        1,
        "the job queued by the refused create is gone too"
    );
    let f = urlencode(r#"{"field":"name","op":"eq","value":"boom"}"#);
    assert_eq!(
        app.get(&format!("/api/v1/records/customer?filter={f}")).await.body["meta"]["total"],
        0
    );
    let audit = app.get("/api/v1/audit?object=customer").await;
    assert_eq!(
        audit.data().as_array().map(Vec::len),
        Some(1),
        "no audit entry for the rolled-back create"
    );
}

#[tokio::test]
async fn a_job_that_keeps_failing_stops_after_its_attempts() {
    let runs = Arc::new(AtomicUsize::new(0));
    let app = spawn_app_with(welcome_app_options(runs.clone(), usize::MAX), |c| {
        c.job_retry_base_ms = 2
    })
    .await;
    app.create("customer", customer("总是失败")).await;
    let ids = job_ids(&app).await;
    let job = wait_for_job(&app, &ids[0], "failed").await;
    assert_eq!(job["attempts"], 5);
    assert!(
        job["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("transient failure"))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 5);
    let missing = app.get(&format!("/api/v1/jobs/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let unique: HashSet<String> = ids.into_iter().collect();
    assert_eq!(unique.len(), 1);
}

/// Several app servers share one PostgreSQL database (ARCHITECTURE.md): numbers stay unique
/// across them. On SQLite a second server on the same file is refused instead.
#[tokio::test]
async fn two_servers_on_one_database_never_share_a_number() {
    let app = spawn_app().await;
    let config = guanxi_testkit::test_config(&app.db, app.mail.port());
    let second = guanxi_server::Application::build(config).await;
    if !app.db.is_postgres() {
        let err = second.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("in use"),
            "a second server on one SQLite file is refused: {err}"
        );
        return;
    }
    let second = second.expect("second server");
    let base = format!("http://{}", second.local_addr().expect("addr"));
    tokio::spawn(second.run_until_stopped(std::future::pending()));
    let other = guanxi_testkit::sign_in(&base, guanxi_testkit::ADMIN_USERNAME, guanxi_testkit::ADMIN_PASSWORD)
        .await
        .expect("sign in on the second server");
    let mut tasks = Vec::new();
    for i in 0..30 {
        let client = if i % 2 == 0 { app.admin.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let r = client
                .post("/api/v1/records/customer", &customer(&format!("双机客户{i}")))
                .await;
            r.data()["number"].as_str().map(str::to_owned)
        }));
    }
    let mut numbers = BTreeSet::new();
    for t in tasks {
        numbers.insert(t.await.ok().flatten().expect("created"));
    }
    assert_eq!(numbers.len(), 30, "no number was handed out twice");
}

/// Holds the writer inside the create of a customer named [`GATE`] until the test opens the
/// gate, so that the creates sent meanwhile queue for the writer and are committed as a group.
struct GateHooks {
    gate: Arc<tokio::sync::Semaphore>,
}

const GATE: &str = "闸门客户";

#[async_trait]
impl RecordHooks for GateHooks {
    async fn before_create(&self, _ctx: &mut HookCtx<'_>, values: &mut Values) -> StoreResult<()> {
        if values.iter().any(|(k, v)| k == "name" && v.to_json() == GATE) {
            let _permit = self.gate.acquire().await;
        }
        Ok(())
    }

    async fn after_create(&self, _ctx: &mut HookCtx<'_>, record: &Record) -> StoreResult<()> {
        if record.get("name").and_then(|n| n.as_str()) == Some("钩子拒绝的客户") {
            return Err(DomainError::conflict("钩子拒绝", "refused by hook").into());
        }
        Ok(())
    }
}

/// Sends the gate create, then `bodies` while the writer is held, then opens the gate; returns
/// each body's reply, in order.
async fn create_behind_gate(
    app: &TestApp,
    gate: &tokio::sync::Semaphore,
    bodies: Vec<Json>,
) -> Vec<(StatusCode, Json)> {
    let post = |body: Json| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/records/customer?confirm_duplicates=true", app.base_url);
        tokio::spawn(async move {
            let r = client.post(url).json(&body).send().await.expect("sent");
            let status = r.status();
            (status, r.json::<Json>().await.expect("json"))
        })
    };
    let gate_create = post(customer(GATE));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tasks: Vec<_> = bodies.into_iter().map(post).collect();
    // Long enough for every request to pass validation and queue for the writer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gate.add_permits(1);
    assert_eq!(gate_create.await.expect("gate").0, StatusCode::CREATED);
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("reply"));
    }
    replies
}

#[tokio::test]
async fn creates_waiting_for_the_writer_commit_together_and_each_gets_its_own_answer() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut hooks = HookRegistry::default();
    hooks.register("customer", Arc::new(GateHooks { gate: gate.clone() }));
    let app = spawn_app_with(
        AppOptions {
            hooks,
            jobs: Vec::new(),
        },
        |_| {},
    )
    .await;

    // Ten good creates queued behind the held writer are written as one group.
    let bodies = (0..10)
        .map(|i| json!({"name": format!("组提交客户{i}号"), "customer_type": "enterprise", "phone": format!("1391234{i:04}")}))
        .collect();
    let replies = create_behind_gate(&app, &gate, bodies).await;
    let mut stamps = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (status, body) in &replies {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        stamps.insert(s(&body["data"], "created_at").to_owned());
        numbers.insert(s(&body["data"], "number").to_owned());
    }
    assert!(
        stamps.len() < replies.len(),
        "creates queued together share one transaction (and its timestamp): {stamps:?}"
    );
    let expected: BTreeSet<String> = (2..=11).map(|n| format!("CM{n:06}")).collect();
    assert_eq!(numbers, expected, "numbers stay unique and consecutive");
    // Each has its audit entry, its search terms and its duplicate keys.
    let audit = app.get("/api/v1/audit?object=customer&limit=100").await;
    assert_eq!(audit.data().as_array().map(Vec::len), Some(11));
    let found = app
        .get(&format!("/api/v1/records/customer?q={}", urlencode("组提交")))
        .await;
    assert_eq!(found.body["meta"]["total"], 10, "{}", found.text);
    let dup = app
        .post("/api/v1/customers/duplicates", &json!({"phone": "13912340007"}))
        .await;
    assert_eq!(dup.data()["visible_count"], 1, "{}", dup.text);

    // A group with rows the database or a hook refuses: those get their own errors, the others
    // are created, and the refused rows leave nothing behind.
    app.create(
        "customer",
        json!({"name": "已有信用代码的客户", "customer_type": "enterprise", "credit_code": "91110000600000001X"}),
    )
    .await;
    let bodies = vec![
        json!({"name": "组内好客户甲", "customer_type": "enterprise"}),
        json!({"name": "信用代码重复的客户", "customer_type": "enterprise", "credit_code": "91110000600000001X"}),
        json!({"name": "钩子拒绝的客户", "customer_type": "enterprise"}),
        json!({"name": "同组信用代码甲", "customer_type": "enterprise", "credit_code": "91110000600000002X"}),
        json!({"name": "同组信用代码乙", "customer_type": "enterprise", "credit_code": "91110000600000002X"}),
        json!({"name": "组内好客户乙", "customer_type": "enterprise"}),
    ];
    let replies = create_behind_gate(&app, &gate, bodies).await;
    let statuses: Vec<StatusCode> = replies.iter().map(|(st, _)| *st).collect();
    let (good, bad) = (StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        [statuses[0], statuses[1], statuses[2], statuses[5]],
        [good, bad, StatusCode::CONFLICT, good],
        "{replies:?}"
    );
    assert_eq!(replies[1].1["error"]["field_codes"]["credit_code"][0], "duplicate");
    // Of two queued creates with one new credit code, whichever reached the writer first wins.
    let mut pair = [statuses[3], statuses[4]];
    pair.sort();
    assert_eq!(pair, [good, bad], "{replies:?}");
    let loser = if statuses[3] == bad { 3 } else { 4 };
    assert_eq!(replies[loser].1["error"]["field_codes"]["credit_code"][0], "duplicate");
    let audit = app.get("/api/v1/audit?object=customer&limit=100").await;
    assert_eq!(
        audit.data().as_array().map(Vec::len),
        Some(16),
        "audit entries for the 11 + 1 earlier and 4 new customers only"
    );
    let refused = app
        .get(&format!("/api/v1/records/customer?q={}", urlencode("钩子拒绝")))
        .await;
    assert_eq!(refused.body["meta"]["total"], 0, "no search terms for a refused create");
}
