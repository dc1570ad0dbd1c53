//! Model providers (the LLM extractor's): where a model is served, what its
//! tokens cost, and how healthy it is right now.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

text_enum! {
    /// The wire format a provider speaks.
    pub enum ProviderKind {
        /// OpenAI chat completions, at any base URL (OpenAI, vLLM, Ollama,
        /// llama.cpp's server, LM Studio, OpenRouter, …).
        OpenAi = "openai",
        /// Anthropic's Messages API.
        Anthropic = "anthropic",
        /// Google's Gemini generateContent.
        Gemini = "gemini",
    }
}

impl ProviderKind {
    pub fn label(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "OpenAI-compatible (chat completions)",
            ProviderKind::Anthropic => "Anthropic (Messages API)",
            ProviderKind::Gemini => "Google Gemini (generateContent)",
        }
    }

    /// Where the provider's own service is, for the form's default.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com/v1",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com/v1beta",
        }
    }
}

text_enum! {
    /// A provider's circuit breaker, shared by every process.
    pub enum BreakerState {
        /// Serving.
        Closed = "closed",
        /// Failing: skipped by every worker until its cooldown ends.
        Open = "open",
        /// Cooldown over: one probe request decides.
        HalfOpen = "half_open",
    }
}

/// One model a provider offers, with its prices per million tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderModel {
    pub name: String,
    #[serde(default)]
    pub input_price_per_million: f64,
    #[serde(default)]
    pub output_price_per_million: f64,
}

impl ProviderModel {
    /// The cost of a call in millionths of the currency unit.
    pub fn cost_micros(&self, input_tokens: i64, output_tokens: i64) -> i64 {
        // price per million tokens × tokens / 1e6 × 1e6 micros.
        (self.input_price_per_million * input_tokens as f64
            + self.output_price_per_million * output_tokens as f64)
            .round() as i64
    }
}

/// How a provider is doing: its breaker and the last hour's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ProviderHealth {
    pub state: BreakerState,
    /// Its key was refused (401/403): skipped until the key changes.
    pub auth_failed: bool,
    pub consecutive_failures: i32,
    /// While open: when one probe may go.
    pub open_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// Requests in the last hour, the share that failed, and latency.
    pub requests_last_hour: i64,
    pub error_rate: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

/// A model provider as its API shows it (the key only as its last four
/// characters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ModelProvider {
    pub id: Uuid,
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    /// The key's last four characters (`null` without a key).
    pub api_key_last4: Option<String>,
    pub models: Vec<ProviderModel>,
    pub timeout_secs: i32,
    pub max_in_flight: i32,
    pub requests_per_minute: Option<i32>,
    pub tokens_per_minute: Option<i32>,
    pub enabled: bool,
    pub health: ProviderHealth,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a provider's name may be shown as to people who may not manage
/// it (members choosing a route).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ProviderChoice {
    pub id: Uuid,
    pub name: String,
    pub kind: ProviderKind,
    pub models: Vec<String>,
    pub enabled: bool,
}

/// One step of a model route: the first entry serves, the rest are tried
/// in order when it fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    pub provider: Uuid,
    pub model: String,
}

/// The answer of "check now": whether a tiny request succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ProviderCheck {
    pub ok: bool,
    pub model: String,
    pub latency_ms: i64,
    /// What went wrong, in words.
    pub error: Option<String>,
    pub provider: ModelProvider,
}
