//! Exports of an execution's results.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One export of an execution's results (F13), with its progress while it
/// runs and, once ready, a download until the file expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Export {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub execution_id: Option<Uuid>,
    /// csv, json or xlsx
    pub format: String,
    pub columns: Vec<String>,
    /// The job-list filters it applied (query-string names).
    pub filters: BTreeMap<String, String>,
    /// running, ready, failed or expired
    pub state: String,
    pub total_rows: i64,
    pub row_count: i64,
    pub bytes: Option<i64>,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    /// Where to fetch the file while it is kept.
    pub download_url: Option<String>,
}
