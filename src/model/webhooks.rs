//! Webhooks (F15): what admins register and what Mino sent them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The events a webhook can ask for, in the order the UI lists them.
pub const WEBHOOK_EVENTS: [(&str, &str); 6] = [
    ("execution.started", "A run started."),
    (
        "execution.completed",
        "A run finished, with its accuracy summary.",
    ),
    (
        "execution.failed",
        "A run ended without one successful job.",
    ),
    ("job.failed", "A job failed for good (after its retries)."),
    (
        "experiment.completed",
        "Every variant of an experiment finished, with its matrix.",
    ),
    (
        "budget.threshold",
        "The month's spending reached 50%, 80% or 100% of the budget.",
    ),
];

/// The event a "send test event" delivers.
pub const WEBHOOK_TEST_EVENT: &str = "webhook.test";

/// Failed deliveries in a row after which a webhook is disabled.
pub const WEBHOOK_FAILURE_LIMIT: i32 = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    /// The secret's last four characters, to tell secrets apart; the whole
    /// secret is shown only when Mino generates it.
    pub secret_hint: String,
    pub enabled: bool,
    /// Why it is disabled: by whom, or after which failures.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest delivery's state and time, if any.
    pub last_delivery_state: Option<String>,
    pub last_delivery_at: Option<DateTime<Utc>>,
}

/// A webhook as created: with its secret, shown this once when Mino made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// The signing secret, when Mino generated it (none given).
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    pub event_id: Uuid,
    /// The execution id, or the job id for `job.failed`.
    pub resource_id: Option<String>,
    /// pending, delivering, succeeded or failed (gave up after its retries).
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The body as sent (null before the first attempt).
    pub payload: Option<serde_json::Value>,
    /// Every attempt, first first.
    pub attempt_log: Vec<WebhookAttempt>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct WebhookAttempt {
    pub n: i32,
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status; none when it could not be reached.
    pub status: Option<i32>,
    pub duration_ms: i32,
    /// The first 1,000 characters of the answer.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}
