//! Batches: an uploaded CSV of sites, its detected schema and its rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Role, ValueType};

/// What a CSV column is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ColumnRole {
    /// The site the agent visits.
    Url,
    /// Passed to the agent as context.
    Input,
    /// `gt_<field>`: the expected value of an output field.
    GroundTruth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ColumnSchema {
    /// The header as written in the file.
    pub name: String,
    pub role: ColumnRole,
    /// For ground-truth columns, the output field (the header without `gt_`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The type in use (detected, or as corrected before confirming).
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// What detection found, to show when the user changed it.
    pub detected_type: ValueType,
}

/// The first rows of a file, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct PreviewRow {
    pub line: u64,
    pub cells: Vec<String>,
}

/// Rows whose URL is not a web address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct InvalidUrls {
    pub count: u64,
    /// Up to five (line, value) pairs.
    pub examples: Vec<(u64, String)>,
}

/// What reading a CSV found: the schema, the first rows, the row count and
/// the first problem, if any. The preview endpoint answers with it; the
/// upload answers with the batch it created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct CsvReport {
    /// `,` `;` or `\t`.
    pub delimiter: String,
    pub has_bom: bool,
    pub columns: Vec<ColumnSchema>,
    pub preview: Vec<PreviewRow>,
    /// Data rows read (without the header).
    pub rows: u64,
    pub invalid_urls: InvalidUrls,
    /// False when only the start of a file was read (a browser preview).
    pub complete: bool,
    /// The first problem found; the upload would be refused with it.
    pub problem: Option<FileProblem>,
}

/// Why a file was refused, and where: line and column are 1-based; the
/// column counts fields, as a spreadsheet does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FileProblem {
    pub code: FileProblemCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_name: Option<String>,
    /// For invalid URLs: how many rows, and the first few.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_urls: Option<InvalidUrls>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileProblemCode {
    CsvEmpty,
    CsvNoRows,
    CsvEmptyHeader,
    CsvInvalidHeader,
    CsvDuplicateHeader,
    CsvFieldCount,
    CsvUnclosedQuote,
    CsvInvalidUtf8,
    CsvNulByte,
    CsvNoUrlColumn,
    CsvInvalidUrls,
    CsvTooManyRows,
    FileTooLarge,
}

impl FileProblemCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FileProblemCode::CsvEmpty => "CSV_EMPTY",
            FileProblemCode::CsvNoRows => "CSV_NO_ROWS",
            FileProblemCode::CsvEmptyHeader => "CSV_EMPTY_HEADER",
            FileProblemCode::CsvInvalidHeader => "CSV_INVALID_HEADER",
            FileProblemCode::CsvDuplicateHeader => "CSV_DUPLICATE_HEADER",
            FileProblemCode::CsvFieldCount => "CSV_FIELD_COUNT",
            FileProblemCode::CsvUnclosedQuote => "CSV_UNCLOSED_QUOTE",
            FileProblemCode::CsvInvalidUtf8 => "CSV_INVALID_UTF8",
            FileProblemCode::CsvNulByte => "CSV_NUL_BYTE",
            FileProblemCode::CsvNoUrlColumn => "CSV_NO_URL_COLUMN",
            FileProblemCode::CsvInvalidUrls => "CSV_INVALID_URLS",
            FileProblemCode::CsvTooManyRows => "CSV_TOO_MANY_ROWS",
            FileProblemCode::FileTooLarge => "FILE_TOO_LARGE",
        }
    }
}

impl FileProblem {
    /// "line 4, column 2 (price): …" — where first, as people scan for it.
    pub fn located_message(&self) -> String {
        let mut at = String::new();
        if let Some(line) = self.line {
            at.push_str(&format!("Line {line}"));
            if let Some(col) = self.column {
                at.push_str(&format!(", column {col}"));
                if let Some(name) = &self.column_name {
                    at.push_str(&format!(" ({name})"));
                }
            }
            at.push_str(": ");
        }
        format!("{at}{}", self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Batch {
    pub id: Uuid,
    pub project_id: Uuid,
    pub project_name: String,
    pub org_slug: String,
    pub name: String,
    pub columns: Vec<ColumnSchema>,
    pub url_column: String,
    pub delimiter: String,
    pub row_count: i32,
    pub skipped_rows: i32,
    /// Rows with an expected value, per output field.
    pub gt_coverage: BTreeMap<String, i64>,
    pub file_name: Option<String>,
    pub file_bytes: i64,
    pub created_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub role: Option<Role>,
}

impl Batch {
    pub fn can_edit(&self) -> bool {
        self.role.is_none_or(|r| r >= Role::Member)
    }
    pub fn can_delete(&self) -> bool {
        self.role.is_none_or(|r| r >= Role::Admin)
    }
}

/// What "Load the demo project" made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct LoadedDemo {
    pub project: super::Project,
    pub batch: Batch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct BatchSummary {
    pub id: Uuid,
    pub name: String,
    pub row_count: i32,
    pub gt_fields: i32,
    pub file_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Row ids are `batch seq × ROW_ID_BASE + row index`: unique, stable, and
/// found through the rows' primary key without a second index.
pub const ROW_ID_BASE: i64 = 10_000_000;

pub fn row_id(batch_seq: i64, row_index: i32) -> i64 {
    batch_seq * ROW_ID_BASE + row_index as i64
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct BatchRow {
    pub id: i64,
    pub row_index: i32,
    pub line: i32,
    pub site_url: String,
    pub inputs: BTreeMap<String, String>,
    pub ground_truth: BTreeMap<String, String>,
    pub gt_version: i32,
}

/// A named, versioned set of a batch's rows (a regression set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct EvaluationSet {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub name: String,
    /// Saving a set under an existing name makes its next version.
    pub version: i32,
    /// How many rows it holds.
    pub size: i64,
    /// Its row numbers, ascending.
    pub rows: Vec<i32>,
    /// How the rows were chosen: `{"rows": n}` by hand, or
    /// `{"execution_id": …, "filter": {…}}` from a run's jobs.
    pub source: serde_json::Value,
    pub created_by_name: String,
    pub created_at: DateTime<Utc>,
}
