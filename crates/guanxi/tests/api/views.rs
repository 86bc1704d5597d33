//! Saved list views (issue 4 §5 list, seed 001 M9 §2.2): personal views stay with their owner,
//! shared ones reach everyone or one department among those who may read the object, only the
//! owner or an administrator changes or deletes a view, and every setting is checked (filter,
//! sort, columns, page size, visibility) with a stable code per field.

use guanxi_testkit::{TestApp, TestClient, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::helpers::{customer, s};

async fn department(app: &TestApp, name: &str) -> String {
    s(&app.create("department", json!({"name": name})).await, "id").to_owned()
}

async fn views(client: &TestClient, object: &str) -> Vec<Json> {
    let reply = client.get(&format!("/api/v1/views?object={object}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.data().as_array().cloned().unwrap_or_default()
}

fn names(list: &[Json]) -> Vec<&str> {
    list.iter().map(|v| s(v, "name")).collect()
}

async fn save(client: &TestClient, body: Json) -> Json {
    let reply = client.post("/api/v1/views", &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.data().clone()
}

#[tokio::test]
async fn a_shared_view_reaches_its_audience_and_only_the_owner_or_an_admin_changes_it() {
    let app = spawn_app().await;
    let dept_a = department(&app, "华东销售部").await;
    let dept_b = department(&app, "华北销售部").await;
    let (_, seller_a) = app.user("seller_a", &["salesperson"], Some(&dept_a), None).await;
    let (_, colleague) = app.user("colleague_a", &["salesperson"], Some(&dept_a), None).await;
    let (_, seller_b) = app.user("seller_b", &["salesperson"], Some(&dept_b), None).await;
    let (_, partner) = app.user("partner_p", &["partner"], None, None).await;

    let shared = save(
        &app,
        json!({
            "object": "customer", "name": "北京重点客户", "visibility": "everyone",
            "filter": {"and": [{"field": "city", "op": "eq", "value": "北京"}, {"field": "is_key_account", "op": "eq", "value": true}]},
            "sort": "-created_at", "columns": ["number", "name", "city"], "page_size": 50, "q": "能源"
        }),
    )
    .await;
    assert_eq!(shared["visibility"], "everyone");
    assert_eq!(shared["columns"], json!(["number", "name", "city"]));
    assert_eq!(shared["page_size"], 50);
    assert_eq!(shared["editable"], true);
    let shared_id = s(&shared, "id").to_owned();

    // Everyone who reads customers sees it, read-only.
    for client in [&seller_a, &colleague, &seller_b, &partner] {
        let list = views(client, "customer").await;
        let seen = list.iter().find(|v| v["id"] == shared_id.as_str()).cloned();
        let seen = seen.unwrap_or_else(|| panic!("the shared view is missing: {list:?}"));
        assert_eq!(seen["editable"], false);
        assert_eq!(seen["applicable"], true);
        assert_eq!(seen["owner_name"], "测试管理员");
        assert_eq!(seen["filter"], shared["filter"], "the filter comes back as saved");
    }
    // …but nobody else may change or delete it, and nothing changes.
    let patch = seller_a
        .patch(&format!("/api/v1/views/{shared_id}"), &json!({"name": "我的"}))
        .await;
    assert_eq!(patch.status, StatusCode::FORBIDDEN, "{}", patch.text);
    assert_eq!(patch.code(), "forbidden");
    let delete = seller_a.delete(&format!("/api/v1/views/{shared_id}")).await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    assert_eq!(names(&views(&seller_b, "customer").await), ["北京重点客户"]);

    // A personal view stays with its owner; a department view reaches that department only.
    let personal = save(&seller_a, json!({"object": "customer", "name": "我的客户"})).await;
    assert_eq!(personal["visibility"], "personal");
    let team = save(
        &seller_a,
        json!({"object": "customer", "name": "华东共享", "visibility": "department"}),
    )
    .await;
    assert_eq!(
        team["department_id"],
        dept_a.as_str(),
        "default: the owner's department"
    );
    assert_eq!(
        names(&views(&seller_a, "customer").await),
        ["北京重点客户", "华东共享", "我的客户"]
    );
    assert_eq!(
        names(&views(&colleague, "customer").await),
        ["北京重点客户", "华东共享"]
    );
    assert_eq!(names(&views(&seller_b, "customer").await), ["北京重点客户"]);
    assert_eq!(names(&views(&app, "customer").await), ["北京重点客户"]);

    // A view the caller cannot see does not exist for it.
    let hidden = seller_b
        .patch(&format!("/api/v1/views/{}", s(&personal, "id")), &json!({"name": "x"}))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let missing = seller_b
        .delete("/api/v1/views/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The owner shares it further; an administrator may change anyone's view.
    let widened = seller_a
        .patch(
            &format!("/api/v1/views/{}", s(&personal, "id")),
            &json!({"visibility": "everyone", "version": 1}),
        )
        .await;
    assert_eq!(widened.status, StatusCode::OK, "{}", widened.text);
    assert_eq!(widened.data()["version"], 2);
    assert!(names(&views(&seller_b, "customer").await).contains(&"我的客户"));
    let stale = seller_a
        .patch(
            &format!("/api/v1/views/{}", s(&personal, "id")),
            &json!({"name": "旧版本", "version": 1}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.code(), "version_conflict");
    let by_admin = app
        .patch(
            &format!("/api/v1/views/{}", s(&team, "id")),
            &json!({"name": "华东共享（已审）"}),
        )
        .await;
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.text);
    assert_eq!(by_admin.data()["editable"], true);
    assert_eq!(by_admin.data()["owner_id"], team["owner_id"], "the owner stays");

    // The owner deletes its view; it is gone for everyone.
    let gone = seller_a.delete(&format!("/api/v1/views/{}", s(&personal, "id"))).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert!(!names(&views(&seller_b, "customer").await).contains(&"我的客户"));

    // Views of an object the caller may not read are out of reach (the partner reads no leads).
    let leads = partner.get("/api/v1/views?object=lead").await;
    assert_eq!(leads.status, StatusCode::FORBIDDEN);
    let create = partner
        .post("/api/v1/views", &json!({"object": "lead", "name": "线索"}))
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    let anonymous = app.anonymous().get("/api/v1/views?object=customer").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_bad_setting_is_reported_with_its_code_and_nothing_is_saved() {
    let app = spawn_app().await;
    let bad = app
        .post(
            "/api/v1/views",
            &json!({
                "object": "customer", "name": "  ", "visibility": "friends",
                "filter": {"field": "favourite_colour", "op": "eq", "value": "red"},
                "sort": "-remark", "columns": ["name", "nope", "name"], "page_size": 0
            }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.code(), "validation_failed");
    let codes = &bad.body["error"]["field_codes"];
    assert_eq!(codes["name"], json!(["required"]));
    assert_eq!(codes["visibility"], json!(["invalid_option"]));
    assert_eq!(codes["filter"], json!(["invalid_filter"]));
    assert_eq!(codes["sort"], json!(["invalid_sort"]), "long text is not sortable");
    assert_eq!(codes["columns"], json!(["unknown_field", "duplicate"]));
    assert_eq!(codes["page_size"], json!(["out_of_range"]));
    assert!(
        bad.body["error"]["fields"]["filter"][0]
            .as_str()
            .is_some_and(|m| m.contains("favourite_colour")),
        "{}",
        bad.text
    );

    let wrong_op = app
        .post(
            "/api/v1/views",
            &json!({"object": "customer", "name": "x", "filter": {"field": "name", "op": "between", "value": [1, 2]}}),
        )
        .await;
    assert_eq!(
        wrong_op.body["error"]["field_codes"]["filter"],
        json!(["invalid_filter"])
    );
    let nowhere = app
        .post(
            "/api/v1/views",
            &json!({"object": "customer", "name": "x", "visibility": "department", "department_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}),
        )
        .await;
    assert_eq!(
        nowhere.body["error"]["field_codes"]["department_id"],
        json!(["not_found"])
    );
    let no_department = app
        .post(
            "/api/v1/views",
            &json!({"object": "customer", "name": "x", "visibility": "department"}),
        )
        .await;
    assert_eq!(
        no_department.body["error"]["field_codes"]["department_id"],
        json!(["required"]),
        "the administrator belongs to no department"
    );
    let long = app
        .post("/api/v1/views", &json!({"object": "customer", "name": "长".repeat(51)}))
        .await;
    assert_eq!(long.body["error"]["field_codes"]["name"], json!(["too_long"]));
    let no_object = app.post("/api/v1/views", &json!({"name": "x"})).await;
    assert_eq!(no_object.body["error"]["field_codes"]["object"], json!(["required"]));
    let unknown_object = app
        .post("/api/v1/views", &json!({"object": "spaceship", "name": "x"}))
        .await;
    assert_eq!(unknown_object.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_object.code(), "unknown_object");
    let unknown_key = app
        .post(
            "/api/v1/views",
            &json!({"object": "customer", "name": "x", "colour": "red"}),
        )
        .await;
    assert_eq!(unknown_key.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown_key.code(), "invalid_body");
    let no_param = app.get("/api/v1/views").await;
    assert_eq!(no_param.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_param.code(), "invalid_query");
    assert!(views(&app, "customer").await.is_empty(), "nothing was saved");

    // Names are unique per owner and object; another object may reuse one.
    save(&app, json!({"object": "customer", "name": "重点"})).await;
    let twice = app
        .post("/api/v1/views", &json!({"object": "customer", "name": "重点"}))
        .await;
    assert_eq!(twice.body["error"]["field_codes"]["name"], json!(["duplicate"]));
    save(&app, json!({"object": "contact", "name": "重点"})).await;

    // A bad change leaves the view as it was; null clears a setting.
    let view = save(
        &app,
        json!({"object": "customer", "name": "筛选", "filter": {"field": "city", "op": "eq", "value": "上海"}, "page_size": 20}),
    )
    .await;
    let path = format!("/api/v1/views/{}", s(&view, "id"));
    let refused = app.patch(&path, &json!({"page_size": 1000, "name": "改名"})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let moved = app.patch(&path, &json!({"object": "contact"})).await;
    assert_eq!(moved.body["error"]["field_codes"]["object"], json!(["read_only"]));
    let list = views(&app, "customer").await;
    let kept = list.iter().find(|v| v["id"] == view["id"]).cloned().unwrap_or_default();
    assert_eq!(kept["name"], "筛选");
    assert_eq!(kept["page_size"], 20);
    let cleared = app.patch(&path, &json!({"filter": null, "page_size": null})).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.data()["filter"], Json::Null);
    assert_eq!(cleared.data()["page_size"], Json::Null);
}

#[tokio::test]
async fn a_view_names_only_what_its_user_may_see() {
    let app = spawn_app().await;
    let (_, agent) = app.user("agent", &["service_agent"], None, None).await;
    // The service agent's role hides the credit code: it can neither save a view on it…
    let probe = agent
        .post(
            "/api/v1/views",
            &json!({"object": "customer", "name": "按信用代码", "filter": {"field": "credit_code", "op": "starts_with", "value": "91"}}),
        )
        .await;
    assert_eq!(probe.body["error"]["field_codes"]["filter"], json!(["invalid_filter"]));
    // …nor use an administrator's shared view that filters on it, whose hidden column is dropped.
    let shared = save(
        &app,
        json!({
            "object": "customer", "name": "有信用代码", "visibility": "everyone",
            "filter": {"field": "credit_code", "op": "is_empty", "value": false},
            "columns": ["name", "credit_code", "city"]
        }),
    )
    .await;
    let seen = views(&agent, "customer").await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["id"], shared["id"]);
    assert_eq!(seen[0]["applicable"], false);
    assert!(
        seen[0]["filter"].is_null(),
        "a filter on a hidden field is not shown: {}",
        seen[0]
    );
    assert_eq!(seen[0]["columns"], json!(["name", "city"]));
    assert_eq!(views(&app, "customer").await[0]["applicable"], true);

    // A saved filter lists what the same filter lists.
    app.create(
        "customer",
        json!({"name": "上海客户", "customer_type": "enterprise", "city": "上海"}),
    )
    .await;
    app.create("customer", customer("无城市客户")).await;
    let view = save(
        &app,
        json!({"object": "customer", "name": "上海", "filter": {"field": "city", "op": "eq", "value": "上海"}}),
    )
    .await;
    let filter = view["filter"].to_string();
    let listed = app
        .get(&format!(
            "/api/v1/records/customer?filter={}",
            crate::records::urlencode(&filter)
        ))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let found: Vec<&str> = listed
        .data()
        .as_array()
        .map(|a| a.iter().map(|r| s(r, "name")).collect())
        .unwrap_or_default();
    assert_eq!(found, ["上海客户"]);
}
