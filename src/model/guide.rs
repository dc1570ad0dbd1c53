//! The first-run guide (F18): the whole loop on the demo site, each step
//! ticked by the real event.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct GuideStep {
    /// project, batch, test_run, results, fix, rerun, compare
    pub key: String,
    pub title: String,
    /// One sentence: what to do and why.
    pub help: String,
    /// Where it happens, for this person in this organization now.
    pub href: String,
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Guide {
    pub steps: Vec<GuideStep>,
    /// Put away by the person (re-opened from the account menu).
    pub dismissed: bool,
}

impl Guide {
    pub fn done(&self) -> usize {
        self.steps.iter().filter(|s| s.done).count()
    }

    pub fn complete(&self) -> bool {
        self.steps.iter().all(|s| s.done)
    }
}
