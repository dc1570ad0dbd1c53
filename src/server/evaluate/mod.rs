//! Evaluation against ground truth: comparing an extracted value with the
//! expected one by the field's comparator (`comparators`). Verdicts per job
//! and metrics per execution build on these.

pub mod comparators;
