//! `mino eval`: a run (or an import) judged against thresholds, for CI.
//!
//! It talks to a Mino server through the REST API with an API key (scopes
//! `read` and `execute`): starts a run of a batch, or imports a file of
//! values extracted elsewhere; follows it (a progress bar on a terminal,
//! plain lines otherwise); prints each field's accuracy, precision, recall
//! and F1 with intervals; writes JUnit XML; and exits 0 when every
//! threshold holds, 1 when one fails, 2 on an error (bad arguments, an
//! unreachable server, a refused request, a run that failed or was
//! cancelled).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const USAGE: &str = "\
Usage: mino eval --url URL --key KEY --batch ID
                 [--mode test|production] [--sample N | --set NAME]
                 [--instruction-version V]
                 [--import FILE [--import-key row|row_id|url]]
                 [--min-accuracy X] [--min-field FIELD=X ...]
                 [--max-regression X --against production|EXECUTION_ID]
                 [--junit FILE] [--json] [--timeout SECS]

Starts a run of the batch (a test of --sample rows by default; or imports
FILE, CSV or JSON Lines, as a run), waits for it, prints each field's
accuracy, precision, recall and F1 with 95% intervals, and checks the
thresholds (shares from 0 to 1):
  --min-accuracy X       the run's accuracy is at least X
  --min-field FIELD=X    FIELD's accuracy is at least X (repeatable)
  --max-regression X     the run's accuracy is at most X below the run it is
                         compared --against: the batch's latest completed
                         production run, or the execution with that id;
                         measured on the rows both runs judged
--junit writes one test case per field and per threshold. --key may also
come from MINO_API_KEY.

Exit status: 0 every threshold holds, 1 a threshold fails, 2 an error.
";

/// What went wrong, with the exit status it means.
#[derive(Debug)]
pub struct Failure {
    pub status: u8,
    pub message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        status: 2,
        message: format!("{}\n\n{USAGE}", message.into()),
    }
}

fn error(message: impl Into<String>) -> Failure {
    Failure {
        status: 2,
        message: message.into(),
    }
}

#[derive(Debug, Default, Clone)]
pub struct Options {
    pub url: String,
    pub key: String,
    pub batch: String,
    pub mode: String,
    pub sample: Option<u32>,
    /// Run the rows of the batch's evaluation set of this name (its latest
    /// version) instead of a sample.
    pub set: Option<String>,
    pub instruction_version: Option<i32>,
    pub import: Option<String>,
    pub import_key: String,
    pub min_accuracy: Option<f64>,
    pub min_field: Vec<(String, f64)>,
    pub max_regression: Option<f64>,
    pub against: Option<String>,
    pub junit: Option<String>,
    pub json: bool,
    pub timeout: Duration,
}

fn share(flag: &str, raw: &str) -> Result<f64, Failure> {
    match raw.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(usage(format!(
            "{flag} takes a share from 0 to 1, such as 0.9 (got {raw:?})."
        ))),
    }
}

/// Reads the arguments after `eval`.
pub fn parse(args: &[String]) -> Result<Options, Failure> {
    let mut o = Options {
        mode: "test".into(),
        import_key: "row".into(),
        timeout: Duration::from_secs(3600),
        key: std::env::var("MINO_API_KEY").unwrap_or_default(),
        ..Default::default()
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| usage(format!("{flag} needs a value.")))
        };
        match flag.as_str() {
            "--url" => o.url = value()?.trim_end_matches('/').to_string(),
            "--key" => o.key = value()?,
            "--batch" => o.batch = value()?,
            "--mode" => {
                o.mode = value()?;
                if o.mode != "test" && o.mode != "production" {
                    return Err(usage("--mode is test or production."));
                }
            }
            "--sample" => {
                let v = value()?;
                o.sample =
                    Some(v.parse().map_err(|_| {
                        usage(format!("--sample takes a number of rows (got {v:?})."))
                    })?);
            }
            "--instruction-version" => {
                let v = value()?;
                o.instruction_version = Some(v.parse().map_err(|_| {
                    usage(format!(
                        "--instruction-version takes a version number (got {v:?})."
                    ))
                })?);
            }
            "--set" => o.set = Some(value()?),
            "--import" => o.import = Some(value()?),
            "--import-key" => o.import_key = value()?,
            "--min-accuracy" => o.min_accuracy = Some(share(flag, &value()?)?),
            "--min-field" => {
                let v = value()?;
                let (f, x) = v.split_once('=').ok_or_else(|| {
                    usage(format!(
                        "--min-field takes FIELD=SHARE, such as price=0.95 (got {v:?})."
                    ))
                })?;
                o.min_field.push((f.trim().to_string(), share(flag, x)?));
            }
            "--max-regression" => o.max_regression = Some(share(flag, &value()?)?),
            "--against" => o.against = Some(value()?),
            "--junit" => o.junit = Some(value()?),
            "--json" => o.json = true,
            "--timeout" => {
                let v = value()?;
                o.timeout = Duration::from_secs(
                    v.parse()
                        .map_err(|_| usage(format!("--timeout takes seconds (got {v:?}).")))?,
                );
            }
            "--help" | "-h" => {
                return Err(Failure {
                    status: 0,
                    message: USAGE.into(),
                })
            }
            other => return Err(usage(format!("Unknown option {other:?}."))),
        }
    }
    for (name, v) in [("--url", &o.url), ("--key", &o.key), ("--batch", &o.batch)] {
        if v.is_empty() {
            return Err(usage(format!("{name} is required.")));
        }
    }
    if o.max_regression.is_some() != o.against.is_some() {
        return Err(usage("--max-regression and --against go together."));
    }
    if o.set.is_some() && (o.sample.is_some() || o.import.is_some()) {
        return Err(usage(
            "--set names the rows to run: leave out --sample and --import.",
        ));
    }
    Ok(o)
}

struct Api {
    client: reqwest::Client,
    url: String,
    key: String,
}

impl Api {
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let res = req
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| error(format!("Mino at {} did not answer: {e}", self.url)))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let why = body["details"]["fields"][0]["message"]
                .as_str()
                .or_else(|| body["error"].as_str())
                .unwrap_or("no reason given");
            return Err(error(format!("Mino refused ({status}): {why}")));
        }
        Ok(body)
    }
    async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.send(self.client.get(format!("{}/api/v1{path}", self.url)))
            .await
    }
}

/// One threshold's outcome.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// Runs `mino eval` with the arguments after `eval`; returns the exit
/// status and writes what it tells to `out`.
pub async fn run(args: &[String], out: &mut (dyn Write + Send)) -> u8 {
    match eval(args, out).await {
        Ok(status) => status,
        Err(f) => {
            let _ = writeln!(out, "{}", f.message);
            f.status
        }
    }
}

async fn eval(args: &[String], out: &mut (dyn Write + Send)) -> Result<u8, Failure> {
    let o = parse(args)?;
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| error(e.to_string()))?,
        url: o.url.clone(),
        key: o.key.clone(),
    };
    // Start the run, or import the file.
    let started = match &o.import {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| error(format!("{path}: {e}")))?;
            let kind = if path.ends_with(".jsonl") || path.ends_with(".ndjson") {
                "application/x-ndjson"
            } else {
                "text/csv"
            };
            let name = std::path::Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            api.send(
                api.client
                    .post(format!("{}/api/v1/batches/{}/imports", o.url, o.batch))
                    .query(&[("key", o.import_key.as_str()), ("name", name.as_str())])
                    .header("content-type", kind)
                    .body(bytes),
            )
            .await?
        }
        None => {
            let mut body = json!({"mode": o.mode});
            if let Some(n) = o.sample {
                body["sample_size"] = json!(n);
            }
            if let Some(name) = &o.set {
                let sets = api
                    .get(&format!("/batches/{}/evaluation-sets", o.batch))
                    .await?;
                let all = sets.as_array().cloned().unwrap_or_default();
                let found = all
                    .iter()
                    .find(|s| s["name"].as_str() == Some(name.as_str()));
                let Some(set) = found else {
                    let names: Vec<&str> = all.iter().filter_map(|s| s["name"].as_str()).collect();
                    return Err(error(format!(
                        "The batch has no evaluation set named {name:?}{}.",
                        if names.is_empty() {
                            String::new()
                        } else {
                            format!(" (it has {})", names.join(", "))
                        }
                    )));
                };
                body["evaluation_set"] = set["id"].clone();
            }
            if let Some(v) = o.instruction_version {
                body["instruction_version"] = json!(v);
            }
            api.send(
                api.client
                    .post(format!("{}/api/v1/batches/{}/executions", o.url, o.batch))
                    .json(&body),
            )
            .await?
        }
    };
    let id = started["id"]
        .as_str()
        .ok_or_else(|| error("Mino's answer names no execution."))?
        .to_string();
    let execution = follow(&api, &id, o.timeout, out).await?;
    let state = execution["state"].as_str().unwrap_or("");
    if state != "completed" {
        return Err(error(format!(
            "The run ended {state}: {}/o/{}/executions/{id}",
            o.url,
            execution["org_slug"].as_str().unwrap_or("")
        )));
    }
    let metrics = api.get(&format!("/executions/{id}/metrics")).await?;
    let checks = check(&api, &o, &id, &metrics).await?;
    let failed = checks.iter().any(|c| !c.passed);
    if o.json {
        let summary = json!({
            "execution_id": id,
            "url": format!("{}/o/{}/executions/{id}", o.url, execution["org_slug"].as_str().unwrap_or("")),
            "metrics": metrics,
            "checks": checks.iter().map(|c| json!({"name": c.name, "passed": c.passed, "detail": c.detail})).collect::<Vec<_>>(),
            "passed": !failed,
        });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        let _ = write!(out, "{}", table(&metrics));
        for c in &checks {
            let _ = writeln!(
                out,
                "{} {}: {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        let _ = writeln!(
            out,
            "{}/o/{}/executions/{id}",
            o.url,
            execution["org_slug"].as_str().unwrap_or("")
        );
    }
    if let Some(path) = &o.junit {
        std::fs::write(path, junit(&metrics, &checks, &o))
            .map_err(|e| error(format!("{path}: {e}")))?;
    }
    Ok(if failed { 1 } else { 0 })
}

/// Waits for the execution to end, telling its progress.
async fn follow(
    api: &Api,
    id: &str,
    timeout: Duration,
    out: &mut (dyn Write + Send),
) -> Result<Value, Failure> {
    let tty = std::io::stdout().is_terminal();
    let start = Instant::now();
    let mut last_told = -1i64;
    loop {
        let e = api.get(&format!("/executions/{id}")).await?;
        let total = e["total"].as_i64().unwrap_or(0);
        let done = e["completed"].as_i64().unwrap_or(0)
            + e["errors"].as_i64().unwrap_or(0)
            + e["cancelled"].as_i64().unwrap_or(0);
        let state = e["state"].as_str().unwrap_or("").to_string();
        let finished = matches!(state.as_str(), "completed" | "failed" | "cancelled");
        if tty {
            let width = 30usize;
            let filled = if total > 0 {
                (done as usize * width) / total as usize
            } else {
                0
            };
            let _ = write!(
                out,
                "\r[{}{}] {done}/{total} {state}   ",
                "#".repeat(filled),
                "-".repeat(width - filled)
            );
            if finished {
                let _ = writeln!(out);
            }
        } else {
            // A line per tenth of the run, and the end.
            let tenth = if total > 0 { done * 10 / total } else { 0 };
            if tenth != last_told || finished {
                let _ = writeln!(out, "{done} of {total} jobs done ({state})");
                last_told = tenth;
            }
        }
        let _ = out.flush();
        if finished {
            return Ok(e);
        }
        if start.elapsed() > timeout {
            return Err(error(format!(
                "The run did not end within {} s (--timeout).",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn figure(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn half(i: &Value) -> String {
    match (i[0].as_f64(), i[1].as_f64()) {
        (Some(lo), Some(hi)) => format!(" ± {:.3}", (hi - lo) / 2.0),
        _ => String::new(),
    }
}

/// The per-field table.
pub fn table(metrics: &Value) -> String {
    let mut s = format!(
        "{:<24} {:>17} {:>9} {:>9} {:>17} {:>7}\n",
        "field", "accuracy", "precision", "recall", "F1", "judged"
    );
    for f in metrics["fields"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "{:<24} {:>17} {:>9.3} {:>9.3} {:>17} {:>7}\n",
            f["field"].as_str().unwrap_or(""),
            format!(
                "{:.3}{}",
                figure(&f["accuracy"]),
                half(&f["accuracy_interval"])
            ),
            figure(&f["precision"]),
            figure(&f["recall"]),
            format!("{:.3}{}", figure(&f["f1"]), half(&f["f1_interval"])),
            f["compared"].as_i64().unwrap_or(0),
        ));
    }
    match metrics["accuracy"].as_f64() {
        Some(a) => s.push_str(&format!(
            "run accuracy {a:.3}{}\n",
            half(&metrics["accuracy_interval"])
        )),
        None => s.push_str("run accuracy: nothing was judged\n"),
    }
    s
}

async fn check(api: &Api, o: &Options, id: &str, metrics: &Value) -> Result<Vec<Check>, Failure> {
    let accuracy = metrics["accuracy"].as_f64();
    let mut checks = Vec::new();
    if let Some(min) = o.min_accuracy {
        checks.push(Check {
            name: format!("min-accuracy {min}"),
            passed: accuracy.is_some_and(|a| a >= min),
            detail: match accuracy {
                Some(a) => format!("run accuracy {a:.4}, at least {min} wanted"),
                None => "nothing was judged".into(),
            },
        });
    }
    let fields: BTreeMap<&str, &Value> = metrics["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["field"].as_str()?, f)))
        .collect();
    for (name, min) in &o.min_field {
        let got = fields
            .get(name.as_str())
            .and_then(|f| f["accuracy"].as_f64());
        checks.push(Check {
            name: format!("min-field {name}={min}"),
            passed: got.is_some_and(|a| a >= *min),
            detail: match got {
                Some(a) => format!("{name} accuracy {a:.4}, at least {min} wanted"),
                None => format!("{name} was not judged in this run"),
            },
        });
    }
    if let (Some(max), Some(against)) = (o.max_regression, &o.against) {
        let baseline = if against == "production" {
            let runs = api
                .get(&format!("/batches/{}/executions?limit=200", o.batch))
                .await?;
            runs["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["mode"] == "production" && r["state"] == "completed" && r["id"] != id)
                .cloned()
        } else {
            Some(api.get(&format!("/executions/{against}")).await?)
        };
        // On the rows both runs judged when they share a batch (a 50-row
        // sample against a 2,000-row production run is measured on its
        // 50 rows); otherwise each run's own accuracy.
        let base_id = baseline
            .as_ref()
            .and_then(|b| b["id"].as_str())
            .unwrap_or("")
            .to_string();
        let same_batch = baseline
            .as_ref()
            .is_some_and(|b| b["batch_id"].as_str() == Some(o.batch.as_str()));
        let shared = if same_batch {
            let c = api
                .get(&format!("/executions/compare?a={base_id}&b={id}"))
                .await?;
            let rows = c["judged_in_both"].as_i64().unwrap_or(0);
            (rows > 0).then(|| {
                (
                    c["shared_accuracy_a"].as_f64(),
                    c["shared_accuracy_b"].as_f64(),
                    rows,
                )
            })
        } else {
            None
        };
        let (base, now, on) = match shared {
            Some((b, a, rows)) => (b, a, format!("on the {rows} rows both runs judged")),
            None => (
                baseline.as_ref().and_then(|b| b["accuracy"].as_f64()),
                accuracy,
                "on each run's own rows".to_string(),
            ),
        };
        checks.push(Check {
            name: format!("max-regression {max} against {against}"),
            passed: match (base, now) {
                (Some(b), Some(a)) => b - a <= max,
                // Nothing to regress from: the first production run.
                (None, _) => true,
                (Some(_), None) => false,
            },
            detail: match (base, now) {
                (Some(b), Some(a)) => format!(
                    "accuracy {a:.4} against {b:.4} (run {base_id}) {on}: a change of {:+.4}, at most {max} down allowed",
                    a - b
                ),
                (None, _) => format!("no {against} run to compare with: nothing to regress from"),
                (Some(_), None) => "nothing was judged".into(),
            },
        });
    }
    Ok(checks)
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one test case per field (failing when its own threshold
/// fails) and one per threshold.
pub fn junit(metrics: &Value, checks: &[Check], o: &Options) -> String {
    let mut cases = Vec::new();
    for f in metrics["fields"].as_array().into_iter().flatten() {
        let name = f["field"].as_str().unwrap_or("");
        let own = checks
            .iter()
            .find(|c| c.name.starts_with(&format!("min-field {name}=")));
        let figures = format!(
            "accuracy {:.4}{} precision {:.4} recall {:.4} f1 {:.4}{} judged {}",
            figure(&f["accuracy"]),
            half(&f["accuracy_interval"]),
            figure(&f["precision"]),
            figure(&f["recall"]),
            figure(&f["f1"]),
            half(&f["f1_interval"]),
            f["compared"].as_i64().unwrap_or(0)
        );
        let failure = own
            .filter(|c| !c.passed)
            .map(|c| format!("<failure message=\"{}\"/>", xml(&c.detail)))
            .unwrap_or_default();
        cases.push(format!(
            "    <testcase classname=\"mino.fields\" name=\"field {}\">{failure}<system-out>{}</system-out></testcase>",
            xml(name),
            xml(&figures)
        ));
    }
    for c in checks {
        let failure = if c.passed {
            String::new()
        } else {
            format!("<failure message=\"{}\"/>", xml(&c.detail))
        };
        cases.push(format!(
            "    <testcase classname=\"mino.thresholds\" name=\"{}\">{failure}<system-out>{}</system-out></testcase>",
            xml(&c.name),
            xml(&c.detail)
        ));
    }
    let failures = cases.iter().filter(|c| c.contains("<failure")).count();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"mino eval batch {}\" tests=\"{}\" failures=\"{failures}\">\n{}\n  </testsuite>\n</testsuites>\n",
        xml(&o.batch),
        cases.len(),
        cases.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn arguments_are_checked() {
        let o = parse(&args(
            "--url http://h/ --key k --batch b --min-field price=0.95 --min-field title=1 --json",
        ))
        .unwrap();
        assert_eq!(o.url, "http://h");
        assert_eq!(
            o.min_field,
            vec![("price".into(), 0.95), ("title".into(), 1.0)]
        );
        assert!(o.json);
        for bad in [
            "--url u --key k",
            "--url u --key k --batch b --min-accuracy 90",
            "--url u --key k --batch b --max-regression 0.02",
            "--url u --key k --batch b --min-field price",
            "--url u --key k --batch b --frobnicate",
        ] {
            assert_eq!(parse(&args(bad)).unwrap_err().status, 2, "{bad}");
        }
    }
}
