//! Customer duplicates and merges (issue 5 §5; seed 004 FR-CUST-01 §3.1.3 "避免重复录入已存在的
//! 客户信息"): the normalised keys found through the duplicates API, the 409 on create and its
//! confirmation, the import's duplicate report and policies, and merge with its undo,
//! permissions and bad input.

use std::time::{Duration, Instant};

use guanxi_testkit::{Reply, TestApp, TestClient, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::helpers::s;
use crate::records::urlencode;

const ZP: &str = "北京中平能源有限公司";

async fn dups(client: &TestClient, body: Json) -> Reply {
    client.post("/api/v1/customers/duplicates", &body).await
}

/// The ids of the matches of a duplicates reply, with what each matched on.
fn matched(reply: &Reply) -> Vec<(String, Vec<String>)> {
    reply.data()["matches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                s(&m["record"], "id").to_owned(),
                m["matched_on"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect(),
            )
        })
        .collect()
}

async fn zhongping(app: &TestApp) -> Json {
    app.create(
        "customer",
        json!({"name": ZP, "customer_type": "enterprise", "phone": "13812345678",
               "email": "Sales@ZhongPing.cn", "credit_code": "91110000600000000X"}),
    )
    .await
}

async fn count(client: &TestClient, object: &str) -> i64 {
    let r = client
        .get(&format!("/api/v1/records/{object}?total=exact&limit=1"))
        .await;
    r.body["meta"]["total"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn every_normalisation_rule_finds_the_same_customer() {
    let app = spawn_app().await;
    let zp = zhongping(&app).await;
    let id = s(&zp, "id").to_owned();
    let cases: Vec<(&str, Json, &str)> = vec![
        (
            "trim and collapse spaces",
            json!({"name": "  北京 中平  能源有限公司 "}),
            "name",
        ),
        (
            "legal suffix 有限责任公司",
            json!({"name": "北京中平能源有限责任公司"}),
            "name",
        ),
        (
            "legal suffix 股份有限公司",
            json!({"name": "北京中平能源股份有限公司"}),
            "name",
        ),
        ("legal suffix 公司", json!({"name": "北京中平能源公司"}), "name"),
        ("no legal suffix", json!({"name": "北京中平能源"}), "name"),
        (
            "full-width space",
            json!({"name": "北京\u{3000}中平能源有限公司"}),
            "name",
        ),
        (
            "phone with +86 and dashes",
            json!({"phone": "+86 138-1234-5678"}),
            "phone",
        ),
        ("phone with 0086", json!({"phone": "0086 13812345678"}), "phone"),
        (
            "phone in full-width digits",
            json!({"phone": "１３８１２３４５６７８"}),
            "phone",
        ),
        (
            "email in another case",
            json!({"email": "  SALES@zhongping.CN "}),
            "email",
        ),
        (
            "credit code in lower case",
            json!({"credit_code": "91110000600000000x"}),
            "credit_code",
        ),
    ];
    for (what, body, key) in cases {
        let r = dups(&app, body).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text);
        assert_eq!(matched(&r), vec![(id.clone(), vec![key.to_owned()])], "{what}");
        assert_eq!(r.data()["hidden_count"], 0, "{what}");
    }
    // Latin names: case, full-width letters, brackets and English legal forms.
    let acme = app
        .create("customer", json!({"name": "ACME Trading (Shanghai) Co., Ltd."}))
        .await;
    for variant in [
        "acme trading (shanghai)",
        "ＡＣＭＥ Trading（Shanghai）Co.,Ltd",
        "Acme Trading【Shanghai】 Limited",
    ] {
        let r = dups(&app, json!({"name": variant})).await;
        assert_eq!(
            matched(&r),
            vec![(s(&acme, "id").to_owned(), vec!["name".to_owned()])],
            "{variant}"
        );
    }
    // Every key at once: the match lists them, most reliable first.
    let all = dups(
        &app,
        json!({"name": "北京中平能源", "phone": "13812345678", "email": "sales@zhongping.cn", "credit_code": "91110000600000000X"}),
    )
    .await;
    assert_eq!(
        all.data()["matches"][0]["matched_on"],
        json!(["credit_code", "name", "phone", "email"])
    );
    assert_eq!(all.data()["matches"][0]["record"]["number"], zp["number"]);
    // Different companies are not duplicates, and a customer is not its own duplicate.
    for other in [
        json!({"name": "北京中平能源科技有限公司"}),
        json!({"name": "中平能源集团"}),
        json!({"phone": "13812345679"}),
    ] {
        assert_eq!(matched(&dups(&app, other.clone()).await), vec![], "{other}");
    }
    let own = dups(&app, json!({"name": ZP, "exclude_id": id})).await;
    assert_eq!(own.data()["visible_count"], 0);
    // Nothing to compare, or an unknown key, is a bad request.
    let empty = dups(&app, json!({"name": "  ", "phone": "12"})).await;
    assert_eq!(
        (empty.status, empty.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query")
    );
    let unknown = dups(&app, json!({"fax": "010-1"})).await;
    assert_eq!(unknown.code(), "invalid_body");
}

#[tokio::test]
async fn creating_a_likely_duplicate_needs_confirmation() {
    let app = spawn_app().await;
    let zp = zhongping(&app).await;
    let again = app
        .post(
            "/api/v1/records/customer",
            &json!({"name": "北京中平能源股份有限公司", "customer_type": "enterprise"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(again.code(), "duplicate_suspected");
    let details = &again.body["error"]["details"];
    assert_eq!(details["matches"][0]["record"]["id"], zp["id"]);
    assert_eq!(details["matches"][0]["matched_on"], json!(["name"]));
    assert_eq!(details["visible_count"], 1);
    assert_eq!(count(&app, "customer").await, 1, "nothing was created");
    // The same phone or email with another name is suspected too.
    for body in [
        json!({"name": "另一家公司", "phone": "+86 13812345678"}),
        json!({"name": "第三家公司", "email": "SALES@zhongping.cn"}),
    ] {
        let r = app.post("/api/v1/records/customer", &body).await;
        assert_eq!(r.code(), "duplicate_suspected", "{body}: {}", r.text);
    }
    // Field errors come first: the form fixes them before it asks about duplicates.
    let invalid = app
        .post("/api/v1/records/customer", &json!({"name": ZP, "phone": "12345"}))
        .await;
    assert_eq!(invalid.code(), "validation_failed", "{}", invalid.text);
    // The user confirms: the customer is created.
    let confirmed = app
        .post(
            "/api/v1/records/customer?confirm_duplicates=true",
            &json!({"name": "北京中平能源股份有限公司", "customer_type": "enterprise"}),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::CREATED, "{}", confirmed.text);
    assert_eq!(count(&app, "customer").await, 2);
    let bad_flag = app
        .post("/api/v1/records/customer?confirm=yes", &json!({"name": "某公司"}))
        .await;
    assert_eq!(bad_flag.code(), "invalid_query");
    // The unique credit code is refused even when confirmed.
    let code = app
        .post(
            "/api/v1/records/customer?confirm_duplicates=true",
            &json!({"name": "冒名公司", "credit_code": "91110000600000000X"}),
        )
        .await;
    assert_eq!(
        code.body["error"]["field_codes"]["credit_code"][0], "duplicate",
        "{}",
        code.text
    );
    // A customer unlike any other is created without a question; other objects are not checked.
    let fresh = app
        .post("/api/v1/records/customer", &json!({"name": "上海星河贸易"}))
        .await;
    assert_eq!(fresh.status, StatusCode::CREATED);
    for _ in 0..2 {
        app.create("department", json!({"name": "同名部门"})).await;
    }
}

#[tokio::test]
async fn a_salesperson_learns_only_how_many_duplicates_it_cannot_see() {
    let app = spawn_app().await;
    let east = s(&app.create("department", json!({"name": "华东销售部"})).await, "id").to_owned();
    let north = s(&app.create("department", json!({"name": "华北销售部"})).await, "id").to_owned();
    let (_, li) = app.user("li_sales", &["salesperson"], Some(&east), None).await;
    let (_, wang) = app.user("wang_sales", &["salesperson"], Some(&north), None).await;
    let mine = li.create("customer", json!({"name": ZP, "phone": "13812345678"})).await;
    let r = dups(&wang, json!({"name": "北京中平能源", "phone": "13812345678"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.data()["matches"], json!([]), "nothing about li's customer is shown");
    assert_eq!(
        (r.data()["visible_count"].as_i64(), r.data()["hidden_count"].as_i64()),
        (Some(0), Some(1))
    );
    let create = wang
        .post("/api/v1/records/customer", &json!({"name": "北京中平能源公司"}))
        .await;
    assert_eq!(create.code(), "duplicate_suspected");
    assert_eq!(create.body["error"]["details"]["hidden_count"], 1);
    assert_eq!(create.body["error"]["details"]["matches"], json!([]));
    // Li sees the match in full.
    let own = dups(&li, json!({"name": "北京中平能源公司"})).await;
    assert_eq!(
        matched(&own),
        vec![(s(&mine, "id").to_owned(), vec!["name".to_owned()])]
    );
}

#[tokio::test]
async fn keys_follow_updates_deletes_restores_and_a_rebuild() {
    let app = spawn_app().await;
    let zp = zhongping(&app).await;
    let id = s(&zp, "id").to_owned();
    let path = format!("/api/v1/records/customer/{id}");
    let found = |name: &'static str| {
        let app = &app;
        async move { dups(app, json!({"name": name})).await.data()["visible_count"].as_i64() }
    };
    let renamed = app
        .patch(
            &path,
            &json!({"version": zp["version"], "name": "中原电力有限公司", "phone": "13900001111"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(found(ZP).await, Some(0), "the old name no longer matches");
    assert_eq!(found("中原电力").await, Some(1));
    let phone = dups(&app, json!({"phone": "13812345678"})).await;
    assert_eq!(phone.data()["visible_count"], 0);
    assert_eq!(app.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(found("中原电力").await, Some(0), "a deleted customer is no duplicate");
    let restored = app.post(&format!("{path}/restore"), &json!({})).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.text);
    assert_eq!(found("中原电力").await, Some(1), "a restored one is again");
    // A rebuild (after an upgrade, or `guanxi reindex`) gives the same answers.
    sqlx::query("DELETE FROM customer_duplicate_keys")
        .execute(app.state.db.writer())
        .await
        .expect("clear keys");
    assert_eq!(found("中原电力").await, Some(0));
    let n = app.state.engine.rebuild_duplicate_keys().await.expect("rebuild");
    assert_eq!(n, 1);
    assert!(app.state.engine.duplicate_keys_current().await.expect("version"));
    assert_eq!(found("中原电力").await, Some(1));
}

// ---------------------------------------------------------------------------------------------
// Import.

async fn upload(client: &TestClient, name: &str, csv: &str) -> String {
    let part = reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name(name.to_owned());
    let form = reqwest::multipart::Form::new().part("file", part);
    let reply = client
        .read(
            client
                .client
                .post(format!("{}/api/v1/records/customer/import", client.base_url))
                .multipart(form),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    s(reply.data(), "id").to_owned()
}

async fn run(client: &TestClient, import_id: &str, step: &str, body: Json) -> Json {
    let reply = client.post(&format!("/api/v1/imports/{import_id}/{step}"), &body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{step}: {}", reply.text);
    let job_id = s(reply.data(), "job_id").to_owned();
    let start = Instant::now();
    loop {
        let job = client.get(&format!("/api/v1/jobs/{job_id}")).await;
        let status = job.data()["status"].as_str().unwrap_or_default().to_owned();
        if status == "done" || status == "failed" {
            assert_eq!(status, "done", "{step}: {}", job.text);
            return job.data()["result"].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{step} still {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn customer_named(app: &TestApp, name: &str) -> Vec<Json> {
    let filter = urlencode(&json!({"field": "name", "op": "eq", "value": name}).to_string());
    let r = app.get(&format!("/api/v1/records/customer?filter={filter}")).await;
    r.data().as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_import_dry_run_reports_rows_that_duplicate_customers_or_earlier_rows() {
    let app = spawn_app().await;
    let zp = zhongping(&app).await;
    let csv = "客户名称,联系电话,邮箱\n\
               北京中平能源股份有限公司,,\n\
               完全不同的公司,+86 138 1234 5678,\n\
               上海星河贸易,13900000001,\n\
               上海星河贸易有限公司,,\n\
               广州新客户,13900000002,new@gz.cn\n\
               深圳新客户,13900000003,NEW@gz.cn\n";
    let id = upload(&app, "dups.csv", csv).await;
    let result = run(&app, &id, "dry-run", json!({"duplicate_policy": "create"})).await;
    assert_eq!(result["counts"]["failed_rows"], 0, "duplicates are no errors: {result}");
    assert_eq!(result["counts"]["duplicate_rows"], 4, "{result}");
    assert_eq!(
        result["would_create"], 6,
        "the create policy creates them all: {result}"
    );
    let reported: Vec<(i64, String, String)> = result["duplicates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["row"].as_i64().unwrap_or(0),
                s(d, "column").to_owned(),
                s(d, "code").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reported,
        vec![
            (2, "客户名称".to_owned(), "duplicate_existing".to_owned()),
            (3, "联系电话".to_owned(), "duplicate_existing".to_owned()),
            (5, "客户名称".to_owned(), "duplicate_in_file".to_owned()),
            (7, "邮箱".to_owned(), "duplicate_in_file".to_owned()),
        ],
        "{result}"
    );
    let first = &result["duplicates"][0];
    assert!(s(first, "message").contains(s(&zp, "number")), "{first}");
    assert!(
        s(&result["duplicates"][2], "message").contains("第4行"),
        "{}",
        result["duplicates"][2]
    );
    // The report is listed like the errors, and in English on request.
    let listed = app.get(&format!("/api/v1/imports/{id}/errors?phase=duplicates")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["meta"]["rows_with_errors"], 4);
    let en = app
        .read(
            app.client
                .get(format!("{}/api/v1/imports/{id}/errors?phase=duplicates", app.base_url))
                .header("accept-language", "en"),
        )
        .await;
    assert!(en.text.contains("is the same as in row 4 of the file"), "{}", en.text);
    assert_eq!(count(&app, "customer").await, 1, "a dry run writes nothing");
}

#[tokio::test]
async fn skip_and_update_policies_match_existing_customers_by_duplicate_keys() {
    let app = spawn_app().await;
    let zp = zhongping(&app).await;
    let star = app
        .create(
            "customer",
            json!({"name": "上海星河贸易有限公司", "email": "info@xinghe.cn", "city": "上海"}),
        )
        .await;
    // Row 2 shares the credit code (under another name), row 3 the normalised name, row 4 the
    // email; rows 5 and 6 are new and the same as each other.
    let csv = "客户名称,统一社会信用代码,邮箱,城市\n\
               中平能源（北京）,91110000600000000x,,北京\n\
               上海星河贸易,,,杭州\n\
               某某公司,,INFO@xinghe.cn,南京\n\
               广州新客户,,,广州\n\
               广州新客户有限公司,,,深圳\n";
    let id = upload(&app, "skip.csv", csv).await;
    let dry = run(&app, &id, "dry-run", json!({"duplicate_policy": "skip"})).await;
    assert_eq!(dry["would_skip"], 4, "{dry}");
    assert_eq!(dry["would_create"], 1, "{dry}");
    let batch = app.get(&format!("/api/v1/imports/{id}")).await;
    assert_eq!(
        batch.data()["options"]["match_on"],
        "duplicate_keys",
        "the default for customers"
    );
    let result = run(&app, &id, "commit", json!({"duplicate_policy": "skip"})).await;
    assert_eq!(
        (
            result["counts"]["skipped"].as_i64(),
            result["counts"]["created"].as_i64()
        ),
        (Some(4), Some(1)),
        "{result}"
    );
    assert_eq!(count(&app, "customer").await, 3);
    let kept = app.get(&format!("/api/v1/records/customer/{}", s(&zp, "id"))).await;
    assert_eq!(kept.data()["name"], ZP, "skipped rows change nothing");

    // update: the credit code finds 中平 (before its name would), the email finds 星河.
    let csv = "客户名称,统一社会信用代码,邮箱,城市\n\
               北京中平能源,91110000600000000X,,北京\n\
               某某公司,,info@XINGHE.cn,南京\n\
               全新客户,,,成都\n";
    let id = upload(&app, "update.csv", csv).await;
    let result = run(
        &app,
        &id,
        "commit",
        json!({"duplicate_policy": "update", "match_on": "duplicate_keys"}),
    )
    .await;
    assert_eq!(
        (
            result["counts"]["updated"].as_i64(),
            result["counts"]["created"].as_i64()
        ),
        (Some(2), Some(1)),
        "{result}"
    );
    let zp_now = app.get(&format!("/api/v1/records/customer/{}", s(&zp, "id"))).await;
    assert_eq!(
        (zp_now.data()["name"].as_str(), zp_now.data()["city"].as_str()),
        (Some("北京中平能源"), Some("北京"))
    );
    let star_now = app.get(&format!("/api/v1/records/customer/{}", s(&star, "id"))).await;
    assert_eq!(star_now.data()["city"], "南京");
    assert_eq!(customer_named(&app, "全新客户").await.len(), 1);
    // The undo puts the old values back.
    let undo = run(&app, &id, "undo", json!({})).await;
    assert_eq!(undo["restored"], 2, "{undo}");
    let zp_back = app.get(&format!("/api/v1/records/customer/{}", s(&zp, "id"))).await;
    assert_eq!(zp_back.data()["name"], ZP);

    // Two customers with the same name: an update cannot tell which one is meant.
    app.post(
        "/api/v1/records/customer?confirm_duplicates=true",
        &json!({"name": "上海星河贸易"}),
    )
    .await;
    let id = upload(&app, "ambiguous.csv", "客户名称,城市\n上海星河贸易,苏州\n").await;
    let result = run(&app, &id, "dry-run", json!({"duplicate_policy": "update"})).await;
    assert_eq!(result["errors"][0]["code"], "ambiguous_match", "{result}");
}

#[tokio::test]
async fn an_update_import_does_not_create_a_duplicate_of_a_customer_it_cannot_see() {
    let app = spawn_app().await;
    let east = s(&app.create("department", json!({"name": "华东销售部"})).await, "id").to_owned();
    let north = s(&app.create("department", json!({"name": "华北销售部"})).await, "id").to_owned();
    let (_, li) = app.user("li_sales", &["salesperson"], Some(&east), None).await;
    let (_, wang) = app.user("wang_sales", &["salesperson"], Some(&north), None).await;
    let perms = app.get("/api/v1/records/role?limit=100").await;
    // Salespeople may import customers in this test.
    let role = perms
        .data()
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["code"] == "salesperson")
        .cloned()
        .expect("salesperson role");
    let mut permissions = role["permissions"].clone();
    permissions["customer"]["import"] = json!("self");
    let patched = app
        .patch(
            &format!("/api/v1/records/role/{}", s(&role, "id")),
            &json!({"version": role["version"], "permissions": permissions}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    li.create("customer", json!({"name": ZP})).await;
    // Permissions are read at sign-in.
    drop(wang);
    let wang = guanxi_testkit::sign_in(&app.base_url, "wang_sales", guanxi_testkit::USER_PASSWORD)
        .await
        .expect("sign in again");
    let id = upload(&wang, "hidden.csv", "客户名称,城市\n北京中平能源公司,北京\n").await;
    let dry = run(&wang, &id, "dry-run", json!({"duplicate_policy": "update"})).await;
    assert_eq!(dry["errors"][0]["code"], "duplicate_not_visible", "{dry}");
    assert!(s(&dry["duplicates"][0], "message").contains("1个您无权查看"), "{dry}");
    assert!(
        !s(&dry["duplicates"][0], "message").contains("CM"),
        "no number of a hidden customer: {dry}"
    );
    let skip = run(&wang, &id, "commit", json!({"duplicate_policy": "skip"})).await;
    assert_eq!(skip["counts"]["skipped"], 1, "{skip}");
}

// ---------------------------------------------------------------------------------------------
// Merge.

async fn merge(client: &TestClient, body: Json) -> Reply {
    client.post("/api/v1/customers/merge", &body).await
}

fn ids_of(reply: &Reply) -> Vec<String> {
    reply
        .data()
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| s(r, "id").to_owned())
        .collect()
}

async fn children(app: &TestApp, object: &str, customer: &str) -> Vec<String> {
    let filter = urlencode(&json!({"field": "customer_id", "op": "eq", "value": customer}).to_string());
    let mut ids = ids_of(
        &app.get(&format!("/api/v1/records/{object}?filter={filter}&limit=100"))
            .await,
    );
    ids.sort();
    ids
}

#[tokio::test]
async fn a_merge_moves_related_records_fills_fields_and_its_undo_restores_everything() {
    let app = spawn_app().await;
    let target = app
        .create(
            "customer",
            json!({"name": ZP, "city": "北京", "customer_type": "enterprise"}),
        )
        .await;
    let t = s(&target, "id").to_owned();
    // A source from a converted lead, with a contact of its own.
    let lead = app
        .create(
            "lead",
            json!({"name": "马骏", "company": "中平能源北京分公司", "mobile": "13700002222", "email": "ma.jun@zp.cn"}),
        )
        .await;
    let converted = app
        .post(&format!("/api/v1/leads/{}/convert", s(&lead, "id")), &json!({}))
        .await;
    assert_eq!(converted.status, StatusCode::OK, "{}", converted.text);
    let s1 = s(converted.data(), "customer_id").to_owned();
    let s2_rec = app
        .post(
            "/api/v1/records/customer?confirm_duplicates=true",
            &json!({"name": "北京中平能源公司", "city": "天津", "address": "和平区1号", "credit_code": "91120000700000000A"}),
        )
        .await;
    let s2 = s(s2_rec.data(), "id").to_owned();
    let contact = app
        .create(
            "contact",
            json!({"customer_id": s2, "name": "赵敏", "mobile": "13600001111"}),
        )
        .await;
    let follow = app
        .create(
            "follow_up",
            json!({"customer_id": s2, "kind": "call", "subject": "首次电话", "occurred_at": "2026-11-01T10:00:00+08:00"}),
        )
        .await;
    let care = app
        .create(
            "care_action",
            json!({"customer_id": s1, "occasion": "holiday", "channel": "gift", "planned_on": "2027-01-28"}),
        )
        .await;
    let target_contacts_before = children(&app, "contact", &t).await;
    assert!(target_contacts_before.is_empty());

    let r = merge(
        &app,
        json!({"target_id": t, "source_ids": [s1, s2], "fields": {"city": s2}, "target_version": target["version"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let out = r.data();
    let merge_id = s(&out["merge"], "id").to_owned();
    assert_eq!(
        out["moved"],
        json!({"care_action": 1, "contact": 2, "follow_up": 1, "lead": 1}),
        "{out}"
    );
    // The target took the chosen city and filled its empty fields from the first source with a
    // value; its own values stay otherwise.
    assert_eq!(out["target"]["city"], "天津");
    assert_eq!(out["target"]["email"], "ma.jun@zp.cn", "from the first source");
    assert_eq!(out["target"]["address"], "和平区1号");
    assert_eq!(
        out["target"]["credit_code"], "91120000700000000A",
        "a unique value moves too"
    );
    assert_eq!(out["target"]["name"], ZP);
    assert_eq!(
        out["merge"]["fields"]["city"],
        json!({"from": s2, "old": "北京", "new": "天津"})
    );
    // Related records now belong to the target.
    assert_eq!(children(&app, "contact", &t).await.len(), 2);
    assert_eq!(children(&app, "follow_up", &t).await, vec![s(&follow, "id").to_owned()]);
    assert_eq!(children(&app, "care_action", &t).await, vec![s(&care, "id").to_owned()]);
    let lead_now = app.get(&format!("/api/v1/records/lead/{}", s(&lead, "id"))).await;
    assert_eq!(lead_now.data()["converted_customer_id"], t.as_str());
    // The sources are in the recycle bin, marked as merged into the target.
    for src in [&s1, &s2] {
        assert_eq!(
            app.get(&format!("/api/v1/records/customer/{src}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    let bin = app.get("/api/v1/records/customer/recycle-bin").await;
    let binned: Vec<&Json> = bin.data().as_array().into_iter().flatten().collect();
    assert_eq!(binned.len(), 2);
    assert!(binned.iter().all(|c| c["merged_into_id"] == t.as_str()), "{}", bin.text);
    // The target is found by the moved contact's phone.
    let found = app.get("/api/v1/records/customer?q=13600001111").await;
    assert_eq!(ids_of(&found), vec![t.clone()]);
    // Audit entries on every record.
    let history = app.get(&format!("/api/v1/records/customer/{t}/history")).await;
    let actions: Vec<&str> = history
        .data()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"merge") && actions.contains(&"update"), "{actions:?}");
    for src in [&s1, &s2] {
        let h = app.get(&format!("/api/v1/records/customer/{src}/history")).await;
        let actions: Vec<&str> = h
            .data()
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert!(
            actions.contains(&"delete") && actions.contains(&"merge"),
            "{src}: {actions:?}"
        );
    }
    let ch = app
        .get(&format!("/api/v1/records/contact/{}/history", s(&contact, "id")))
        .await;
    let last = ch.data().as_array().and_then(|a| a.last()).cloned().unwrap_or_default();
    assert_eq!(last["changes"][0]["field"], "customer_id");
    assert_eq!(last["changes"][0]["merge_id"], merge_id.as_str());
    // The merge is listed.
    let listed = app.get("/api/v1/customers/merges").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.data()[0]["id"], merge_id.as_str());
    assert_eq!(listed.data()[0]["target_title"], ZP);
    assert_eq!(listed.data()[0]["sources"][1]["title"], "北京中平能源公司");
    assert_eq!(listed.data()[0]["moved"], 5);
    assert_eq!(listed.data()[0]["status"], "merged");

    // Undo: everything goes back.
    let undo = app
        .post(&format!("/api/v1/customers/merges/{merge_id}/undo"), &json!({}))
        .await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.text);
    assert_eq!(undo.data()["merge"]["status"], "undone");
    assert_eq!(undo.data()["kept"], 0);
    let back = app.get(&format!("/api/v1/records/customer/{t}")).await;
    assert_eq!(back.data()["city"], "北京");
    for f in ["email", "address", "credit_code"] {
        assert!(back.data()[f].is_null(), "{f}: {}", back.text);
    }
    assert_eq!(children(&app, "contact", &t).await, target_contacts_before);
    assert_eq!(children(&app, "contact", &s2).await, vec![s(&contact, "id").to_owned()]);
    assert_eq!(
        children(&app, "follow_up", &s2).await,
        vec![s(&follow, "id").to_owned()]
    );
    assert_eq!(
        children(&app, "care_action", &s1).await,
        vec![s(&care, "id").to_owned()]
    );
    let lead_back = app.get(&format!("/api/v1/records/lead/{}", s(&lead, "id"))).await;
    assert_eq!(lead_back.data()["converted_customer_id"], s1.as_str());
    for src in [&s1, &s2] {
        let live = app.get(&format!("/api/v1/records/customer/{src}")).await;
        assert_eq!(live.status, StatusCode::OK, "{src} is back");
        assert!(live.data()["merged_into_id"].is_null());
    }
    assert_eq!(
        s(
            &app.get(&format!("/api/v1/records/customer/{s2}")).await.body["data"],
            "credit_code"
        ),
        "91120000700000000A"
    );
    let found = app.get("/api/v1/records/customer?q=13600001111").await;
    assert_eq!(
        ids_of(&found),
        vec![s2.clone()],
        "the search index follows the contact back"
    );
    let history = app.get(&format!("/api/v1/records/customer/{s1}/history")).await;
    assert!(history.text.contains("unmerge"));
    let again = app
        .post(&format!("/api/v1/customers/merges/{merge_id}/undo"), &json!({}))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "merge_already_undone")
    );
    let listed = app.get(&format!("/api/v1/customers/merges?target_id={t}")).await;
    assert_eq!(listed.data()[0]["status"], "undone");
}

#[tokio::test]
async fn an_undo_that_would_lose_later_work_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let t = app.create("customer", json!({"name": "目标客户"})).await;
    let a = app.create("customer", json!({"name": "来源甲", "city": "上海"})).await;
    let b = app
        .create("customer", json!({"name": "来源乙", "remark": "备注乙"}))
        .await;
    let tid = s(&t, "id").to_owned();
    let r = merge(
        &app,
        json!({"target_id": tid, "source_ids": [s(&a, "id"), s(&b, "id")]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let merge_id = s(&r.data()["merge"], "id").to_owned();
    let undo_path = format!("/api/v1/customers/merges/{merge_id}/undo");
    // A value the merge set was changed since: undoing would lose that change.
    let now = app.get(&format!("/api/v1/records/customer/{tid}")).await;
    let changed = app
        .patch(
            &format!("/api/v1/records/customer/{tid}"),
            &json!({"version": now.data()["version"], "city": "杭州"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    // …and a source was purged.
    let purge = app
        .delete(&format!("/api/v1/records/customer/recycle-bin/{}", s(&b, "id")))
        .await;
    assert_eq!(purge.status, StatusCode::NO_CONTENT, "{}", purge.text);
    let refused = app.post(&undo_path, &json!({})).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "merge_undo_conflict"),
        "{}",
        refused.text
    );
    let codes: Vec<&str> = refused.body["error"]["details"]["conflicts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str())
        .collect();
    assert_eq!(codes, ["target_field_changed", "source_purged"], "{}", refused.text);
    assert_eq!(refused.body["error"]["details"]["conflicts"][0]["field"], "city");
    let still = app.get(&format!("/api/v1/records/customer/{tid}")).await;
    assert_eq!(still.data()["city"], "杭州", "nothing changed");
    assert_eq!(
        app.get(&format!("/api/v1/records/customer/{}", s(&a, "id")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Another merge: a change of a field the merge did not touch does not block its undo.
    let c = app
        .create("customer", json!({"name": "来源丙", "website": "https://c.example.cn"}))
        .await;
    let r = merge(&app, json!({"target_id": tid, "source_ids": [s(&c, "id")]})).await;
    let merge2 = s(&r.data()["merge"], "id").to_owned();
    let now = app.get(&format!("/api/v1/records/customer/{tid}")).await;
    app.patch(
        &format!("/api/v1/records/customer/{tid}"),
        &json!({"version": now.data()["version"], "address": "新地址"}),
    )
    .await;
    let undo = app
        .post(&format!("/api/v1/customers/merges/{merge2}/undo"), &json!({}))
        .await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.text);
    assert_eq!(undo.data()["target"]["address"], "新地址", "the later change stays");
    assert!(undo.data()["target"]["website"].is_null(), "the merged value goes");
    // A restored source blocks the undo of its merge.
    let d = app.create("customer", json!({"name": "来源丁"})).await;
    let r = merge(&app, json!({"target_id": tid, "source_ids": [s(&d, "id")]})).await;
    let merge3 = s(&r.data()["merge"], "id").to_owned();
    let restored = app
        .post(&format!("/api/v1/records/customer/{}/restore", s(&d, "id")), &json!({}))
        .await;
    assert_eq!(restored.status, StatusCode::OK);
    let refused = app
        .post(&format!("/api/v1/customers/merges/{merge3}/undo"), &json!({}))
        .await;
    assert_eq!(
        refused.body["error"]["details"]["conflicts"][0]["code"], "source_restored",
        "{}",
        refused.text
    );
    let unknown = app
        .post(
            &format!("/api/v1/customers/merges/{}/undo", uuid::Uuid::now_v7()),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_merge_refuses_bad_input_and_keeps_to_the_callers_permissions() {
    let app = spawn_app().await;
    let t = app.create("customer", json!({"name": "目标客户"})).await;
    let a = app.create("customer", json!({"name": "来源甲"})).await;
    let (tid, aid) = (s(&t, "id").to_owned(), s(&a, "id").to_owned());
    let field_code = |r: &Reply, key: &str| r.body["error"]["field_codes"][key][0].as_str().unwrap_or("").to_owned();
    let single = merge(&app, json!({"target_id": tid, "source_ids": []})).await;
    assert_eq!(single.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", single.text);
    assert_eq!(field_code(&single, "source_ids"), "required");
    let itself = merge(&app, json!({"target_id": tid, "source_ids": [tid]})).await;
    assert_eq!(field_code(&itself, "source_ids"), "target_in_sources");
    let twice = merge(&app, json!({"target_id": tid, "source_ids": [aid, aid]})).await;
    assert_eq!(field_code(&twice, "source_ids"), "duplicate_ids");
    let unknown_field = merge(
        &app,
        json!({"target_id": tid, "source_ids": [aid], "fields": {"fax": aid}}),
    )
    .await;
    assert_eq!(field_code(&unknown_field, "fields.fax"), "unknown_field");
    let system_field = merge(
        &app,
        json!({"target_id": tid, "source_ids": [aid], "fields": {"number": aid}}),
    )
    .await;
    assert_eq!(field_code(&system_field, "fields.number"), "not_mergeable");
    let not_source = merge(
        &app,
        json!({"target_id": tid, "source_ids": [aid], "fields": {"city": tid}}),
    )
    .await;
    assert_eq!(field_code(&not_source, "fields.city"), "not_a_source");
    let missing = merge(
        &app,
        json!({"target_id": tid, "source_ids": [uuid::Uuid::now_v7().to_string()]}),
    )
    .await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));
    let malformed = merge(&app, json!({"target_id": "nope", "source_ids": [aid]})).await;
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
    let stale = merge(
        &app,
        json!({"target_id": tid, "source_ids": [aid], "source_versions": {aid.clone(): 7}}),
    )
    .await;
    assert_eq!((stale.status, stale.code()), (StatusCode::CONFLICT, "version_conflict"));
    let no_body = merge(&app, json!({"target_id": tid})).await;
    assert_eq!(no_body.code(), "invalid_body");
    // Nothing changed after all that.
    assert_eq!(
        app.get(&format!("/api/v1/records/customer/{aid}")).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get("/api/v1/customers/merges").await.data(), &json!([]));

    // A salesperson merges only its own customers: a colleague's (readable in the department)
    // is forbidden, another department's does not exist for it.
    let east = s(&app.create("department", json!({"name": "华东销售部"})).await, "id").to_owned();
    let north = s(&app.create("department", json!({"name": "华北销售部"})).await, "id").to_owned();
    let (_, li) = app.user("li_sales", &["salesperson"], Some(&east), None).await;
    let (_, zhou) = app.user("zhou_sales", &["salesperson"], Some(&east), None).await;
    let (_, wang) = app.user("wang_sales", &["salesperson"], Some(&north), None).await;
    let li1 = li.create("customer", json!({"name": "李的客户一"})).await;
    let li2 = li.create("customer", json!({"name": "李的客户二"})).await;
    let zhou1 = zhou.create("customer", json!({"name": "周的客户"})).await;
    let wang1 = wang.create("customer", json!({"name": "王的客户"})).await;
    let colleague = merge(
        &li,
        json!({"target_id": s(&li1, "id"), "source_ids": [s(&zhou1, "id")]}),
    )
    .await;
    assert_eq!(colleague.status, StatusCode::FORBIDDEN, "{}", colleague.text);
    let colleague_target = merge(
        &li,
        json!({"target_id": s(&zhou1, "id"), "source_ids": [s(&li2, "id")]}),
    )
    .await;
    assert_eq!(colleague_target.status, StatusCode::FORBIDDEN);
    let elsewhere = merge(
        &li,
        json!({"target_id": s(&li1, "id"), "source_ids": [s(&wang1, "id")]}),
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND, "{}", elsewhere.text);
    let own = merge(&li, json!({"target_id": s(&li1, "id"), "source_ids": [s(&li2, "id")]})).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let merge_id = s(&own.data()["merge"], "id").to_owned();
    // Wang cannot see li's merge, nor undo it.
    assert_eq!(wang.get("/api/v1/customers/merges").await.data(), &json!([]));
    let undo = wang
        .post(&format!("/api/v1/customers/merges/{merge_id}/undo"), &json!({}))
        .await;
    assert_eq!(undo.status, StatusCode::NOT_FOUND, "{}", undo.text);
    // Zhou sees it (same department) but may not undo it.
    assert_eq!(
        zhou.get("/api/v1/customers/merges").await.data()[0]["id"],
        merge_id.as_str()
    );
    let undo = zhou
        .post(&format!("/api/v1/customers/merges/{merge_id}/undo"), &json!({}))
        .await;
    assert_eq!(undo.status, StatusCode::FORBIDDEN, "{}", undo.text);
    // An analyst reads customers but may change nothing.
    let (_, analyst) = app.user("an_analyst", &["analyst"], None, None).await;
    let r = merge(&analyst, json!({"target_id": tid, "source_ids": [aid]})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let anonymous = app
        .anonymous()
        .post(
            "/api/v1/customers/merge",
            &json!({"target_id": tid, "source_ids": [aid]}),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
