//! Agents: what runs one job. Every agent implements [`Agent`]: it gets the
//! job (the site's URL, the row's inputs, the instructions and the output
//! fields) and a [`Progress`] sink to report its current step, URL and
//! percentage and to log, and returns the extracted values or a classified
//! error. The executor owns everything else (leases, retries, writing).
//!
//! A built-in agent is a **source** (how the page is obtained, `sources/`)
//! plus an **extractor** (how values are read from it, `extract/`):
//!
//! - [`sources::http::HttpAgent`]: fetches the page (`fetch` holds the
//!   network rules every source shares).
//! - [`sources::browser::BrowserAgent`]: renders the page in headless
//!   Chromium, with the project's wait and scripted steps.
//! - [`sources::snapshot::SnapshotAgent`]: reads the page an earlier run
//!   stored, fetching nothing.
//!
//! Each hands the page to the rules extractor ([`extract::extract_all`]:
//! every field by its rule or the automatic rule) and returns a copy of
//! the page it read, which the executor keeps as the attempt's snapshot.
//!
//! [`remote::RemoteAgent`] is both at once: it hands the job to an
//! external agent service over HTTP and streams its progress back
//! (protocol in the README).

pub mod extract;
pub mod fetch;
pub mod llm;
pub mod remote;
pub mod sources;

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{BrowserStep, OutputField};
pub use fetch::{ErrorClass, FetchError as AgentError};

/// One job as an agent sees it.
#[derive(Debug, Clone, Serialize)]
pub struct JobInput {
    pub job_id: i64,
    pub attempt: i32,
    pub url: String,
    /// The row's other columns, by header.
    pub inputs: Map<String, Value>,
    pub instructions: String,
    pub instruction_version: i32,
    pub fields: Vec<OutputField>,
    pub timeout_secs: i32,
    /// The row's place in its batch (the snapshot source finds the kept
    /// page by it).
    pub row_index: i32,
    /// Browser source: a selector to wait for, and steps to run.
    pub wait_for: Option<String>,
    pub steps: Vec<BrowserStep>,
}

/// What an agent found.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutput {
    /// One value per output field (null when not found).
    pub values: Map<String, Value>,
    /// Whatever the agent wants kept with the attempt, as JSON.
    pub raw: Value,
    /// The page the values were read from (none from a remote agent).
    pub page: Option<PageCopy>,
    /// The llm extractor's provider, model, tokens and cost.
    pub usage: Option<extract::llm::Usage>,
}

/// A page as a source read it: its final address and its HTML (for a
/// browser, the rendered DOM).
#[derive(Debug, Clone, PartialEq)]
pub struct PageCopy {
    pub url: String,
    pub html: String,
}

pub trait Agent: Send + Sync {
    fn run(
        &self,
        job: &JobInput,
        progress: &Progress,
    ) -> impl std::future::Future<Output = Result<AgentOutput, AgentError>> + Send;
}

/// What an agent last said it was doing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Step {
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
}

/// One line of an attempt's log.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LogLine {
    /// Milliseconds since the attempt started.
    pub ms: u64,
    pub level: String,
    pub message: String,
}

/// Longest log kept per attempt; later lines are counted, not kept.
const MAX_LOG_LINES: usize = 200;
const MAX_LINE_CHARS: usize = 2_000;

/// The sink an agent reports through. The executor reads the latest step
/// (and writes it to the job for live views) and keeps the log with the
/// attempt.
pub struct Progress {
    started: Instant,
    inner: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    step: Option<Step>,
    /// Bumped on every step so a reader can tell it changed.
    version: u64,
    log: Vec<LogLine>,
    dropped: usize,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            started: Instant::now(),
            inner: Mutex::new(ProgressState::default()),
        }
    }
}

impl Progress {
    /// Reports the current step; also logged.
    pub fn step(&self, step: &str, url: Option<&str>, percent: Option<u8>) {
        let mut s = self.inner.lock().expect("progress lock");
        s.step = Some(Step {
            step: step.to_string(),
            url: url.map(str::to_string),
            percent: percent.map(|p| p.min(100)),
        });
        s.version += 1;
        drop(s);
        let line = match url {
            Some(u) => format!("{step}: {u}"),
            None => step.to_string(),
        };
        self.log("info", &line);
    }

    pub fn log(&self, level: &str, message: &str) {
        let ms = self.started.elapsed().as_millis() as u64;
        let mut s = self.inner.lock().expect("progress lock");
        if s.log.len() >= MAX_LOG_LINES {
            s.dropped += 1;
            return;
        }
        let message: String = message.chars().take(MAX_LINE_CHARS).collect();
        s.log.push(LogLine {
            ms,
            level: level.to_string(),
            message,
        });
    }

    /// Takes in the lines another sink logged (a task that could not hold
    /// this one), each at its own time, keeping the log in time order.
    pub fn merge(&self, other: &Progress) {
        let offset = other
            .started
            .saturating_duration_since(self.started)
            .as_millis() as u64;
        let lines = other.log_lines();
        let mut s = self.inner.lock().expect("progress lock");
        for mut line in lines {
            if s.log.len() >= MAX_LOG_LINES {
                s.dropped += 1;
                continue;
            }
            line.ms += offset;
            s.log.push(line);
        }
        // Stable: lines of the same millisecond keep their order.
        s.log.sort_by_key(|l| l.ms);
    }

    /// The latest step and its version number.
    pub fn current(&self) -> (u64, Option<Step>) {
        let s = self.inner.lock().expect("progress lock");
        (s.version, s.step.clone())
    }

    /// The log so far, with a last line saying how many were left out.
    pub fn log_lines(&self) -> Vec<LogLine> {
        let s = self.inner.lock().expect("progress lock");
        let mut lines = s.log.clone();
        if s.dropped > 0 {
            lines.push(LogLine {
                ms: self.started.elapsed().as_millis() as u64,
                level: "warn".into(),
                message: format!("{} more lines were not kept.", s.dropped),
            });
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_keeps_the_latest_step_and_a_bounded_log() {
        let p = Progress::default();
        assert_eq!(p.current(), (0, None));
        p.step("Fetching", Some("https://a.example/"), Some(150));
        let (v, step) = p.current();
        assert_eq!(v, 1);
        let step = step.unwrap();
        assert_eq!(step.percent, Some(100), "percent is capped");
        assert_eq!(step.url.as_deref(), Some("https://a.example/"));
        for i in 0..MAX_LOG_LINES + 5 {
            p.log("info", &format!("line {i}"));
        }
        let lines = p.log_lines();
        assert_eq!(lines.len(), MAX_LOG_LINES + 1);
        assert_eq!(lines[0].message, "Fetching: https://a.example/");
        assert_eq!(lines.last().unwrap().message, "6 more lines were not kept.");
    }
}
