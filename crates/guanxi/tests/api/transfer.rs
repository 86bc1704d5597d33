//! Import and export: csv (UTF-8, UTF-8 with BOM, GBK) and xlsx files generated here, header
//! mapping on Chinese labels, dry run with row and column of every bad row, commit per duplicate
//! policy, undo, the error report, bad files, permissions, and exports to csv, xlsx and pdf that
//! are parsed back. The 1,000,000-row import is an ignored benchmark at the end.

use std::io::Cursor;
use std::time::{Duration, Instant};

use calamine::Reader;
use guanxi_testkit::{Reply, TestClient, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::helpers::s;

async fn upload(client: &TestClient, object: &str, name: &str, bytes: Vec<u8>) -> Reply {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
    let form = reqwest::multipart::Form::new().part("file", part);
    client
        .read(
            client
                .client
                .post(format!("{}/api/v1/records/{object}/import", client.base_url))
                .multipart(form),
        )
        .await
}

/// Waits for a job to finish and returns it.
async fn wait_job(client: &TestClient, id: &str, limit: Duration) -> Json {
    let start = Instant::now();
    loop {
        let reply = client.get(&format!("/api/v1/jobs/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let status = reply.data()["status"].as_str().unwrap_or_default().to_owned();
        if status == "done" || status == "failed" {
            return reply.data().clone();
        }
        assert!(start.elapsed() < limit, "job {id} still {status} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a dry run or commit and waits for its job; returns the job's result.
async fn run(client: &TestClient, import_id: &str, step: &str, body: Json) -> Json {
    let reply = client.post(&format!("/api/v1/imports/{import_id}/{step}"), &body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{step}: {}", reply.text);
    let job = wait_job(
        client,
        reply.data()["job_id"].as_str().unwrap_or_default(),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(job["status"], "done", "{step} job: {job}");
    job["result"].clone()
}

async fn download(client: &TestClient, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let res = client
        .client
        .get(format!("{}{path}", client.base_url))
        .send()
        .await
        .expect("download");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.expect("body").to_vec())
}

async fn names(client: &TestClient, object: &str) -> Vec<String> {
    let reply = client
        .get(&format!("/api/v1/records/{object}?limit=500&sort=name&total=exact"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply
        .data()
        .as_array()
        .map(|a| a.iter().map(|r| s(r, "name").to_owned()).collect())
        .unwrap_or_default()
}

fn xlsx(rows: &[Vec<&str>]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let sheet = wb.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let (r, c) = (u32::try_from(r).expect("row"), u16::try_from(c).expect("col"));
            // Numbers go in as numbers, the way Excel stores typed phone numbers and amounts.
            match v.parse::<f64>() {
                Ok(n) if !v.is_empty() && !v.starts_with('0') => sheet.write_number(r, c, n).map(|_| ()),
                _ => sheet.write_string(r, c, *v).map(|_| ()),
            }
            .expect("write");
        }
    }
    wb.save_to_buffer().expect("xlsx")
}

fn sheet_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut wb: calamine::Xlsx<_> = calamine::Xlsx::new(Cursor::new(bytes.to_vec())).expect("xlsx opens");
    let name = wb.sheet_names()[0].clone();
    let range = wb.worksheet_range(&name).expect("sheet");
    range
        .rows()
        .map(|r| r.iter().map(ToString::to_string).collect())
        .collect()
}

const HEADER: &str = "客户名称,客户类型,联系电话,注册资本,成立日期,重点客户,标签,备注";

#[tokio::test]
async fn csv_in_utf8_bom_and_gbk_and_xlsx_with_chinese_headers_import() {
    let app = spawn_app().await;
    let body = "北京中平能源有限公司,企业,13812345678,\"1,234.56\",2020/5/8,是,VIP、战略合作,第一行\n上海星河贸易,个人,010-12345678,88,2021年1月2日,否,,\n";
    let text = format!("{HEADER}\n{body}");
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(text.replace("北京", "天津").replace("上海", "广州").as_bytes());
    let gbk_text = text.replace("北京", "重庆").replace("上海", "深圳");
    let (gbk, _, had_errors) = encoding_rs::GBK.encode(&gbk_text);
    assert!(!had_errors);
    let workbook = xlsx(&[
        HEADER.split(',').collect(),
        vec![
            "杭州西湖科技",
            "事业单位",
            "13900001111",
            "100",
            "2019-03-04",
            "否",
            "",
            "来自 xlsx",
        ],
    ]);
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        ("客户-utf8.csv", text.as_bytes().to_vec(), "utf-8"),
        ("客户-bom.csv", bom, "utf-8-bom"),
        ("客户-gbk.csv", gbk.into_owned(), "gbk"),
        ("客户.xlsx", workbook, ""),
    ];
    for (name, bytes, encoding) in files {
        let reply = upload(&app, "customer", name, bytes).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{name}: {}", reply.text);
        let batch = reply.data();
        if !encoding.is_empty() {
            assert_eq!(batch["encoding"], encoding, "{name}");
        }
        assert_eq!(batch["unknown_columns"], json!([]), "{name}: {batch}");
        assert_eq!(batch["mapping"]["客户名称"], "name");
        assert_eq!(batch["mapping"]["联系电话"], "phone");
        assert_eq!(batch["mapping"]["注册资本"], "registered_capital");
        assert!(
            batch["preview"][0][0].as_str().unwrap_or_default().ends_with("科技")
                || batch["preview"][0][0].as_str().unwrap_or_default().ends_with("公司"),
            "{name}: {}",
            batch["preview"]
        );
        let id = s(batch, "id").to_owned();
        let result = run(&app, &id, "commit", json!({"duplicate_policy": "create"})).await;
        assert_eq!(result["counts"]["failed_rows"], 0, "{name}: {result}");
    }
    let all = names(&app, "customer").await;
    for n in [
        "北京中平能源有限公司",
        "天津中平能源有限公司",
        "重庆中平能源有限公司",
        "深圳星河贸易",
        "杭州西湖科技",
    ] {
        assert!(all.iter().any(|a| a == n), "{n} missing from {all:?}");
    }
    let found = app
        .get(&format!(
            "/api/v1/records/customer?filter={}",
            crate::records::urlencode(r#"{"field":"name","op":"eq","value":"重庆中平能源有限公司"}"#)
        ))
        .await;
    let c = &found.data()[0];
    assert_eq!(c["customer_type"], "enterprise");
    assert_eq!(c["phone"], "13812345678");
    assert_eq!(c["registered_capital"]["amount"], 123_456);
    assert_eq!(c["established_on"], "2020-05-08");
    assert_eq!(c["is_key_account"], true);
    assert_eq!(c["tags"], json!(["vip", "strategic"]));
    assert!(s(c, "number").starts_with("CM"));
}

#[tokio::test]
async fn dry_run_reports_every_bad_row_and_commit_imports_the_good_ones() {
    let app = spawn_app().await;
    let csv = format!(
        "{HEADER}\n\
         好客户一,企业,13800000001,,,,,\n\
         ,企业,13800000002,,,,,\n\
         坏电话客户,企业,12345,,,,,\n\
         好客户二,个人,,,,,,\n\
         坏类型客户,外星人,,abc,2026-02-30,也许,,\n"
    );
    let reply = upload(&app, "customer", "bad.csv", csv.into_bytes()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let id = s(reply.data(), "id").to_owned();

    let result = run(&app, &id, "dry-run", json!({"duplicate_policy": "create"})).await;
    assert_eq!(result["counts"]["total"], 5, "{result}");
    assert_eq!(result["counts"]["failed_rows"], 3, "{result}");
    assert_eq!(result["would_create"], 2);
    let errors = result["errors"].as_array().cloned().unwrap_or_default();
    let has = |row: i64, column: &str, code: &str| {
        errors
            .iter()
            .any(|e| e["row"] == row && e["column"] == column && e["code"] == code)
    };
    assert!(has(3, "客户名称", "required"), "{errors:?}");
    assert!(has(4, "联系电话", "invalid_phone"), "{errors:?}");
    assert!(has(6, "客户类型", "invalid_option"), "{errors:?}");
    assert!(has(6, "注册资本", "invalid_money"), "{errors:?}");
    assert!(has(6, "成立日期", "invalid_date"), "{errors:?}");
    assert!(has(6, "重点客户", "invalid_type"), "{errors:?}");
    // A dry run writes nothing.
    assert!(names(&app, "customer").await.is_empty());

    let listed = app.get(&format!("/api/v1/imports/{id}/errors?limit=2")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["meta"]["rows_with_errors"], 3);
    assert_eq!(listed.data().as_array().map(Vec::len), Some(2));
    let en = app
        .read(
            app.client
                .get(format!("{}/api/v1/imports/{id}/errors", app.base_url))
                .header("accept-language", "en"),
        )
        .await;
    assert!(en.text.contains("is not a valid Chinese mobile"), "{}", en.text);

    let result = run(&app, &id, "commit", json!({"duplicate_policy": "create"})).await;
    assert_eq!(result["counts"]["created"], 2, "{result}");
    assert_eq!(result["counts"]["failed_rows"], 3, "{result}");
    assert_eq!(names(&app, "customer").await, vec!["好客户一", "好客户二"]);
    // The job reports done once the rows' staged search entries are merged (decision 0014).
    let searched = app
        .get(&format!("/api/v1/records/customer?q={}", "%E5%A5%BD%E5%AE%A2%E6%88%B7"))
        .await;
    assert_eq!(
        searched.data().as_array().map(Vec::len),
        Some(2),
        "q=好客户: {}",
        searched.text
    );
    let staged: i64 = sqlx::query_scalar("SELECT count(*) FROM search_pending")
        .fetch_one(app.state.db.reader())
        .await
        .expect("count");
    assert_eq!(staged, 0, "nothing is left staged");
    let batch = app.get(&format!("/api/v1/imports/{id}")).await;
    assert_eq!(batch.data()["status"], "imported");

    // The error report: the bad rows with their row number, cells and reasons.
    let (status, headers, bytes) = download(&app, &format!("/api/v1/imports/{id}/errors.xlsx")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or_default()
            .contains("spreadsheetml")
    );
    let rows = sheet_rows(&bytes);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[0][0], "行号 Row");
    assert_eq!(rows[0].last().map(String::as_str), Some("错误原因 Errors"));
    assert_eq!(rows[1][0], "3");
    assert_eq!(rows[2][1], "坏电话客户");
    assert!(rows[2].last().is_some_and(|r| r.contains("联系电话")), "{rows:?}");
    assert!(rows[3].last().is_some_and(|r| r.contains("外星人")), "{rows:?}");

    // A committed batch cannot be committed again.
    let again = app.post(&format!("/api/v1/imports/{id}/commit"), &json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
}

#[tokio::test]
async fn duplicate_policies_and_undo() {
    let app = spawn_app().await;
    let existing = app
        .create(
            "customer",
            json!({"name": "老客户", "customer_type": "enterprise", "city": "北京"}),
        )
        .await;
    let csv = "客户名称,城市,客户类型\n老客户,上海,企业\n新客户,广州,企业\n新客户,深圳,企业\n".to_owned();

    // skip: the existing record is left alone; the repeated row in the file is skipped too.
    let id = s(
        upload(&app, "customer", "a.csv", csv.clone().into_bytes()).await.data(),
        "id",
    )
    .to_owned();
    let result = run(
        &app,
        &id,
        "commit",
        json!({"duplicate_policy": "skip", "match_on": "name"}),
    )
    .await;
    assert_eq!(result["counts"]["skipped"], 2, "{result}");
    assert_eq!(result["counts"]["created"], 1, "{result}");
    let old = app
        .get(&format!("/api/v1/records/customer/{}", s(&existing, "id")))
        .await;
    assert_eq!(old.data()["city"], "北京");
    let undo = run(&app, &id, "undo", json!({})).await;
    assert_eq!(undo["deleted"], 1, "{undo}");
    assert_eq!(names(&app, "customer").await, vec!["老客户"]);

    // update: the existing record takes the file's values; undo puts the old ones back.
    let csv2 = "客户名称,城市,客户类型\n老客户,上海,企业\n另一个新客户,广州,企业\n".to_owned();
    let id = s(
        upload(&app, "customer", "b.csv", csv2.clone().into_bytes())
            .await
            .data(),
        "id",
    )
    .to_owned();
    let result = run(
        &app,
        &id,
        "commit",
        json!({"duplicate_policy": "update", "match_on": "name"}),
    )
    .await;
    assert_eq!(result["counts"]["updated"], 1, "{result}");
    assert_eq!(result["counts"]["created"], 1, "{result}");
    let old = app
        .get(&format!("/api/v1/records/customer/{}", s(&existing, "id")))
        .await;
    assert_eq!(old.data()["city"], "上海");
    let undo = run(&app, &id, "undo", json!({})).await;
    assert_eq!(undo["restored"], 1, "{undo}");
    assert_eq!(undo["deleted"], 1, "{undo}");
    let old = app
        .get(&format!("/api/v1/records/customer/{}", s(&existing, "id")))
        .await;
    assert_eq!(old.data()["city"], "北京");
    assert_eq!(names(&app, "customer").await, vec!["老客户"]);
    // Undone records are in the recycle bin, not purged.
    let bin = app.get("/api/v1/records/customer/recycle-bin").await;
    assert_eq!(bin.data().as_array().map(Vec::len), Some(2), "{}", bin.text);

    // create: always new records.
    let id = s(upload(&app, "customer", "c.csv", csv2.into_bytes()).await.data(), "id").to_owned();
    let result = run(&app, &id, "commit", json!({"duplicate_policy": "create"})).await;
    assert_eq!(result["counts"]["created"], 2, "{result}");
    assert_eq!(names(&app, "customer").await, vec!["另一个新客户", "老客户", "老客户"]);

    // An undo keeps records changed after the import.
    let id = s(
        upload(
            &app,
            "customer",
            "d.csv",
            "客户名称\n会被修改的客户\n不会被修改的客户\n".as_bytes().to_vec(),
        )
        .await
        .data(),
        "id",
    )
    .to_owned();
    run(&app, &id, "commit", json!({"duplicate_policy": "create"})).await;
    let changed = app
        .get(&format!(
            "/api/v1/records/customer?filter={}",
            crate::records::urlencode(r#"{"field":"name","op":"eq","value":"会被修改的客户"}"#)
        ))
        .await;
    let changed = &changed.data()[0];
    let patched = app
        .patch(
            &format!("/api/v1/records/customer/{}", s(changed, "id")),
            &json!({"version": changed["version"], "city": "成都"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let undo = run(&app, &id, "undo", json!({})).await;
    assert_eq!(undo["deleted"], 1, "{undo}");
    assert_eq!(undo["kept"], 1, "{undo}");
    assert!(names(&app, "customer").await.contains(&"会被修改的客户".to_owned()));
}

#[tokio::test]
async fn contacts_import_finds_their_customer_by_name_and_mapping_is_saved() {
    let app = spawn_app().await;
    app.create("customer", json!({"name": "中平能源", "customer_type": "enterprise"}))
        .await;
    let csv = "所属客户,姓名,手机,微信号\n中平能源,李雷,13811112222,lilei\n不存在的公司,韩梅梅,13811113333,hmm\n";
    let reply = upload(&app, "contact", "联系人.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let batch = reply.data().clone();
    assert_eq!(batch["unknown_columns"], json!(["微信号"]));
    let id = s(&batch, "id").to_owned();

    // An unknown column stops the dry run until it is mapped or ignored.
    let refused = app.post(&format!("/api/v1/imports/{id}/dry-run"), &json!({})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.code(), "unknown_columns");
    assert_eq!(refused.body["error"]["details"]["columns"], json!(["微信号"]));
    let bad = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/imports/{id}/mapping"),
            Some(&json!({"mapping": {"微信号": "no_such_field"}})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    let mapped = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/imports/{id}/mapping"),
            Some(&json!({"mapping": {"微信号": null, "手机": "mobile"}})),
        )
        .await;
    assert_eq!(mapped.status, StatusCode::OK, "{}", mapped.text);
    assert_eq!(mapped.data()["unknown_columns"], json!([]));

    let result = run(&app, &id, "commit", json!({"duplicate_policy": "create"})).await;
    assert_eq!(result["counts"]["created"], 1, "{result}");
    let errors = app.get(&format!("/api/v1/imports/{id}/errors")).await;
    let e = &errors.data()[0];
    assert_eq!(e["row"], 3);
    assert_eq!(e["column"], "所属客户");
    assert_eq!(e["code"], "not_found");
    let contacts = app.get("/api/v1/records/contact").await;
    assert_eq!(contacts.data()[0]["name"], "李雷");

    // The next upload of the same headers remembers that 微信号 is ignored.
    let again = upload(&app, "contact", "联系人2.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(again.data()["unknown_columns"], json!([]), "{}", again.text);
    assert_eq!(again.data()["mapping"]["微信号"], Json::Null);
}

#[tokio::test]
async fn bad_files_get_stable_codes_and_change_nothing() {
    let app = spawn_app().await;
    let pdf = upload(&app, "customer", "report.pdf", b"%PDF-1.7\n1 0 obj\n".to_vec()).await;
    assert_eq!(pdf.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", pdf.text);
    assert_eq!(pdf.code(), "unsupported_file_type");
    let png = upload(&app, "customer", "photo.csv", b"\x89PNG\r\n\x1a\n....".to_vec()).await;
    assert_eq!(png.code(), "unsupported_file_type");
    let xls = upload(
        &app,
        "customer",
        "old.xls",
        vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1],
    )
    .await;
    assert_eq!(xls.code(), "unsupported_file_type");

    let mut whole = xlsx(&[vec!["客户名称"], vec!["甲"], vec!["乙"]]);
    whole.truncate(whole.len() / 2);
    let truncated = upload(&app, "customer", "cut.xlsx", whole).await;
    assert_eq!(truncated.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", truncated.text);
    assert_eq!(truncated.code(), "unreadable_file");

    let latin1 = upload(&app, "customer", "latin1.csv", b"name\nCaf\xE9 M\xFCller\n".to_vec()).await;
    assert_eq!(latin1.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", latin1.text);
    assert_eq!(latin1.code(), "encoding_error");
    let utf16 = "客户名称\n甲\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect::<Vec<u8>>();
    let no_bom = upload(&app, "customer", "utf16.csv", utf16.clone()).await;
    assert_eq!(no_bom.code(), "encoding_error", "{}", no_bom.text);
    let mut with_bom = vec![0xFF, 0xFE];
    with_bom.extend(utf16);
    let ok = upload(&app, "customer", "utf16.csv", with_bom).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(ok.data()["mapping"]["客户名称"], "name");

    // Declared UTF-8 that is not: the row and column are named. (A raw body upload, on the
    // `/imports/{object}` alias.)
    let (gbk, _, _) = encoding_rs::GBK.encode("客户名称,城市\n甲,北京\n");
    let wrong = app
        .read(
            app.client
                .post(format!(
                    "{}/api/v1/imports/customer?filename=x.csv&encoding=utf-8",
                    app.base_url
                ))
                .body(gbk.into_owned()),
        )
        .await;
    assert_eq!(wrong.code(), "encoding_error", "{}", wrong.text);
    assert_eq!(wrong.body["error"]["details"]["row"], 1);

    let empty = upload(&app, "customer", "empty.csv", Vec::new()).await;
    assert_eq!(empty.code(), "empty_file");
    let unknown = upload(&app, "nothing", "a.csv", b"a\n1\n".to_vec()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Without a name column the import cannot create customers.
    let no_name = upload(&app, "customer", "city.csv", "城市\n北京\n".as_bytes().to_vec()).await;
    let id = s(no_name.data(), "id").to_owned();
    let refused = app.post(&format!("/api/v1/imports/{id}/commit"), &json!({})).await;
    assert_eq!(refused.code(), "missing_required_columns", "{}", refused.text);

    assert!(names(&app, "customer").await.is_empty());
    let batches = app.get("/api/v1/imports").await;
    // Only the accepted uploads made batches.
    assert_eq!(batches.data().as_array().map(Vec::len), Some(2), "{}", batches.text);
}

async fn export_file(client: &TestClient, object: &str, body: Json) -> Vec<u8> {
    let reply = client.post(&format!("/api/v1/records/{object}/export"), &body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let export_id = s(reply.data(), "id").to_owned();
    let job = wait_job(client, s(reply.data(), "job_id"), Duration::from_secs(60)).await;
    assert_eq!(job["status"], "done", "{job}");
    let (status, _, bytes) = download(client, &format!("/api/v1/exports/{export_id}/download")).await;
    assert_eq!(status, StatusCode::OK);
    bytes
}

#[tokio::test]
async fn exports_to_csv_xlsx_and_pdf_open_and_hold_the_chosen_fields() {
    let app = spawn_app().await;
    for (i, name) in ["北京中平能源有限公司", "上海星河贸易", "广州白云制造"]
        .iter()
        .enumerate()
    {
        app.create(
            "customer",
            json!({"name": name, "customer_type": "enterprise", "city": "北京", "registered_capital": 123_456 + i,
                   "tags": ["vip"], "is_key_account": i == 0}),
        )
        .await;
    }
    let filter = json!({"field": "name", "op": "contains", "value": "有限"});
    let csv = export_file(
        &app,
        "customer",
        json!({"format": "csv", "fields": ["name", "customer_type", "registered_capital", "tags", "is_key_account", "owner_id"], "sort": "name"}),
    )
    .await;
    assert!(csv.starts_with(&[0xEF, 0xBB, 0xBF]), "csv has a BOM for Excel");
    let mut reader = csv::Reader::from_reader(&csv[3..]);
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        ["客户名称", "客户类型", "注册资本", "标签", "重点客户", "负责人"]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("row").iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    let first = rows.iter().find(|r| r[0] == "北京中平能源有限公司").expect("row");
    assert_eq!(first[1], "企业");
    assert_eq!(first[2], "1234.56");
    assert_eq!(first[3], "VIP");
    assert_eq!(first[4], "是");
    assert_eq!(first[5], "测试管理员");

    let book = export_file(
        &app,
        "customer",
        json!({"format": "xlsx", "fields": ["name", "city"], "filter": filter}),
    )
    .await;
    let rows = sheet_rows(&book);
    assert_eq!(
        rows,
        vec![
            vec!["客户名称".to_owned(), "城市".to_owned()],
            vec!["北京中平能源有限公司".to_owned(), "北京".to_owned()]
        ]
    );

    let en = export_file(
        &app,
        "customer",
        json!({"format": "xlsx", "fields": ["name", "customer_type"], "lang": "en"}),
    )
    .await;
    let rows = sheet_rows(&en);
    assert_eq!(rows[0], vec!["Name".to_owned(), "Type".to_owned()]);
    assert_eq!(rows[1][1], "Enterprise");

    let pdf = export_file(&app, "customer", json!({"format": "pdf", "fields": ["number", "name", "customer_type", "city", "registered_capital", "created_at"]})).await;
    assert!(pdf.starts_with(b"%PDF-1.7"));
    assert!(pdf.ends_with(b"%%EOF\n"));
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.contains("/FontFile2") && text.contains("/Identity-H") && text.contains("/ToUnicode"));
    assert!(pdf.len() < 600_000, "the font is subset: {} bytes", pdf.len());
    if let Ok(dir) = std::env::var("GUANXI_KEEP_EXPORTS") {
        std::fs::write(format!("{dir}/customers.pdf"), &pdf).expect("keep pdf");
    }

    // A round trip: the exported xlsx imports again (update by id changes nothing).
    let book = export_file(
        &app,
        "customer",
        json!({"format": "xlsx", "fields": ["id", "name", "city"]}),
    )
    .await;
    let reply = upload(&app, "customer", "round.xlsx", book).await;
    assert_eq!(reply.data()["unknown_columns"], json!([]), "{}", reply.text);
    let result = run(
        &app,
        s(reply.data(), "id"),
        "commit",
        json!({"duplicate_policy": "update", "match_on": "id"}),
    )
    .await;
    assert_eq!(result["counts"]["unchanged"], 3, "{result}");

    // Bad requests.
    let bad = app
        .post("/api/v1/records/customer/export", &json!({"format": "doc"}))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = app
        .post(
            "/api/v1/records/customer/export",
            &json!({"format": "csv", "fields": ["nope"]}),
        )
        .await;
    assert_eq!(bad.code(), "invalid_query");
    let bad = app
        .post(
            "/api/v1/records/customer/export",
            &json!({"format": "csv", "filter": {"field": "name", "op": "gt", "value": 1}}),
        )
        .await;
    assert_eq!(bad.code(), "invalid_query");
}

/// Long exports read the table ahead of their walk on SQLite (decision 0013), but only when
/// the walk follows the table's order: newest or oldest first by id or creation time, no quick
/// search. PostgreSQL prefetches for itself.
#[tokio::test]
async fn exports_read_the_table_ahead_only_when_the_walk_follows_it() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create("customer", crate::helpers::customer(&format!("预读客户{i}")))
            .await;
    }
    let engine = &app.state.engine;
    let object = engine.object("customer").expect("customer");
    let sorted = |keys: &str| guanxi_store::ListQuery {
        sort: guanxi_core::filter::parse_sort(&object, keys).expect("sort"),
        ..guanxi_store::ListQuery::default()
    };
    let started = |query: guanxi_store::ListQuery| async move {
        engine.read_ahead("customer", &query).await.expect("read ahead")
    };
    if app.db.is_postgres() {
        assert!(started(sorted("")).await.is_none());
        return;
    }
    for keys in ["", "-id", "created_at"] {
        let read_ahead = started(sorted(keys))
            .await
            .unwrap_or_else(|| panic!("a walk by {keys:?} reads ahead"));
        for _ in 0..200 {
            if read_ahead.segments_read() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(read_ahead.segments_read(), 1, "three rows are one segment");
    }
    assert!(
        started(sorted("name")).await.is_none(),
        "a walk by name jumps around the table"
    );
    let searching = guanxi_store::ListQuery {
        search: Some("预读".into()),
        ..guanxi_store::ListQuery::default()
    };
    assert!(
        started(searching).await.is_none(),
        "a search walks the index, not the table"
    );
}

#[tokio::test]
async fn import_and_export_follow_permissions_scopes_and_hidden_fields() {
    let app = spawn_app().await;
    // A role that may export only its own customers and never sees the credit code.
    let role = app
        .create(
            "role",
            json!({"name": "导出员", "code": "exporter",
                   "permissions": {"customer": {"read": "self", "create": "self", "export": "self"}, "user": {"read": "all"}},
                   "field_rules": {"customer": {"credit_code": "hidden"}}}),
        )
        .await;
    assert_eq!(role["code"], "exporter");
    let (_, exporter) = app.user("exporter_li", &["exporter"], None, None).await;
    let (_, agent) = app.user("agent_wang", &["service_agent"], None, None).await;
    exporter
        .create("customer", json!({"name": "我的客户", "customer_type": "enterprise"}))
        .await;
    app.create(
        "customer",
        json!({"name": "别人的客户", "customer_type": "enterprise", "credit_code": "91110000100000000X"}),
    )
    .await;

    // No import grant: 403, and nothing is stored.
    let refused = upload(&exporter, "customer", "a.csv", "客户名称\n甲\n".as_bytes().to_vec()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    // No export grant: 403.
    let refused = agent
        .post("/api/v1/records/customer/export", &json!({"format": "csv"}))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.code(), "forbidden");

    // The exporter's file holds only its own customer and no hidden column.
    let hidden = exporter
        .post(
            "/api/v1/records/customer/export",
            &json!({"format": "csv", "fields": ["name", "credit_code"]}),
        )
        .await;
    assert_eq!(hidden.code(), "invalid_query", "{}", hidden.text);
    let csv = export_file(&exporter, "customer", json!({"format": "csv"})).await;
    let text = String::from_utf8(csv[3..].to_vec()).expect("utf-8");
    assert!(text.contains("我的客户"));
    assert!(!text.contains("别人的客户"));
    assert!(!text.contains("统一社会信用代码"));
    assert!(!text.contains("91110000100000000X"));

    // Another user's export and import do not exist for the exporter.
    let reply = app
        .post("/api/v1/records/customer/export", &json!({"format": "csv"}))
        .await;
    let admin_export = s(reply.data(), "id").to_owned();
    wait_job(&app, s(reply.data(), "job_id"), Duration::from_secs(60)).await;
    let (status, _, _) = download(&exporter, &format!("/api/v1/exports/{admin_export}/download")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let batch = upload(&app, "customer", "b.csv", "客户名称\n乙\n".as_bytes().to_vec()).await;
    let other = exporter
        .get(&format!("/api/v1/imports/{}", s(batch.data(), "id")))
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let anonymous = app
        .anonymous()
        .get(&format!("/api/v1/exports/{admin_export}/download"))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

/// The process's peak resident memory (Linux), for the benchmark's report.
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The million-row benchmark (docs/IMPORT-EXPORT.md): 1,000,000 customers in a csv with 3% bad
/// rows, dry run and commit, then an export of them all. Run with
/// `cargo nextest run -p guanxi --release -E 'test(million)' --run-ignored only --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: minutes, not seconds"]
async fn million_row_import_benchmark() {
    let rows: usize = std::env::var("GUANXI_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let app = spawn_app().await;
    let mut csv = String::with_capacity(rows * 80);
    csv.push_str("客户名称,客户类型,联系电话,省份,城市,注册资本,成立日期\n");
    // Real places: addresses are checked against the region list.
    const PLACES: &[(&str, &str)] = &[
        ("河南省", "郑州市"),
        ("广东省", "深圳市"),
        ("浙江省", "杭州市"),
        ("四川省", "成都市"),
        ("湖北省", "武汉市"),
        ("江苏省", "南京市"),
    ];
    let mut bad = 0;
    for i in 0..rows {
        let broken = i % 100 < 3;
        if broken {
            bad += 1;
        }
        let phone = if broken {
            "12345".to_owned()
        } else {
            format!("138{:08}", i % 100_000_000)
        };
        let (province, city) = PLACES[i % PLACES.len()];
        csv.push_str(&format!(
            "基准客户{i:07},企业,{phone},{province},{city},{}.{:02},2020-01-{:02}\n",
            i % 100_000,
            i % 100,
            i % 28 + 1
        ));
    }
    eprintln!("generated {rows} rows ({} MB), {bad} bad", csv.len() / 1_000_000);
    let t = Instant::now();
    let reply = upload(&app, "customer", "million.csv", csv.into_bytes()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    eprintln!("upload: {:.1?}", t.elapsed());
    let id = s(reply.data(), "id").to_owned();
    let t = Instant::now();
    let reply = app
        .post(
            &format!("/api/v1/imports/{id}/dry-run"),
            &json!({"duplicate_policy": "create"}),
        )
        .await;
    let job = wait_job(&app, s(reply.data(), "job_id"), Duration::from_secs(3600)).await;
    eprintln!("dry run: {:.1?} {}", t.elapsed(), job["result"]["counts"]);
    let t = Instant::now();
    let reply = app
        .post(
            &format!("/api/v1/imports/{id}/commit"),
            &json!({"duplicate_policy": "create"}),
        )
        .await;
    let job_id = s(reply.data(), "job_id").to_owned();
    // The server answers while the import runs.
    let mut worst = Duration::ZERO;
    let job = loop {
        let probe = Instant::now();
        let list = app.get("/api/v1/records/customer?limit=20&total=none").await;
        assert_eq!(list.status, StatusCode::OK);
        worst = worst.max(probe.elapsed());
        let j = app.get(&format!("/api/v1/jobs/{job_id}")).await;
        let status = j.data()["status"].as_str().unwrap_or_default().to_owned();
        if status == "done" || status == "failed" {
            break j.data().clone();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!(
        "commit: {:.1?} {} (slowest list request meanwhile: {worst:.2?})",
        t.elapsed(),
        job["result"]["counts"]
    );
    assert_eq!(job["result"]["counts"]["created"], json!(rows - bad));
    assert_eq!(job["result"]["counts"]["failed_rows"], json!(bad));
    eprintln!("peak memory after the import: {}", peak_memory());
    let t = Instant::now();
    let reply = app
        .post(
            "/api/v1/records/customer/export",
            &json!({"format": "csv", "fields": ["number", "name", "phone", "city", "registered_capital"]}),
        )
        .await;
    let job = wait_job(&app, s(reply.data(), "job_id"), Duration::from_secs(3600)).await;
    eprintln!("csv export: {:.1?} {}", t.elapsed(), job["result"]);
    let t = Instant::now();
    let reply = app
        .post(
            "/api/v1/records/customer/export",
            &json!({"format": "xlsx", "fields": ["number", "name", "phone", "city", "registered_capital"]}),
        )
        .await;
    let job = wait_job(&app, s(reply.data(), "job_id"), Duration::from_secs(3600)).await;
    eprintln!("xlsx export: {:.1?} {}", t.elapsed(), job["result"]);
    // A PDF of a tenth of them (pages are written one at a time).
    let t = Instant::now();
    let reply = app
        .post(
            "/api/v1/records/customer/export",
            &json!({"format": "pdf", "fields": ["number", "name", "phone", "city", "registered_capital"],
                    "filter": {"field": "name", "op": "starts_with", "value": "基准客户00"}}),
        )
        .await;
    let job = wait_job(&app, s(reply.data(), "job_id"), Duration::from_secs(3600)).await;
    eprintln!("pdf export: {:.1?} {}", t.elapsed(), job["result"]);
    eprintln!("peak memory after the exports: {}", peak_memory());
    let t = Instant::now();
    let reply = app.post(&format!("/api/v1/imports/{id}/undo"), &json!({})).await;
    let job = wait_job(&app, s(reply.data(), "job_id"), Duration::from_secs(3600)).await;
    eprintln!("undo: {:.1?} {}", t.elapsed(), job["result"]["deleted"]);
}

#[tokio::test]
async fn leads_import_and_export_like_any_other_object() {
    let app = spawn_app().await;
    let dept = app.create("department", json!({"name": "华北大区"})).await;
    let (_, manager) = app
        .user("manager_zhao", &["sales_manager"], Some(s(&dept, "id")), None)
        .await;
    let csv =
        "联系人姓名,公司名称,手机,所属行业,城市\n王五,中平能源,13900002222,能源,郑州\n赵六,星河贸易,139,零售,上海\n";
    let reply = upload(&manager, "lead", "线索.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.data()["unknown_columns"], json!([]), "{}", reply.text);
    let result = run(
        &manager,
        s(reply.data(), "id"),
        "commit",
        json!({"duplicate_policy": "create"}),
    )
    .await;
    assert_eq!(result["counts"]["created"], 1, "{result}");
    assert_eq!(result["counts"]["failed_rows"], 1, "{result}");
    let book = export_file(
        &manager,
        "lead",
        json!({"format": "xlsx", "fields": ["name", "company", "industry", "owner_id"]}),
    )
    .await;
    let rows = sheet_rows(&book);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[1],
        vec![
            "王五".to_owned(),
            "中平能源".to_owned(),
            "能源".to_owned(),
            "manager_zhao".to_owned()
        ]
    );
}
