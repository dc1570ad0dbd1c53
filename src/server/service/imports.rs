//! Imported runs ("bring your own results"): a file of values extracted
//! elsewhere becomes an execution of agent `imported` on a batch, judged,
//! listed, compared, exported and trended like any other run.
//!
//! The file is CSV (a header naming the key column and one column per
//! field) or JSON Lines (one object per line), one line per row, keyed by
//! row number (`row`), row id (`row_id`) or URL (`url`), with optional
//! `error`, `cost` (money, e.g. `0.0021`) and `duration_ms`. A refusal
//! names the line and column (unknown row, duplicate key, unknown field,
//! malformed JSON) and stores nothing: the whole import is one
//! transaction.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, Change};
use super::batches::batch_ctx;
use crate::error::AppError;
use crate::model::{
    AgentKind, Execution, ExecutionMode, ExecutionState, Extractor, OutputField, ROW_ID_BASE,
};
use crate::server::auth::rbac::{require, Actor, Permission};
use crate::server::db;
use crate::server::evaluate;
use crate::server::ingest::located;

/// Largest file imported at once.
pub const MAX_IMPORT_BYTES: usize = 200 * 1024 * 1024;
/// Most lines imported at once (a file is read whole before judging).
const MAX_LINES: usize = 5_000_000;
/// Longest extracted value kept.
const MAX_VALUE_CHARS: usize = 100_000;

/// How each line names its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKey {
    /// The row number as the UI shows it (`row_index`).
    Row,
    /// The row's id (`row_id`, as the API gives it).
    RowId,
    /// The row's site URL.
    Url,
}

impl ImportKey {
    pub fn parse(s: Option<&str>) -> Result<ImportKey, AppError> {
        match s.map(str::trim).unwrap_or("row") {
            "row" | "" => Ok(ImportKey::Row),
            "row_id" => Ok(ImportKey::RowId),
            "url" => Ok(ImportKey::Url),
            other => Err(AppError::field(
                "key",
                format!("{other:?} is not a key; use row, row_id or url."),
            )),
        }
    }
    fn column(self) -> &'static str {
        match self {
            ImportKey::Row => "row",
            ImportKey::RowId => "row_id",
            ImportKey::Url => "url",
        }
    }
}

/// One line of the file, read.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportLine {
    pub line: u64,
    /// Where the key is on the line (1-based column), for errors.
    pub key_column: usize,
    pub key: String,
    pub values: Map<String, Value>,
    pub error: Option<String>,
    pub cost_micros: i64,
    pub duration_ms: Option<i32>,
}

/// The optional columns every import may have besides fields.
const EXTRA: [&str; 3] = ["error", "cost", "duration_ms"];

fn field_named<'a>(fields: &'a [OutputField], name: &str) -> Option<&'a OutputField> {
    fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

fn unknown_column(fields: &[OutputField], key: ImportKey, name: &str) -> String {
    let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    format!(
        "{name:?} is neither an output field of this project ({}) nor {}, error, cost or duration_ms.",
        if known.is_empty() { "it has none".to_string() } else { known.join(", ") },
        key.column()
    )
}

fn parse_cost(raw: &str, line: u64, column: usize) -> Result<i64, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(0);
    }
    match raw.parse::<f64>() {
        Ok(c) if (0.0..1e9).contains(&c) => Ok((c * 1_000_000.0).round() as i64),
        _ => Err(located(
            line,
            column,
            format!("cost {raw:?} is not an amount of money such as 0.0021."),
        )),
    }
}

fn parse_duration(raw: &str, line: u64, column: usize) -> Result<Option<i32>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<i64>() {
        Ok(d) if (0..=i32::MAX as i64).contains(&d) => Ok(Some(d as i32)),
        _ => Err(located(
            line,
            column,
            format!("duration_ms {raw:?} is not a whole number of milliseconds."),
        )),
    }
}

fn check_value(v: &str, line: u64, column: usize) -> Result<(), AppError> {
    if v.chars().count() > MAX_VALUE_CHARS || v.contains('\0') {
        return Err(located(
            line,
            column,
            format!("this value is too long or not text (at most {MAX_VALUE_CHARS} characters)."),
        ));
    }
    Ok(())
}

/// Reads a CSV (or tab-separated) import.
pub fn parse_csv(
    bytes: &[u8],
    fields: &[OutputField],
    key: ImportKey,
) -> Result<Vec<ImportLine>, AppError> {
    let records = crate::server::ingest::read_records(
        bytes,
        MAX_LINES,
        &format!("Import at most {MAX_LINES} lines at once."),
    )?;
    let mut records = records.into_iter();
    let (header_line, header) = records
        .next()
        .ok_or_else(|| AppError::field("file", "The file is empty."))?;
    let names: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let key_col = names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(key.column()))
        .ok_or_else(|| {
            located(header_line, 1, format!("the header needs a column named {} saying which row each line is (or choose another key).", key.column()))
        })?;
    // Per column: a field's name, an extra column, or the key.
    enum Col {
        Key,
        Field(String),
        Extra(&'static str),
    }
    let mut cols = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        if i == key_col {
            cols.push(Col::Key);
        } else if let Some(extra) = EXTRA.iter().find(|e| n.eq_ignore_ascii_case(e)) {
            cols.push(Col::Extra(extra));
        } else if let Some(f) = field_named(fields, n) {
            if cols
                .iter()
                .any(|c| matches!(c, Col::Field(x) if *x == f.name))
            {
                return Err(located(
                    header_line,
                    i + 1,
                    format!("the field {:?} has two columns.", f.name),
                ));
            }
            cols.push(Col::Field(f.name.clone()));
        } else {
            return Err(located(header_line, i + 1, unknown_column(fields, key, n)));
        }
    }
    let mut out = Vec::new();
    for (line, cells) in records {
        if cells.len() == 1 && cells[0].trim().is_empty() {
            continue;
        }
        if cells.len() != names.len() {
            return Err(located(
                line,
                cells.len().min(names.len()) + 1,
                format!(
                    "this line has {} fields; the header has {}.",
                    cells.len(),
                    names.len()
                ),
            ));
        }
        let mut l = ImportLine {
            line,
            key_column: key_col + 1,
            key: cells[key_col].trim().to_string(),
            values: Map::new(),
            error: None,
            cost_micros: 0,
            duration_ms: None,
        };
        for (i, (col, cell)) in cols.iter().zip(&cells).enumerate() {
            match col {
                Col::Key => {}
                Col::Field(name) => {
                    check_value(cell, line, i + 1)?;
                    if !cell.trim().is_empty() {
                        l.values
                            .insert(name.clone(), Value::String(cell.trim().to_string()));
                    }
                }
                Col::Extra("error") => {
                    l.error = Some(cell.trim().to_string()).filter(|e| !e.is_empty());
                }
                Col::Extra("cost") => l.cost_micros = parse_cost(cell, line, i + 1)?,
                Col::Extra(_) => l.duration_ms = parse_duration(cell, line, i + 1)?,
            }
        }
        out.push(l);
    }
    Ok(out)
}

/// Reads a JSON Lines import: one object per line.
pub fn parse_jsonl(
    bytes: &[u8],
    fields: &[OutputField],
    key: ImportKey,
) -> Result<Vec<ImportLine>, AppError> {
    let text =
        std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).map_err(|e| {
            let before = &bytes[..e.valid_up_to()];
            let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
            let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            located(line, column, "this is not UTF-8 text.")
        })?;
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        // Where a key sits on the line, for errors about it.
        let column_of = |name: &str| raw.find(&format!("\"{name}\"")).map(|c| c + 1).unwrap_or(1);
        let object: Map<String, Value> = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(located(line, 1, "each line must be a JSON object.")),
            Err(e) => {
                return Err(located(
                    line,
                    e.column().max(1),
                    format!("this is not JSON: {e}"),
                ))
            }
        };
        let mut l = ImportLine {
            line,
            key_column: column_of(key.column()),
            key: String::new(),
            values: Map::new(),
            error: None,
            cost_micros: 0,
            duration_ms: None,
        };
        let text_of = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        };
        let mut has_key = false;
        for (name, v) in &object {
            let column = column_of(name);
            if name == key.column() {
                has_key = true;
                l.key = text_of(v).unwrap_or_default().trim().to_string();
            } else if name == "error" {
                l.error = text_of(v).filter(|e| !e.trim().is_empty());
            } else if name == "cost" {
                l.cost_micros = parse_cost(&text_of(v).unwrap_or_default(), line, column)?;
            } else if name == "duration_ms" {
                l.duration_ms = parse_duration(&text_of(v).unwrap_or_default(), line, column)?;
            } else if let Some(f) = field_named(fields, name) {
                if let Some(t) = text_of(v) {
                    check_value(&t, line, column)?;
                    if !t.trim().is_empty() {
                        l.values
                            .insert(f.name.clone(), Value::String(t.trim().to_string()));
                    }
                }
            } else {
                return Err(located(line, column, unknown_column(fields, key, name)));
            }
        }
        if !has_key {
            return Err(located(
                line,
                1,
                format!(
                    "this line has no {:?} saying which row it is.",
                    key.column()
                ),
            ));
        }
        out.push(l);
    }
    if out.is_empty() {
        return Err(AppError::field("file", "The file has no lines to import."));
    }
    Ok(out)
}

/// Whether the body is JSON Lines (its first non-blank character opens an
/// object) rather than CSV.
pub fn looks_like_jsonl(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Imports `bytes` (CSV or JSON Lines) as a new judged execution of the
/// batch; `name` is said in the run's event feed and the audit log.
pub async fn import(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    key: ImportKey,
    name: Option<&str>,
    bytes: &[u8],
) -> Result<Execution, AppError> {
    let (ctx, batch) = batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::RunExecution)?;
    let project = db::projects::fetch_one(db, ctx.org_id(), batch.project_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Batch".into()))?;
    // Said in the event feed and the audit log: printable text only.
    let name = name
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(AppError::field("file", "The file is empty."));
    }
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(AppError::field(
            "file",
            format!(
                "Import at most {} MB at once.",
                MAX_IMPORT_BYTES / 1024 / 1024
            ),
        ));
    }
    let fields = db::projects::fetch_fields(db, ctx.org_id(), project.id).await?;
    let lines = if looks_like_jsonl(bytes) {
        parse_jsonl(bytes, &fields, key)?
    } else {
        parse_csv(bytes, &fields, key)?
    };
    if lines.is_empty() {
        return Err(AppError::field(
            "file",
            "The file has a header but no lines to import.",
        ));
    }

    let mut tx = db.begin().await?;
    // Every line's row, each row once.
    let rows = db::imports::batch_rows(&mut *tx, batch.seq).await?;
    let by_index: HashMap<i32, usize> = rows
        .iter()
        .enumerate()
        .map(|(n, r)| (r.row_index, n))
        .collect();
    let mut by_url: HashMap<String, Vec<usize>> = HashMap::new();
    if key == ImportKey::Url {
        for (n, r) in rows.iter().enumerate() {
            by_url.entry(r.site_url.clone()).or_default().push(n);
        }
    }
    let mut seen: BTreeMap<i32, u64> = BTreeMap::new();
    let mut resolved: Vec<(usize, &ImportLine)> = Vec::with_capacity(lines.len());
    for l in &lines {
        let unknown = || {
            located(
                l.line,
                l.key_column,
                format!(
                    "{:?} is not a {} of this batch.",
                    l.key,
                    key.column().replace('_', " ")
                ),
            )
        };
        let n = match key {
            ImportKey::Row => l.key.parse::<i32>().ok().and_then(|i| by_index.get(&i).copied()),
            ImportKey::RowId => l
                .key
                .parse::<i64>()
                .ok()
                .filter(|id| *id / ROW_ID_BASE == batch.seq)
                .and_then(|id| by_index.get(&((id % ROW_ID_BASE) as i32)).copied()),
            ImportKey::Url => {
                let url = crate::server::ingest::detect::normalize_site_url(&l.key).unwrap_or_else(|| l.key.clone());
                match by_url.get(&url).map(Vec::as_slice) {
                    Some([one]) => Some(*one),
                    Some([]) | None => None,
                    Some(_) => {
                        return Err(located(l.line, l.key_column, format!("several rows of this batch have the URL {:?}: key the file by row or row_id.", l.key)))
                    }
                }
            }
        }
        .ok_or_else(unknown)?;
        let row_index = rows[n].row_index;
        if let Some(first) = seen.insert(row_index, l.line) {
            return Err(located(
                l.line,
                l.key_column,
                format!("row {row_index} is already on line {first}."),
            ));
        }
        resolved.push((n, l));
    }
    let mode = if resolved.len() as i64 == i64::from(batch.row_count) {
        ExecutionMode::Production
    } else {
        ExecutionMode::Test
    };
    let settings = project.agent();
    let id = db::jobs::insert_execution(
        &mut tx,
        &db::jobs::NewExecution {
            org_id: ctx.org_id(),
            project_id: project.id,
            batch_id,
            instruction_version: project.production_version,
            mode,
            sample_size: (mode == ExecutionMode::Test).then_some(resolved.len() as i32),
            agent: AgentKind::Imported,
            extractor: Extractor::Rules,
            wait_for: None,
            steps: &[],
            keep_pages: false,
            pages_from: None,
            model_route: &[],
            page_token_budget: settings.page_token_budget,
            concurrency: 1,
            max_retries: 0,
            timeout_secs: project.timeout_secs,
            price_per_job_micros: 0,
            estimated_job_cost_micros: None,
            state: ExecutionState::Completed,
            created_by: ctx.actor().user_id(),
            fields: &fields,
            remote_url: None,
            rerun_of: None,
        },
    )
    .await?;
    // Each line judged against its row's expected values, as a worker
    // would judge the same values.
    let mut jobs = db::imports::NewJobs::default();
    for (n, l) in &resolved {
        let row = &rows[*n];
        jobs.row_index.push(row.row_index);
        jobs.cost_micros.push(l.cost_micros);
        jobs.duration_ms.push(l.duration_ms);
        match &l.error {
            Some(e) => {
                jobs.failed.push(true);
                jobs.error
                    .push(Some(e.chars().filter(|c| *c != '\0').take(2000).collect()));
                jobs.extracted.push(None);
                jobs.verdict.push("error".into());
                jobs.field_results.push(None);
                jobs.accuracy.push(None);
            }
            None => {
                let v = evaluate::evaluate_job(&fields, &l.values, &row.ground_truth.0);
                jobs.failed.push(false);
                jobs.error.push(None);
                jobs.extracted
                    .push(Some(Value::Object(l.values.clone()).to_string()));
                jobs.verdict.push(v.verdict.as_str().to_string());
                jobs.field_results
                    .push(Some(Value::Object(v.fields).to_string()));
                jobs.accuracy.push(v.accuracy.map(|a| a as f32));
            }
        }
    }
    db::imports::insert_jobs(&mut tx, id, ctx.org_id(), &jobs).await?;
    let failed = jobs.failed.iter().filter(|f| **f).count();
    let told = match &name {
        Some(n) => format!(
            "Imported {n:?}: {} lines ({failed} with an error).",
            resolved.len()
        ),
        None => format!(
            "Imported {} lines ({failed} with an error).",
            resolved.len()
        ),
    };
    let who = ctx.actor_name(db).await?.to_string();
    db::executions::insert_event(&mut *tx, id, "imported", &told, &who).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("execution.import", "execution", id).after(json!({
            "batch_id": batch_id, "name": name, "lines": resolved.len(), "errors": failed,
            "key": key.column(), "mode": mode,
        })),
    )
    .await?;
    tx.commit().await?;
    super::executions::get(db, actor, id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Comparator, ExtractionRule, ValueType};

    fn fields() -> Vec<OutputField> {
        ["title", "price"]
            .iter()
            .map(|n| OutputField {
                name: n.to_string(),
                field_type: ValueType::Text,
                comparator: Comparator::Exact,
                comparator_options: Default::default(),
                rule: ExtractionRule::Auto,
                source: "csv".into(),
                description: String::new(),
                empty_means: Default::default(),
                multi_value_separator: None,
            })
            .collect()
    }

    #[test]
    fn csv_lines_with_extras() {
        let l = parse_csv(
            b"row,price,Title,cost,duration_ms,error\n1,9.99,Mug,0.002,1200,\n2,,,,,timeout\n",
            &fields(),
            ImportKey::Row,
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].key.as_str(), l[0].cost_micros, l[0].duration_ms),
            ("1", 2000, Some(1200))
        );
        assert_eq!(l[0].values["title"], "Mug");
        assert_eq!(l[1].error.as_deref(), Some("timeout"));
        assert!(l[1].values.is_empty());
    }

    #[test]
    fn csv_refusals_name_line_and_column() {
        let f = fields();
        let e = parse_csv(b"row,colour\n1,red\n", &f, ImportKey::Row)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Line 1, column 2") && e.contains("colour"),
            "{e}"
        );
        let e = parse_csv(b"url,price\n1,2\n", &f, ImportKey::Row)
            .unwrap_err()
            .to_string();
        assert!(e.contains("named row"), "{e}");
        let e = parse_csv(b"row,price\n1,2\n2\n", &f, ImportKey::Row)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Line 3"), "{e}");
        let e = parse_csv(b"row,price,cost\n1,2,lots\n", &f, ImportKey::Row)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Line 2, column 3"), "{e}");
    }

    #[test]
    fn jsonl_lines_and_refusals() {
        let f = fields();
        let l = parse_jsonl(b"{\"url\": \"https://a.example/1\", \"price\": 9.5, \"error\": null}\n\n{\"url\": \"b.example\", \"title\": \"T\"}\n", &f, ImportKey::Url).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].values["price"], "9.5");
        assert_eq!(l[1].line, 3);
        let e = parse_jsonl(
            b"{\"row\": 1}\n{\"row\": 2, \"price\": }\n",
            &f,
            ImportKey::Row,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("Line 2, column") && e.contains("not JSON"),
            "{e}"
        );
        let e = parse_jsonl(b"{\"row\": 1, \"colour\": \"red\"}\n", &f, ImportKey::Row)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Line 1, column 12") && e.contains("colour"),
            "{e}"
        );
        let e = parse_jsonl(b"{\"price\": 1}\n", &f, ImportKey::Row)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no \"row\""), "{e}");
        assert!(looks_like_jsonl(b"  \n{\"row\":1}"));
        assert!(!looks_like_jsonl(b"row,price\n"));
    }
}
