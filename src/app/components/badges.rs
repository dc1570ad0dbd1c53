//! Badges: an execution's state and a job's verdict as a coloured label.

use crate::model::{ExecutionState, Verdict};

/// "running" → a badge class and a label.
pub fn state_badge(state: ExecutionState) -> (&'static str, String) {
    use ExecutionState::*;
    let class = match state {
        Running => "badge run",
        Completed => "badge ok",
        Failed | Cancelled => "badge bad",
        Paused | Stopping => "badge warn",
        Queued => "badge",
    };
    (class, state.to_string())
}

/// "pass" → a badge class and a label.
pub fn verdict_badge(verdict: Option<Verdict>, state: &str) -> (&'static str, String) {
    match verdict {
        Some(Verdict::Pass) => ("badge ok", "pass".into()),
        Some(Verdict::Partial) => ("badge warn", "partial".into()),
        Some(Verdict::Fail) => ("badge bad", "fail".into()),
        Some(Verdict::Error) => ("badge bad", "error".into()),
        Some(Verdict::NoGroundTruth) => ("badge", "no expected values".into()),
        None => ("badge", state.to_string()),
    }
}
