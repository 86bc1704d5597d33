//! The permission matrix: for every default role, a user cannot read, list, count or change
//! records outside its scope (by id, by filter, by relation), sees only the fields its role
//! shows, cannot raise its own privileges, and cannot act without a session or the CSRF token.
//!
//! Every test builds the same organisation — HQ → branch A → team A1, branch B under HQ, and an
//! external partner organisation P — with a user of every default role and customers and
//! contacts owned by different users in different departments, then walks every role through
//! one kind of access. An answer about a record outside the caller's scope is compared with the
//! answer about a record that does not exist: nothing may tell the two apart.
//!
//! Export has no endpoint yet; its rows of the matrix (the `export` grants of the sales roles and
//! the analyst) come with the export issue.

use std::collections::{BTreeMap, BTreeSet};

use guanxi_testkit::{Reply, TestApp, TestClient, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::s;
use crate::records::urlencode;

/// Seeded role ids (migration 0003).
const ADMIN_ROLE: &str = "00000000-0000-7000-8000-000000000001";
const SALESPERSON_ROLE: &str = "00000000-0000-7000-8000-000000000003";

const CUSTOMER_PREFIX: &str = "矩阵客户";
const CONTACT_PREFIX: &str = "矩阵联系人";

/// Customers by tag: `A-own` (salesperson A, branch A), `A-peer` (salesperson A's colleague,
/// branch A), `A1` (team A1), `B` (branch B), `HQ` (the administrator, HQ), `P` (the partner).
const ALL_CUSTOMERS: &[&str] = &["A-own", "A-peer", "A1", "B", "HQ", "P"];
/// Contacts by tag, each of the customer with the same tag, plus `A-cross`: a contact kept by
/// branch A of branch B's customer.
const ALL_CONTACTS: &[&str] = &["A-cross", "A-own", "A-peer", "A1", "B", "HQ", "P"];

const SALES_A_CUSTOMERS: &[&str] = &["A-own", "A-peer"];
const SALES_A_CONTACTS: &[&str] = &["A-cross", "A-own", "A-peer"];
const MANAGER_A_CUSTOMERS: &[&str] = &["A-own", "A-peer", "A1"];
const MANAGER_A_CONTACTS: &[&str] = &["A-cross", "A-own", "A-peer", "A1"];
const OWN_A: &[&str] = &["A-own"];
const OWN_A1: &[&str] = &["A1"];
const OWN_B: &[&str] = &["B"];
const OWN_P: &[&str] = &["P"];
const NONE: &[&str] = &[];

const EVERY_OBJECT: &[&str] = &[
    "care_action",
    "contact",
    "customer",
    "customer_group",
    "department",
    "follow_up",
    "lead",
    "role",
    "user",
];
const STAFF_OBJECTS: &[&str] = &[
    "care_action",
    "contact",
    "customer",
    "customer_group",
    "department",
    "follow_up",
    "lead",
    "user",
];
const PARTNER_OBJECTS: &[&str] = &["contact", "customer"];

/// A signed-in user of the organisation.
struct Person {
    id: String,
    client: TestClient,
}

struct World {
    app: TestApp,
    hq: String,
    branch_a: String,
    team_a1: String,
    branch_b: String,
    partner_org: String,
    manager_a: Person,
    sales_a: Person,
    sales_a2: Person,
    sales_a1: Person,
    sales_b: Person,
    agent: Person,
    marketer: Person,
    analyst: Person,
    partner: Person,
    customers: BTreeMap<&'static str, Json>,
    contacts: BTreeMap<&'static str, Json>,
}

/// One row of the matrix: a role, who holds it, and which of the organisation's records it may
/// read and change. `None` means the role has no grant for the action at all.
struct Viewer<'w> {
    role: &'static str,
    client: &'w TestClient,
    user_id: &'w str,
    department: Option<&'w str>,
    objects: &'static [&'static str],
    customers: &'static [&'static str],
    contacts: &'static [&'static str],
    create_customers: bool,
    update_customers: Option<&'static [&'static str]>,
    delete_customers: Option<&'static [&'static str]>,
    sign_customers: Option<&'static [&'static str]>,
    lose_customers: Option<&'static [&'static str]>,
    create_contacts: bool,
    update_contacts: Option<&'static [&'static str]>,
    delete_contacts: Option<&'static [&'static str]>,
}

impl Viewer<'_> {
    fn reads(&self, object: &str) -> &'static [&'static str] {
        if object == "customer" {
            self.customers
        } else {
            self.contacts
        }
    }
}

async fn department(app: &TestApp, name: &str, parent: Option<&str>, external: bool) -> String {
    let d = app
        .create(
            "department",
            json!({"name": name, "parent_id": parent, "is_external": external}),
        )
        .await;
    s(&d, "id").to_owned()
}

async fn person(app: &TestApp, username: &str, role: &str, department: &str, manager: Option<&str>) -> Person {
    let (id, client) = app.user(username, &[role], Some(department), manager).await;
    Person { id, client }
}

impl World {
    async fn build() -> World {
        let app = spawn_app().await;
        let hq = department(&app, "总部", None, false).await;
        let branch_a = department(&app, "华北分公司", Some(&hq), false).await;
        let team_a1 = department(&app, "北京一组", Some(&branch_a), false).await;
        let branch_b = department(&app, "华南分公司", Some(&hq), false).await;
        let partner_org = department(&app, "合作服务商", None, true).await;

        let manager_a = person(&app, "manager_a", "sales_manager", &branch_a, None).await;
        let sales_a = person(&app, "sales_a", "salesperson", &branch_a, Some(&manager_a.id)).await;
        let sales_a2 = person(&app, "sales_a2", "salesperson", &branch_a, Some(&manager_a.id)).await;
        let sales_a1 = person(&app, "sales_a1", "salesperson", &team_a1, Some(&manager_a.id)).await;
        let sales_b = person(&app, "sales_b", "salesperson", &branch_b, None).await;
        let agent = person(&app, "agent_hq", "service_agent", &hq, None).await;
        let marketer = person(&app, "marketer", "marketing", &hq, None).await;
        let analyst = person(&app, "analyst_hq", "analyst", &hq, None).await;
        let partner = person(&app, "partner_p", "partner", &partner_org, None).await;
        let admin_id = app.user_id.clone().expect("the administrator's id");

        let placements: [(&'static str, &str, &str); 6] = [
            ("A-own", &sales_a.id, &branch_a),
            ("A-peer", &sales_a2.id, &branch_a),
            ("A1", &sales_a1.id, &team_a1),
            ("B", &sales_b.id, &branch_b),
            ("HQ", &admin_id, &hq),
            ("P", &partner.id, &partner_org),
        ];
        let mut customers = BTreeMap::new();
        for (i, (tag, owner, dept)) in placements.iter().enumerate() {
            let c = app
                .create(
                    "customer",
                    json!({
                        "name": format!("{CUSTOMER_PREFIX}{tag}"),
                        "customer_type": "enterprise",
                        "phone": format!("1380000000{i}"),
                        "credit_code": format!("91110000MA00000{i:02}X"),
                        "registered_capital": 5_000_000 + i,
                        "credit_status": "good",
                        "owner_id": owner,
                        "department_id": dept,
                    }),
                )
                .await;
            customers.insert(*tag, c);
        }
        let contact_placements: [(&'static str, &str, &str, &str); 7] = [
            ("A-own", "A-own", &sales_a.id, &branch_a),
            ("A-peer", "A-peer", &sales_a2.id, &branch_a),
            ("A-cross", "B", &sales_a2.id, &branch_a),
            ("A1", "A1", &sales_a1.id, &team_a1),
            ("B", "B", &sales_b.id, &branch_b),
            ("HQ", "HQ", &admin_id, &hq),
            ("P", "P", &partner.id, &partner_org),
        ];
        let mut contacts = BTreeMap::new();
        for (i, (tag, customer, owner, dept)) in contact_placements.iter().enumerate() {
            let k = app
                .create(
                    "contact",
                    json!({
                        "name": format!("{CONTACT_PREFIX}{tag}"),
                        "customer_id": customers[customer]["id"],
                        "mobile": format!("1390000000{i}"),
                        "owner_id": owner,
                        "department_id": dept,
                    }),
                )
                .await;
            contacts.insert(*tag, k);
        }
        World {
            app,
            hq,
            branch_a,
            team_a1,
            branch_b,
            partner_org,
            manager_a,
            sales_a,
            sales_a2,
            sales_a1,
            sales_b,
            agent,
            marketer,
            analyst,
            partner,
            customers,
            contacts,
        }
    }

    fn record(&self, object: &str, tag: &str) -> &Json {
        if object == "customer" {
            &self.customers[tag]
        } else {
            &self.contacts[tag]
        }
    }

    fn id(&self, object: &str, tag: &str) -> &str {
        s(self.record(object, tag), "id")
    }

    fn customer_id(&self, tag: &str) -> &str {
        self.id("customer", tag)
    }

    fn contact_id(&self, tag: &str) -> &str {
        self.id("contact", tag)
    }

    fn admin(&self) -> &TestClient {
        &self.app.admin
    }

    /// The matrix, from the role definitions in migration 0003.
    fn viewers(&self) -> Vec<Viewer<'_>> {
        vec![
            Viewer {
                role: "admin",
                client: self.admin(),
                user_id: self.app.user_id.as_deref().unwrap_or_default(),
                department: None,
                objects: EVERY_OBJECT,
                customers: ALL_CUSTOMERS,
                contacts: ALL_CONTACTS,
                create_customers: true,
                update_customers: Some(ALL_CUSTOMERS),
                delete_customers: Some(ALL_CUSTOMERS),
                sign_customers: Some(ALL_CUSTOMERS),
                lose_customers: Some(ALL_CUSTOMERS),
                create_contacts: true,
                update_contacts: Some(ALL_CONTACTS),
                delete_contacts: Some(ALL_CONTACTS),
            },
            Viewer {
                customers: MANAGER_A_CUSTOMERS,
                contacts: MANAGER_A_CONTACTS,
                create_customers: true,
                update_customers: Some(MANAGER_A_CUSTOMERS),
                delete_customers: Some(MANAGER_A_CUSTOMERS),
                sign_customers: Some(MANAGER_A_CUSTOMERS),
                lose_customers: Some(MANAGER_A_CUSTOMERS),
                create_contacts: true,
                update_contacts: Some(MANAGER_A_CONTACTS),
                delete_contacts: Some(MANAGER_A_CONTACTS),
                ..viewer("sales_manager of branch A", &self.manager_a, &self.branch_a)
            },
            salesperson(
                viewer("salesperson of branch A", &self.sales_a, &self.branch_a),
                (SALES_A_CUSTOMERS, SALES_A_CONTACTS),
                OWN_A,
            ),
            salesperson(
                viewer("salesperson of team A1", &self.sales_a1, &self.team_a1),
                (OWN_A1, OWN_A1),
                OWN_A1,
            ),
            salesperson(
                viewer("salesperson of branch B", &self.sales_b, &self.branch_b),
                (OWN_B, OWN_B),
                OWN_B,
            ),
            Viewer {
                create_contacts: true,
                update_contacts: Some(ALL_CONTACTS),
                ..viewer("service_agent", &self.agent, &self.hq)
            },
            Viewer {
                create_customers: true,
                update_customers: Some(NONE),
                // No sign grant: signing falls back to the update grant (own customers only).
                sign_customers: Some(NONE),
                create_contacts: true,
                ..viewer("marketing", &self.marketer, &self.hq)
            },
            viewer("analyst", &self.analyst, &self.hq),
            Viewer {
                objects: PARTNER_OBJECTS,
                customers: OWN_P,
                contacts: OWN_P,
                ..viewer("partner", &self.partner, &self.partner_org)
            },
        ]
    }
}

/// A staff role that reads every customer and contact and may change none.
fn viewer<'w>(role: &'static str, person: &'w Person, department: &'w str) -> Viewer<'w> {
    Viewer {
        role,
        client: &person.client,
        user_id: &person.id,
        department: Some(department),
        objects: STAFF_OBJECTS,
        customers: ALL_CUSTOMERS,
        contacts: ALL_CONTACTS,
        create_customers: false,
        update_customers: None,
        delete_customers: None,
        sign_customers: None,
        lose_customers: None,
        create_contacts: false,
        update_contacts: None,
        delete_contacts: None,
    }
}

/// A salesperson: reads its department, changes what it owns (the same tag for both objects).
fn salesperson<'w>(
    base: Viewer<'w>,
    (customers, contacts): (&'static [&'static str], &'static [&'static str]),
    own: &'static [&'static str],
) -> Viewer<'w> {
    Viewer {
        customers,
        contacts,
        create_customers: true,
        update_customers: Some(own),
        delete_customers: Some(own),
        sign_customers: Some(own),
        create_contacts: true,
        update_contacts: Some(own),
        delete_contacts: Some(own),
        ..base
    }
}

fn random_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn set(tags: &[&str]) -> BTreeSet<String> {
    tags.iter().map(|t| (*t).to_owned()).collect()
}

/// The tags of the organisation's records in a list answer (other records keep their names).
fn tags(reply: &Reply) -> BTreeSet<String> {
    reply
        .data()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .map(|n| {
            n.strip_prefix(CUSTOMER_PREFIX)
                .or_else(|| n.strip_prefix(CONTACT_PREFIX))
                .unwrap_or(n)
                .to_owned()
        })
        .collect()
}

fn filter(f: &Json) -> String {
    format!("filter={}", urlencode(&f.to_string()))
}

/// A list with an exact total.
async fn list(client: &TestClient, object: &str, query: &str) -> Reply {
    client
        .get(&format!("/api/v1/records/{object}?limit=100&total=exact&{query}"))
        .await
}

/// What an answer says, with the record id taken out and the request id dropped.
fn answer(reply: &Reply, id: &str) -> (StatusCode, String) {
    let mut error = reply.body["error"].clone();
    if let Some(e) = error.as_object_mut() {
        e.remove("request_id");
    }
    (reply.status, error.to_string().replace(id, "<id>"))
}

/// `body` with every `"{id}"` placeholder replaced.
fn with_id(body: &Json, id: &str) -> Json {
    serde_json::from_str(&body.to_string().replace("{id}", id)).expect("still JSON")
}

/// Sends `method template` with `{id}` replaced, once for `id` and once for an id that does not
/// exist, and asserts that the two answers cannot be told apart. Returns the answer about `id`.
async fn same_as_missing(
    client: &TestClient,
    method: Method,
    template: &str,
    id: &str,
    body: Option<&Json>,
    what: &str,
) -> Reply {
    let missing = random_id();
    let send = |id: &str| {
        let path = template.replace("{id}", id);
        let body = body.map(|b| with_id(b, id));
        let method = method.clone();
        async move { client.send(method, &path, body.as_ref()).await }
    };
    let real = send(id).await;
    let fake = send(&missing).await;
    assert_eq!(
        answer(&real, id),
        answer(&fake, &missing),
        "{what}: a record outside the scope must look exactly like one that does not exist ({})",
        real.text
    );
    real
}

#[tokio::test]
async fn every_default_role_lists_and_counts_exactly_the_records_in_its_scope() {
    let w = World::build().await;
    for v in w.viewers() {
        for object in ["customer", "contact"] {
            let expected = v.reads(object);
            let exact = list(v.client, object, "").await;
            assert_eq!(
                exact.status,
                StatusCode::OK,
                "{} lists {object}s: {}",
                v.role,
                exact.text
            );
            assert_eq!(
                tags(&exact),
                set(expected),
                "{} lists exactly the {object}s in its scope",
                v.role
            );
            assert_eq!(
                exact.body["meta"]["total"],
                expected.len(),
                "{} counts only the {object}s in its scope",
                v.role
            );
            let capped = v.client.get(&format!("/api/v1/records/{object}")).await;
            assert_eq!(
                capped.body["meta"]["total"],
                expected.len(),
                "{}: the default (capped) count of {object}s",
                v.role
            );
            let query = v
                .client
                .post(
                    &format!("/api/v1/records/{object}/query"),
                    &json!({"total": "exact", "limit": 100}),
                )
                .await;
            assert_eq!(
                (tags(&query), query.body["meta"]["total"].as_u64()),
                (set(expected), Some(expected.len() as u64)),
                "{}: the query endpoint lists and counts the same {object}s",
                v.role
            );
            let second_page = v
                .client
                .get(&format!("/api/v1/records/{object}?limit=1&page=2&total=exact"))
                .await;
            assert_eq!(
                second_page.body["meta"]["total"],
                expected.len(),
                "{}: offset pages count the same",
                v.role
            );
        }

        // Page by page with cursors: every page stays inside the scope.
        let mut seen = BTreeSet::new();
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let path = match &cursor {
                Some(c) => format!("/api/v1/records/customer?limit=1&cursor={c}"),
                None => "/api/v1/records/customer?limit=1".to_owned(),
            };
            let page = v.client.get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{}: {}", v.role, page.text);
            seen.extend(tags(&page));
            cursor = page.body["meta"]["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen, set(v.customers), "{}: cursor pages stay inside the scope", v.role);

        // Objects the role may not read at all: absent from the metadata, refused as lists.
        let meta = v.client.get("/api/v1/meta/objects").await;
        let objects: BTreeSet<String> = meta
            .data()
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["key"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(objects, set(v.objects), "{} sees only the objects it may read", v.role);
        for object in EVERY_OBJECT.iter().filter(|o| !v.objects.contains(o)) {
            let refused = v.client.get(&format!("/api/v1/records/{object}")).await;
            assert_eq!(
                (refused.status, refused.code()),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{} may not list {object}s",
                v.role
            );
            let one = v.client.get(&format!("/api/v1/meta/objects/{object}")).await;
            assert_eq!(
                one.status,
                StatusCode::FORBIDDEN,
                "{} may not read the {object} definition",
                v.role
            );
        }
    }
}

#[tokio::test]
async fn records_outside_the_scope_cannot_be_read_by_id_nor_through_history_or_transitions() {
    let w = World::build().await;
    for v in w.viewers() {
        for (object, all) in [("customer", ALL_CUSTOMERS), ("contact", ALL_CONTACTS)] {
            for tag in all {
                for suffix in ["", "/history", "/transitions"] {
                    let template = format!("/api/v1/records/{object}/{{id}}{suffix}");
                    let what = format!("{} reads {object} {tag}{suffix}", v.role);
                    if v.reads(object).contains(tag) {
                        let r = v.client.get(&template.replace("{id}", w.id(object, tag))).await;
                        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text);
                    } else {
                        let r = same_as_missing(v.client, Method::GET, &template, w.id(object, tag), None, &what).await;
                        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"), "{what}");
                    }
                }
            }
        }
        let malformed = v.client.get("/api/v1/records/customer/1%20OR%201=1").await;
        assert_eq!(malformed.status, StatusCode::NOT_FOUND, "{}: a malformed id", v.role);
    }

    // A readable contact names its customer by id; that opens nothing.
    let cross = w
        .sales_a
        .client
        .get(&format!("/api/v1/records/contact/{}", w.contact_id("A-cross")))
        .await;
    assert_eq!(cross.data()["customer_id"], w.customer_id("B"));
    let related = w
        .sales_a
        .client
        .get(&format!("/api/v1/records/customer/{}", w.customer_id("B")))
        .await;
    assert_eq!(
        related.status,
        StatusCode::NOT_FOUND,
        "the related customer of another branch stays out of reach"
    );
}

/// Lists `object` as the viewer with `query` and asserts it holds exactly the viewer's records
/// that satisfy `matches`, with the same total.
async fn assert_filtered(w: &World, v: &Viewer<'_>, object: &str, query: &str, matches: impl Fn(&Json) -> bool) {
    let expected: Vec<&str> = v
        .reads(object)
        .iter()
        .copied()
        .filter(|t| matches(w.record(object, t)))
        .collect();
    let r = list(v.client, object, query).await;
    assert_eq!(r.status, StatusCode::OK, "{} {object}?{query}: {}", v.role, r.text);
    assert_eq!(
        (tags(&r), r.body["meta"]["total"].as_u64()),
        (set(&expected), Some(expected.len() as u64)),
        "{} {object}?{query} finds only records in its scope",
        v.role
    );
}

#[tokio::test]
async fn filters_and_quick_search_never_reach_records_outside_the_scope() {
    let w = World::build().await;
    for v in w.viewers() {
        for (object, all) in [("customer", ALL_CUSTOMERS), ("contact", ALL_CONTACTS)] {
            for tag in all {
                let rec = w.record(object, tag);
                for key in ["id", "department_id", "owner_id"] {
                    let q = filter(&json!({"field": key, "op": "eq", "value": rec[key]}));
                    assert_filtered(&w, &v, object, &q, |r| r[key] == rec[key]).await;
                }
                let any_of = filter(&json!({"or": [
                    {"field": "id", "op": "in", "value": [rec["id"]]},
                    {"field": "department_id", "op": "eq", "value": rec["department_id"]},
                    {"field": "owner_id", "op": "ne", "value": "nobody"},
                ]}));
                assert_filtered(&w, &v, object, &any_of, |_| true).await;
                let search_keys: &[&str] = if object == "customer" {
                    &["name", "number", "phone"]
                } else {
                    &["name", "mobile"]
                };
                for key in search_keys {
                    let q = format!("q={}", urlencode(s(rec, key)));
                    assert_filtered(&w, &v, object, &q, |r| r["id"] == rec["id"]).await;
                }
            }
            let everything: Vec<&str> = all.iter().map(|t| w.id(object, t)).collect();
            let posted = v
                .client
                .post(
                    &format!("/api/v1/records/{object}/query"),
                    &json!({"filter": {"field": "id", "op": "in", "value": everything}, "total": "exact", "limit": 100}),
                )
                .await;
            assert_eq!(
                (tags(&posted), posted.body["meta"]["total"].as_u64()),
                (set(v.reads(object)), Some(v.reads(object).len() as u64)),
                "{}: a posted filter naming every {object} finds only those in scope",
                v.role
            );
            let q = format!(
                "q={}",
                urlencode(if object == "customer" {
                    CUSTOMER_PREFIX
                } else {
                    CONTACT_PREFIX
                })
            );
            assert_filtered(&w, &v, object, &q, |_| true).await;
        }
        // By relation: contacts of each customer, whoever can see the customer.
        for tag in ALL_CUSTOMERS {
            let id = w.customer_id(tag);
            let q = filter(&json!({"field": "customer_id", "op": "eq", "value": id}));
            assert_filtered(&w, &v, "contact", &q, |r| r["customer_id"] == id).await;
        }
    }
}

/// The answer expected when a role acts on one of the organisation's records.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Allowed,
    Forbidden,
    NotFound,
}

fn outcome(grant: Option<&[&str]>, readable: &[&str], tag: &str) -> Outcome {
    match grant {
        Some(g) if g.contains(&tag) => Outcome::Allowed,
        Some(_) if !readable.contains(&tag) => Outcome::NotFound,
        _ => Outcome::Forbidden,
    }
}

/// Sends one change and checks the answer against the matrix. An allowed change is sent so that
/// it cannot take effect (`ok` is the status that proves access: an unchanged update, or a
/// version conflict found only after the record was located in scope).
async fn check_change(
    v: &Viewer<'_>,
    (method, template, body): (Method, &str, Option<&Json>),
    (id, readable): (&str, bool),
    expected: Outcome,
    (ok, what): (StatusCode, &str),
) {
    let reply = if readable {
        let body = body.map(|b| with_id(b, id));
        v.client
            .send(method, &template.replace("{id}", id), body.as_ref())
            .await
    } else {
        same_as_missing(v.client, method, template, id, body, what).await
    };
    let want = match expected {
        Outcome::Allowed if ok == StatusCode::CONFLICT => (ok, "version_conflict"),
        Outcome::Allowed => (ok, ""),
        Outcome::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        Outcome::NotFound => (StatusCode::NOT_FOUND, "not_found"),
    };
    assert_eq!(
        (reply.status, reply.code()),
        want,
        "{what} ({expected:?}): {}",
        reply.text
    );
}

#[tokio::test]
async fn changes_outside_the_scope_are_not_found_and_outside_the_write_scope_forbidden() {
    let w = World::build().await;
    for v in w.viewers() {
        for tag in ALL_CUSTOMERS {
            let id = w.customer_id(tag);
            let name = s(&w.customers[tag], "name");
            let what = |action: &str| format!("{} {action} customer {tag}", v.role);
            let unchanged = json!({"version": 1, "name": name});
            check_change(
                &v,
                (Method::PATCH, "/api/v1/records/customer/{id}", Some(&unchanged)),
                (id, v.customers.contains(tag)),
                outcome(v.update_customers, v.customers, tag),
                (StatusCode::OK, &what("updates")),
            )
            .await;
            check_change(
                &v,
                (Method::DELETE, "/api/v1/records/customer/{id}?version=99", None),
                (id, v.customers.contains(tag)),
                outcome(v.delete_customers, v.customers, tag),
                (StatusCode::CONFLICT, &what("deletes")),
            )
            .await;
            check_change(
                &v,
                (
                    Method::POST,
                    "/api/v1/records/customer/{id}/transitions/sign",
                    Some(&json!({"version": 99})),
                ),
                (id, v.customers.contains(tag)),
                outcome(v.sign_customers, v.customers, tag),
                (StatusCode::CONFLICT, &what("signs")),
            )
            .await;
            check_change(
                &v,
                (
                    Method::POST,
                    "/api/v1/records/customer/{id}/transitions/mark_lost",
                    Some(&json!({"version": 99, "remark": "价格"})),
                ),
                (id, v.customers.contains(tag)),
                outcome(v.lose_customers, v.customers, tag),
                (StatusCode::CONFLICT, &what("marks lost")),
            )
            .await;
            // An undeclared action reveals no more than reading does.
            let teleport = "/api/v1/records/customer/{id}/transitions/teleport";
            if v.customers.contains(tag) {
                let r = v.client.post(&teleport.replace("{id}", id), &json!({})).await;
                assert_eq!(r.code(), "invalid_transition", "{}", what("teleports"));
            } else {
                let r = same_as_missing(v.client, Method::POST, teleport, id, None, &what("teleports")).await;
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", what("teleports"));
            }
        }
        for tag in ALL_CONTACTS {
            let id = w.contact_id(tag);
            let name = s(&w.contacts[tag], "name");
            let what = |action: &str| format!("{} {action} contact {tag}", v.role);
            check_change(
                &v,
                (
                    Method::PATCH,
                    "/api/v1/records/contact/{id}",
                    Some(&json!({"version": 1, "name": name})),
                ),
                (id, v.contacts.contains(tag)),
                outcome(v.update_contacts, v.contacts, tag),
                (StatusCode::OK, &what("updates")),
            )
            .await;
            check_change(
                &v,
                (Method::DELETE, "/api/v1/records/contact/{id}?version=99", None),
                (id, v.contacts.contains(tag)),
                outcome(v.delete_contacts, v.contacts, tag),
                (StatusCode::CONFLICT, &what("deletes")),
            )
            .await;
        }
    }

    // Nothing above took effect.
    let all = list(w.admin(), "customer", "").await;
    for c in all.data().as_array().into_iter().flatten() {
        assert_eq!(
            (c["version"].as_i64(), c["status"].as_str()),
            (Some(1), Some("prospect")),
            "{} is untouched",
            c["name"]
        );
    }
    for action in ["update", "delete", "transition"] {
        let audit = w.admin().get(&format!("/api/v1/audit?action={action}")).await;
        assert_eq!(audit.data(), &json!([]), "no {action} was recorded");
    }

    // Creating: only roles with a create grant, and never for someone else or elsewhere.
    for v in w.viewers() {
        let created = v
            .client
            .post(
                "/api/v1/records/customer",
                &json!({"name": format!("新客户 {}", v.role)}),
            )
            .await;
        if v.create_customers {
            assert_eq!(created.status, StatusCode::CREATED, "{}: {}", v.role, created.text);
            assert_eq!(
                (
                    created.data()["owner_id"].as_str(),
                    created.data()["department_id"].as_str()
                ),
                (Some(v.user_id), v.department),
                "{}: a new customer belongs to its creator and the creator's department",
                v.role
            );
        } else {
            assert_eq!(
                (created.status, created.code()),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{} may not create customers",
                v.role
            );
        }
        let contact = v
            .client
            .post(
                "/api/v1/records/contact",
                &json!({"name": format!("新联系人 {}", v.role), "customer_id": w.customer_id(v.customers[0])}),
            )
            .await;
        let want = if v.create_contacts {
            StatusCode::CREATED
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(contact.status, want, "{} creates a contact: {}", v.role, contact.text);
    }
    let foreign_owner = w
        .sales_a
        .client
        .post(
            "/api/v1/records/customer",
            &json!({"name": "替别人建的客户", "owner_id": w.sales_b.id}),
        )
        .await;
    assert_eq!(
        foreign_owner.status,
        StatusCode::FORBIDDEN,
        "a salesperson cannot create a customer for someone else: {}",
        foreign_owner.text
    );
    let out_of_tree = w
        .manager_a
        .client
        .post(
            "/api/v1/records/customer",
            &json!({"name": "放到别的分公司", "department_id": w.branch_b}),
        )
        .await;
    assert_eq!(
        out_of_tree.status,
        StatusCode::FORBIDDEN,
        "a sales manager cannot create a customer outside its department tree: {}",
        out_of_tree.text
    );
}

#[tokio::test]
async fn records_cannot_be_given_away_outside_the_write_scope() {
    let w = World::build().await;
    let own = format!("/api/v1/records/customer/{}", w.customer_id("A-own"));
    let to_b = w
        .sales_a
        .client
        .patch(&own, &json!({"version": 1, "owner_id": w.sales_b.id}))
        .await;
    assert_eq!(
        (to_b.status, to_b.code()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "a salesperson cannot hand a customer to someone else: {}",
        to_b.text
    );
    let a1 = format!("/api/v1/records/customer/{}", w.customer_id("A1"));
    let moved = w
        .manager_a
        .client
        .patch(&a1, &json!({"version": 1, "department_id": w.branch_b}))
        .await;
    assert_eq!(
        (moved.status, moved.code()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "a sales manager cannot move a customer out of its department tree: {}",
        moved.text
    );
    let within = w
        .manager_a
        .client
        .patch(
            &a1,
            &json!({"version": 1, "department_id": w.branch_a, "owner_id": w.sales_a.id}),
        )
        .await;
    assert_eq!(
        within.status,
        StatusCode::OK,
        "inside its tree a sales manager reassigns freely: {}",
        within.text
    );
    let after = w.admin().get(&own).await;
    assert_eq!(
        after.data()["owner_id"],
        w.sales_a.id.as_str(),
        "the refused hand-over changed nothing"
    );
    assert_eq!(after.data()["version"], 1);
}

#[tokio::test]
async fn a_salesperson_cannot_place_a_customer_in_another_department() {
    let w = World::build().await;
    let created = w
        .sales_a
        .client
        .post(
            "/api/v1/records/customer",
            &json!({"name": "塞给B的客户", "department_id": w.branch_b}),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::FORBIDDEN,
        "a salesperson creates customers only in a department it can see: {}",
        created.text
    );
    let own = format!("/api/v1/records/customer/{}", w.customer_id("A-own"));
    let moved = w
        .sales_a
        .client
        .patch(&own, &json!({"version": 1, "department_id": w.branch_b}))
        .await;
    assert_eq!(
        moved.status,
        StatusCode::FORBIDDEN,
        "a salesperson cannot move its customer into another branch: {}",
        moved.text
    );
}

#[tokio::test]
async fn deleted_records_outside_the_scope_cannot_be_listed_restored_or_purged() {
    let w = World::build().await;
    for tag in ALL_CUSTOMERS {
        let r = w
            .admin()
            .delete(&format!("/api/v1/records/customer/{}", w.customer_id(tag)))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    for v in w.viewers() {
        let bin = v
            .client
            .get("/api/v1/records/customer/recycle-bin?limit=100&total=exact")
            .await;
        assert_eq!(bin.status, StatusCode::OK, "{}: {}", v.role, bin.text);
        assert_eq!(
            (tags(&bin), bin.body["meta"]["total"].as_u64()),
            (set(v.customers), Some(v.customers.len() as u64)),
            "{} sees only its own scope in the recycle bin",
            v.role
        );
        if v.role == "admin" {
            continue;
        }
        for tag in ALL_CUSTOMERS {
            let id = w.customer_id(tag);
            let expected = outcome(v.delete_customers, v.customers, tag);
            if expected == Outcome::Allowed {
                continue;
            }
            let what = format!("{} restores customer {tag}", v.role);
            let template = "/api/v1/records/customer/{id}/restore";
            let reply = if v.customers.contains(tag) {
                v.client.post(&template.replace("{id}", id), &json!({})).await
            } else {
                same_as_missing(v.client, Method::POST, template, id, None, &what).await
            };
            let want = if expected == Outcome::NotFound {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(reply.status, want, "{what}: {}", reply.text);
            let what = format!("{} purges customer {tag}", v.role);
            let template = "/api/v1/records/customer/recycle-bin/{id}";
            let reply = if v.customers.contains(tag) {
                v.client.delete(&template.replace("{id}", id)).await
            } else {
                same_as_missing(v.client, Method::DELETE, template, id, None, &what).await
            };
            assert_eq!(reply.status, want, "{what}: {}", reply.text);
            let history = format!("/api/v1/records/customer/{id}/history");
            let seen = v.client.get(&history).await;
            let want = if v.customers.contains(tag) {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(
                seen.status, want,
                "{} reads the history of deleted customer {tag}",
                v.role
            );
        }
    }
    // The hidden fields stay hidden in the bin.
    let bin = w.agent.client.get("/api/v1/records/customer/recycle-bin").await;
    for c in bin.data().as_array().into_iter().flatten() {
        assert!(
            c.get("credit_code").is_none() && c.get("registered_capital").is_none(),
            "{c}"
        );
    }
    // Nothing came back or vanished; the owners may restore their own.
    let bin = w.admin().get("/api/v1/records/customer/recycle-bin?total=exact").await;
    assert_eq!(bin.body["meta"]["total"], ALL_CUSTOMERS.len());
    for (who, tag) in [(&w.sales_a, "A-own"), (&w.manager_a, "A-peer"), (&w.sales_b, "B")] {
        let restored = who
            .client
            .post(
                &format!("/api/v1/records/customer/{}/restore", w.customer_id(tag)),
                &json!({}),
            )
            .await;
        assert_eq!(restored.status, StatusCode::OK, "restoring {tag}: {}", restored.text);
    }
    assert_eq!(
        tags(&list(&w.sales_a.client, "customer", "").await),
        set(SALES_A_CUSTOMERS)
    );
}

/// A role whose field rules hide or show the credit fields, and a customer it can read.
struct FieldView<'w> {
    role: &'static str,
    client: &'w TestClient,
    hidden: &'static [&'static str],
    shown: &'static [&'static str],
    tag: &'static str,
}

const CREDIT_FIELDS: &[&str] = &["credit_code", "registered_capital", "credit_status"];

#[tokio::test]
async fn hidden_fields_never_appear_and_cannot_be_filtered_sorted_or_set() {
    let w = World::build().await;
    // A change to every credit field, so the history has something to hide.
    for tag in ["HQ", "P", "A-own"] {
        let r = w
            .admin()
            .patch(
                &format!("/api/v1/records/customer/{}", w.customer_id(tag)),
                &json!({"version": 1, "credit_code": format!("92440300MA5{tag:0>7}"), "registered_capital": 9_900_000,
                        "credit_status": "poor", "remark": "复核"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let views = [
        FieldView {
            role: "service_agent",
            client: &w.agent.client,
            hidden: &["credit_code", "registered_capital"],
            shown: &["credit_status"],
            tag: "HQ",
        },
        FieldView {
            role: "marketing",
            client: &w.marketer.client,
            hidden: &["credit_code"],
            shown: &["registered_capital", "credit_status"],
            tag: "HQ",
        },
        FieldView {
            role: "partner",
            client: &w.partner.client,
            hidden: CREDIT_FIELDS,
            shown: &[],
            tag: "P",
        },
        FieldView {
            role: "analyst",
            client: &w.analyst.client,
            hidden: &[],
            shown: CREDIT_FIELDS,
            tag: "HQ",
        },
        FieldView {
            role: "salesperson",
            client: &w.sales_a.client,
            hidden: &[],
            shown: CREDIT_FIELDS,
            tag: "A-own",
        },
    ];
    for fv in &views {
        let id = w.customer_id(fv.tag);
        let one = fv.client.get(&format!("/api/v1/records/customer/{id}")).await;
        assert_eq!(one.status, StatusCode::OK, "{}: {}", fv.role, one.text);
        let all = list(fv.client, "customer", "").await;
        let meta = fv.client.get("/api/v1/meta/objects/customer").await;
        let meta_all = fv.client.get("/api/v1/meta/objects").await;
        let meta_customer = meta_all
            .data()
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["key"] == "customer")
            .cloned()
            .unwrap_or_default();
        let history = fv.client.get(&format!("/api/v1/records/customer/{id}/history")).await;
        let changed: BTreeSet<&str> = history
            .data()
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["changes"].as_array().into_iter().flatten())
            .filter_map(|c| c["field"].as_str())
            .collect();
        assert!(
            changed.contains("remark"),
            "{}: the history shows visible changes",
            fv.role
        );
        let field_keys = |m: &Json| -> BTreeSet<String> {
            m["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["key"].as_str().map(str::to_owned))
                .collect()
        };
        for key in fv.hidden {
            let what = format!("{} and hidden field {key}", fv.role);
            assert!(one.data().get(*key).is_none(), "{what}: absent from the record");
            assert!(
                all.data()
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|r| r.get(*key).is_none()),
                "{what}: absent from every listed record"
            );
            assert!(
                !field_keys(meta.data()).contains(*key),
                "{what}: absent from the metadata"
            );
            assert!(meta.data()["operators"].get(*key).is_none(), "{what}: no operators");
            assert!(
                !field_keys(&meta_customer).contains(*key),
                "{what}: absent from the object list"
            );
            assert!(!changed.contains(key), "{what}: absent from the history");
            let cond = json!({"field": key, "op": "is_empty", "value": false});
            for query in [
                filter(&cond),
                filter(&json!({"or": [{"field": "name", "op": "contains", "value": "矩阵"}, cond]})),
                format!("sort={key}"),
                format!("sort=-{key}"),
                format!("sort=name,{key}"),
                format!("fields=name,{key}"),
            ] {
                let r = list(fv.client, "customer", &query).await;
                assert_eq!(
                    (r.status, r.code()),
                    (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query"),
                    "{what}: {query} is refused like an unknown field: {}",
                    r.text
                );
            }
            let posted = fv
                .client
                .post(
                    "/api/v1/records/customer/query",
                    &json!({"filter": cond, "sort": "name"}),
                )
                .await;
            assert_eq!(posted.code(), "invalid_query", "{what}: a posted filter");
            let posted = fv
                .client
                .post("/api/v1/records/customer/query", &json!({"sort": format!("-{key}")}))
                .await;
            assert_eq!(posted.code(), "invalid_query", "{what}: a posted sort");
            let posted = fv
                .client
                .post("/api/v1/records/customer/query", &json!({"fields": [key]}))
                .await;
            assert_eq!(posted.code(), "invalid_query", "{what}: posted fields");
        }
        for key in fv.shown {
            let what = format!("{} and visible field {key}", fv.role);
            assert!(one.data().get(*key).is_some(), "{what}: in the record");
            assert!(field_keys(meta.data()).contains(*key), "{what}: in the metadata");
            assert!(changed.contains(key), "{what}: in the history");
            let r = list(
                fv.client,
                "customer",
                &format!(
                    "{}&sort=-{key}",
                    filter(&json!({"field": key, "op": "is_empty", "value": false}))
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{what}: filter and sort: {}", r.text);
            assert!(tags(&r).contains(fv.tag), "{what}");
        }
    }

    // Hidden fields cannot be set either, and answers to changes never carry them.
    let marketer = &w.marketer.client;
    let refused = marketer
        .post(
            "/api/v1/records/customer",
            &json!({"name": "市场客户", "credit_code": "91110000MA00000999"}),
        )
        .await;
    assert_eq!(
        refused.body["error"]["field_codes"]["credit_code"],
        json!(["unknown_field"]),
        "{}",
        refused.text
    );
    let mine = marketer.create("customer", json!({"name": "市场客户"})).await;
    assert!(mine.get("credit_code").is_none(), "not even empty in the create answer");
    let path = format!("/api/v1/records/customer/{}", s(&mine, "id"));
    // A create's answer is made, not read back (decision 0017): the marketer's view of it is
    // the record the marketer reads.
    assert_eq!(&mine, marketer.get(&path).await.data());
    let set_by_admin = w
        .admin()
        .patch(&path, &json!({"version": 1, "credit_code": "91110000MA00000888"}))
        .await;
    assert_eq!(set_by_admin.status, StatusCode::OK);
    let patch = marketer
        .patch(&path, &json!({"version": 2, "credit_code": "91110000MA00000777"}))
        .await;
    assert_eq!(
        patch.body["error"]["field_codes"]["credit_code"],
        json!(["unknown_field"])
    );
    let bulk = marketer
        .post(
            "/api/v1/records/customer/bulk-update",
            &json!({"ids": [mine["id"]], "changes": {"credit_code": "91110000MA00000777"}}),
        )
        .await;
    assert_eq!(
        bulk.body["error"]["field_codes"]["credit_code"],
        json!(["unknown_field"])
    );
    let updated = marketer
        .patch(&path, &json!({"version": 2, "remark": "市场跟进"}))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert!(updated.data().get("credit_code").is_none(), "{}", updated.text);
    let signed = marketer.post(&format!("{path}/transitions/sign"), &json!({})).await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.text);
    assert!(signed.data().get("credit_code").is_none(), "{}", signed.text);
    let stored = w.admin().get(&path).await;
    assert_eq!(
        stored.data()["credit_code"],
        "91110000MA00000888",
        "the hidden value is kept"
    );
}

#[tokio::test]
async fn read_only_fields_are_shown_but_cannot_be_set() {
    let w = World::build().await;
    let sales = &w.sales_a.client;
    let own = format!("/api/v1/records/customer/{}", w.customer_id("A-own"));
    let shown = sales.get(&own).await;
    assert_eq!(shown.data()["credit_status"], "good", "a read-only field is shown");
    let meta = sales.get("/api/v1/meta/objects/customer").await;
    let field = meta.data()["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["key"] == "credit_status")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        field["read_only"], true,
        "the metadata marks it read-only for the salesperson"
    );

    let read_only = json!(["read_only"]);
    let created = sales
        .post(
            "/api/v1/records/customer",
            &json!({"name": "自评信用", "credit_status": "good"}),
        )
        .await;
    assert_eq!(created.body["error"]["field_codes"]["credit_status"], read_only);
    let patched = sales
        .patch(&own, &json!({"version": 1, "credit_status": "blacklisted"}))
        .await;
    assert_eq!(patched.body["error"]["field_codes"]["credit_status"], read_only);
    let bulk = sales
        .post(
            "/api/v1/records/customer/bulk-update",
            &json!({"ids": [w.customer_id("A-own")], "changes": {"credit_status": "poor"}}),
        )
        .await;
    assert_eq!(bulk.body["error"]["field_codes"]["credit_status"], read_only);
    for key in ["number", "status", "created_by", "updated_at", "version"] {
        let r = sales
            .patch(&own, &json!({"version": 1, key: "x", "remark": "试"}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "system field {key} cannot be set: {}",
            r.text
        );
    }
    let after = w.admin().get(&own).await;
    assert_eq!(
        (after.data()["credit_status"].as_str(), after.data()["version"].as_i64()),
        (Some("good"), Some(1)),
        "nothing changed"
    );
    let by_manager = w
        .manager_a
        .client
        .patch(&own, &json!({"version": 1, "credit_status": "poor"}))
        .await;
    assert_eq!(
        (by_manager.status, by_manager.data()["credit_status"].as_str()),
        (StatusCode::OK, Some("poor")),
        "a sales manager has no such rule: {}",
        by_manager.text
    );
}

#[tokio::test]
async fn relations_to_records_the_caller_cannot_read_are_refused() {
    let w = World::build().await;
    let cases = [
        ("salesperson of branch A", &w.sales_a, "B", false),
        ("salesperson of branch A", &w.sales_a, "A1", false),
        ("salesperson of branch A", &w.sales_a, "A-peer", true),
        ("salesperson of team A1", &w.sales_a1, "A-own", false),
        ("sales_manager of branch A", &w.manager_a, "HQ", false),
        ("sales_manager of branch A", &w.manager_a, "P", false),
        ("sales_manager of branch A", &w.manager_a, "A1", true),
        ("salesperson of branch B", &w.sales_b, "A-own", false),
        ("service_agent", &w.agent, "P", true),
        ("marketing", &w.marketer, "B", true),
    ];
    for (role, who, tag, readable) in cases {
        let body = json!({"name": "新联系人", "customer_id": "{id}"});
        let what = format!("{role} adds a contact to customer {tag}");
        if readable {
            let r = who
                .client
                .post(
                    "/api/v1/records/contact",
                    &json!({"name": "新联系人", "customer_id": w.customer_id(tag)}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{what}: {}", r.text);
        } else {
            let r = same_as_missing(
                &who.client,
                Method::POST,
                "/api/v1/records/contact",
                w.customer_id(tag),
                Some(&body),
                &what,
            )
            .await;
            assert_eq!(
                r.body["error"]["field_codes"]["customer_id"],
                json!(["not_found"]),
                "{what}: {}",
                r.text
            );
        }
    }
    let own = format!("/api/v1/records/contact/{}", w.contact_id("A-own"));
    let moved = same_as_missing(
        &w.sales_a.client,
        Method::PATCH,
        &own,
        w.customer_id("B"),
        Some(&json!({"version": 1, "customer_id": "{id}"})),
        "a salesperson points its contact at another branch's customer",
    )
    .await;
    assert_eq!(moved.body["error"]["field_codes"]["customer_id"], json!(["not_found"]));
    let bulk = w
        .sales_a
        .client
        .post(
            "/api/v1/records/contact/bulk-update",
            &json!({"ids": [w.contact_id("A-own")], "changes": {"customer_id": w.customer_id("B")}}),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bulk.text);
    let after = w.admin().get(&own).await;
    assert_eq!(
        (after.data()["customer_id"].as_str(), after.data()["version"].as_i64()),
        (Some(w.customer_id("A-own")), Some(1))
    );
    let within = w
        .sales_a
        .client
        .patch(&own, &json!({"version": 1, "customer_id": w.customer_id("A-peer")}))
        .await;
    assert_eq!(
        within.status,
        StatusCode::OK,
        "a readable customer of the own branch is fine: {}",
        within.text
    );
}

#[tokio::test]
async fn bulk_changes_naming_any_record_outside_the_write_scope_change_nothing() {
    let w = World::build().await;
    let c = |t| w.customer_id(t);
    let k = |t| w.contact_id(t);
    let remark = json!({"remark": "批量"});
    let changes = |object: &str| {
        if object == "customer" {
            json!({"remark": "批量"})
        } else {
            json!({"title": "批量"})
        }
    };
    // (who, object, ids, the id the answer must name) — every one refused as a whole.
    let refused = [
        (&w.sales_a, "customer", vec![c("A-own"), c("B")], c("B")),
        (&w.sales_a, "customer", vec![c("A-own"), c("A-peer")], c("A-peer")),
        (&w.sales_a, "customer", vec![c("A-own"), c("A1")], c("A1")),
        (&w.sales_a2, "customer", vec![c("A-peer"), c("A-own")], c("A-own")),
        (&w.manager_a, "customer", vec![c("A-own"), c("A1"), c("HQ")], c("HQ")),
        (&w.sales_a1, "contact", vec![k("A1"), k("B")], k("B")),
        (&w.sales_a, "contact", vec![k("A-own"), k("A-cross")], k("A-cross")),
        (&w.agent, "contact", vec![k("HQ"), k("P"), "no-such-id"], "no-such-id"),
    ];
    for (who, object, ids, culprit) in &refused {
        for (action, body) in [
            ("bulk-update", json!({"ids": ids, "changes": changes(object)})),
            ("bulk-delete", json!({"ids": ids})),
        ] {
            let r = who
                .client
                .post(&format!("/api/v1/records/{object}/{action}"), &body)
                .await;
            let expected_status = if who.id == w.agent.id && action == "bulk-delete" {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            assert_eq!(r.status, expected_status, "{action} {object} {ids:?}: {}", r.text);
            if expected_status == StatusCode::UNPROCESSABLE_ENTITY {
                assert_eq!(
                    r.body["error"]["field_codes"][*culprit],
                    json!(["not_found"]),
                    "{action}: the record outside the scope is reported as not found: {}",
                    r.text
                );
            }
        }
    }
    let foreign = same_as_missing(
        &w.sales_a.client,
        Method::POST,
        "/api/v1/records/customer/bulk-delete",
        c("B"),
        Some(&json!({"ids": [c("A-own"), "{id}"]})),
        "bulk delete with another branch's customer",
    )
    .await;
    assert_eq!(foreign.status, StatusCode::UNPROCESSABLE_ENTITY);
    let update_p = json!({"ids": [c("P")], "changes": remark});
    let delete_p = json!({"ids": [c("P")]});
    for (who, action, body) in [
        (&w.agent, "bulk-update", &update_p),
        (&w.analyst, "bulk-update", &update_p),
        (&w.partner, "bulk-update", &update_p),
        (&w.partner, "bulk-delete", &delete_p),
        (&w.marketer, "bulk-delete", &delete_p),
    ] {
        let r = who
            .client
            .post(&format!("/api/v1/records/customer/{action}"), body)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{action} without the grant: {}",
            r.text
        );
    }

    // All or nothing: not one record changed or went to the recycle bin.
    for (object, all) in [("customer", ALL_CUSTOMERS), ("contact", ALL_CONTACTS)] {
        for tag in all {
            let r = w
                .admin()
                .get(&format!("/api/v1/records/{object}/{}", w.id(object, tag)))
                .await;
            assert_eq!(
                (r.status, r.data()["version"].as_i64()),
                (StatusCode::OK, Some(1)),
                "{object} {tag} is untouched"
            );
        }
    }
    let audit = w.admin().get("/api/v1/audit?action=update").await;
    assert_eq!(audit.data(), &json!([]));

    // Inside the scope the same requests go through.
    let ok = w
        .manager_a
        .client
        .post(
            "/api/v1/records/customer/bulk-update",
            &json!({"ids": [c("A-own"), c("A1")], "changes": remark}),
        )
        .await;
    assert_eq!(ok.data()["affected"], 2, "{}", ok.text);
    let ok = w
        .sales_a
        .client
        .post("/api/v1/records/customer/bulk-delete", &json!({"ids": [c("A-own")]}))
        .await;
    assert_eq!(ok.data()["affected"], 1, "{}", ok.text);
}

/// The codes of the caller's roles.
async fn role_codes(client: &TestClient) -> Vec<String> {
    let me = client.get("/api/v1/me").await;
    me.data()["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["code"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn users_cannot_raise_their_own_privileges() {
    let w = World::build().await;
    let sales = &w.sales_a.client;
    let me_path = format!("/api/v1/records/user/{}", w.sales_a.id);
    let me = sales.get(&me_path).await;
    let version = me.data()["version"].as_i64().expect("a version");

    // Own roles, directly, through the profile, and by editing the role itself.
    let own_roles = sales
        .patch(&me_path, &json!({"version": version, "role_ids": [ADMIN_ROLE]}))
        .await;
    assert_eq!(own_roles.status, StatusCode::FORBIDDEN, "{}", own_roles.text);
    for body in [
        json!({"role_ids": [ADMIN_ROLE]}),
        json!({"department_id": w.hq}),
        json!({"status": "active"}),
    ] {
        let r = sales.patch("/api/v1/me/profile", &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the profile takes only name and contact details: {body} {}",
            r.text
        );
    }
    let role_path = format!("/api/v1/records/role/{SALESPERSON_ROLE}");
    let edit_role = sales
        .patch(&role_path, &json!({"version": 1, "permissions": {"*": {"*": "all"}}}))
        .await;
    assert_eq!(
        (edit_role.status, edit_role.code()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{}",
        edit_role.text
    );
    let new_role = sales
        .post(
            "/api/v1/records/role",
            &json!({"name": "我的超级角色", "code": "mine", "permissions": {"*": {"*": "all"}}}),
        )
        .await;
    assert_eq!(new_role.status, StatusCode::FORBIDDEN, "{}", new_role.text);
    let new_user = sales
        .post(
            "/api/v1/records/user",
            &json!({"username": "sock_puppet", "display_name": "马甲", "role_ids": [ADMIN_ROLE]}),
        )
        .await;
    assert_eq!(new_user.status, StatusCode::FORBIDDEN, "{}", new_user.text);
    assert_eq!(role_codes(sales).await, ["salesperson"], "still a salesperson");
    let role = w.admin().get(&role_path).await;
    assert_eq!(role.data()["version"], 1, "the role is unchanged");

    // Not even an administrator changes its own roles.
    let admin_id = w.app.user_id.clone().expect("the administrator's id");
    let admin_path = format!("/api/v1/records/user/{admin_id}");
    let admin_me = w.admin().get(&admin_path).await;
    let own = w
        .admin()
        .patch(
            &admin_path,
            &json!({"version": admin_me.data()["version"], "role_ids": [SALESPERSON_ROLE]}),
        )
        .await;
    assert_eq!(
        own.body["error"]["field_codes"]["role_ids"],
        json!(["forbidden"]),
        "{}",
        own.text
    );

    // Managing users is not assigning roles.
    let clerk_role = w
        .admin()
        .create(
            "role",
            json!({"name": "用户专员", "code": "user_clerk", "field_rules": {},
                   "permissions": {"user": {"read": "all", "create": "all", "update": "all"}, "role": {"read": "all"},
                                   "department": {"read": "all"}}}),
        )
        .await;
    let (clerk_id, clerk) = w.app.user("user_clerk", &["user_clerk"], Some(&w.hq), None).await;
    let sales_record = clerk.get(&me_path).await;
    let v = sales_record.data()["version"].clone();
    let assign = clerk
        .patch(&me_path, &json!({"version": v, "role_ids": [ADMIN_ROLE]}))
        .await;
    assert_eq!(
        (assign.status, assign.code()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{}",
        assign.text
    );
    let create = clerk
        .post(
            "/api/v1/records/user",
            &json!({"username": "new_admin", "display_name": "新管理员", "role_ids": [ADMIN_ROLE]}),
        )
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN, "{}", create.text);
    let clerk_path = format!("/api/v1/records/user/{clerk_id}");
    let clerk_me = clerk.get(&clerk_path).await;
    let self_assign = clerk
        .patch(
            &clerk_path,
            &json!({"version": clerk_me.data()["version"], "role_ids": [ADMIN_ROLE, clerk_role["id"]]}),
        )
        .await;
    assert_eq!(
        self_assign.body["error"]["field_codes"]["role_ids"],
        json!(["forbidden"]),
        "{}",
        self_assign.text
    );
    let own_grant = clerk
        .patch(
            &format!("/api/v1/records/role/{}", s(&clerk_role, "id")),
            &json!({"version": 1, "permissions": {"*": {"*": "all"}}}),
        )
        .await;
    assert_eq!(
        own_grant.status,
        StatusCode::FORBIDDEN,
        "reading roles is not editing them"
    );
    let rename = clerk
        .patch(&me_path, &json!({"version": v, "display_name": "销售甲"}))
        .await;
    assert_eq!(
        rename.status,
        StatusCode::OK,
        "the clerk does manage users: {}",
        rename.text
    );
    assert_eq!(role_codes(&clerk).await, ["user_clerk"]);
    assert_eq!(role_codes(sales).await, ["salesperson"]);

    // Administration endpoints.
    for v in w.viewers().iter().filter(|v| v.role != "admin") {
        let fields = v
            .client
            .post(
                "/api/v1/meta/objects/customer/fields",
                &json!({"key": "cf_backdoor", "label": {"zh": "后门", "en": "Backdoor"}, "type": "text", "max_len": 10}),
            )
            .await;
        assert_eq!(
            fields.status,
            StatusCode::FORBIDDEN,
            "{} adds a custom field: {}",
            v.role,
            fields.text
        );
        let drop = v.client.delete("/api/v1/meta/objects/customer/fields/cf_x").await;
        assert_eq!(drop.status, StatusCode::FORBIDDEN, "{} removes a custom field", v.role);
        let audit_allowed = v.role == "analyst";
        for path in ["/api/v1/audit", "/api/v1/logs/logins"] {
            let r = v.client.get(path).await;
            let want = if audit_allowed {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(r.status, want, "{} reads {path}: {}", v.role, r.text);
        }
        let password = v
            .client
            .post(
                &format!("/api/v1/admin/users/{admin_id}/password"),
                &json!({"password": "Takeover#2026xyz"}),
            )
            .await;
        assert_eq!(
            password.status,
            StatusCode::FORBIDDEN,
            "{} sets the admin's password",
            v.role
        );
        let settings = v
            .client
            .patch("/api/v1/admin/settings", &json!({"announcement": "hi"}))
            .await;
        assert_eq!(settings.status, StatusCode::FORBIDDEN, "{} changes settings", v.role);
        let disable = v
            .client
            .post(
                &format!("/api/v1/records/user/{admin_id}/transitions/disable"),
                &json!({}),
            )
            .await;
        assert_eq!(
            disable.status,
            StatusCode::FORBIDDEN,
            "{} disables the administrator: {}",
            v.role,
            disable.text
        );
    }
    let custom = w.admin().get("/api/v1/meta/objects/customer").await;
    assert!(!custom.text.contains("cf_backdoor"));
    let signed_in = guanxi_testkit::sign_in(
        &w.app.base_url,
        guanxi_testkit::ADMIN_USERNAME,
        guanxi_testkit::ADMIN_PASSWORD,
    )
    .await;
    assert!(signed_in.is_ok(), "the administrator's password is unchanged");

    // A read-only API token keeps only the reading grants of its user.
    let token = sales
        .post("/api/v1/me/tokens", &json!({"name": "只读", "scopes": ["read"]}))
        .await;
    let token = s(token.data(), "token").to_owned();
    let anon = w.app.anonymous();
    let url = |p: &str| format!("{}{p}", w.app.base_url);
    let read = anon
        .read(
            anon.client
                .get(url("/api/v1/records/customer?total=exact"))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(read.body["meta"]["total"], SALES_A_CUSTOMERS.len(), "{}", read.text);
    let write = anon
        .read(
            anon.client
                .post(url("/api/v1/records/customer"))
                .bearer_auth(&token)
                .json(&json!({"name": "令牌客户"})),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.text);
    let delete = anon
        .read(
            anon.client
                .delete(url(&format!("/api/v1/records/customer/{}", w.customer_id("A-own"))))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN, "{}", delete.text);
}

#[tokio::test]
async fn unsafe_requests_without_the_csrf_token_are_refused_and_change_nothing() {
    let w = World::build().await;
    let own = w.customer_id("A-own");
    let own_path = format!("/api/v1/records/customer/{own}");
    let me_path = format!("/api/v1/records/user/{}", w.sales_a.id);
    let attempts: Vec<(Method, String, Option<Json>)> = vec![
        (
            Method::POST,
            "/api/v1/records/customer".into(),
            Some(json!({"name": "跨站客户"})),
        ),
        (
            Method::PATCH,
            own_path.clone(),
            Some(json!({"version": 1, "remark": "跨站"})),
        ),
        (Method::DELETE, own_path.clone(), None),
        (Method::POST, format!("{own_path}/transitions/sign"), Some(json!({}))),
        (
            Method::POST,
            "/api/v1/records/customer/bulk-delete".into(),
            Some(json!({"ids": [own]})),
        ),
        (
            Method::POST,
            "/api/v1/records/customer/query".into(),
            Some(json!({"limit": 1})),
        ),
        (
            Method::PATCH,
            "/api/v1/me/profile".into(),
            Some(json!({"display_name": "跨站"})),
        ),
        (
            Method::POST,
            "/api/v1/me/tokens".into(),
            Some(json!({"name": "跨站", "scopes": ["read", "write"]})),
        ),
        (Method::POST, "/api/v1/me/sessions/revoke-all".into(), Some(json!({}))),
        (
            Method::POST,
            "/api/v1/me/password".into(),
            Some(json!({"current_password": guanxi_testkit::USER_PASSWORD, "new_password": "Cs!Rf#2026zzq"})),
        ),
    ];
    let other_token = w.sales_b.client.csrf_token.clone().unwrap_or_default();
    let bare = w.sales_a.client.without_csrf();
    for (method, path, body) in &attempts {
        let url = format!("{}{path}", w.app.base_url);
        for (how, header) in [
            ("no", None),
            ("a wrong", Some("nonsense")),
            ("another session's", Some(other_token.as_str())),
        ] {
            let mut req = bare.client.request(method.clone(), url.as_str());
            if let Some(h) = header {
                req = req.header("x-csrf-token", h);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let r = bare.read(req).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::FORBIDDEN, "csrf_failed"),
                "{method} {path} with {how} CSRF token: {}",
                r.text
            );
        }
    }
    // The administrator's powers need the token too.
    let admin_bare = w.admin().without_csrf();
    for (method, path, body) in [
        (
            Method::PATCH,
            me_path.clone(),
            Some(json!({"version": 1, "role_ids": [ADMIN_ROLE]})),
        ),
        (
            Method::POST,
            "/api/v1/records/role".into(),
            Some(json!({"name": "跨站角色", "permissions": {"*": {"*": "all"}}})),
        ),
        (
            Method::POST,
            "/api/v1/meta/objects/customer/fields".into(),
            Some(json!({"key": "cf_csrf", "label": {"zh": "跨站", "en": "CSRF"}, "type": "boolean"})),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{}/password", w.sales_a.id),
            Some(json!({"password": "Cs!Rf#2026zzq"})),
        ),
    ] {
        let r = admin_bare.send(method.clone(), &path, body.as_ref()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "csrf_failed"),
            "the administrator's {method} {path} without the CSRF token: {}",
            r.text
        );
    }
    // Reading needs no token; nothing above changed anything.
    let read = bare.get(&own_path).await;
    assert_eq!(
        (read.status, read.data()["version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{}",
        read.text
    );
    let all = list(w.admin(), "customer", "").await;
    assert_eq!(all.body["meta"]["total"], ALL_CUSTOMERS.len());
    let audit = w.admin().get("/api/v1/audit?object=customer").await;
    assert!(
        audit
            .data()
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["action"] == "create"),
        "{}",
        audit.text
    );
    let roles = w.admin().get("/api/v1/records/role?total=exact").await;
    assert_eq!(roles.body["meta"]["total"], 7, "no role was added");
    let me = w.sales_a.client.get("/api/v1/me").await;
    assert_eq!(me.data()["user"]["display_name"], "sales_a");
    assert_eq!(me.data()["roles"][0]["code"], "salesperson");
    let tokens = w.sales_a.client.get("/api/v1/me/tokens").await;
    assert_eq!(tokens.data(), &json!([]));
    assert!(
        guanxi_testkit::sign_in(&w.app.base_url, "sales_a", guanxi_testkit::USER_PASSWORD)
            .await
            .is_ok(),
        "the password is unchanged"
    );
    let meta = w.admin().get("/api/v1/meta/objects/customer").await;
    assert!(!meta.text.contains("cf_csrf"));
}

#[tokio::test]
async fn anonymous_callers_are_refused_everywhere() {
    let app = spawn_app().await;
    let c = app.create("customer", json!({"name": "匿名不可见"})).await;
    let id = s(&c, "id");
    let anon = app.anonymous();
    let record = format!("/api/v1/records/customer/{id}");
    let cases: Vec<(Method, String, Option<Json>)> = vec![
        (Method::GET, "/api/v1/records/customer".into(), None),
        (Method::GET, "/api/v1/records/customer?q=匿名".into(), None),
        (Method::POST, "/api/v1/records/customer/query".into(), Some(json!({}))),
        (Method::GET, record.clone(), None),
        (Method::GET, format!("{record}/history"), None),
        (Method::GET, format!("{record}/transitions"), None),
        (Method::GET, "/api/v1/records/customer/recycle-bin".into(), None),
        (
            Method::POST,
            "/api/v1/records/customer".into(),
            Some(json!({"name": "匿名"})),
        ),
        (
            Method::PATCH,
            record.clone(),
            Some(json!({"version": 1, "name": "匿名"})),
        ),
        (Method::DELETE, record.clone(), None),
        (Method::POST, format!("{record}/restore"), Some(json!({}))),
        (Method::POST, format!("{record}/transitions/sign"), Some(json!({}))),
        (
            Method::POST,
            "/api/v1/records/customer/bulk-update".into(),
            Some(json!({"ids": [id], "changes": {"name": "匿名"}})),
        ),
        (
            Method::POST,
            "/api/v1/records/customer/bulk-delete".into(),
            Some(json!({"ids": [id]})),
        ),
        (Method::GET, "/api/v1/meta/objects".into(), None),
        (Method::GET, "/api/v1/meta/objects/customer".into(), None),
        (
            Method::POST,
            "/api/v1/meta/objects/customer/fields".into(),
            Some(json!({"key": "cf_anon", "label": {"zh": "匿", "en": "Anon"}, "type": "boolean"})),
        ),
        (Method::GET, "/api/v1/audit".into(), None),
        (Method::GET, "/api/v1/me".into(), None),
        (Method::GET, "/api/v1/records/user".into(), None),
        (Method::GET, "/api/v1/records/role".into(), None),
    ];
    for (method, path, body) in &cases {
        let r = anon.send(method.clone(), path, body.as_ref()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "anonymous {method} {path}: {}",
            r.text
        );
    }
    let still = app.get(&record).await;
    assert_eq!(
        (still.data()["name"].as_str(), still.data()["version"].as_i64()),
        (Some("匿名不可见"), Some(1))
    );
    let count = app.get("/api/v1/records/customer?total=exact").await;
    assert_eq!(count.body["meta"]["total"], 1);
}

#[tokio::test]
async fn changes_to_roles_and_users_take_effect_on_the_next_request() {
    let w = World::build().await;
    let sales = &w.sales_a.client;
    let role_path = format!("/api/v1/records/role/{SALESPERSON_ROLE}");
    let role = w.admin().get(&role_path).await;
    let original = role.data()["permissions"].clone();
    let mut narrowed = original.clone();
    if let Some(grants) = narrowed.as_object_mut() {
        grants.remove("customer");
    }
    let r = w
        .admin()
        .patch(&role_path, &json!({"version": 1, "permissions": narrowed}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let refused = sales.get("/api/v1/records/customer").await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "a revoked grant stops working at once: {}",
        refused.text
    );
    let r = w
        .admin()
        .patch(&role_path, &json!({"version": 2, "permissions": original}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(tags(&list(sales, "customer", "").await), set(SALES_A_CUSTOMERS));

    // Moving the user to branch B moves its view with it.
    let user_path = format!("/api/v1/records/user/{}", w.sales_a.id);
    let user = w.admin().get(&user_path).await;
    let r = w
        .admin()
        .patch(
            &user_path,
            &json!({"version": user.data()["version"], "department_id": w.branch_b}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        tags(&list(sales, "customer", "").await),
        set(OWN_B),
        "after the move the salesperson sees branch B only"
    );
    let old = sales
        .get(&format!("/api/v1/records/customer/{}", w.customer_id("A-peer")))
        .await;
    assert_eq!(old.status, StatusCode::NOT_FOUND, "the old branch is out of reach");

    // Disabling a user ends its access.
    let user = w.admin().get(&user_path).await;
    let r = w
        .admin()
        .post(
            &format!("{user_path}/transitions/disable"),
            &json!({"version": user.data()["version"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let gone = sales.get("/api/v1/records/customer").await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "{}", gone.text);
}

#[tokio::test]
async fn moving_a_department_out_of_a_tree_takes_effect_on_the_next_request() {
    let w = World::build().await;
    let manager = &w.manager_a.client;
    assert_eq!(tags(&list(manager, "customer", "").await), set(MANAGER_A_CUSTOMERS));
    let team = format!("/api/v1/records/department/{}", w.team_a1);
    let r = w
        .admin()
        .patch(&team, &json!({"version": 1, "parent_id": w.branch_b}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        tags(&list(manager, "customer", "").await),
        set(SALES_A_CUSTOMERS),
        "team A1 now belongs to branch B: its customers leave branch A's manager at once"
    );
    let a1 = manager
        .get(&format!("/api/v1/records/customer/{}", w.customer_id("A1")))
        .await;
    assert_eq!(a1.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_record_outside_the_read_scope_cannot_be_changed_even_by_its_owner() {
    let w = World::build().await;
    // Salesperson A moves to branch B; the customers it owns stay with branch A.
    let user_path = format!("/api/v1/records/user/{}", w.sales_a.id);
    let user = w.admin().get(&user_path).await;
    let moved = w
        .admin()
        .patch(
            &user_path,
            &json!({"version": user.data()["version"], "department_id": w.branch_b}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    let sales = &w.sales_a.client;
    let id = w.customer_id("A-own");
    let read = sales.get(&format!("/api/v1/records/customer/{id}")).await;
    assert_eq!(
        read.status,
        StatusCode::NOT_FOUND,
        "the old branch's customer is out of sight"
    );
    for (method, template, body) in [
        (
            Method::PATCH,
            "/api/v1/records/customer/{id}",
            Some(json!({"version": 1, "remark": "还是我的"})),
        ),
        (
            Method::POST,
            "/api/v1/records/customer/{id}/transitions/sign",
            Some(json!({})),
        ),
        (Method::DELETE, "/api/v1/records/customer/{id}", None),
    ] {
        let what = format!("the former owner's {method} {template}");
        let r = same_as_missing(sales, method.clone(), template, id, body.as_ref(), &what).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {}", r.text);
    }
    let bulk = sales
        .post("/api/v1/records/customer/bulk-delete", &json!({"ids": [id]}))
        .await;
    assert_eq!(bulk.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bulk.text);
    let after = w.admin().get(&format!("/api/v1/records/customer/{id}")).await;
    assert_eq!(
        (after.status, after.data()["version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "the customer is untouched"
    );
}

#[tokio::test]
async fn the_audit_trail_shows_no_records_the_reader_cannot_read() {
    let w = World::build().await;
    w.admin()
        .create(
            "role",
            json!({"name": "临时角色", "code": "temp", "permissions": {"customer": {"read": "all"}}}),
        )
        .await;
    let analyst = &w.analyst.client;
    let roles = analyst.get("/api/v1/records/role").await;
    assert_eq!(roles.status, StatusCode::FORBIDDEN, "the analyst may not read roles");
    let audit = analyst.get("/api/v1/audit?limit=500").await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let objects: BTreeSet<&str> = audit
        .data()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["object"].as_str())
        .collect();
    assert!(objects.contains("customer"), "{objects:?}");
    assert!(
        !objects.contains("role"),
        "the audit trail must not show records of objects the reader cannot read: {objects:?}"
    );
    let by_object = analyst.get("/api/v1/audit?object=role").await;
    assert_eq!(by_object.data(), &json!([]), "{}", by_object.text);
}

#[tokio::test]
async fn another_users_sessions_and_tokens_are_out_of_reach() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice_s", &["salesperson"], None, None).await;
    let (_, bob) = app.user("bob_s", &["salesperson"], None, None).await;
    let bob_sessions = bob.get("/api/v1/me/sessions").await;
    let bob_session = s(&bob_sessions.data()[0], "id").to_owned();
    let token = bob
        .post("/api/v1/me/tokens", &json!({"name": "集成", "scopes": ["read"]}))
        .await;
    assert_eq!(token.status, StatusCode::CREATED, "{}", token.text);
    let (token_id, secret) = (s(token.data(), "id").to_owned(), s(token.data(), "token").to_owned());

    let revoke_session = alice.delete(&format!("/api/v1/me/sessions/{bob_session}")).await;
    assert_eq!(
        (revoke_session.status, revoke_session.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{}",
        revoke_session.text
    );
    let revoke_token = alice.delete(&format!("/api/v1/me/tokens/{token_id}")).await;
    assert_eq!(
        (revoke_token.status, revoke_token.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{}",
        revoke_token.text
    );
    let listed = alice.get("/api/v1/me/tokens").await;
    assert_eq!(listed.data(), &json!([]), "alice sees only her own tokens");
    let sessions = alice.get("/api/v1/me/sessions").await;
    assert!(
        !sessions.text.contains(&bob_session),
        "alice sees only her own sessions: {}",
        sessions.text
    );

    assert_eq!(
        bob.get("/api/v1/me").await.status,
        StatusCode::OK,
        "bob is still signed in"
    );
    let anon = app.anonymous();
    let with_token = anon
        .read(
            anon.client
                .get(format!("{}/api/v1/me", app.base_url))
                .bearer_auth(&secret),
        )
        .await;
    assert_eq!(
        with_token.status,
        StatusCode::OK,
        "bob's token still works: {}",
        with_token.text
    );
}
