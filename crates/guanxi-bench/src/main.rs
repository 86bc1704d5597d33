//! `guanxi-bench`: drives the HTTP API of a running Guanxi server over loopback with N concurrent
//! connections per scenario and prints requests/s, latency percentiles, errors and the server's
//! peak resident memory (VmHWM); times one-off import and export jobs (`--jobs`, transfer.rs).
//! Writes a Markdown table and a JSON file. See docs/BENCHMARKS.md.

mod transfer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use reqwest::{Client, Method};
use serde_json::{Value as Json, json};

const ALL: &[&str] = &[
    "healthz",
    "get_by_id",
    "list_page",
    "filtered_sorted",
    "search_chinese",
    "search_pinyin",
    "create",
    "update",
    "list_salesperson",
];

#[derive(Parser, Debug)]
#[command(name = "guanxi-bench", about = "HTTP load tool for a running Guanxi server")]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// User the scenarios run as (demo data: demo_admin).
    #[arg(long, default_value = "demo_admin")]
    user: String,
    /// Password of both users.
    #[arg(long, default_value = "Demo#Guanxi2026")]
    password: String,
    /// User of the `list_salesperson` scenario (role salesperson, data scope "department").
    #[arg(long, default_value = "demo_sales1")]
    sales_user: String,
    /// Concurrent connections (one request in flight per connection).
    #[arg(short, long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds per scenario.
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before each scenario.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Comma-separated scenarios (default: all, unless --jobs is given).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Comma-separated one-off jobs to time after the scenarios, run in the order given:
    /// import_csv, export_csv, export_xlsx (exports of every customer, five fields).
    #[arg(long, value_delimiter = ',')]
    jobs: Vec<String>,
    /// Rows of the csv that `import_csv` generates and imports (3% with a bad phone). Above
    /// ~900,000 rows raise the server's `max_upload_bytes` (GUANXI_MAX_UPLOAD_BYTES).
    #[arg(long, default_value_t = 100_000)]
    import_rows: u64,
    /// Pid of the server (default: the process listening on the URL's port, found through /proc).
    #[arg(long)]
    pid: Option<u32>,
    /// Chinese search terms (default: 2–4 character substrings of the sampled customers' names).
    #[arg(long, value_delimiter = ',')]
    chinese: Vec<String>,
    /// Pinyin-initials search terms (default: initials of the demo data's brand + trade names).
    #[arg(long, value_delimiter = ',')]
    pinyin: Vec<String>,
    /// Label of the run in the report (e.g. "SQLite, M").
    #[arg(long, default_value = "")]
    label: String,
    /// Markdown output.
    #[arg(long, default_value = "bench-results.md")]
    markdown: PathBuf,
    /// JSON output.
    #[arg(long, default_value = "bench-results.json")]
    json: PathBuf,
}

/// A signed-in HTTP client.
#[derive(Clone)]
struct Session {
    client: Client,
    base: String,
    csrf: String,
}

impl Session {
    async fn login(base: &str, user: &str, password: &str, connections: usize) -> anyhow::Result<Session> {
        let client = Client::builder()
            .cookie_store(true)
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(30))
            .build()?;
        let res = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"login": user, "password": password}))
            .send()
            .await
            .context("cannot reach the server")?;
        let status = res.status();
        let body: Json = res.json().await.unwrap_or(Json::Null);
        if !status.is_success() {
            bail!("sign-in as {user} failed ({status}): {body}");
        }
        let csrf = body
            .pointer("/data/csrf_token")
            .and_then(Json::as_str)
            .context("no csrf_token in the sign-in answer")?
            .to_owned();
        Ok(Session {
            client,
            base: base.to_owned(),
            csrf,
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.client.request(method.clone(), format!("{}{path}", self.base));
        if method == Method::GET {
            rb
        } else {
            rb.header("X-CSRF-Token", &self.csrf)
        }
    }

    async fn get_json(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Json> {
        let res = self.request(Method::GET, path).query(query).send().await?;
        let status = res.status();
        let body: Json = res.json().await.unwrap_or(Json::Null);
        if !status.is_success() {
            bail!("GET {path} failed ({status}): {body}");
        }
        Ok(body)
    }
}

/// What the scenarios draw from: customers of a first list page.
struct Sample {
    ids: Vec<String>,
    chinese: Vec<String>,
    pinyin: Vec<String>,
}

fn chinese_terms(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let chars: Vec<char> = name.chars().filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c)).collect();
        // Skip the city prefix and the legal-form suffix where there is room: brand and trade.
        let len = 2 + i % 3;
        if chars.len() < len {
            continue;
        }
        let start = if chars.len() >= len + 2 {
            2.min(chars.len() - len)
        } else {
            0
        };
        let term: String = chars[start..start + len].iter().collect();
        if !out.contains(&term) {
            out.push(term);
        }
        if out.len() >= 50 {
            break;
        }
    }
    for t in ["中平", "华信", "能源"] {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    out
}

async fn sample(session: &Session, args: &Args) -> anyhow::Result<Sample> {
    let body = session
        .get_json(
            "/api/v1/records/customer",
            // The dataset's first customers by number: the same sample on every run, whatever
            // earlier runs' `create` scenario added (those get higher numbers).
            &[
                ("limit", "500".to_owned()),
                ("total", "none".to_owned()),
                ("sort", "number".to_owned()),
            ],
        )
        .await?;
    let records = body.get("data").and_then(Json::as_array).cloned().unwrap_or_default();
    let ids: Vec<String> = records
        .iter()
        .filter_map(|r| r.get("id").and_then(Json::as_str).map(str::to_owned))
        .collect();
    if ids.is_empty() {
        bail!("no customers: load a dataset first (guanxi demo-data --size S)");
    }
    let names: Vec<String> = records
        .iter()
        .filter_map(|r| r.get("name").and_then(Json::as_str).map(str::to_owned))
        .collect();
    let chinese = if args.chinese.is_empty() {
        chinese_terms(&names)
    } else {
        args.chinese.clone()
    };
    let pinyin = if args.pinyin.is_empty() {
        // 中平能源, 华信科技, 申达物流, 恒通商贸, 鑫源投资, 宏远机械, 天成建设, 瑞丰能源, 金桥科技, 长城物流
        [
            "zpny", "hxkj", "sdwl", "htsm", "xytz", "hyjx", "tcjs", "rfny", "jqkj", "ccwl",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    } else {
        args.pinyin.clone()
    };
    Ok(Sample { ids, chinese, pinyin })
}

/// Pid of the process listening on `port` (Linux: /proc/net/tcp{,6} then the fds in /proc/*/fd).
fn find_listener(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != "0A" {
                continue;
            }
            let local_port = cols[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.push(format!("socket:[{}]", cols[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| target.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// (VmHWM, VmRSS) of `pid` in KiB.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// One request of a scenario; `Ok(())` when the answer was a success.
async fn one(
    scenario: &str,
    session: &Session,
    sample: &Sample,
    worker: usize,
    n: u64,
    versions: &mut [(String, i64)],
) -> anyhow::Result<()> {
    let pick = |items: &[String]| items[(worker.wrapping_mul(7919) + n as usize) % items.len()].clone();
    let (method, path, query, body): (Method, String, Vec<(&str, String)>, Option<Json>) = match scenario {
        "healthz" => (Method::GET, "/healthz".into(), vec![], None),
        "get_by_id" => (
            Method::GET,
            format!("/api/v1/records/customer/{}", pick(&sample.ids)),
            vec![],
            None,
        ),
        "list_page" | "list_salesperson" => (
            Method::GET,
            "/api/v1/records/customer".into(),
            vec![("limit", "20".into())],
            None,
        ),
        "filtered_sorted" => {
            let provinces = ["广东省", "北京市", "河南省", "浙江省", "上海市", "四川省"];
            let types = ["enterprise", "government", "distributor"];
            let filter = json!({"and": [
                {"field": "province", "op": "eq", "value": provinces[(worker + n as usize) % provinces.len()]},
                {"field": "customer_type", "op": "eq", "value": types[(worker + n as usize) % types.len()]},
                {"field": "created_at", "op": "between", "value": ["2020-01-01", "2100-01-01"]},
            ]});
            (
                Method::GET,
                "/api/v1/records/customer".into(),
                vec![
                    ("limit", "20".into()),
                    ("filter", filter.to_string()),
                    ("sort", "-registered_capital".into()),
                ],
                None,
            )
        }
        "search_chinese" => (
            Method::GET,
            "/api/v1/records/customer".into(),
            vec![("limit", "20".into()), ("q", pick(&sample.chinese))],
            None,
        ),
        "search_pinyin" => (
            Method::GET,
            "/api/v1/records/customer".into(),
            vec![("limit", "20".into()), ("q", pick(&sample.pinyin))],
            None,
        ),
        "create" => (
            Method::POST,
            // Bench customers share an address and a name pattern by design: confirm past the
            // duplicate warning, as a user would.
            "/api/v1/records/customer?confirm_duplicates=true".into(),
            vec![],
            Some(json!({
                "name": format!("压测客户{worker}-{n}-{}", std::process::id()),
                "customer_type": "enterprise",
                "province": "河南省", "city": "郑州市", "district": "金水区",
                "phone": format!("139{:08}", (worker as u64 * 1_000_000 + n) % 100_000_000),
                "registered_capital": 10_000_000,
            })),
        ),
        "update" => {
            let slot = (n as usize) % versions.len();
            let (id, version) = versions[slot].clone();
            (
                Method::PATCH,
                format!("/api/v1/records/customer/{id}"),
                vec![],
                Some(json!({"version": version, "employee_count": 100 + (n % 1000)})),
            )
        }
        other => bail!("unknown scenario {other}"),
    };
    let mut rb = session.request(method, &path).query(&query);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let res = rb.send().await?;
    let status = res.status();
    let bytes = res.bytes().await?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        bail!("{status}: {}", text.chars().take(300).collect::<String>());
    }
    if scenario == "update" {
        let slot = (n as usize) % versions.len();
        let v: Json = serde_json::from_slice(&bytes)?;
        if let Some(version) = v.pointer("/data/version").and_then(Json::as_i64) {
            versions[slot].1 = version;
        }
    }
    Ok(())
}

/// Versions of the customers a worker updates (disjoint per worker, so no conflicts).
async fn read_versions(
    session: &Session,
    sample: &Sample,
    worker: usize,
    workers: usize,
) -> anyhow::Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for id in sample.ids.iter().skip(worker).step_by(workers.max(1)).take(4) {
        let body = session.get_json(&format!("/api/v1/records/customer/{id}"), &[]).await?;
        let version = body
            .pointer("/data/version")
            .and_then(Json::as_i64)
            .context("no version")?;
        out.push((id.clone(), version));
    }
    if out.is_empty() {
        bail!("not enough customers for {workers} update workers");
    }
    Ok(out)
}

#[derive(Debug)]
struct Outcome {
    scenario: String,
    requests: u64,
    errors: u64,
    seconds: f64,
    rps: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    peak_rss_mib: Option<f64>,
    rss_mib: Option<f64>,
    first_error: Option<String>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

async fn run_scenario(
    scenario: &str,
    session: &Session,
    sample: &Arc<Sample>,
    args: &Args,
    pid: Option<u32>,
) -> anyhow::Result<Outcome> {
    let workers = args.connections.max(1);
    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let measure = Duration::from_secs_f64(args.duration.max(0.1));
    let counter = Arc::new(AtomicU64::new(0));
    let begin = Instant::now() + Duration::from_millis(200);
    let start_measure = begin + warmup;
    let stop = start_measure + measure;
    let mut handles = Vec::with_capacity(workers);
    for worker in 0..workers {
        let session = session.clone();
        let sample = Arc::clone(sample);
        let scenario = scenario.to_owned();
        let counter = Arc::clone(&counter);
        handles.push(tokio::spawn(async move {
            let mut result = WorkerResult::default();
            let mut versions = if scenario == "update" {
                match read_versions(&session, &sample, worker, workers).await {
                    Ok(v) => v,
                    Err(e) => {
                        result.errors += 1;
                        result.first_error = Some(e.to_string());
                        return result;
                    }
                }
            } else {
                Vec::new()
            };
            tokio::time::sleep_until(begin.into()).await;
            loop {
                let t0 = Instant::now();
                if t0 >= stop {
                    break;
                }
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let outcome = one(&scenario, &session, &sample, worker, n, &mut versions).await;
                let t1 = Instant::now();
                if t0 < start_measure || t1 > stop {
                    continue;
                }
                match outcome {
                    Ok(()) => result.latencies_us.push(t1.duration_since(t0).as_micros() as u64),
                    Err(e) => {
                        result.errors += 1;
                        if result.first_error.is_none() {
                            result.first_error = Some(e.to_string());
                        }
                    }
                }
            }
            result
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for h in handles {
        let r = h.await?;
        latencies.extend(r.latencies_us);
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    latencies.sort_unstable();
    let seconds = measure.as_secs_f64();
    let mem = pid.and_then(memory_kib);
    Ok(Outcome {
        scenario: scenario.to_owned(),
        requests: latencies.len() as u64,
        errors,
        seconds,
        rps: latencies.len() as f64 / seconds,
        p50_ms: percentile(&latencies, 50.0),
        p95_ms: percentile(&latencies, 95.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().map_or(0.0, |v| *v as f64 / 1000.0),
        peak_rss_mib: mem.map(|(hwm, _)| hwm as f64 / 1024.0),
        rss_mib: mem.map(|(_, rss)| rss as f64 / 1024.0),
        first_error,
    })
}

fn markdown(args: &Args, pid: Option<u32>, outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Run {}: {} connections, {} s per scenario (after {} s warm-up), server pid {}\n\n",
        if args.label.is_empty() { "-" } else { &args.label },
        args.connections,
        args.duration,
        args.warmup,
        pid.map_or("unknown".to_owned(), |p| p.to_string())
    ));
    s.push_str("| scenario | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | server peak RSS MiB |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for o in outcomes {
        s.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} |\n",
            o.scenario,
            o.rps,
            o.p50_ms,
            o.p95_ms,
            o.p99_ms,
            o.max_ms,
            o.errors,
            o.peak_rss_mib.map_or("-".to_owned(), |m| format!("{m:.0}"))
        ));
    }
    s
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = args.url.trim_end_matches('/').to_owned();
    let scenarios: Vec<String> = if args.scenarios.is_empty() && args.jobs.is_empty() {
        ALL.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.scenarios.clone()
    };
    for s in &scenarios {
        if !ALL.contains(&s.as_str()) {
            bail!("unknown scenario {s}; known: {}", ALL.join(", "));
        }
    }
    for j in &args.jobs {
        if !transfer::JOBS.contains(&j.as_str()) {
            bail!("unknown job {j}; known: {}", transfer::JOBS.join(", "));
        }
    }
    let port = reqwest::Url::parse(&base)?.port_or_known_default().unwrap_or(80);
    let pid = args.pid.or_else(|| find_listener(port));
    if pid.is_none() {
        eprintln!("warning: server pid not found (pass --pid); memory is not reported");
    }
    let admin = Session::login(&base, &args.user, &args.password, args.connections).await?;
    let sample = Arc::new(sample(&admin, &args).await?);
    eprintln!(
        "sampled {} customers, {} Chinese terms (e.g. {}), {} pinyin terms",
        sample.ids.len(),
        sample.chinese.len(),
        sample.chinese.iter().take(5).cloned().collect::<Vec<_>>().join(" "),
        sample.pinyin.len()
    );
    let mut outcomes = Vec::new();
    for scenario in &scenarios {
        let session = if scenario == "list_salesperson" {
            Session::login(&base, &args.sales_user, &args.password, args.connections).await?
        } else {
            admin.clone()
        };
        let o = run_scenario(scenario, &session, &sample, &args, pid).await?;
        eprintln!(
            "{:<18} {:>8.0} req/s  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  errors {}  peak RSS {}",
            o.scenario,
            o.rps,
            o.p50_ms,
            o.p95_ms,
            o.p99_ms,
            o.errors,
            o.peak_rss_mib.map_or("-".to_owned(), |m| format!("{m:.0} MiB"))
        );
        if let Some(e) = &o.first_error {
            eprintln!("  first error: {e}");
        }
        outcomes.push(o);
    }
    let steps = transfer::run(&admin, &args.jobs, args.import_rows, pid).await?;
    for st in &steps {
        eprintln!("{:<12} {:<8} {:>8.1} s  {}", st.job, st.step, st.seconds, st.detail);
    }
    let mut md = markdown(&args, pid, &outcomes);
    if !steps.is_empty() {
        md.push_str(&transfer::markdown(&steps));
    }
    print!("{md}");
    std::fs::write(&args.markdown, &md).with_context(|| format!("cannot write {}", args.markdown.display()))?;
    let json = json!({
        "label": args.label,
        "url": base,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "server_pid": pid,
        "scenarios": outcomes.iter().map(|o| json!({
            "scenario": o.scenario,
            "requests": o.requests,
            "errors": o.errors,
            "seconds": o.seconds,
            "requests_per_s": o.rps,
            "p50_ms": o.p50_ms,
            "p95_ms": o.p95_ms,
            "p99_ms": o.p99_ms,
            "max_ms": o.max_ms,
            "server_peak_rss_mib": o.peak_rss_mib,
            "server_rss_mib": o.rss_mib,
            "first_error": o.first_error,
        })).collect::<Vec<_>>(),
        "jobs": steps.iter().map(|st| json!({
            "job": st.job,
            "step": st.step,
            "seconds": st.seconds,
            "rows": st.rows,
            "server_peak_rss_mib": st.peak_rss_mib,
            "detail": st.detail,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(&args.json, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("cannot write {}", args.json.display()))?;
    if outcomes.iter().any(|o| o.errors > 0) {
        eprintln!("some requests failed (see the errors column)");
    }
    Ok(())
}
