//! Health, readiness, metrics, request ids, metadata and the OpenAPI document.

use guanxi_testkit::spawn_app;
use reqwest::StatusCode;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let h = app.get("/healthz").await;
    assert_eq!((h.status, h.body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let r = app.get("/readyz").await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("ready")));
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = spawn_app().await;
    app.get("/api/v1/records/customer").await;
    app.get("/api/v1/records/nothing").await;
    let m = app.get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.text.contains("http_requests_total"), "{}", m.text);
    assert!(m.text.contains(r#"route="/api/v1/records/{object}""#));
    assert!(m.text.contains("http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_kept() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .expect("send");
    let id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID");
    let req = app
        .client
        .get(format!("{}/api/v1/records/nope", app.base_url))
        .header("x-request-id", "trace-me-123");
    let r = app.read(req).await;
    assert_eq!(r.body["error"]["request_id"], "trace-me-123");
}

#[tokio::test]
async fn metadata_describes_objects_fields_workflows_and_dictionaries() {
    let app = spawn_app().await;
    let objects = app.get("/api/v1/meta/objects").await;
    let keys: Vec<&str> = objects
        .data()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["key"].as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "department",
            "user",
            "role",
            "customer",
            "contact",
            "lead",
            "follow_up",
            "care_action",
            "customer_group"
        ]
    );
    let customer = app.get("/api/v1/meta/objects/customer").await;
    let d = customer.data();
    assert_eq!(d["label"]["zh"], "客户");
    assert_eq!(d["title_field"], "name");
    let name = d["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["key"] == "name")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            name["type"].as_str(),
            name["required"].as_bool(),
            name["max_len"].as_u64()
        ),
        (Some("text"), Some(true), Some(200))
    );
    assert_eq!(d["state_machine"]["initial"], "prospect");
    assert!(
        d["operators"]["name"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x == "contains"))
    );
    let dict = app.get("/api/v1/meta/dictionaries/customer_type").await;
    assert_eq!(dict.data()[0]["value"], "enterprise");
    assert_eq!(dict.data()[0]["label"]["zh"], "企业");
    assert_eq!(
        app.get("/api/v1/meta/dictionaries/nope").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/meta/objects/nope").await.code(), "unknown_object");
}

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot_and_has_a_viewer() {
    let app = spawn_app().await;
    let doc = app.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert!(doc.body["components"]["schemas"]["customer"]["properties"]["number"].is_object());
    assert_eq!(
        doc.body["components"]["schemas"]["customer_input"]["required"],
        serde_json::json!(["name"])
    );
    let pretty = serde_json::to_string_pretty(&doc.body).unwrap_or_default();
    insta::assert_snapshot!("openapi", pretty);
    let viewer = app.get("/api/docs/").await;
    assert_eq!(viewer.status, StatusCode::OK);
    assert!(
        viewer.text.contains("swagger"),
        "{}",
        &viewer.text[..viewer.text.len().min(200)]
    );
}

#[tokio::test]
async fn the_browser_ui_is_served_with_a_fallback_to_index_html() {
    let app = spawn_app().await;
    for path in ["/", "/customers/list", "/reset-password?token=x"] {
        let r = app.anonymous().get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let ct = r
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        assert!(r.text.contains("Guanxi") || r.text.contains("关系"), "{path}");
    }
    let api = app.get("/api/v1/no-such-thing").await;
    assert_eq!(api.code(), "route_not_found", "unknown API paths stay JSON");
}
