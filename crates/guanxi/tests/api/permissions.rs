//! The permission catalogue the role editor is built from (issue 4 §6: roles with a permission
//! matrix): every object with its record, workflow and special actions, the module permissions
//! and the data scopes, all from server metadata; and each object's menu group.

use guanxi_testkit::spawn_app;
use reqwest::StatusCode;
use serde_json::Value as Json;

fn keys(list: &Json, key: &str) -> Vec<String> {
    list.as_array()
        .map(|a| a.iter().filter_map(|x| x[key].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_catalogue_lists_what_the_engine_checks_and_only_role_readers_get_it() {
    let app = spawn_app().await;
    let reply = app.get("/api/v1/meta/permissions").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let data = reply.data();
    let objects = &data["objects"];
    assert_eq!(
        keys(objects, "key"),
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
    let customer = objects
        .as_array()
        .and_then(|a| a.iter().find(|o| o["key"] == "customer"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(customer["module"], "customers");
    assert_eq!(customer["label"]["zh"], "客户");
    let actions = keys(&customer["actions"], "key");
    assert_eq!(
        actions,
        [
            "read",
            "create",
            "update",
            "delete",
            "export",
            "import",
            "sign",
            "make_dormant",
            "reactivate",
            "mark_lost"
        ],
        "record actions, then the workflow's"
    );
    let mark_lost = customer["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["key"] == "mark_lost"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(mark_lost["kind"], "workflow");
    assert_eq!(mark_lost["label"]["zh"], "标记流失");
    let fields: Vec<&str> = customer["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    assert!(fields.contains(&"credit_code"), "field rules may name any field");
    assert!(!fields.contains(&"id") && !fields.contains(&"version"));
    let user = objects
        .as_array()
        .and_then(|a| a.iter().find(|o| o["key"] == "user"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(user["module"], "system");
    let user_actions = keys(&user["actions"], "key");
    assert!(user_actions.contains(&"manage".to_owned()) && user_actions.contains(&"assign_roles".to_owned()));
    let modules: Vec<String> = data["modules"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| format!("{}.{}", s(m, "object"), s(m, "action")))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(modules, ["audit.read", "meta.manage", "system.manage"]);
    assert_eq!(
        keys(&data["scopes"], "key"),
        ["self", "subordinates", "department", "department_tree", "all"]
    );

    // The menu groups come with the objects, too.
    let meta = app.get("/api/v1/meta/objects").await;
    let lead = meta
        .data()
        .as_array()
        .and_then(|a| a.iter().find(|o| o["key"] == "lead"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(lead["module"], "customers");

    // Without a grant on roles there is no catalogue.
    let (_, seller) = app.user("seller", &["salesperson"], None, None).await;
    let refused = seller.get("/api/v1/meta/permissions").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "forbidden");
}

fn s<'a>(v: &'a Json, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}
