//! The `guanxi` binary: help, serve with no configuration, migrate, backup and restore, and
//! durability under `kill -9`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use guanxi_testkit::{TestClient, TestDatabase, sign_in};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_guanxi");

/// A `guanxi serve` child process and the address it listens on.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path, database_url: Option<&str>) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            cmd.env("DATABASE_URL", url);
        }
        let mut child = cmd.spawn().expect("spawn guanxi");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("guanxi exited before listening")
                .expect("read stdout");
            if let Some(addr) = line.strip_prefix("guanxi listening on ") {
                break addr.trim().to_owned();
            }
        };
        Server { child, base }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn run_with(dir: &Path, database_url: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().expect("run guanxi")
}

const ADMIN: &str = "ops_admin";
const PASSWORD: &str = "Op!Admin#2026z";

/// `guanxi create-admin` for the database in `dir` (or at `database_url`).
fn create_admin(dir: &Path, database_url: Option<&str>) {
    let out = run_with(
        dir,
        database_url,
        &["create-admin", "--username", ADMIN, "--password", PASSWORD],
    );
    assert!(
        out.status.success(),
        "create-admin: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn admin_client(server: &Server) -> TestClient {
    match sign_in(&server.base, ADMIN, PASSWORD).await {
        Ok(c) => c,
        Err(r) => panic!("sign-in failed: {}", r.text),
    }
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run guanxi")
}

#[test]
fn help_lists_the_commands() {
    let out = Command::new(BIN).arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "migrate", "backup", "restore", "create-admin", "DATABASE_URL"] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
}

#[tokio::test]
async fn serve_with_no_configuration_keeps_its_data_in_an_sqlite_file() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), None);
    let health = reqwest::get(format!("{}/healthz", server.base)).await.expect("get");
    assert!(health.status().is_success());
    assert!(dir.path().join("data/guanxi.db").exists());
    server.terminate();
    let out = run(dir.path(), &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applied 0 migration"),
        "migrate is idempotent"
    );
}

#[tokio::test]
async fn backup_runs_online_and_restore_refuses_a_running_database() {
    let dir = tempfile::tempdir().expect("dir");
    create_admin(dir.path(), None);
    let server = Server::start(dir.path(), None);
    let client = admin_client(&server).await.client;
    let create = |name: &'static str| {
        let client = client.clone();
        let url = format!("{}/api/v1/records/customer", server.base);
        async move {
            let r = client
                .post(url)
                .json(&json!({"name": name}))
                .send()
                .await
                .expect("post");
            assert_eq!(r.status(), 201);
        }
    };
    create("备份前客户").await;
    let out = run(dir.path(), &["backup", "before.db"]);
    assert!(
        out.status.success(),
        "online backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    create("备份后客户").await;

    let refused = run(dir.path(), &["restore", "before.db"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // The commands that replace the whole search index refuse a database a server writes to:
    // the server's entries written meanwhile would be lost.
    for args in [&["reindex"][..], &["demo-data", "--size", "2"][..]] {
        let refused = run(dir.path(), args);
        assert!(!refused.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("in use"),
            "{args:?}: {}",
            String::from_utf8_lossy(&refused.stderr)
        );
    }
    let exists = run(dir.path(), &["backup", "before.db"]);
    assert!(!exists.status.success(), "a backup never overwrites a file");
    server.terminate();

    std::fs::write(dir.path().join("junk.db"), b"this is not a database").expect("write");
    let junk = run(dir.path(), &["restore", "junk.db"]);
    assert!(!junk.status.success(), "a broken backup is refused");

    let restored = run(dir.path(), &["restore", "before.db"]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let server = Server::start(dir.path(), None);
    let client = admin_client(&server).await.client;
    let list: serde_json::Value = client
        .get(format!("{}/api/v1/records/customer?sort=name", server.base))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["备份前客户"], "the database is exactly the backup");
    server.terminate();
}

/// Streams creates from several clients, kills the server with SIGKILL, restarts it and checks
/// that every create that was acknowledged with 201 is there.
#[tokio::test]
async fn kill_9_loses_no_acknowledged_create() {
    let db = TestDatabase::create().await.expect("database");
    let url = db.url.clone();
    create_admin(db.dir.path(), Some(&url));
    let server = Server::start(db.dir.path(), Some(&url));
    let base = server.base.clone();
    let signed_in = admin_client(&server).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut writers = Vec::new();
    for w in 0..4 {
        let tx = tx.clone();
        let url = format!("{base}/api/v1/records/customer");
        let client = signed_in.client.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let res = client
                    .post(&url)
                    .json(&json!({"name": format!("写入{w}-{i}")}))
                    .send()
                    .await;
                let Ok(res) = res else { break };
                if res.status() != 201 {
                    break;
                }
                let Ok(body) = res.json::<serde_json::Value>().await else {
                    break;
                };
                if let Some(id) = body["data"]["id"].as_str() {
                    let _ = tx.send(id.to_owned());
                }
            }
        }));
    }
    drop(tx);
    let mut acked = Vec::new();
    while acked.len() < 200 {
        match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(id)) => acked.push(id),
            _ => panic!("creates stalled after {}", acked.len()),
        }
    }
    server.kill();
    for w in writers {
        let _ = w.await;
    }
    while let Ok(id) = rx.try_recv() {
        acked.push(id);
    }
    let server = Server::start(db.dir.path(), Some(&url));
    let client = admin_client(&server).await.client;
    let mut missing = Vec::new();
    for id in &acked {
        let r = client
            .get(format!("{}/api/v1/records/customer/{id}", server.base))
            .send()
            .await
            .expect("get");
        if r.status() != 200 {
            missing.push(id.clone());
        }
    }
    server.terminate();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged creates lost: {missing:?}",
        missing.len(),
        acked.len()
    );
}

/// `guanxi demo-data` creates users for every default role whose scopes hold.
#[tokio::test]
async fn demo_data_gives_every_role_a_user_and_scoped_customers() {
    let dir = tempfile::tempdir().expect("dir");
    let out = run(dir.path(), &["demo-data", "--customers", "15"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    for role in [
        "admin",
        "sales_manager",
        "salesperson",
        "service_agent",
        "marketing",
        "analyst",
        "partner",
    ] {
        assert!(printed.contains(role), "{role} missing: {printed}");
    }
    let server = Server::start(dir.path(), None);
    let admin = sign_in(&server.base, "demo_admin", "Demo#Guanxi2026")
        .await
        .expect("demo admin");
    let all = admin.get("/api/v1/records/customer?total=exact").await;
    assert_eq!(all.body["meta"]["total"], 15);
    let sales = sign_in(&server.base, "demo_sales3", "Demo#Guanxi2026")
        .await
        .expect("salesperson");
    let me = sales.get("/api/v1/me").await;
    let dept = me.data()["user"]["department_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Its department's customers, plus the public pool (公海) it may claim from.
    let filter = format!(
        r#"{{"or":[{{"field":"department_id","op":"eq","value":"{dept}"}},{{"field":"owner_id","op":"is_empty","value":true}}]}}"#
    );
    let expected = admin
        .get(&format!(
            "/api/v1/records/customer?total=exact&filter={}",
            crate::records::urlencode(&filter)
        ))
        .await;
    let seen = sales.get("/api/v1/records/customer?total=exact").await;
    assert_eq!(
        seen.body["meta"]["total"], expected.body["meta"]["total"],
        "a salesperson sees its department and the pool"
    );
    let pool = sales.get("/api/v1/customers/pool?total=exact").await;
    assert_eq!(
        pool.body["meta"]["total"], 1,
        "every tenth demo customer is in the pool"
    );

    server.terminate();
}

/// `guanxi demo-data --size N` writes the benchmark shape through the engine's multi-row batch
/// path: every customer numbered once, two contacts and five follow-ups each, 200 salespeople in
/// a department tree, audit entries, and a search index that finds a customer by its contacts'
/// mobiles (the parent's entries are rebuilt for the whole batch).
#[tokio::test]
async fn bulk_demo_data_has_the_benchmark_shape_and_a_working_index() {
    let db = TestDatabase::create().await.expect("database");
    let url = db.url.clone();
    let out = run_with(
        db.dir.path(),
        Some(&url),
        &["demo-data", "--size", "12", "--batch", "5"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("12 customers, 24 contacts, 60 follow-ups"),
        "{printed}"
    );

    let server = Server::start(db.dir.path(), Some(&url));
    let admin = sign_in(&server.base, "demo_admin", "Demo#Guanxi2026")
        .await
        .expect("demo admin");
    let customers = admin
        .get("/api/v1/records/customer?total=exact&limit=100&sort=number")
        .await;
    assert_eq!(customers.body["meta"]["total"], 12);
    let numbers: Vec<String> = customers.body["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|c| c["number"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (1..=12).map(|n| format!("CM{n:06}")).collect();
    assert_eq!(numbers, expected, "numbers are handed out once each, in order");
    for (object, total) in [("contact", 24), ("follow_up", 60)] {
        let list = admin.get(&format!("/api/v1/records/{object}?total=exact")).await;
        assert_eq!(list.body["meta"]["total"], total, "{object}");
    }
    let users = admin.get("/api/v1/records/user?total=exact").await;
    assert!(
        users.body["meta"]["total"].as_i64().unwrap_or(0) >= 209,
        "{}",
        users.body
    );

    let contact = admin.get("/api/v1/records/contact?limit=1").await;
    let contact = &contact.body["data"][0];
    let mobile = contact["mobile"].as_str().expect("mobile");
    let found = admin
        .get(&format!(
            "/api/v1/records/customer?q={}",
            crate::records::urlencode(mobile)
        ))
        .await;
    let ids: Vec<&str> = found.body["data"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(
        ids.contains(&contact["customer_id"].as_str().expect("customer")),
        "{}",
        found.body
    );

    let customer_id = customers.body["data"][0]["id"].as_str().expect("id");
    let history = admin
        .get(&format!("/api/v1/records/customer/{customer_id}/history"))
        .await;
    assert_eq!(history.body["data"][0]["action"], "create", "{}", history.body);
    // Stored compactly (decision 0015), read as the usual list of changes.
    let changes = history.body["data"][0]["changes"].as_array().expect("changes");
    assert!(
        changes.contains(&serde_json::json!({
            "field": "name", "old": null, "new": customers.body["data"][0]["name"]
        })),
        "{}",
        history.body
    );

    // The chunk-wide hooks: each customer's last contact is its latest follow-up (all demo
    // follow-ups lie in the past), and its duplicate keys are written (its phone finds it).
    let customer = &customers.body["data"][0];
    let follow_ups = admin
        .get(&format!(
            "/api/v1/records/follow_up?limit=100&filter={}",
            crate::records::urlencode(&format!(
                r#"{{"field":"customer_id","op":"eq","value":"{customer_id}"}}"#
            ))
        ))
        .await;
    let latest = follow_ups.body["data"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|f| f["occurred_at"].as_str())
        .max()
        .expect("follow-ups");
    assert_eq!(customer["last_contacted_at"], latest, "{}", customer);
    let dupes = admin
        .post(
            "/api/v1/customers/duplicates",
            &serde_json::json!({"phone": customer["phone"]}),
        )
        .await;
    assert_eq!(
        dupes.body["data"]["matches"][0]["record"]["id"], customer["id"],
        "{}",
        dupes.body
    );
    // Follow-ups are in the index built after the load, by subject.
    let subject = follow_ups.body["data"][0]["subject"].as_str().expect("subject");
    let found = admin
        .get(&format!(
            "/api/v1/records/follow_up?q={}",
            crate::records::urlencode(subject)
        ))
        .await;
    assert!(
        found.body["data"].as_array().is_some_and(|rows| !rows.is_empty()),
        "{}",
        found.body
    );
    server.terminate();
}

/// `guanxi reindex` rebuilds the search index and the duplicate keys from the records (after an
/// upgrade or a restore) and leaves search working: a customer is found by a Chinese substring
/// of its name and by the phone of one of its contacts.
#[tokio::test]
async fn reindex_rebuilds_the_search_index_and_duplicate_keys() {
    let db = TestDatabase::create().await.expect("database");
    let url = db.url.clone();
    let out = run_with(db.dir.path(), Some(&url), &["demo-data", "--size", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_with(db.dir.path(), Some(&url), &["reindex"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("duplicate keys rebuilt for 3 customers"), "{printed}");
    assert!(printed.contains("search index rebuilt for"), "{printed}");

    let server = Server::start(db.dir.path(), Some(&url));
    let admin = sign_in(&server.base, "demo_admin", "Demo#Guanxi2026")
        .await
        .expect("demo admin");
    let customer = admin.get("/api/v1/records/customer?limit=1").await;
    let customer = &customer.body["data"][0];
    let name: String = customer["name"].as_str().expect("name").chars().take(4).collect();
    let found = admin
        .get(&format!(
            "/api/v1/records/customer?q={}",
            crate::records::urlencode(&name)
        ))
        .await;
    let ids: Vec<&str> = found.body["data"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(
        ids.contains(&customer["id"].as_str().expect("id")),
        "{name}: {}",
        found.body
    );

    let contact = admin
        .get(&format!(
            "/api/v1/records/contact?limit=1&filter={}",
            crate::records::urlencode(&format!(
                r#"{{"field":"customer_id","op":"eq","value":"{}"}}"#,
                customer["id"].as_str().expect("id")
            ))
        ))
        .await;
    let mobile = contact.body["data"][0]["mobile"].as_str().expect("mobile");
    let by_phone = admin
        .get(&format!(
            "/api/v1/records/customer?q={}",
            crate::records::urlencode(mobile)
        ))
        .await;
    assert_eq!(by_phone.body["data"][0]["id"], customer["id"], "{}", by_phone.body);

    let dupes = admin
        .post(
            "/api/v1/customers/duplicates",
            &serde_json::json!({"name": customer["name"]}),
        )
        .await;
    assert!(
        dupes.text.contains(customer["id"].as_str().expect("id")),
        "{}",
        dupes.text
    );
    server.terminate();
}

/// A server stopped in the middle of an import leaves search entries staged (decision 0014):
/// the next server start merges them, so the imported customers are found by quick search
/// without another import or a rebuild of the index.
#[tokio::test]
async fn a_restarted_server_merges_search_entries_an_import_left_staged() {
    let db = TestDatabase::create().await.expect("database");
    let url = db.url.clone();
    create_admin(db.dir.path(), Some(&url));
    {
        // What an import's chunk writes before its merge: the record and its staged terms.
        let config = guanxi_testkit::test_config(&db, 0);
        let engine = guanxi_server::app::open_engine(&config).await.expect("engine");
        // An index of the current version, so that the server does not rebuild it at start
        // (a rebuild would index the staged record too, and hide a missing merge).
        engine.rebuild_search_index().await.expect("index");
        assert!(engine.search_index_current().await.expect("version"));
        let row = json!({"name": "东海航运有限公司"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let created = engine
            .create_batch_with(
                &guanxi_core::Actor::system(),
                "customer",
                &[row],
                guanxi_store::records::SearchEntries::Staged,
            )
            .await
            .expect("batch");
        assert!(created.iter().all(Result::is_ok));
        let staged: i64 = sqlx::query_scalar("SELECT count(*) FROM search_pending")
            .fetch_one(engine.db().reader())
            .await
            .expect("count");
        assert_eq!(staged, 1);
        engine.db().close().await;
    }
    let server = Server::start(db.dir.path(), Some(&url));
    let admin = admin_client(&server).await;
    let query = format!("/api/v1/records/customer?q={}", crate::records::urlencode("东海"));
    let mut found = admin.get(&query).await;
    // The merge runs in the background after the server starts listening.
    for _ in 0..100 {
        if found.body["data"].as_array().is_some_and(|rows| !rows.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        found = admin.get(&query).await;
    }
    assert_eq!(found.body["data"][0]["name"], "东海航运有限公司", "{}", found.body);
    server.terminate();
}
