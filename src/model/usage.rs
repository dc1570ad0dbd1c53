//! Usage and budgets (F20): what an organization's runs consumed, grouped
//! as the reader asks, and the monthly budget that watches it.

use serde::{Deserialize, Serialize};

/// How a usage report is broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum UsageGroup {
    Day,
    Month,
    Project,
    Execution,
    /// The agent and extractor, e.g. "browser · llm".
    Agent,
    Model,
}

impl UsageGroup {
    pub const ALL: [(UsageGroup, &'static str); 6] = [
        (UsageGroup::Day, "Day"),
        (UsageGroup::Month, "Month"),
        (UsageGroup::Project, "Project"),
        (UsageGroup::Execution, "Run"),
        (UsageGroup::Agent, "Agent and extractor"),
        (UsageGroup::Model, "Model"),
    ];

    pub fn parse(s: &str) -> Option<UsageGroup> {
        Some(match s {
            "day" => UsageGroup::Day,
            "month" => UsageGroup::Month,
            "project" => UsageGroup::Project,
            "execution" => UsageGroup::Execution,
            "agent" => UsageGroup::Agent,
            "model" => UsageGroup::Model,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UsageGroup::Day => "day",
            UsageGroup::Month => "month",
            UsageGroup::Project => "project",
            UsageGroup::Execution => "execution",
            UsageGroup::Agent => "agent",
            UsageGroup::Model => "model",
        }
    }

    /// Periods read in time order; the others biggest cost first.
    pub fn is_period(self) -> bool {
        matches!(self, UsageGroup::Day | UsageGroup::Month)
    }
}

/// Consumption figures, all counted from attempts as they finish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct UsageFigures {
    /// Jobs that ended (succeeded, or failed after their retries).
    pub jobs: i64,
    /// Attempts that finished, retries included.
    pub attempts: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Millionths of the organization's currency unit.
    pub cost_micros: i64,
}

/// One line of a report: a day, a project, a model…
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct UsageLine {
    /// What the line is grouped by: `2026-12-07`, `2026-12`, a project or
    /// execution id, `http · rules`, a model name ("" for none).
    pub key: String,
    /// How people know it: the project's name, "Demo shop · test · v2 ·
    /// 2026-12-07 14:02", "No model"…
    pub label: String,
    #[serde(flatten)]
    pub figures: UsageFigures,
}

/// The plan's limits against this month's use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct UsageLimits {
    /// `2026-12`, in UTC.
    pub month: String,
    pub executions_this_month: i64,
    pub max_executions_per_month: i32,
    pub max_concurrency: i32,
    pub max_projects: i32,
    pub projects: i64,
}

/// `GET /orgs/{org}/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct UsageReport {
    /// First and last day included (UTC dates).
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub group_by: UsageGroup,
    pub totals: UsageFigures,
    pub items: Vec<UsageLine>,
    pub limits: UsageLimits,
    /// Cost so far this month and last month, cumulative by day of the
    /// month (index 0 is the 1st), for the month-against-month chart.
    pub this_month_by_day: Vec<i64>,
    pub last_month_by_day: Vec<i64>,
}

/// The thresholds (percent of the budget) that raise an alert.
pub const BUDGET_THRESHOLDS: [i32; 3] = [50, 80, 100];

/// An organization's monthly budget and where this month stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Budget {
    /// Millionths of the currency unit a month; `None` when no budget is
    /// set.
    pub monthly_micros: Option<i64>,
    /// Pause running executions and refuse new ones at 100%.
    pub hard_stop: bool,
    /// `2026-12`, in UTC.
    pub month: String,
    pub spent_micros: i64,
    /// Thresholds reached this month (50, 80, 100), each alerted once.
    pub reached: Vec<i32>,
    /// The hard stop is in effect: runs are paused and new ones refused.
    pub stopped: bool,
}

impl Budget {
    /// The share of the budget spent, as a percentage (may pass 100).
    pub fn percent(&self) -> Option<f64> {
        self.monthly_micros
            .filter(|m| *m > 0)
            .map(|m| self.spent_micros as f64 * 100.0 / m as f64)
    }
}
