//! Leads and their conversion (seed 001 M9 §3.1.2), follow-ups and care actions.

use guanxi_testkit::spawn_app;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::s;

#[tokio::test]
async fn converting_a_lead_creates_a_customer_and_contact_and_locks_the_lead() {
    let app = spawn_app().await;
    let lead = app
        .create(
            "lead",
            json!({"name": "马骏", "company": "郑州恒通物流有限公司", "title": "采购经理", "mobile": "13700002222",
                   "email": "ma.jun@hengtong.cn", "source": "exhibition", "industry": "logistics", "province": "河南省", "city": "郑州市"}),
        )
        .await;
    assert_eq!(s(&lead, "number"), "XS000001");
    assert_eq!(s(&lead, "status"), "new");
    let id = s(&lead, "id").to_owned();
    let r = app
        .post(
            &format!("/api/v1/leads/{id}/convert"),
            &json!({"remark": "展会现场确认"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let customer_id = r.data()["customer_id"].as_str().unwrap_or_default().to_owned();
    let contact_id = r.data()["contact_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(r.data()["lead"]["status"], "converted");
    assert!(r.data()["lead"]["converted_at"].is_string());

    let customer = app.get(&format!("/api/v1/records/customer/{customer_id}")).await;
    assert_eq!(customer.data()["name"], "郑州恒通物流有限公司");
    assert_eq!(customer.data()["owner_id"], lead["owner_id"], "the owner carries over");
    assert_eq!(
        (customer.data()["source"].as_str(), customer.data()["industry"].as_str()),
        (Some("exhibition"), Some("logistics"))
    );
    let contact = app.get(&format!("/api/v1/records/contact/{contact_id}")).await;
    assert_eq!(contact.data()["name"], "马骏", "the name carries over");
    assert_eq!(contact.data()["customer_id"], customer_id.as_str());
    assert_eq!(contact.data()["mobile"], "13700002222");

    let change = app
        .patch(
            &format!("/api/v1/records/lead/{id}"),
            &json!({"version": 2, "remark": "改"}),
        )
        .await;
    assert_eq!(change.status, StatusCode::CONFLICT, "a converted lead is read-only");
    assert_eq!(
        app.delete(&format!("/api/v1/records/lead/{id}")).await.status,
        StatusCode::CONFLICT
    );
    let again = app.post(&format!("/api/v1/leads/{id}/convert"), &json!({})).await;
    assert_eq!(again.code(), "invalid_transition");
    let report = app
        .get(&format!(
            "/api/v1/records/lead?filter={}",
            crate::records::urlencode(r#"{"field":"status","op":"eq","value":"converted"}"#)
        ))
        .await;
    assert_eq!(report.body["meta"]["total"], 1, "the lead report lists converted leads");
}

#[tokio::test]
async fn a_conversion_that_cannot_complete_changes_nothing() {
    let app = spawn_app().await;
    // Contacts now need a field the lead does not have, so the contact cannot be created.
    let field = app
        .post(
            "/api/v1/meta/objects/contact/fields",
            &json!({"key": "cf_wechat", "label": {"zh": "微信", "en": "WeChat"}, "type": "text", "max_len": 30, "required": true}),
        )
        .await;
    assert_eq!(field.status, StatusCode::CREATED, "{}", field.text);
    let lead = app
        .create("lead", json!({"name": "冯涛", "company": "武汉瑞丰机械制造有限公司"}))
        .await;
    let id = s(&lead, "id");
    let r = app.post(&format!("/api/v1/leads/{id}/convert"), &json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let after = app.get(&format!("/api/v1/records/lead/{id}")).await;
    assert_eq!(after.data()["status"], "new", "the lead is unchanged");
    assert_eq!(
        app.get("/api/v1/records/customer").await.body["meta"]["total"],
        0,
        "no customer was left behind"
    );
}

#[tokio::test]
async fn a_salesperson_converts_only_its_own_leads() {
    let app = spawn_app().await;
    let dept = app.create("department", json!({"name": "销售二组"})).await;
    let d = s(&dept, "id").to_owned();
    let (_, ana) = app.user("ana_sales", &["salesperson"], Some(&d), None).await;
    let (_, bo) = app.user("bo_sales", &["salesperson"], Some(&d), None).await;
    let lead = ana
        .create("lead", json!({"name": "蒋磊", "company": "成都天成科技有限公司"}))
        .await;
    let other = bo
        .post(&format!("/api/v1/leads/{}/convert", s(&lead, "id")), &json!({}))
        .await;
    assert_eq!(
        other.status,
        StatusCode::FORBIDDEN,
        "readable in the department, but not bo's: {}",
        other.text
    );
    let own = ana
        .post(&format!("/api/v1/leads/{}/convert", s(&lead, "id")), &json!({}))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let customers = bo.get("/api/v1/records/customer").await;
    assert_eq!(
        customers.body["meta"]["total"], 1,
        "the new customer belongs to the department"
    );
}

#[tokio::test]
async fn follow_ups_and_care_actions_belong_to_a_customer() {
    let app = spawn_app().await;
    let c = app.create("customer", json!({"name": "杭州博远科技有限公司"})).await;
    let missing = app
        .post("/api/v1/records/follow_up", &json!({"customer_id": c["id"]}))
        .await;
    let codes = &missing.body["error"]["field_codes"];
    for f in ["kind", "subject", "occurred_at"] {
        assert_eq!(codes[f][0], "required", "{f}");
    }
    for (when, subject) in [
        ("2026-11-01T10:00:00+08:00", "首次拜访"),
        ("2026-11-15T14:30:00+08:00", "报价沟通"),
    ] {
        app.create(
            "follow_up",
            json!({"customer_id": c["id"], "kind": "visit", "subject": subject, "occurred_at": when,
                   "place": "客户办公室", "purpose": "了解需求", "feedback": "对价格敏感", "next_step": "发送方案",
                   "remind_at": "2026-11-20T09:00:00+08:00"}),
        )
        .await;
    }
    let filter = crate::records::urlencode(&format!(
        r#"{{"field":"customer_id","op":"eq","value":"{}"}}"#,
        s(&c, "id")
    ));
    let timeline = app.get(&format!("/api/v1/records/follow_up?filter={filter}")).await;
    let subjects: Vec<&str> = timeline
        .data()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["subject"].as_str())
        .collect();
    assert_eq!(subjects, ["报价沟通", "首次拜访"], "newest first");
    let care = app
        .create(
            "care_action",
            json!({"customer_id": c["id"], "occasion": "holiday", "channel": "gift", "planned_on": "2027-01-28", "cost": 20000}),
        )
        .await;
    assert_eq!(care["cost"], json!({"amount": 20000, "currency": "CNY"}));
    let bad = app
        .post(
            "/api/v1/records/care_action",
            &json!({"customer_id": c["id"], "occasion": "party", "channel": "gift", "planned_on": "2027-01-28"}),
        )
        .await;
    assert_eq!(bad.body["error"]["field_codes"]["occasion"][0], "invalid_option");
}

/// Customer groups (客户分组, seed 004 §9.2.1): groups are records; a customer names its groups,
/// a list filters by group, and a group id that does not exist is a field error.
#[tokio::test]
async fn customers_belong_to_groups_that_lists_filter_by() {
    let app = guanxi_testkit::spawn_app().await;
    let vip = app
        .create("customer_group", serde_json::json!({"name": "重点行业客户"}))
        .await;
    let vip_id = vip["id"].as_str().expect("group id").to_owned();
    let member = app
        .create(
            "customer",
            serde_json::json!({"name": "郑州分组测试有限公司", "groups": [vip_id]}),
        )
        .await;
    app.create("customer", serde_json::json!({"name": "不在分组的公司"}))
        .await;
    assert_eq!(member["groups"], serde_json::json!([vip_id]));

    let filter = format!(r#"{{"field":"groups","op":"contains","value":"{vip_id}"}}"#);
    let listed = app
        .get(&format!(
            "/api/v1/records/customer?total=exact&filter={}",
            crate::records::urlencode(&filter)
        ))
        .await;
    assert_eq!(listed.body["meta"]["total"], 1, "{}", listed.text);
    assert_eq!(listed.body["data"][0]["id"], member["id"]);

    let bad = app
        .post(
            "/api/v1/records/customer",
            &serde_json::json!({"name": "错误分组公司", "groups": ["01900000-0000-7000-8000-000000000000"]}),
        )
        .await;
    assert_eq!(bad.status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(
        bad.body["error"]["field_codes"]["groups"][0], "not_found",
        "{}",
        bad.text
    );
}

/// The generic workflow endpoint answers a lead's `convert` with the lead as committed, the
/// customer it became included (the conversion hook writes it after the state change).
#[tokio::test]
async fn the_convert_transition_answers_with_the_converted_customer() {
    let app = spawn_app().await;
    let lead = app
        .create(
            "lead",
            json!({"name": "周敏", "company": "洛阳远航机械有限公司", "mobile": "13700003333"}),
        )
        .await;
    let id = s(&lead, "id").to_owned();
    let r = app
        .post(&format!("/api/v1/records/lead/{id}/transitions/convert"), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.data()["status"], "converted", "{}", r.text);
    let customer_id = r.data()["converted_customer_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!customer_id.is_empty(), "{}", r.text);
    let customer = app.get(&format!("/api/v1/records/customer/{customer_id}")).await;
    assert_eq!(customer.data()["name"], "洛阳远航机械有限公司");
}
