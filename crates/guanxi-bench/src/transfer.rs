//! Timed one-off jobs: a csv import (upload, dry run, commit) and exports of every customer to
//! csv and xlsx, through the same HTTP API and background jobs a user's browser uses. Each is run
//! once and timed from the request that starts it to the moment its job reports `done`; the
//! server's peak memory is read after each step.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::{Session, memory_kib};

/// Jobs this module runs, in the order they run when several are asked for.
pub const JOBS: &[&str] = &["import_csv", "export_csv", "export_xlsx"];

/// Fields of the exports (the ones the import fills, and the number).
const EXPORT_FIELDS: [&str; 5] = ["number", "name", "phone", "city", "registered_capital"];

/// One timed step of a job.
#[derive(Debug)]
pub struct Step {
    pub job: String,
    pub step: String,
    pub seconds: f64,
    pub rows: Option<u64>,
    pub peak_rss_mib: Option<f64>,
    pub detail: String,
}

/// The csv the import uploads: `rows` customers at real places (addresses are checked against
/// the region list), 3% of them with an invalid phone number, which the dry run must report.
/// Names carry the run's stamp so that repeated runs do not collide as duplicates.
pub fn import_csv(rows: u64, stamp: &str) -> (Vec<u8>, u64) {
    const PLACES: &[(&str, &str)] = &[
        ("河南省", "郑州市"),
        ("广东省", "深圳市"),
        ("浙江省", "杭州市"),
        ("四川省", "成都市"),
        ("湖北省", "武汉市"),
        ("江苏省", "南京市"),
    ];
    let mut csv = String::with_capacity(usize::try_from(rows).unwrap_or(0) * 80);
    csv.push_str("客户名称,客户类型,联系电话,省份,城市,注册资本,成立日期\n");
    let mut bad = 0;
    for i in 0..rows {
        let broken = i % 100 < 3;
        if broken {
            bad += 1;
        }
        let phone = if broken {
            "12345".to_owned()
        } else {
            format!("137{:08}", i % 100_000_000)
        };
        let (province, city) = PLACES[(i % PLACES.len() as u64) as usize];
        csv.push_str(&format!(
            "导入{stamp}客户{i:07},企业,{phone},{province},{city},{}.{:02},2020-01-{:02}\n",
            i % 100_000,
            i % 100,
            i % 28 + 1
        ));
    }
    (csv.into_bytes(), bad)
}

impl Session {
    async fn send_json(&self, method: Method, path: &str, body: &Json) -> anyhow::Result<Json> {
        let res = self.request(method, path).json(body).send().await?;
        let status = res.status();
        let answer: Json = res.json().await.unwrap_or(Json::Null);
        if !status.is_success() {
            bail!("{path} failed ({status}): {answer}");
        }
        Ok(answer)
    }

    /// Polls a job every 100 ms until it is done; its result.
    async fn wait_for_job(&self, id: &str) -> anyhow::Result<Json> {
        loop {
            let job = self.get_json(&format!("/api/v1/jobs/{id}"), &[]).await?;
            match job.pointer("/data/status").and_then(Json::as_str) {
                Some("done") => return Ok(job.pointer("/data/result").cloned().unwrap_or(Json::Null)),
                Some("failed") => bail!("job {id} failed: {job}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Starts a job with `body` and waits for it; its result and the time taken.
    async fn timed_job(&self, path: &str, body: &Json) -> anyhow::Result<(Json, f64)> {
        let t = Instant::now();
        let started = self.send_json(Method::POST, path, body).await?;
        let job = started
            .pointer("/data/job_id")
            .and_then(Json::as_str)
            .with_context(|| format!("no job_id from {path}: {started}"))?
            .to_owned();
        let result = self.wait_for_job(&job).await?;
        Ok((result, t.elapsed().as_secs_f64()))
    }
}

fn count(result: &Json, pointer: &str) -> Option<u64> {
    result.pointer(pointer).and_then(Json::as_u64)
}

/// Runs the named jobs in the order given and returns their steps. The order matters: exports
/// listed before `import_csv` export the dataset as generated (L: the 1,000,000 rows),
/// after it the imported rows as well.
pub async fn run(session: &Session, jobs: &[String], import_rows: u64, pid: Option<u32>) -> anyhow::Result<Vec<Step>> {
    let peak = || pid.and_then(memory_kib).map(|(hwm, _)| hwm as f64 / 1024.0);
    let mut steps = Vec::new();
    for job in jobs {
        match job.as_str() {
            "import_csv" => {
                let stamp = format!("{}", std::process::id());
                let (bytes, bad) = import_csv(import_rows, &stamp);
                let size = bytes.len();
                let t = Instant::now();
                let part = reqwest::multipart::Part::bytes(bytes).file_name("bench.csv");
                let res = session
                    .request(Method::POST, "/api/v1/records/customer/import")
                    .multipart(reqwest::multipart::Form::new().part("file", part))
                    .send()
                    .await?;
                let status = res.status();
                let uploaded: Json = res.json().await.unwrap_or(Json::Null);
                if !status.is_success() {
                    bail!("upload of {size} bytes failed ({status}): {uploaded}");
                }
                let id = uploaded
                    .pointer("/data/id")
                    .and_then(Json::as_str)
                    .context("no import id")?
                    .to_owned();
                steps.push(Step {
                    job: job.clone(),
                    step: "upload".into(),
                    seconds: t.elapsed().as_secs_f64(),
                    rows: Some(import_rows),
                    peak_rss_mib: peak(),
                    detail: format!("{:.1} MB csv, {bad} rows with a bad phone", size as f64 / 1e6),
                });
                let body = json!({"duplicate_policy": "create"});
                for step in ["dry-run", "commit"] {
                    let (result, seconds) = session
                        .timed_job(&format!("/api/v1/imports/{id}/{step}"), &body)
                        .await?;
                    let counts = result.get("counts").cloned().unwrap_or(Json::Null);
                    steps.push(Step {
                        job: job.clone(),
                        step: step.into(),
                        seconds,
                        rows: count(&counts, "/processed"),
                        peak_rss_mib: peak(),
                        detail: counts.to_string(),
                    });
                }
            }
            "export_csv" | "export_xlsx" => {
                let format = job.trim_start_matches("export_");
                let (result, seconds) = session
                    .timed_job(
                        "/api/v1/records/customer/export",
                        &json!({"format": format, "fields": EXPORT_FIELDS}),
                    )
                    .await?;
                steps.push(Step {
                    job: job.clone(),
                    step: "export".into(),
                    seconds,
                    rows: count(&result, "/rows"),
                    peak_rss_mib: peak(),
                    detail: format!("{:.1} MB", count(&result, "/size_bytes").unwrap_or(0) as f64 / 1e6),
                });
            }
            _ => {}
        }
    }
    Ok(steps)
}

/// The steps as a Markdown table.
pub fn markdown(steps: &[Step]) -> String {
    let mut s = String::from("\n| job | step | seconds | rows | rows/s | server peak RSS MiB | detail |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---|\n");
    for st in steps {
        let rate = match st.rows {
            Some(r) if st.seconds > 0.0 => format!("{:.0}", r as f64 / st.seconds),
            _ => "-".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {:.1} | {} | {} | {} | {} |\n",
            st.job,
            st.step,
            st.seconds,
            st.rows.map_or("-".into(), |r| r.to_string()),
            rate,
            st.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0}")),
            st.detail
        ));
    }
    s
}
