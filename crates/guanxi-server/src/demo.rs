//! Demo data: a realistic Chinese organisation (department tree with an external service
//! provider), one user per default role, and customers with contacts, generated from a fixed
//! seed so every run produces the same data. Everything goes through the record engine, so the
//! data obeys the same rules (numbering, validation, audit) as data entered by hand.

use guanxi_core::Actor;
use serde_json::{Map, Value as Json, json};

use crate::config::Config;
use crate::modules::identity::{NewUser, create_user};
use guanxi_store::records::SearchEntries;
use guanxi_store::{Engine, PreparedBatch};

/// The password of every demo user.
pub const DEMO_PASSWORD: &str = "Demo#Guanxi2026";

/// A small deterministic generator (SplitMix64), so demo data is reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap_or(0)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const PLACES: &[(&str, &str, &str)] = &[
    ("北京市", "北京市", "海淀区"),
    ("北京市", "北京市", "朝阳区"),
    ("上海市", "上海市", "浦东新区"),
    ("广东省", "深圳市", "南山区"),
    ("广东省", "广州市", "天河区"),
    ("河南省", "郑州市", "金水区"),
    ("河南省", "平顶山市", "新华区"),
    ("浙江省", "杭州市", "西湖区"),
    ("江苏省", "南京市", "鼓楼区"),
    ("四川省", "成都市", "武侯区"),
    ("湖北省", "武汉市", "洪山区"),
    ("山东省", "济南市", "历下区"),
];
const BRANDS: &[&str] = &[
    "中平",
    "华信",
    "申达",
    "恒通",
    "鑫源",
    "宏远",
    "天成",
    "瑞丰",
    "金桥",
    "长城",
    "东方",
    "新纪元",
    "博远",
    "正泰",
    "安泰",
    "永昌",
];
const TRADES: &[(&str, &str)] = &[
    ("能源", "energy"),
    ("科技", "it"),
    ("物流", "logistics"),
    ("机械制造", "manufacturing"),
    ("商贸", "retail"),
    ("建设工程", "construction"),
    ("投资", "finance"),
];
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "勇", "艳", "杰", "军", "涛", "明", "超", "霞", "平", "刚",
];
const TITLES: &[&str] = &[
    "总经理",
    "采购经理",
    "财务总监",
    "技术负责人",
    "行政主管",
    "副总经理",
    "销售总监",
];

fn person(rng: &mut Rng) -> String {
    let mut name = (*rng.pick(SURNAMES)).to_owned();
    let given = rng.pick::<&str>(GIVEN);
    name.push_str(given);
    if rng.below(2) == 0 {
        let second = rng.pick::<&str>(GIVEN);
        name.push_str(second);
    }
    name
}

fn mobile(rng: &mut Rng) -> String {
    let prefix = rng.pick(&["138", "139", "136", "150", "158", "186", "188", "177"]);
    format!("{prefix}{:08}", rng.next_u64() % 100_000_000)
}

fn obj(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

async fn find_one(engine: &Engine, object: &str, field: &str, value: &str) -> anyhow::Result<Option<String>> {
    let def = engine.object(object)?;
    let filter = guanxi_core::filter::parse_filter(&def, &json!({"field": field, "op": "eq", "value": value}))?;
    let page = engine
        .list(
            &Actor::system(),
            object,
            &guanxi_store::ListQuery {
                filter: Some(filter),
                limit: 1,
                total: guanxi_store::TotalMode::None,
                ..Default::default()
            },
        )
        .await?;
    Ok(page
        .records
        .first()
        .and_then(|r| r.get("id"))
        .and_then(Json::as_str)
        .map(str::to_owned))
}

async fn department(
    engine: &Engine,
    name: &str,
    code: &str,
    parent: Option<&str>,
    external: bool,
) -> anyhow::Result<String> {
    if let Some(id) = find_one(engine, "department", "code", code).await? {
        return Ok(id);
    }
    let record = engine
        .create(
            &Actor::system(),
            "department",
            &obj(json!({"name": name, "code": code, "parent_id": parent, "is_external": external})),
        )
        .await?;
    Ok(record.get("id").and_then(Json::as_str).unwrap_or_default().to_owned())
}

/// What `demo-data` created.
#[derive(Debug, Default)]
pub struct DemoSummary {
    pub users: Vec<(String, String)>,
    pub customers: usize,
    pub contacts: usize,
    pub follow_ups: usize,
}

/// Creates the organisation and users (once) and `customers` more customers with contacts.
pub async fn generate(engine: &Engine, config: &Config, customers: usize, seed: u64) -> anyhow::Result<DemoSummary> {
    let (mut summary, sales_owners) = organisation(engine, config).await?;
    let mut rng = Rng::new(seed);
    for i in 0..customers {
        let (body, owner, dept) = customer_body(&mut rng, i, &sales_owners);
        let record = engine.create(&Actor::system(), "customer", &body).await?;
        let id = record.get("id").and_then(Json::as_str).unwrap_or_default().to_owned();
        summary.customers += 1;
        if rng.below(2) == 0 {
            engine
                .transition(&Actor::system(), "customer", &id, "sign", Some("演示数据"), None)
                .await?;
        }
        for _ in 0..=rng.below(3) {
            engine
                .create(&Actor::system(), "contact", &contact_body(&mut rng, &id, &owner, &dept))
                .await?;
            summary.contacts += 1;
        }
    }
    Ok(summary)
}

/// The department tree and one user per role (created once); returns the summary so far and
/// the (owner, department) pairs customers are spread over.
async fn organisation(engine: &Engine, config: &Config) -> anyhow::Result<(DemoSummary, Vec<(String, String)>)> {
    let hq = department(engine, "总部", "HQ", None, false).await?;
    let north = department(engine, "华北分公司", "HB", Some(&hq), false).await?;
    let beijing = department(engine, "北京办事处", "HB-BJ", Some(&north), false).await?;
    let team = department(engine, "销售一组", "HB-BJ-1", Some(&beijing), false).await?;
    let east = department(engine, "华东分公司", "HD", Some(&hq), false).await?;
    let shanghai = department(engine, "上海办事处", "HD-SH", Some(&east), false).await?;
    let partner = department(engine, "郑州诚信机电服务有限公司", "EXT-ZZCX", None, true).await?;

    let mut summary = DemoSummary::default();
    let people: [(&str, &str, &str, &str, Option<&str>); 9] = [
        ("demo_admin", "赵管理", "admin", "hq", None),
        ("demo_manager", "钱经理", "sales_manager", "north", None),
        ("demo_sales1", "孙销售", "salesperson", "team", Some("demo_manager")),
        ("demo_sales2", "李销售", "salesperson", "team", Some("demo_manager")),
        ("demo_sales3", "周销售", "salesperson", "shanghai", None),
        ("demo_service", "吴客服", "service_agent", "hq", None),
        ("demo_marketing", "郑市场", "marketing", "hq", None),
        ("demo_analyst", "冯分析", "analyst", "hq", None),
        ("demo_partner", "陈服务商", "partner", "partner", None),
    ];
    let dept_of = |key: &str| match key {
        "north" => north.clone(),
        "team" => team.clone(),
        "shanghai" => shanghai.clone(),
        "partner" => partner.clone(),
        _ => hq.clone(),
    };
    let mut sales_owners: Vec<(String, String)> = Vec::new();
    for (username, name, role, dept, manager) in people {
        let id = match find_one(engine, "user", "username", username).await? {
            Some(id) => id,
            None => {
                let manager_id = match manager {
                    Some(m) => find_one(engine, "user", "username", m).await?,
                    None => None,
                };
                let department_id = dept_of(dept);
                create_user(
                    engine,
                    config,
                    &NewUser {
                        username,
                        display_name: name,
                        email: Some(&format!("{username}@demo.guanxi.local")),
                        password: DEMO_PASSWORD,
                        roles: &[role],
                        department_id: Some(&department_id),
                        manager_id: manager_id.as_deref(),
                    },
                )
                .await?
            }
        };
        if role == "salesperson" || role == "sales_manager" {
            sales_owners.push((id.clone(), dept_of(dept)));
        }
        if role == "partner" {
            sales_owners.push((id.clone(), partner.clone()));
        }
        summary.users.push((username.to_owned(), role.to_owned()));
    }
    Ok((summary, sales_owners))
}

const CUSTOMER_TYPES: &[&str] = &[
    "enterprise",
    "enterprise",
    "enterprise",
    "government",
    "institution",
    "distributor",
    "individual",
];
const LEVELS: &[&str] = &["A", "B", "B", "C", "C1", "C2"];
const SOURCES: &[&str] = &["referral", "exhibition", "website", "phone", "event"];
const TAGS: &[&str] = &["vip", "strategic", "new", "at_risk"];

/// The `i`-th generated customer: its body, owner and department.
fn customer_body(rng: &mut Rng, i: usize, sales_owners: &[(String, String)]) -> (Map<String, Json>, String, String) {
    let (province, city, district) = *rng.pick(PLACES);
    let (trade, industry) = *rng.pick(TRADES);
    let brand = rng.pick(BRANDS);
    let short_city = city.trim_end_matches('市');
    let name = format!("{short_city}{brand}{trade}有限公司");
    let name = if i >= BRANDS.len() * TRADES.len() {
        format!("{name}（{}）", i + 1)
    } else {
        name
    };
    let (owner, dept) = rng.pick(sales_owners).clone();
    let customer_type = *rng.pick(CUSTOMER_TYPES);
    let mut body = json!({
        "name": if customer_type == "individual" { person(rng) } else { name },
        "customer_type": customer_type,
        "level": rng.pick(LEVELS),
        "industry": industry,
        "source": rng.pick(SOURCES),
        "credit_status": rng.pick(&["good", "good", "normal", "poor"]),
        "phone": mobile(rng),
        "email": format!("contact{}@example{}.cn", i + 1, rng.below(50)),
        "province": province, "city": city, "district": district,
        "address": format!("{district}{}路{}号", rng.pick(BRANDS), rng.below(300) + 1),
        "registered_capital": (rng.below(5000) as i64 + 10) * 1_000_000,
        "established_on": format!("{}-{:02}-{:02}", 1995 + rng.below(30), 1 + rng.below(12), 1 + rng.below(28)),
        "employee_count": rng.below(5000) + 5,
        "is_key_account": rng.below(5) == 0,
        "owner_id": owner,
        "department_id": dept,
    });
    if rng.below(3) == 0 {
        body["tags"] = json!([rng.pick(TAGS)]);
    }
    // Derived from the index, not the generator, so the rest of the data stays as before:
    // a spread of total amounts for the value classification, and every tenth customer in
    // the public pool (公海, no owner).
    body["total_amount"] = json!(((i * 7919) % 500) as i64 * 1_000_000);
    if i % 10 == 9 {
        body["owner_id"] = Json::Null;
    }
    (obj(body), owner, dept)
}

fn contact_body(rng: &mut Rng, customer_id: &str, owner: &str, dept: &str) -> Map<String, Json> {
    obj(json!({
        "customer_id": customer_id,
        "name": person(rng),
        "title": rng.pick(TITLES),
        "gender": rng.pick(&["male", "female"]),
        "mobile": mobile(rng),
        "is_key_person": rng.below(3) == 0,
        "birthday": format!("{}-{:02}-{:02}", 1960 + rng.below(40), 1 + rng.below(12), 1 + rng.below(28)),
        "owner_id": owner,
        "department_id": dept,
    }))
}

/// Benchmark dataset sizes (`demo-data --size`): customers, each with two contacts and five
/// follow-ups (issue 6: L = 1,000,000 customers, 2,000,000 contacts, 5,000,000 follow-ups).
pub fn size_customers(size: &str) -> Option<usize> {
    match size.to_ascii_uppercase().as_str() {
        "S" => Some(10_000),
        "M" => Some(100_000),
        "L" => Some(1_000_000),
        // A plain number sizes a small dataset of the same shape (tests, quick trials).
        other => other.parse().ok().filter(|n| *n > 0),
    }
}

/// Contacts and follow-ups per customer in a benchmark dataset.
pub const BULK_CONTACTS: usize = 2;
pub const BULK_FOLLOW_UPS: usize = 5;

const REGIONS: &[(&str, &str, &[&str])] = &[
    ("华北大区", "R-N", &["北京", "天津", "石家庄", "太原", "济南"]),
    ("华东大区", "R-E", &["上海", "杭州", "南京", "苏州", "合肥"]),
    ("华南大区", "R-S", &["广州", "深圳", "厦门", "南宁", "海口"]),
    ("西部大区", "R-W", &["成都", "重庆", "西安", "昆明", "兰州"]),
];
const SALES_PER_OFFICE: usize = 10;
const ACTIVITY_KINDS: &[&str] = &["call", "call", "visit", "email", "meeting", "note"];
const SUBJECTS: &[&str] = &[
    "电话回访",
    "上门拜访",
    "产品演示",
    "报价沟通",
    "合同洽谈",
    "售后回访",
    "需求调研",
    "节日问候",
];

/// The benchmark sales force: four regions of five offices with ten salespeople each (200
/// users) under the demo headquarters, created once. Returns their (owner, department) pairs.
async fn bench_sales_force(engine: &Engine, config: &Config) -> anyhow::Result<Vec<(String, String)>> {
    let hq = department(engine, "总部", "HQ", None, false).await?;
    let mut owners = Vec::new();
    for (r, (region, code, offices)) in REGIONS.iter().enumerate() {
        let region_id = department(engine, region, code, Some(&hq), false).await?;
        for (o, office) in offices.iter().enumerate() {
            let office_id = department(
                engine,
                &format!("{office}销售部"),
                &format!("{code}-{}", o + 1),
                Some(&region_id),
                false,
            )
            .await?;
            for n in 0..SALES_PER_OFFICE {
                let username = format!("bench_r{}o{}s{:02}", r + 1, o + 1, n + 1);
                let id = match find_one(engine, "user", "username", &username).await? {
                    Some(id) => id,
                    None => {
                        create_user(
                            engine,
                            config,
                            &NewUser {
                                username: &username,
                                display_name: &format!("{office}销售{:02}", n + 1),
                                email: Some(&format!("{username}@demo.guanxi.local")),
                                password: DEMO_PASSWORD,
                                roles: &["salesperson"],
                                department_id: Some(&office_id),
                                manager_id: None,
                            },
                        )
                        .await?
                    }
                };
                owners.push((id, office_id.clone()));
            }
        }
    }
    Ok(owners)
}

fn follow_up_body(rng: &mut Rng, customer_id: &str, owner: &str, dept: &str) -> Map<String, Json> {
    obj(json!({
        "customer_id": customer_id,
        "kind": rng.pick(ACTIVITY_KINDS),
        "subject": rng.pick(SUBJECTS),
        "occurred_at": format!(
            "20{:02}-{:02}-{:02}T{:02}:{:02}:00Z",
            20 + rng.below(6), 1 + rng.below(12), 1 + rng.below(28), 1 + rng.below(10), rng.below(60)
        ),
        "content": format!("与客户沟通{}，客户反馈良好。", rng.pick(SUBJECTS)),
        "owner_id": owner,
        "department_id": dept,
    }))
}

/// The fast path for benchmark datasets: `customers` customers with two contacts and five
/// follow-ups each, owned by a 200-strong sales force in a department tree (plus the demo
/// users), written through the engine's `prepare_batch` and `write_batch` (one transaction per
/// `batch` customers and one per their contacts and their follow-ups, multi-row statements
/// inside), so numbering, validation, audit and the search index are the same as for single
/// creates. A producer task generates and validates the next batch (the rows know their ids
/// before they are written, so contacts can name their customers) while the database writes
/// this one. Customers stay in their initial state (no `sign` transitions). Reproducible for a
/// given seed on an empty database. `progress` is called after each batch with the customers
/// written so far.
pub async fn generate_bulk(
    engine: &Engine,
    config: &Config,
    customers: usize,
    seed: u64,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<DemoSummary> {
    let (mut summary, mut sales_owners) = organisation(engine, config).await?;
    sales_owners.extend(bench_sales_force(engine, config).await?);
    let batch = batch.max(1);
    // One batch waits while the next is prepared: the producer stays at most a batch ahead.
    let (ready, mut prepared) = tokio::sync::mpsc::channel(1);
    let producer = tokio::spawn(prepare_bulk(
        engine.clone(),
        customers,
        seed,
        batch,
        sales_owners,
        ready,
    ));
    let mut chunks: usize = 0;
    while let Some(next) = prepared.recv().await {
        let [customers, contacts, follow_ups] = next;
        for (written, count) in [
            (customers, &mut summary.customers),
            (contacts, &mut summary.contacts),
            (follow_ups, &mut summary.follow_ups),
        ] {
            for result in engine.write_batch(written, SearchEntries::Immediate).await? {
                result?;
                *count += 1;
            }
        }
        // Statistics after the 1st, 2nd, 4th, 8th… chunk, i.e. whenever the data has doubled:
        // the planner then knows the new tables (PostgreSQL; see `Db::refresh_statistics`).
        chunks += 1;
        if chunks.is_power_of_two() {
            engine.db().refresh_statistics().await?;
        }
        progress(summary.customers);
    }
    // The producer's own failure (a generated row the engine refused) explains an early end.
    producer.await??;
    Ok(summary)
}

/// The producer of [`generate_bulk`]: each batch's customers, contacts and follow-ups,
/// generated in a fixed order from one seeded generator and validated, sent in order.
async fn prepare_bulk(
    engine: Engine,
    customers: usize,
    seed: u64,
    batch: usize,
    sales_owners: Vec<(String, String)>,
    ready: tokio::sync::mpsc::Sender<[PreparedBatch; 3]>,
) -> anyhow::Result<()> {
    let actor = Actor::system();
    let mut rng = Rng::new(seed);
    let mut start = 0;
    while start < customers {
        let end = (start + batch).min(customers);
        let mut bodies = Vec::with_capacity(end - start);
        let mut owners = Vec::with_capacity(end - start);
        for i in start..end {
            let (body, owner, dept) = customer_body(&mut rng, i, &sales_owners);
            bodies.push(body);
            owners.push((owner, dept));
        }
        let customers_ready = engine.prepare_batch(&actor, "customer", &bodies).await?;
        let mut contacts = Vec::with_capacity(BULK_CONTACTS * bodies.len());
        let mut follow_ups = Vec::with_capacity(BULK_FOLLOW_UPS * bodies.len());
        for (i, (owner, dept)) in owners.iter().enumerate() {
            let Some(id) = customers_ready.id(i) else {
                let reason = customers_ready.error(i).map(ToString::to_string).unwrap_or_default();
                anyhow::bail!("generated customer {} is invalid: {reason}", start + i + 1);
            };
            for _ in 0..BULK_CONTACTS {
                contacts.push(contact_body(&mut rng, id, owner, dept));
            }
            for _ in 0..BULK_FOLLOW_UPS {
                follow_ups.push(follow_up_body(&mut rng, id, owner, dept));
            }
        }
        let contacts_ready = engine.prepare_batch(&actor, "contact", &contacts).await?;
        let follow_ups_ready = engine.prepare_batch(&actor, "follow_up", &follow_ups).await?;
        if ready
            .send([customers_ready, contacts_ready, follow_ups_ready])
            .await
            .is_err()
        {
            // The writer stopped (its own error ends the load).
            return Ok(());
        }
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use guanxi_store::regions::{EMBEDDED, RegionIndex, parse};

    #[test]
    fn demo_addresses_are_real_regions() {
        let index = RegionIndex::new(parse(EMBEDDED).unwrap_or_default());
        for (p, c, d) in PLACES {
            assert!(index.check(Some(p), Some(c), Some(d)).is_empty(), "{p} {c} {d}");
        }
    }
}
