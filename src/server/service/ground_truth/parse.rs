//! Expected values from files and pastes: a CSV (or tab-separated) file
//! keyed by row or URL, or two columns pasted from a spreadsheet. Errors
//! name the line and column.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{MAX_SET_ROWS, MAX_VALUE_CHARS};
use crate::error::AppError;
use crate::model::{OutputField, ROW_ID_BASE};

/// `POST /batches/{id}/ground-truth/bulk-set` as JSON: rows keyed by
/// `row_id`, `row` (the row number shown in the UI) or `url`, each with
/// the values to set (null clears).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkSet {
    pub rows: Vec<BulkSetRow>,
    #[serde(default)]
    pub preview: bool,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkSetRow {
    /// The file line this row came from (a CSV upload), for errors.
    #[serde(skip)]
    pub line: Option<u64>,
    pub row_id: Option<i64>,
    pub row: Option<i32>,
    pub url: Option<String>,
    pub values: BTreeMap<String, Option<Expected>>,
}

/// An expected value as given: a text (split into several acceptable
/// values at the field's separator, when it has one) or a JSON list of
/// acceptable values.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Expected {
    Text(String),
    List(Vec<String>),
}

/// Field → new value (None clears).
pub(super) type Values = BTreeMap<String, Option<Expected>>;

/// How an entry names its row(s).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RowKey {
    Index(i32),
    Url(String),
}

/// Reads a CSV (or tab-separated) file of expected values: a header with
/// `row_id`, `row` or `url`, and one column per output field (named as the
/// field or `gt_<field>`); an empty cell leaves that value as it is.
/// Errors name the line and column.
pub fn parse_set_file(
    bytes: &[u8],
    fields: &[OutputField],
    seq: i64,
) -> Result<Vec<BulkSetRow>, AppError> {
    use crate::server::ingest::{located, read_records};
    if bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(bytes)
        .iter()
        .all(|b| b.is_ascii_whitespace())
    {
        return Err(AppError::field("file", "The file is empty."));
    }
    let records = read_records(
        bytes,
        MAX_SET_ROWS,
        &format!("Set at most {MAX_SET_ROWS} rows at once."),
    )?;
    let mut records = records.into_iter();
    let (header_line, header) = records
        .next()
        .ok_or_else(|| AppError::field("file", "The file is empty."))?;
    let names: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    let key_col = ["row_id", "row", "url"]
        .iter()
        .find_map(|k| names.iter().position(|n| n == k).map(|i| (*k, i)))
        .ok_or_else(|| {
            located(
                header_line,
                0,
                "the header needs a column named row_id, row or url saying which row each line sets."
                    ,
            )
        })?;
    let mut value_cols: Vec<(usize, String)> = Vec::new();
    for (i, raw) in header.iter().enumerate() {
        if i == key_col.1 {
            continue;
        }
        let name = raw.trim();
        let name = name.strip_prefix("gt_").unwrap_or(name);
        if name.is_empty() {
            return Err(located(header_line, i + 1, "this column has no name."));
        }
        match fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)) {
            Some(f) => value_cols.push((i, f.name.clone())),
            None => {
                return Err(located(
                    header_line,
                    i + 1,
                    format!("{name:?} is not an output field of this project."),
                ))
            }
        }
    }
    if value_cols.is_empty() {
        return Err(located(
            header_line,
            0,
            "the header names no output field to set.",
        ));
    }
    let mut out = Vec::new();
    for (line, cells) in records {
        if cells.len() != header.len() {
            return Err(located(
                line,
                cells.len().min(header.len()) + 1,
                format!(
                    "this line has {} fields; the header has {}.",
                    cells.len(),
                    header.len()
                ),
            ));
        }
        let key = cells[key_col.1].trim();
        let mut row = BulkSetRow {
            line: Some(line),
            ..Default::default()
        };
        let bad_key = || {
            located(
                line,
                key_col.1 + 1,
                format!(
                    "{key:?} is not a {} of this batch.",
                    key_col.0.replace('_', " ")
                ),
            )
        };
        if key.is_empty() {
            return Err(bad_key());
        }
        match key_col.0 {
            "row_id" => {
                let id: i64 = key.parse().map_err(|_| bad_key())?;
                if id / ROW_ID_BASE != seq {
                    return Err(bad_key());
                }
                row.row_id = Some(id);
            }
            "row" => row.row = Some(key.parse().map_err(|_| bad_key())?),
            _ => row.url = Some(key.to_string()),
        }
        for (i, name) in &value_cols {
            let v = cells[*i].trim();
            if !v.is_empty() {
                if v.chars().count() > MAX_VALUE_CHARS {
                    return Err(located(line, i + 1, "this value is too long."));
                }
                row.values
                    .insert(name.clone(), Some(Expected::Text(v.to_string())));
            }
        }
        if !row.values.is_empty() {
            out.push(row);
        }
    }
    Ok(out)
}

/// Two pasted columns (as copied from a spreadsheet: tab-separated, or
/// comma-separated) of row number or URL, and the value for `field`.
pub fn parse_pasted(text: &str, field: &str) -> Result<Vec<BulkSetRow>, AppError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once('\t')
            .or_else(|| line.split_once(','))
            .ok_or_else(|| {
                AppError::field(
                    "text",
                    format!(
                        "Line {}: put the row number or URL, a tab (or comma), then the value.",
                        n + 1
                    ),
                )
            })?;
        let (key, value) = (key.trim(), value.trim());
        let mut row = BulkSetRow::default();
        if let Ok(i) = key.parse::<i32>() {
            row.row = Some(i);
        } else if key.contains('.') || key.contains("://") {
            row.url = Some(key.to_string());
        } else if n == 0 {
            // A header line ("row<TAB>price").
            continue;
        } else {
            return Err(AppError::field(
                "text",
                format!("Line {}: {key:?} is neither a row number nor a URL.", n + 1),
            ));
        }
        row.values
            .insert(field.to_string(), Some(Expected::Text(value.to_string())));
        out.push(row);
    }
    if out.len() > MAX_SET_ROWS {
        return Err(AppError::field(
            "text",
            format!("Set at most {MAX_SET_ROWS} rows at once."),
        ));
    }
    Ok(out)
}
