//! Bad input of every kind gets a clear error with a stable code and changes nothing.

use guanxi_testkit::spawn_app;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{customer, s};
use crate::records::urlencode;

async fn customer_count(app: &guanxi_testkit::TestApp) -> i64 {
    app.get("/api/v1/records/customer").await.body["meta"]["total"]
        .as_i64()
        .unwrap_or(-1)
}

#[tokio::test]
async fn malformed_json_is_a_400_and_creates_nothing() {
    let app = spawn_app().await;
    let req = app
        .client
        .post(format!("{}/api/v1/records/customer", app.base_url))
        .header("content-type", "application/json")
        .body(r#"{"name": "半截"#);
    let r = app.read(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "malformed_json");
    assert!(r.body["error"]["request_id"].is_string());
    assert_eq!(customer_count(&app).await, 0);
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_or_without_content_type_is_refused() {
    let app = spawn_app().await;
    let r = app
        .post("/api/v1/records/customer", &json!(["not", "an", "object"]))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "invalid_body");
    let req = app
        .client
        .post(format!("{}/api/v1/records/customer", app.base_url))
        .body(r#"{"name":"x"}"#);
    let r = app.read(req).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.code(), "unsupported_media_type");
    assert_eq!(customer_count(&app).await, 0);
}

#[tokio::test]
async fn wrong_types_and_unknown_fields_are_all_reported_in_one_422() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/records/customer",
            &json!({
                "employee_count": "12",
                "is_key_account": "yes",
                "registered_capital": 12.5,
                "email": "not-an-email",
                "phone": "12345",
                "website": "ftp://x",
                "established_on": "2026-02-30",
                "customer_type": "alien",
                "tags": ["vip", "unknown-tag"],
                "attachments": [{"id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "name": "virus.exe", "size": 10}],
                "number": "CM999999",
                "status": "active",
                "favourite_colour": "red"
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "validation_failed");
    let codes = &r.body["error"]["field_codes"];
    for (field, code) in [
        ("name", "required"),
        ("employee_count", "invalid_type"),
        ("is_key_account", "invalid_type"),
        ("registered_capital", "invalid_money"),
        ("email", "invalid_email"),
        ("phone", "invalid_phone"),
        ("website", "invalid_url"),
        ("established_on", "invalid_date"),
        ("customer_type", "invalid_option"),
        ("tags", "invalid_option"),
        ("attachments", "file_type_not_allowed"),
        ("number", "read_only"),
        ("status", "read_only"),
        ("favourite_colour", "unknown_field"),
    ] {
        assert_eq!(codes[field][0], code, "{field}: {}", r.text);
    }
    assert!(
        r.body["error"]["fields"]["email"][0]
            .as_str()
            .is_some_and(|m| m.contains("邮箱")),
        "messages are Chinese by default"
    );
    assert_eq!(customer_count(&app).await, 0);
}

#[tokio::test]
async fn messages_follow_accept_language() {
    let app = spawn_app().await;
    let req = app
        .client
        .post(format!("{}/api/v1/records/customer", app.base_url))
        .header("accept-language", "en-US,en;q=0.9")
        .json(&json!({}));
    let r = app.read(req).await;
    assert_eq!(r.body["error"]["fields"]["name"][0], "Name is required");
    assert_eq!(r.body["error"]["message"], "some fields are not valid");
}

#[tokio::test]
async fn unknown_objects_records_and_routes_are_404s_with_codes() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/v1/records/spaceship").await.code(), "unknown_object");
    let missing = app
        .get(&format!("/api/v1/records/customer/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));
    let garbage = app.get("/api/v1/records/customer/1%27%20or%201=1").await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);
    let route = app.get("/api/v1/nothing-here").await;
    assert_eq!((route.status, route.code()), (StatusCode::NOT_FOUND, "route_not_found"));
    let method = app
        .send(reqwest::Method::PUT, "/api/v1/records/customer", Some(&json!({})))
        .await;
    assert_eq!(
        (method.status, method.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_413() {
    let app = guanxi_testkit::spawn_app_with(Default::default(), |c| c.max_body_bytes = 4096).await;
    let r = app
        .post(
            "/api/v1/records/customer",
            &json!({"name": "大", "remark": "很".repeat(5000)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.code(), "payload_too_large");
    assert_eq!(customer_count(&app).await, 0);
}

#[tokio::test]
async fn filters_and_sorts_on_unknown_or_unsortable_fields_are_422() {
    let app = spawn_app().await;
    for query in [
        format!("filter={}", urlencode(r#"{"field":"nope","op":"eq","value":1}"#)),
        format!("filter={}", urlencode(r#"{"field":"name","op":"like","value":"%"}"#)),
        format!(
            "filter={}",
            urlencode(r#"{"field":"employee_count","op":"gt","value":"1; drop table customers"}"#)
        ),
        format!("filter={}", urlencode("not json")),
        "sort=remark".to_owned(),
        "sort=password".to_owned(),
        "fields=name,secret".to_owned(),
        "total=sometimes".to_owned(),
        "cursor=garbage".to_owned(),
        "limit=abc".to_owned(),
        "colour=red".to_owned(),
    ] {
        let r = app.get(&format!("/api/v1/records/customer?{query}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {}", r.text);
        assert_eq!(r.code(), "invalid_query", "{query}");
    }
}

#[tokio::test]
async fn sql_in_values_is_stored_and_matched_as_plain_text() {
    let app = spawn_app().await;
    let evil = "x'; DROP TABLE customers; --";
    let c = app
        .create("customer", json!({"name": evil, "remark": "' or 1=1 --"}))
        .await;
    app.create("customer", customer("正常客户")).await;
    let filter = format!(
        r#"{{"field":"name","op":"eq","value":"{}"}}"#,
        evil.replace('"', "\\\"")
    );
    let r = app
        .get(&format!("/api/v1/records/customer?filter={}", urlencode(&filter)))
        .await;
    assert_eq!(r.body["meta"]["total"], 1, "{}", r.text);
    assert_eq!(r.data()[0]["id"], c["id"]);
    let q = app
        .get(&format!("/api/v1/records/customer?q={}", urlencode("' or 1=1 --")))
        .await;
    assert_eq!(q.body["meta"]["total"], 0, "search text is a value, not SQL");
    let pct = app.get(&format!("/api/v1/records/customer?q={}", urlencode("%"))).await;
    assert_eq!(
        pct.body["meta"]["total"], 0,
        "LIKE wildcards in search text are literal"
    );
    assert_eq!(customer_count(&app).await, 2, "the table is still there");
    assert_eq!(s(&c, "name"), evil);
}

#[tokio::test]
async fn a_server_error_says_nothing_about_its_cause() {
    let app = spawn_app().await;
    // Sabotage: remove a table behind the server's back.
    sqlx::raw_sql("DROP TABLE care_actions")
        .execute(app.state.db.writer())
        .await
        .expect("drop");
    let r = app.get("/api/v1/records/care_action").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.code(), "internal");
    let text = r.text.to_lowercase();
    assert!(
        !text.contains("care_actions") && !text.contains("sql") && !text.contains("table"),
        "{}",
        r.text
    );
    assert!(r.body["error"]["request_id"].is_string());
}
