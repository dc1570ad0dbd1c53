//! Projects: instructions and their versions, output fields, agent settings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Role;

/// What a list of projects shows per project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ProjectSummary {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub production_version: i32,
    pub latest_version: i32,
    pub batch_count: i64,
    pub row_count: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Project {
    pub id: Uuid,
    pub org_id: Uuid,
    pub org_slug: String,
    pub name: String,
    pub description: String,
    pub production_version: i32,
    pub latest_version: i32,
    pub agent: AgentSettings,
    pub fields: Vec<OutputField>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The caller's role in the organization (`None` for API keys), so pages
    /// can hide what the caller may not do. The server checks regardless.
    pub role: Option<Role>,
    /// What a job of the llm extractor is expected to cost, when the
    /// project has a model route and a finished test run that used it.
    #[serde(default)]
    pub llm_estimate: Option<LlmCostEstimate>,
}

/// The cost of a job with the llm extractor, measured rather than guessed:
/// the average tokens per job of the project's last finished test run with
/// the llm extractor, priced at the route's first model's prices now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct LlmCostEstimate {
    /// The test run the tokens were measured on.
    pub from_execution: Uuid,
    /// How many of its jobs the average is over.
    pub measured_jobs: i64,
    pub input_tokens_per_job: i64,
    pub output_tokens_per_job: i64,
    /// "Provider / model" whose prices are applied.
    pub model: String,
    /// In millionths of the currency unit.
    pub per_job_micros: i64,
}

impl Project {
    pub fn can_edit(&self) -> bool {
        self.role.is_none_or(|r| r >= Role::Member)
    }
    pub fn can_delete(&self) -> bool {
        self.role.is_none_or(|r| r >= Role::Admin)
    }
}

/// What an execution runs: a source of built-in agents (http, browser,
/// snapshot) or the remote agent service. A project's default is one of
/// [`AgentKind::FOR_PROJECTS`]; `snapshot` exists only per execution (it
/// re-reads the pages another run kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    Http,
    Browser,
    Remote,
    Snapshot,
    /// Values extracted elsewhere and imported (`POST /batches/{id}/imports`).
    Imported,
}

impl AgentKind {
    pub const ALL: [AgentKind; 5] = [
        AgentKind::Http,
        AgentKind::Browser,
        AgentKind::Remote,
        AgentKind::Snapshot,
        AgentKind::Imported,
    ];
    /// The kinds a project may have as its default agent.
    pub const FOR_PROJECTS: [AgentKind; 3] =
        [AgentKind::Http, AgentKind::Browser, AgentKind::Remote];
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Http => "http",
            AgentKind::Browser => "browser",
            AgentKind::Remote => "remote",
            AgentKind::Snapshot => "snapshot",
            AgentKind::Imported => "imported",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            AgentKind::Http => "Built-in http agent",
            AgentKind::Browser => "Built-in browser agent (headless Chromium)",
            AgentKind::Remote => "Remote agent service",
            AgentKind::Snapshot => "Built-in agent on a previous run's kept pages",
            AgentKind::Imported => "Imported results (extracted elsewhere)",
        }
    }
    pub fn parse(s: &str) -> Option<AgentKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

text_column!(AgentKind);

text_enum! {
    /// How values are read from a page: `rules` (each field's rule, or the
    /// automatic rule) or `llm` (fields with the automatic rule go to a
    /// model with the instructions; fields with an explicit rule keep it).
    pub enum Extractor {
        Rules = "rules",
        Llm = "llm",
    }
}

text_enum! {
    /// What a scripted browser step does.
    pub enum StepAction {
        /// Clicks the first element matching `selector`.
        Click = "click",
        /// Scrolls to the end of the page `times` times (default 1).
        Scroll = "scroll",
        /// Waits `ms` milliseconds.
        Wait = "wait",
        /// Types `value` into the first element matching `selector`.
        Fill = "fill",
    }
}

/// One scripted step of the browser source, run in order after the page
/// is loaded and quiet, for pages that reveal data on interaction. A
/// click or fill whose selector matches nothing is skipped (and logged),
/// so one list of steps can serve a batch of different sites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BrowserStep {
    pub action: StepAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u32>,
}

impl BrowserStep {
    /// Most steps per project.
    pub const MAX: usize = 20;
    /// Longest wait step and most scrolls.
    pub const MAX_WAIT_MS: u32 = 30_000;
    pub const MAX_SCROLLS: u32 = 50;

    /// The step as one line of the settings form: `click #more`,
    /// `scroll 3`, `wait 500`, `fill input[name=q] -> shoes`.
    pub fn to_line(&self) -> String {
        let sel = self.selector.as_deref().unwrap_or("");
        match self.action {
            StepAction::Click => format!("click {sel}"),
            StepAction::Scroll => format!("scroll {}", self.times.unwrap_or(1)),
            StepAction::Wait => format!("wait {}", self.ms.unwrap_or(0)),
            StepAction::Fill => format!("fill {sel} -> {}", self.value.as_deref().unwrap_or("")),
        }
    }

    /// One line of the settings form as a step (the form of [`to_line`]).
    /// Numbers and selectors are checked by the server.
    ///
    /// [`to_line`]: BrowserStep::to_line
    pub fn parse_line(line: &str) -> Result<BrowserStep, String> {
        let line = line.trim();
        let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let number = |what: &str| {
            rest.parse::<u32>()
                .map_err(|_| format!("{verb} takes {what} as a whole number, e.g. \"{verb} 2\"."))
        };
        let mut step = BrowserStep {
            action: StepAction::Click,
            selector: None,
            value: None,
            times: None,
            ms: None,
        };
        match verb.to_ascii_lowercase().as_str() {
            "click" if !rest.is_empty() => step.selector = Some(rest.to_string()),
            "click" => return Err("click needs a CSS selector, e.g. \"click #show-price\".".into()),
            "scroll" => {
                step.action = StepAction::Scroll;
                step.times = if rest.is_empty() {
                    None
                } else {
                    Some(number("how many times")?)
                };
            }
            "wait" => {
                step.action = StepAction::Wait;
                step.ms = Some(number("milliseconds")?);
            }
            "fill" => {
                step.action = StepAction::Fill;
                let Some((sel, value)) = rest.rsplit_once(" -> ") else {
                    return Err(
                        "fill needs a selector and the text, e.g. \"fill input[name=q] -> shoes\"."
                            .into(),
                    );
                };
                step.selector = Some(sel.trim().to_string());
                step.value = Some(value.to_string());
            }
            _ => {
                return Err(format!(
                    "{verb:?} is not a step: use click, scroll, wait or fill."
                ))
            }
        }
        Ok(step)
    }

    /// The step in a few words, for logs and the settings page.
    pub fn describe(&self) -> String {
        let sel = self.selector.as_deref().unwrap_or("");
        match self.action {
            StepAction::Click => format!("click {sel}"),
            StepAction::Scroll => format!("scroll to the end ×{}", self.times.unwrap_or(1)),
            StepAction::Wait => format!("wait {} ms", self.ms.unwrap_or(0)),
            StepAction::Fill => {
                format!("fill {sel} with {:?}", self.value.as_deref().unwrap_or(""))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct AgentSettings {
    pub kind: AgentKind,
    /// The remote agent service's endpoint (kind = remote).
    pub remote_url: Option<String>,
    pub timeout_secs: i32,
    pub max_retries: i32,
    /// Price per job in millionths of the currency unit.
    pub price_per_job_micros: i64,
    pub extractor: Extractor,
    /// Browser source: wait until an element matches this CSS selector
    /// (instead of for network quiet).
    #[serde(default)]
    pub wait_for: Option<String>,
    /// Browser source: steps run after the page is ready.
    #[serde(default)]
    pub steps: Vec<BrowserStep>,
    /// Production runs keep the page of every attempt (test runs always
    /// do), for viewing and re-extraction.
    #[serde(default)]
    pub keep_pages: bool,
    /// llm extractor: the ordered (provider, model) route; the first serves,
    /// the rest are fallbacks.
    #[serde(default)]
    pub model_route: Vec<super::RouteEntry>,
    /// llm extractor: how many tokens of the page the model sees.
    #[serde(default = "default_page_token_budget")]
    pub page_token_budget: i32,
}

/// How many tokens of a page the model sees unless the project says.
pub const DEFAULT_PAGE_TOKEN_BUDGET: i32 = 6_000;
/// The page token budget's bounds.
pub const PAGE_TOKEN_BUDGET_RANGE: (i32, i32) = (500, 200_000);

fn default_page_token_budget() -> i32 {
    DEFAULT_PAGE_TOKEN_BUDGET
}

/// A price in millionths, written the way people type prices ("0.0025").
pub fn format_price(micros: i64) -> String {
    let whole = micros / 1_000_000;
    let frac = micros % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// One saved version of a project's instructions. Never changed after save.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct InstructionVersion {
    pub version: i32,
    pub instructions: String,
    pub note: String,
    pub author_name: String,
    pub created_at: DateTime<Utc>,
    pub is_production: bool,
    /// The fields' extraction rules and descriptions of this version.
    #[serde(default)]
    pub fields: FieldRunConfigs,
    /// The agent settings of this version.
    pub agent: VersionAgent,
    /// What this version changed from the one before: "instructions",
    /// "fields", "agent".
    #[serde(default)]
    pub parts: Vec<String>,
}

/// How a field is extracted, as a version records it. Fields not listed in
/// a version use the default: the automatic rule and no description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FieldRunConfig {
    pub rule: ExtractionRule,
    #[serde(default)]
    pub description: String,
}

impl Default for FieldRunConfig {
    fn default() -> Self {
        FieldRunConfig {
            rule: ExtractionRule::Auto,
            description: String::new(),
        }
    }
}

/// A version's field configurations by field name (defaults left out).
pub type FieldRunConfigs = std::collections::BTreeMap<String, FieldRunConfig>;

/// The fields' run configurations as a version records them: the fields
/// whose rule or description is not the default.
pub fn field_run_configs(fields: &[OutputField]) -> FieldRunConfigs {
    fields
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                FieldRunConfig {
                    rule: f.rule.clone(),
                    description: f.description.clone(),
                },
            )
        })
        .filter(|(_, c)| *c != FieldRunConfig::default())
        .collect()
}

/// The agent settings a version records: those that shape what a run
/// extracts. Price, retries, kept pages and where the remote agent service
/// listens (an address, which moves with the service) stay current
/// project settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct VersionAgent {
    pub kind: AgentKind,
    pub timeout_secs: i32,
    pub extractor: Extractor,
    #[serde(default)]
    pub wait_for: Option<String>,
    #[serde(default)]
    pub steps: Vec<BrowserStep>,
    #[serde(default)]
    pub model_route: Vec<super::RouteEntry>,
    #[serde(default = "default_page_token_budget")]
    pub page_token_budget: i32,
}

impl VersionAgent {
    pub fn of(a: &AgentSettings) -> VersionAgent {
        VersionAgent {
            kind: a.kind,
            timeout_secs: a.timeout_secs,
            extractor: a.extractor,
            wait_for: a.wait_for.clone(),
            steps: a.steps.clone(),
            model_route: a.model_route.clone(),
            page_token_budget: a.page_token_budget,
        }
    }

    /// The project's current settings with this version's run settings.
    pub fn applied_to(&self, current: &AgentSettings) -> AgentSettings {
        AgentSettings {
            kind: self.kind,
            timeout_secs: self.timeout_secs,
            extractor: self.extractor,
            wait_for: self.wait_for.clone(),
            steps: self.steps.clone(),
            model_route: self.model_route.clone(),
            page_token_budget: self.page_token_budget,
            ..current.clone()
        }
    }

    /// Each setting as (name, shown value), for diffs; providers are named
    /// by `provider_name`.
    pub fn settings(&self, provider_name: impl Fn(Uuid) -> String) -> Vec<(&'static str, String)> {
        let route = self
            .model_route
            .iter()
            .map(|r| format!("{} / {}", provider_name(r.provider), r.model))
            .collect::<Vec<_>>()
            .join(" → ");
        let steps = serde_json::to_string(&self.steps).unwrap_or_default();
        vec![
            ("source", self.kind.as_str().to_string()),
            ("timeout_secs", self.timeout_secs.to_string()),
            ("extractor", self.extractor.to_string()),
            ("wait_for", self.wait_for.clone().unwrap_or_default()),
            (
                "steps",
                if self.steps.is_empty() {
                    String::new()
                } else {
                    steps
                },
            ),
            ("model_route", route),
            ("page_token_budget", self.page_token_budget.to_string()),
        ]
    }
}

/// Applies a version's field configurations to the project's fields: each
/// field takes the version's rule and description, or the defaults when
/// the version does not list it. Comparators stay the current ones.
pub fn fields_for_version(current: &[OutputField], configs: &FieldRunConfigs) -> Vec<OutputField> {
    current
        .iter()
        .map(|f| {
            let c = configs.get(&f.name).cloned().unwrap_or_default();
            OutputField {
                rule: c.rule,
                description: c.description,
                ..f.clone()
            }
        })
        .collect()
}

/// How two versions differ in all three parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct VersionDiff {
    pub a: i32,
    pub b: i32,
    pub instructions: InstructionDiff,
    /// Fields whose rule or description differ, by name.
    pub fields: Vec<FieldConfigChange>,
    /// Agent settings that differ.
    pub agent: Vec<SettingChange>,
}

impl VersionDiff {
    pub fn is_empty(&self) -> bool {
        self.instructions.added == 0
            && self.instructions.removed == 0
            && self.fields.is_empty()
            && self.agent.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FieldConfigChange {
    pub field: String,
    pub before: FieldRunConfig,
    pub after: FieldRunConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct SettingChange {
    pub setting: String,
    pub before: String,
    pub after: String,
}

/// A version in the history list, without its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct VersionSummary {
    pub version: i32,
    pub note: String,
    pub author_name: String,
    pub created_at: DateTime<Utc>,
    pub is_production: bool,
    pub chars: i32,
    pub lines: i32,
    /// What this version changed: "instructions", "fields", "agent".
    #[serde(default)]
    pub parts: Vec<String>,
}

/// One row of a side-by-side line diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct DiffLine {
    pub kind: DiffKind,
    /// Line number and text on the old side, if the line is there.
    pub old: Option<(u32, String)>,
    pub new: Option<(u32, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    Same,
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct InstructionDiff {
    pub old_version: i32,
    pub new_version: i32,
    pub added: u32,
    pub removed: u32,
    pub lines: Vec<DiffLine>,
}

/// The type of a CSV column or an output field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Text,
    Number,
    Url,
    Email,
    Date,
}

impl ValueType {
    pub const ALL: [ValueType; 5] = [
        ValueType::Text,
        ValueType::Number,
        ValueType::Url,
        ValueType::Email,
        ValueType::Date,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Number => "number",
            ValueType::Url => "url",
            ValueType::Email => "email",
            ValueType::Date => "date",
        }
    }
    pub fn parse(s: &str) -> Option<ValueType> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s.trim().to_ascii_lowercase())
    }
    /// The comparator a field named `name` of this type starts with: a
    /// text field named for a currency compares as currencies (so `€`
    /// equals `EUR`), others by their type.
    pub fn comparator_for(self, name: &str) -> Comparator {
        let key: String = name
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        match (self, key.as_str()) {
            (ValueType::Text, "currency" | "pricecurrency" | "currencycode") => {
                Comparator::Currency
            }
            _ => self.default_comparator(),
        }
    }

    /// The comparator a field of this type starts with.
    pub fn default_comparator(self) -> Comparator {
        match self {
            ValueType::Text | ValueType::Email => Comparator::NormalizedText,
            ValueType::Number => Comparator::Number,
            ValueType::Url => Comparator::Url,
            ValueType::Date => Comparator::Date,
        }
    }
}

/// How an extracted value is judged against the expected one (used by
/// evaluation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Comparator {
    Exact,
    NormalizedText,
    Number,
    Url,
    Date,
    Contains,
    Regex,
    OneOf,
    TokenF1,
    /// ISO codes, unambiguous symbols and names of a currency are equal;
    /// `$` and other shared symbols only with a locale.
    Currency,
    /// Long text (article bodies, descriptions): overlap of the texts'
    /// four-word shingles, scored as F1 against a threshold.
    TextSimilarity,
}

impl Comparator {
    pub const ALL: [Comparator; 11] = [
        Comparator::Exact,
        Comparator::NormalizedText,
        Comparator::Number,
        Comparator::Url,
        Comparator::Date,
        Comparator::Contains,
        Comparator::Regex,
        Comparator::OneOf,
        Comparator::TokenF1,
        Comparator::Currency,
        Comparator::TextSimilarity,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::Exact => "exact",
            Comparator::NormalizedText => "normalized_text",
            Comparator::Number => "number",
            Comparator::Url => "url",
            Comparator::Date => "date",
            Comparator::Contains => "contains",
            Comparator::Regex => "regex",
            Comparator::OneOf => "one_of",
            Comparator::TokenF1 => "token_f1",
            Comparator::Currency => "currency",
            Comparator::TextSimilarity => "text_similarity",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Comparator::Exact => "Exact",
            Comparator::NormalizedText => "Normalized text (case, spaces, punctuation)",
            Comparator::Number => "Number (with tolerance)",
            Comparator::Url => "URL (normalized)",
            Comparator::Date => "Date",
            Comparator::Contains => "Extracted contains expected",
            Comparator::Regex => "Expected is a regular expression",
            Comparator::OneOf => "One of (expected values separated by |)",
            Comparator::TokenF1 => "Token overlap F1 (threshold)",
            Comparator::Currency => "Currency (€ = EUR; $ needs a locale)",
            Comparator::TextSimilarity => "Text similarity for long text (threshold)",
        }
    }
    pub fn parse(s: &str) -> Option<Comparator> {
        Self::ALL.into_iter().find(|c| c.as_str() == s.trim())
    }

    /// What the comparator does, in one sentence with an example (the
    /// field editor shows it under the choice).
    pub fn example(self) -> &'static str {
        match self {
            Comparator::Exact => "Passes only on identical text: “SKU-042” fails against “sku-042”.",
            Comparator::NormalizedText => "Ignores case, spacing and punctuation: “Blue  Mug!” passes against “blue mug”.",
            Comparator::Number => "Reads both as numbers, within the tolerance: “$1,299.00” passes against 1299.",
            Comparator::Url => "Compares normalized addresses: “HTTPS://Shop.example/a/” passes against “https://shop.example/a”.",
            Comparator::Date => "Compares the day, whatever the format: “7 Dec 2026” passes against “2026-12-07”.",
            Comparator::Contains => "Passes when the extracted text contains the expected one: “In stock, ships today” passes against “In stock”.",
            Comparator::Regex => "The expected value is a pattern: ^\\d{5}$ passes “90210”.",
            Comparator::OneOf => "Any of the expected values passes: “red|crimson” accepts “Crimson”.",
            Comparator::TokenF1 => "Scores word overlap against the threshold: “Acme blue ceramic mug” against “Blue mug by Acme” scores 0.75.",
            Comparator::Currency => "Compares currencies by code, symbol or name: “€” passes against “EUR”; “$” needs a locale such as en-CA.",
            Comparator::TextSimilarity => "For long text: the share of four-word runs both texts have, against the threshold (0.8 unless set).",
        }
    }
}

/// Comparator settings; only the ones the chosen comparator uses matter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ComparatorOptions {
    /// Number: absolute tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Number: relative tolerance (0.01 = 1 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_tolerance: Option<f64>,
    /// Token F1 and text similarity: the least score that passes (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Currency: the locale that says what a shared symbol means (`en-CA`
    /// makes `$` the Canadian dollar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// How the built-in http agent finds a field's value on the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExtractionRule {
    /// Look in JSON-LD, microdata, Open Graph and "Label: value" text.
    Auto,
    /// The first element matching `selector`; its text, or `attribute`.
    Css {
        selector: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attribute: Option<String>,
    },
    /// A dotted path into the page's JSON-LD, e.g. `offers.price`.
    JsonLd { path: String },
    /// `<meta name|property=… content=…>`.
    Meta { name: String },
    /// The first capture group (or the whole match) in the page's HTML.
    Regex { pattern: String },
    /// The page's main text (an article body, a product description),
    /// found as Firefox's reader view finds it, whitespace collapsed.
    Article,
}

impl ExtractionRule {
    pub fn kind(&self) -> &'static str {
        match self {
            ExtractionRule::Auto => "auto",
            ExtractionRule::Css { .. } => "css",
            ExtractionRule::JsonLd { .. } => "json_ld",
            ExtractionRule::Meta { .. } => "meta",
            ExtractionRule::Regex { .. } => "regex",
            ExtractionRule::Article => "article",
        }
    }
    /// A one-line description for tables.
    pub fn describe(&self) -> String {
        match self {
            ExtractionRule::Auto => "automatic".into(),
            ExtractionRule::Css {
                selector,
                attribute: Some(a),
            } => format!("css {selector} @{a}"),
            ExtractionRule::Css { selector, .. } => format!("css {selector}"),
            ExtractionRule::JsonLd { path } => format!("JSON-LD {path}"),
            ExtractionRule::Meta { name } => format!("meta {name}"),
            ExtractionRule::Regex { pattern } => format!("regex {pattern}"),
            ExtractionRule::Article => "main text".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct OutputField {
    pub name: String,
    pub field_type: ValueType,
    pub comparator: Comparator,
    #[serde(default)]
    pub comparator_options: ComparatorOptions,
    pub rule: ExtractionRule,
    /// `csv` when it came from a `gt_` column, `manual` when added by hand.
    pub source: String,
    /// What the field means, for the llm extractor (sent to the model
    /// with the field's name and type).
    #[serde(default)]
    pub description: String,
    /// What an empty expected cell means for this field.
    #[serde(default)]
    pub empty_means: EmptyMeans,
    /// In CSV uploads and bulk sets, the separator that splits one cell
    /// into several acceptable values (e.g. `|`); none: a cell is one value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_value_separator: Option<String>,
}

/// What an empty expected value means when a row is judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EmptyMeans {
    /// Nobody wrote the value down: the row is not judged on this field.
    #[default]
    Unknown,
    /// The page has no such value: extracting one is a false positive,
    /// extracting nothing passes.
    Absent,
}

impl EmptyMeans {
    pub fn as_str(self) -> &'static str {
        match self {
            EmptyMeans::Unknown => "unknown",
            EmptyMeans::Absent => "absent",
        }
    }
    pub fn parse(s: &str) -> Option<EmptyMeans> {
        match s.trim() {
            "unknown" => Some(EmptyMeans::Unknown),
            "absent" => Some(EmptyMeans::Absent),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_steps_read_and_write_as_form_lines() {
        for line in [
            "click #show-price",
            "scroll 3",
            "wait 500",
            "fill input[name=q] -> red shoes",
        ] {
            let step = BrowserStep::parse_line(line).unwrap();
            assert_eq!(step.to_line(), line);
        }
        let scroll = BrowserStep::parse_line("  Scroll ").unwrap();
        assert_eq!((scroll.action, scroll.times), (StepAction::Scroll, None));
        let err = |l: &str| BrowserStep::parse_line(l).unwrap_err();
        assert!(err("click").contains("CSS selector"));
        assert!(err("wait soon").contains("whole number"));
        assert!(err("fill #q").contains("->"));
        assert!(err("hover #x").contains("click, scroll, wait or fill"));
    }

    #[test]
    fn prices_print_like_typed() {
        assert_eq!(format_price(0), "0");
        assert_eq!(format_price(2_500), "0.0025");
        assert_eq!(format_price(1_500_000), "1.5");
        assert_eq!(format_price(3_000_000), "3");
    }

    #[test]
    fn rules_serialize_with_a_kind_tag() {
        let r: ExtractionRule =
            serde_json::from_str(r#"{"kind":"css","selector":".price"}"#).unwrap();
        assert_eq!(
            r,
            ExtractionRule::Css {
                selector: ".price".into(),
                attribute: None
            }
        );
        assert_eq!(
            serde_json::to_string(&ExtractionRule::Auto).unwrap(),
            r#"{"kind":"auto"}"#
        );
    }
}

/// Which columns of a run's results grid the caller sees, in which order.
/// Columns are named `site`, `result`, `accuracy` and `field:<name>` for
/// each output field (a field name can't hold a colon, so the two never
/// clash). The row number is always shown first; a page's error column
/// appears when one of its jobs failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct GridColumns {
    /// Every column there is, fixed ones first, then the project's fields
    /// in their order.
    pub available: Vec<String>,
    /// The columns shown, in order: the caller's saved choice, with
    /// columns the project gained since appended; every column when
    /// nothing is saved.
    pub shown: Vec<String>,
    /// Whether the caller saved a choice for this project.
    pub saved: bool,
}

/// The results grid's columns that are not fields.
pub const FIXED_GRID_COLUMNS: [&str; 3] = ["site", "result", "accuracy"];

impl GridColumns {
    /// The columns of a project with these fields, shown as `saved` asks
    /// (`saved`: the shown order and the hidden set stored for the user).
    pub fn resolve(fields: &[String], saved: Option<(Vec<String>, Vec<String>)>) -> GridColumns {
        let available: Vec<String> = FIXED_GRID_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .chain(fields.iter().map(|f| format!("field:{f}")))
            .collect();
        let Some((shown, hidden)) = saved else {
            return GridColumns {
                shown: available.clone(),
                available,
                saved: false,
            };
        };
        // Saved columns that still exist, then the ones new since.
        let mut out: Vec<String> = shown
            .into_iter()
            .filter(|c| available.contains(c))
            .collect();
        for c in &available {
            if !out.contains(c) && !hidden.contains(c) {
                out.push(c.clone());
            }
        }
        GridColumns {
            available,
            shown: out,
            saved: true,
        }
    }

    /// A column's heading.
    pub fn label(column: &str) -> String {
        match column {
            "site" => "Site".into(),
            "result" => "Result".into(),
            "accuracy" => "Accuracy".into(),
            other => other.strip_prefix("field:").unwrap_or(other).to_string(),
        }
    }
}
