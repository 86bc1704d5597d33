//! Attachments (issue 4 §5 form; issue 5 §1: business licence and tax certificate with type and
//! size rules): uploads are checked against their field's limits while they arrive and sniffed
//! for pdf/png/jpg, records list only files that exist and that their editor may attach, and a
//! file downloads — under its Chinese name — only for its uploader and for readers of a record
//! that lists it.

use guanxi_testkit::{Reply, TestApp, TestClient, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::helpers::s;

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";

async fn upload(client: &TestClient, object: &str, field: &str, name: &str, bytes: Vec<u8>) -> Reply {
    let form = reqwest::multipart::Form::new()
        .text("object", object.to_owned())
        .text("field", field.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    client
        .read(
            client
                .client
                .post(format!("{}/api/v1/files", client.base_url))
                .multipart(form),
        )
        .await
}

async fn uploaded(client: &TestClient, name: &str, bytes: &[u8]) -> Json {
    let reply = upload(client, "customer", "attachments", name, bytes.to_vec()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.data().clone()
}

async fn download(client: &TestClient, id: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let res = client
        .client
        .get(format!("{}/api/v1/files/{id}", client.base_url))
        .send()
        .await
        .expect("download");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.expect("body").to_vec())
}

fn stored_files(app: &TestApp) -> usize {
    std::fs::read_dir(app.db.dir.path().join("files").join("attachments"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_pdf_attached_to_a_customer_downloads_for_its_readers_only() {
    let app = spawn_app().await;
    let east = s(&app.create("department", json!({"name": "华东销售部"})).await, "id").to_owned();
    let north = s(&app.create("department", json!({"name": "华北销售部"})).await, "id").to_owned();
    let (_, seller) = app.user("seller", &["salesperson"], Some(&east), None).await;
    let (_, colleague) = app.user("colleague", &["salesperson"], Some(&east), None).await;
    let (_, stranger) = app.user("stranger", &["salesperson"], Some(&north), None).await;

    let file = uploaded(&seller, "营业执照.pdf", PDF).await;
    assert_eq!(file["name"], "营业执照.pdf");
    assert_eq!(file["size"], PDF.len());
    assert_eq!(file["content_type"], "application/pdf");
    assert_eq!(s(&file, "sha256").len(), 64);
    let id = s(&file, "id").to_owned();

    // The record lists the file with the upload's own name and size, whatever the client says.
    let created = seller
        .create(
            "customer",
            json!({"name": "中平能源", "customer_type": "enterprise",
                   "attachments": [{"id": id, "name": "改名.pdf", "size": 1}]}),
        )
        .await;
    assert_eq!(
        created["attachments"],
        json!([{"id": id, "name": "营业执照.pdf", "size": PDF.len()}])
    );
    let customer_id = s(&created, "id").to_owned();

    let (status, headers, body) = download(&colleague, &id).await;
    assert_eq!(status, StatusCode::OK, "a reader of the customer downloads it");
    assert_eq!(body, PDF);
    assert_eq!(headers["content-type"], "application/pdf");
    let disposition = headers["content-disposition"].to_str().unwrap_or_default();
    assert!(
        disposition.contains("filename*=UTF-8''%E8%90%A5%E4%B8%9A%E6%89%A7%E7%85%A7.pdf"),
        "{disposition}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let (status, ..) = download(&stranger, &id).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "outside the customer's scope it does not exist"
    );
    let (status, ..) = download(&app.anonymous(), &id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The file cannot be moved to another record, not even by its uploader.
    let other = seller
        .post(
            "/api/v1/records/customer",
            &json!({"name": "另一家", "customer_type": "enterprise", "attachments": [{"id": id}]}),
        )
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", other.text);
    assert_eq!(other.body["error"]["field_codes"]["attachments"], json!(["not_found"]));

    // A second file joins the first; the record keeps both.
    let scan = uploaded(&seller, "税务登记证.png", PNG).await;
    let updated = seller
        .patch(
            &format!("/api/v1/records/customer/{customer_id}"),
            &json!({"version": 1, "attachments": [{"id": id}, {"id": scan["id"]}]}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.data()["attachments"][1]["name"], "税务登记证.png");

    // Removed from the record, it is no longer readable through it; the uploader keeps access.
    let removed = seller
        .patch(
            &format!("/api/v1/records/customer/{customer_id}"),
            &json!({"version": 2, "attachments": [{"id": scan["id"]}]}),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    let (status, ..) = download(&colleague, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = download(&seller, &id).await;
    assert_eq!((status, body.len()), (StatusCode::OK, PDF.len()));

    // Someone else's upload cannot be attached by id (and so cannot be read through a record).
    let foreign = uploaded(&stranger, "合同.pdf", PDF).await;
    let stolen = seller
        .patch(
            &format!("/api/v1/records/customer/{customer_id}"),
            &json!({"version": 3, "attachments": [{"id": scan["id"]}, {"id": foreign["id"]}]}),
        )
        .await;
    assert_eq!(stolen.body["error"]["field_codes"]["attachments"], json!(["not_found"]));
    let (status, ..) = download(&seller, s(&foreign, "id")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Ids that exist nowhere are refused; nothing was written by the refusals.
    let unknown = seller
        .post(
            "/api/v1/records/customer",
            &json!({"name": "虚构", "customer_type": "enterprise",
                    "attachments": [{"id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}]}),
        )
        .await;
    assert_eq!(
        unknown.body["error"]["field_codes"]["attachments"],
        json!(["not_found"])
    );
    let count = seller.get("/api/v1/records/customer?total=exact").await;
    assert_eq!(count.body["meta"]["total"], 1);
    let record = seller.get(&format!("/api/v1/records/customer/{customer_id}")).await;
    assert_eq!(record.data()["version"], 3);
}

#[tokio::test]
async fn uploads_outside_the_fields_rules_are_refused_and_leave_nothing_behind() {
    let app = spawn_app().await;
    let field = app
        .post(
            "/api/v1/meta/objects/customer/fields",
            &json!({"key": "cf_contract", "label": {"zh": "合同扫描件", "en": "Contract scan"},
                    "type": "attachments", "max_files": 1, "max_size_bytes": 1024, "allowed_extensions": ["pdf"]}),
        )
        .await;
    assert_eq!(field.status, StatusCode::CREATED, "{}", field.text);

    let big = upload(
        &app,
        "customer",
        "cf_contract",
        "大合同.pdf",
        [PDF, &[b' '; 2048]].concat(),
    )
    .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", big.text);
    assert_eq!(big.code(), "file_too_large");
    assert_eq!(big.body["error"]["details"]["max_size_bytes"], 1024);
    assert!(
        big.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 KB")),
        "{}",
        big.text
    );

    let exe = upload(&app, "customer", "cf_contract", "setup.exe", b"MZ\x90\x00".to_vec()).await;
    assert_eq!(exe.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(exe.code(), "file_type_not_allowed");
    let png = upload(&app, "customer", "cf_contract", "scan.png", PNG.to_vec()).await;
    assert_eq!(png.code(), "file_type_not_allowed", "the field takes pdf only");
    let fake = upload(
        &app,
        "customer",
        "cf_contract",
        "发票.pdf",
        b"MZ\x90\x00 not a pdf".to_vec(),
    )
    .await;
    assert_eq!(fake.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fake.code(), "file_type_not_allowed", "the content is sniffed");
    let fake_jpg = upload(&app, "customer", "attachments", "照片.jpg", PNG.to_vec()).await;
    assert_eq!(fake_jpg.code(), "file_type_not_allowed");
    let empty = upload(&app, "customer", "cf_contract", "空.pdf", Vec::new()).await;
    assert_eq!(empty.code(), "empty_file");

    let not_attachments = upload(&app, "customer", "name", "a.pdf", PDF.to_vec()).await;
    assert_eq!(not_attachments.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(not_attachments.code(), "invalid_query");
    let no_field = app
        .read(
            app.client.post(format!("{}/api/v1/files", app.base_url)).multipart(
                reqwest::multipart::Form::new()
                    .part("file", reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("a.pdf")),
            ),
        )
        .await;
    assert_eq!(no_field.code(), "invalid_query");
    let unknown_object = upload(&app, "spaceship", "attachments", "a.pdf", PDF.to_vec()).await;
    assert_eq!(unknown_object.status, StatusCode::NOT_FOUND);
    let raw = app
        .read(
            app.client
                .post(format!(
                    "{}/api/v1/files?object=customer&field=attachments",
                    app.base_url
                ))
                .header("content-type", "application/pdf")
                .body(PDF.to_vec()),
        )
        .await;
    assert_eq!(raw.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(raw.code(), "unsupported_media_type");
    assert_eq!(stored_files(&app), 0, "refused uploads leave no bytes behind");

    // Object and field may also come in the query string.
    let by_query = app
        .read(
            app.client
                .post(format!(
                    "{}/api/v1/files?object=customer&field=cf_contract",
                    app.base_url
                ))
                .multipart(reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("合同.pdf"),
                )),
        )
        .await;
    assert_eq!(by_query.status, StatusCode::CREATED, "{}", by_query.text);
    let second = upload(&app, "customer", "cf_contract", "补充协议.pdf", PDF.to_vec()).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(stored_files(&app), 2);

    // The field takes one file: two are too many; a file of another field does not fit.
    let two = app
        .post(
            "/api/v1/records/customer",
            &json!({"name": "两份合同", "customer_type": "enterprise",
                    "cf_contract": [{"id": by_query.data()["id"]}, {"id": second.data()["id"]}]}),
        )
        .await;
    assert_eq!(
        two.body["error"]["field_codes"]["cf_contract"],
        json!(["too_many_files"])
    );
    let licence = uploaded(&app, "营业执照.pdf", PDF).await;
    let wrong_field = app
        .post(
            "/api/v1/records/customer",
            &json!({"name": "错字段", "customer_type": "enterprise", "cf_contract": [{"id": licence["id"]}]}),
        )
        .await;
    assert_eq!(
        wrong_field.body["error"]["field_codes"]["cf_contract"],
        json!(["not_found"])
    );
    let shape = app
        .post(
            "/api/v1/records/customer",
            &json!({"name": "坏格式", "customer_type": "enterprise", "cf_contract": [{"file": "x"}]}),
        )
        .await;
    assert_eq!(
        shape.body["error"]["field_codes"]["cf_contract"],
        json!(["invalid_attachment"])
    );
    let ok = app
        .create(
            "customer",
            json!({"name": "一份合同", "customer_type": "enterprise", "cf_contract": [{"id": second.data()["id"]}]}),
        )
        .await;
    assert_eq!(ok["cf_contract"][0]["name"], "补充协议.pdf");
}

#[tokio::test]
async fn uploads_need_a_grant_on_the_object_and_fit_the_servers_body_limit() {
    let app = spawn_app_with(Default::default(), |c| c.max_upload_bytes = 64 * 1024).await;
    // The partner reads customers but changes none: it uploads nothing for them.
    let (_, partner) = app.user("partner_p", &["partner"], None, None).await;
    let refused = upload(&partner, "customer", "attachments", "a.pdf", PDF.to_vec()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let anonymous = upload(&app.anonymous(), "customer", "attachments", "a.pdf", PDF.to_vec()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let no_csrf = upload(&app.without_csrf(), "customer", "attachments", "a.pdf", PDF.to_vec()).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(no_csrf.code(), "csrf_failed");

    // A body over the server's upload limit is cut off with a clear 413.
    let huge = upload(
        &app,
        "customer",
        "attachments",
        "扫描件.pdf",
        [PDF, &vec![b' '; 200 * 1024]].concat(),
    )
    .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", huge.text);
    assert_eq!(huge.code(), "payload_too_large");
    assert_eq!(stored_files(&app), 0);
    let fits = upload(
        &app,
        "customer",
        "attachments",
        "扫描件.pdf",
        [PDF, &vec![b' '; 32 * 1024]].concat(),
    )
    .await;
    assert_eq!(fits.status, StatusCode::CREATED, "{}", fits.text);
    let (status, ..) = download(&app, "not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
