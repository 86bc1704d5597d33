//! Creating, reading, updating, deleting, restoring and purging records; bulk changes; audit.

use guanxi_testkit::spawn_app;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{customer, s};

#[tokio::test]
async fn a_new_customer_gets_a_number_its_initial_state_and_version_one() {
    let app = spawn_app().await;
    let c = app
        .create(
            "customer",
            json!({
                "name": "中平能源有限公司",
                "customer_type": "enterprise",
                "level": "A",
                "phone": "+86 138 1234 5678",
                "email": "info@zpny.com.cn",
                "website": "https://zpny.com.cn",
                "province": "河南省", "city": "平顶山市", "district": "新华区",
                "credit_code": "91410400MA44XXXX1B",
                "registered_capital": {"amount": 500000000, "currency": "CNY"},
                "established_on": "2008-06-18",
                "employee_count": 1200,
                "is_key_account": true,
                "last_contacted_at": "2026-11-20T09:30:00+08:00",
                "tags": ["vip", "strategic"],
                "extra": {"wechat": "zpny2008"},
                "remark": "年度重点客户"
            }),
        )
        .await;
    assert_eq!(s(&c, "number"), "CM000001");
    assert_eq!(s(&c, "status"), "prospect");
    assert_eq!(c["version"], 1);
    assert_eq!(
        s(&c, "phone"),
        "13812345678",
        "mobile numbers are stored without +86 and spaces"
    );
    assert_eq!(c["registered_capital"], json!({"amount": 500000000, "currency": "CNY"}));
    assert_eq!(c["is_key_account"], true);
    assert_eq!(
        s(&c, "last_contacted_at"),
        "2026-11-20T01:30:00.000000Z",
        "times are stored in UTC"
    );
    assert_eq!(c["tags"], json!(["vip", "strategic"]));
    assert_eq!(c["extra"]["wechat"], "zpny2008");

    let again = app.get(&format!("/api/v1/records/customer/{}", s(&c, "id"))).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.data(), &c, "reading returns exactly what create returned");
    // Lists read a page as one JSON row from the database (not row by row): every field type
    // must come back as create returned it there too — the default page, quick searches
    // (ranked, read by id), a sort on a money field, and a filter on a boolean.
    for query in [
        "",
        "?q=%E4%B8%AD%E5%B9%B3%E8%83%BD%E6%BA%90",
        "?q=zpny",
        "?sort=-registered_capital,name",
        "?filter=%7B%22field%22%3A%22is_key_account%22%2C%22op%22%3A%22eq%22%2C%22value%22%3Atrue%7D",
    ] {
        let page = app.get(&format!("/api/v1/records/customer{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.text);
        assert_eq!(
            page.data()[0],
            c,
            "{query}: a list shows the record as create returned it"
        );
    }

    let second = app.create("customer", customer("第二家")).await;
    assert_eq!(s(&second, "number"), "CM000002");
}

#[tokio::test]
async fn an_update_changes_only_the_given_fields_and_bumps_the_version() {
    let app = spawn_app().await;
    let c = app.create("customer", customer("北京华信")).await;
    let path = format!("/api/v1/records/customer/{}", s(&c, "id"));
    let r = app
        .patch(&path, &json!({"version": 1, "city": "北京市", "level": "B"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.data()["version"], 2);
    assert_eq!(r.data()["city"], "北京市");
    assert_eq!(r.data()["name"], "北京华信");

    // An update that changes nothing keeps the version.
    let same = app.patch(&path, &json!({"version": 2, "city": "北京市"})).await;
    assert_eq!(same.data()["version"], 2);

    // The version may come in If-Match instead of the body.
    let req = app
        .client
        .patch(format!("{}{path}", app.base_url))
        .header("if-match", "\"2\"")
        .json(&json!({"city": "天津市"}));
    let r = app.read(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.data()["version"], 3);
}

#[tokio::test]
async fn a_stale_version_is_refused_with_409_and_changes_nothing() {
    let app = spawn_app().await;
    let c = app.create("customer", customer("上海申达")).await;
    let path = format!("/api/v1/records/customer/{}", s(&c, "id"));
    assert_eq!(
        app.patch(&path, &json!({"version": 1, "city": "上海市"})).await.status,
        StatusCode::OK
    );
    let stale = app.patch(&path, &json!({"version": 1, "city": "杭州市"})).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.code(), "version_conflict");
    let now = app.get(&path).await;
    assert_eq!(now.data()["city"], "上海市");
    assert_eq!(now.data()["version"], 2);

    let missing = app.patch(&path, &json!({"city": "杭州市"})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.code(), "version_required");
}

#[tokio::test]
async fn of_concurrent_updates_with_one_version_exactly_one_wins() {
    let app = spawn_app().await;
    let c = app.create("customer", customer("并发测试")).await;
    let path = format!("/api/v1/records/customer/{}", s(&c, "id"));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = app.client.clone();
        let url = format!("{}{path}", app.base_url);
        tasks.push(tokio::spawn(async move {
            let res = client
                .patch(url)
                .json(&json!({"version": 1, "address": format!("地址{i}")}))
                .send()
                .await
                .map(|r| r.status());
            res.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }));
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR) {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 7));
    assert_eq!(app.get(&path).await.data()["version"], 2);
}

#[tokio::test]
async fn deleted_records_go_to_the_recycle_bin_and_can_be_restored_or_purged() {
    let app = spawn_app().await;
    let c = app.create("customer", customer("回收站客户")).await;
    let id = s(&c, "id").to_owned();
    let path = format!("/api/v1/records/customer/{id}");

    let stale = app.delete(&format!("{path}?version=7")).await;
    assert_eq!(
        stale.status,
        StatusCode::CONFLICT,
        "a delete naming an old version is refused"
    );
    assert_eq!(app.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
    let list = app.get("/api/v1/records/customer").await;
    assert_eq!(list.body["meta"]["total"], 0);
    let bin = app.get("/api/v1/records/customer/recycle-bin").await;
    assert_eq!(bin.data()[0]["id"], id.as_str());
    assert_eq!(bin.data()[0]["deleted_by"].as_str(), app.user_id.as_deref());
    assert_eq!(
        app.delete(&path).await.status,
        StatusCode::NOT_FOUND,
        "deleting twice is a 404"
    );

    let restored = app.post(&format!("{path}/restore"), &json!({})).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.text);
    assert_eq!(app.get(&path).await.status, StatusCode::OK);

    let live_purge = app.delete(&format!("/api/v1/records/customer/recycle-bin/{id}")).await;
    assert_eq!(
        live_purge.status,
        StatusCode::CONFLICT,
        "only deleted records can be purged"
    );
    app.delete(&path).await;
    let purge = app.delete(&format!("/api/v1/records/customer/recycle-bin/{id}")).await;
    assert_eq!(purge.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.post(&format!("{path}/restore"), &json!({})).await.status,
        StatusCode::NOT_FOUND
    );

    let history = app.get(&format!("{path}/history")).await;
    assert_eq!(
        history.status,
        StatusCode::NOT_FOUND,
        "a purged record has no page, but the audit log keeps it"
    );
    let audit = app.get(&format!("/api/v1/audit?record_id={id}")).await;
    let actions: Vec<&str> = audit
        .data()
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(actions, ["purge", "delete", "restore", "delete", "create"]);
}

#[tokio::test]
async fn relations_must_point_at_live_records_and_referenced_records_cannot_be_purged() {
    let app = spawn_app().await;
    let c = app.create("customer", customer("关系客户")).await;
    let cid = s(&c, "id").to_owned();
    let contact = app
        .create(
            "contact",
            json!({"customer_id": cid, "name": "张伟", "mobile": "13900001111", "birthday": "1985-03-08"}),
        )
        .await;
    assert_eq!(contact["customer_id"], cid.as_str());

    let ghost = app
        .post(
            "/api/v1/records/contact",
            &json!({"customer_id": uuid::Uuid::now_v7().to_string(), "name": "李娜"}),
        )
        .await;
    assert_eq!(ghost.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(ghost.body["error"]["field_codes"]["customer_id"][0], "not_found");

    app.delete(&format!("/api/v1/records/customer/{cid}")).await;
    let to_deleted = app
        .post("/api/v1/records/contact", &json!({"customer_id": cid, "name": "王芳"}))
        .await;
    assert_eq!(
        to_deleted.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a deleted customer cannot be chosen"
    );

    let purge = app.delete(&format!("/api/v1/records/customer/recycle-bin/{cid}")).await;
    assert_eq!(purge.status, StatusCode::CONFLICT, "{}", purge.text);
    assert_eq!(purge.code(), "conflict");
    let bin = app.get("/api/v1/records/customer/recycle-bin").await;
    assert_eq!(bin.body["meta"]["total"], 1, "the refused purge changed nothing");
}

#[tokio::test]
async fn unique_values_are_checked_among_live_records_and_on_restore() {
    let app = spawn_app().await;
    let code = "91110000100000000X";
    let a = app
        .create("customer", json!({"name": "甲公司", "credit_code": code}))
        .await;
    let dup = app
        .post(
            "/api/v1/records/customer",
            &json!({"name": "乙公司", "credit_code": code}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(dup.body["error"]["field_codes"]["credit_code"][0], "duplicate");

    app.delete(&format!("/api/v1/records/customer/{}", s(&a, "id"))).await;
    app.create("customer", json!({"name": "乙公司", "credit_code": code}))
        .await;
    let restore = app
        .post(&format!("/api/v1/records/customer/{}/restore", s(&a, "id")), &json!({}))
        .await;
    assert_eq!(
        restore.status,
        StatusCode::CONFLICT,
        "restoring would duplicate the code"
    );
}

#[tokio::test]
async fn bulk_changes_are_all_or_nothing() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(s(&app.create("customer", customer(&format!("批量{i}"))).await, "id").to_owned());
    }
    let mut with_ghost = ids.clone();
    with_ghost.push(uuid::Uuid::now_v7().to_string());
    let bad = app
        .post(
            "/api/v1/records/customer/bulk-update",
            &json!({"ids": with_ghost, "changes": {"level": "A"}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    let filter = r#"{"field":"level","op":"eq","value":"A"}"#;
    let none = app
        .get(&format!("/api/v1/records/customer?filter={}", urlencode(filter)))
        .await;
    assert_eq!(none.body["meta"]["total"], 0, "nothing was changed");

    let invalid = app
        .post(
            "/api/v1/records/customer/bulk-update",
            &json!({"ids": ids, "changes": {"level": "Z"}}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);

    let ok = app
        .post(
            "/api/v1/records/customer/bulk-update",
            &json!({"ids": ids, "changes": {"level": "A"}}),
        )
        .await;
    assert_eq!(ok.data()["affected"], 5, "{}", ok.text);
    let all = app
        .get(&format!("/api/v1/records/customer?filter={}", urlencode(filter)))
        .await;
    assert_eq!(all.body["meta"]["total"], 5);

    let del = app
        .post("/api/v1/records/customer/bulk-delete", &json!({"ids": &ids[..3]}))
        .await;
    assert_eq!(del.data()["affected"], 3);
    assert_eq!(app.get("/api/v1/records/customer").await.body["meta"]["total"], 2);
    let empty = app
        .post("/api/v1/records/customer/bulk-delete", &json!({"ids": []}))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn every_change_is_in_the_field_history_with_old_and_new_values() {
    let app = spawn_app().await;
    let c = app.create("customer", json!({"name": "审计客户", "level": "C"})).await;
    let path = format!("/api/v1/records/customer/{}", s(&c, "id"));
    app.patch(&path, &json!({"version": 1, "level": "A", "city": "广州市"}))
        .await;
    let h = app.get(&format!("{path}/history")).await;
    let entries = h.data().as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "create");
    assert_eq!(entries[0]["actor_id"].as_str(), app.user_id.as_deref());
    let update = &entries[1];
    assert_eq!(update["action"], "update");
    assert_eq!(update["title"], "审计客户");
    let changes = update["changes"].as_array().cloned().unwrap_or_default();
    assert!(
        changes.contains(&json!({"field": "level", "old": "C", "new": "A"})),
        "{changes:?}"
    );
    assert!(changes.contains(&json!({"field": "city", "old": null, "new": "广州市"})));

    let across = app.get("/api/v1/audit?object=customer&action=update").await;
    assert_eq!(across.data().as_array().map(Vec::len), Some(1));
    let csv = app.get("/api/v1/audit/export?object=customer").await;
    assert!(
        csv.text.starts_with('\u{feff}') && csv.text.contains("审计客户"),
        "{}",
        csv.text
    );
    assert_eq!(csv.text.lines().count(), 3, "a header and two entries");
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
