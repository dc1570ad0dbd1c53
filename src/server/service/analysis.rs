//! What the results say (F10): failure patterns per field, accuracy trends
//! across a batch's runs, and two runs compared row by row. Everything is
//! read from the jobs' current verdicts, so a fixed expected value or a new
//! comparator shows in every view at once.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{
    Comparison, FailureExample, FailurePattern, FailurePatterns, FieldDelta, FieldFailures,
    JobPair, TrendPoint, Trends, ValueType, Verdict,
};
use crate::server::auth::rbac::Actor;
use crate::server::db::{self, executions::Counts, executions::MetricParts};
use crate::server::evaluate::comparators;

/// The patterns, in the order they are shown.
pub const PATTERNS: &[&str] = &[
    "missing",
    "wrong_type",
    "partial",
    "wrong_value",
    "agent_error",
];
const EXAMPLES: usize = 5;
/// Pairs listed per kind in a comparison (the counts cover all).
const PAIRS: usize = 200;

fn text(v: &Value) -> Option<String> {
    crate::model::expected_text(v)
}

/// Which pattern a failed field shows: nothing extracted, not a value of
/// the field's type, close to the expected value, or simply different.
pub fn classify(
    field_type: ValueType,
    extracted: Option<&str>,
    expected: &str,
    score: f64,
) -> &'static str {
    let Some(got) = extracted.map(str::trim).filter(|g| !g.is_empty()) else {
        return "missing";
    };
    let typed = match field_type {
        ValueType::Number => comparators::parse_number(got).is_some(),
        ValueType::Date => !comparators::parse_dates(got).is_empty(),
        ValueType::Url => comparators::normalize_url(got).is_some(),
        _ => true,
    };
    if !typed {
        return "wrong_type";
    }
    let (g, w) = (
        comparators::normalize_text(got),
        comparators::normalize_text(expected),
    );
    let close = score >= 0.5
        || (!g.is_empty() && !w.is_empty() && (g.contains(&w) || w.contains(&g)))
        || comparators::token_f1(got, expected) >= 0.5
        || match (
            comparators::parse_number(got),
            comparators::parse_number(expected),
        ) {
            (Some(a), Some(b)) if field_type == ValueType::Number => (a - b).abs() <= b.abs() * 0.1,
            _ => false,
        };
    if close {
        "partial"
    } else {
        "wrong_value"
    }
}

/// Why an execution's fields failed, by pattern with examples (kept while the run is finished and unchanged).
pub async fn failure_patterns(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<FailurePatterns, AppError> {
    let (_, e) = super::executions::execution_ctx(db, actor, id).await?;
    db::summaries::memo(db, id, "patterns", || patterns_of(db, id, e.batch_id)).await
}

/// Failure patterns scanned from the jobs (`failure_patterns` keeps them).
async fn patterns_of(db: &PgPool, id: Uuid, batch_id: Uuid) -> Result<FailurePatterns, AppError> {
    let fields = db::analysis::execution_fields(db, id).await?;
    let types: HashMap<String, ValueType> = fields
        .iter()
        .map(|f| (f.name.clone(), f.field_type))
        .collect();
    let judged = db::analysis::judged_per_field(db, id).await?;
    let mut out: BTreeMap<String, (i64, BTreeMap<&'static str, FailurePattern>)> = judged
        .into_iter()
        .map(|(k, n)| (k, (n, BTreeMap::new())))
        .collect();
    let mut add = |field: &str, pattern: &'static str, example: FailureExample| {
        let entry = out.entry(field.to_string()).or_insert((0, BTreeMap::new()));
        let p = entry.1.entry(pattern).or_insert_with(|| FailurePattern {
            pattern: pattern.to_string(),
            count: 0,
            examples: vec![],
        });
        p.count += 1;
        if p.examples.len() < EXAMPLES {
            p.examples.push(example);
        }
    };
    // Jobs that ran and got a field wrong.
    let failing = db::analysis::failing_jobs(db, id, batch_id).await?;
    for job in failing {
        let Json(results) = &job.field_results;
        for (field, r) in results.iter().filter(|(_, r)| r["pass"] == false) {
            let expected = r.get("expected").and_then(text).unwrap_or_default();
            let extracted = r.get("extracted").and_then(text);
            let score = r["score"].as_f64().unwrap_or(0.0);
            let pattern = classify(
                types.get(field).copied().unwrap_or(ValueType::Text),
                extracted.as_deref(),
                &expected,
                score,
            );
            add(
                field,
                pattern,
                FailureExample {
                    job_id: job.id,
                    row_index: job.row_index,
                    url: job.site_url.clone(),
                    extracted,
                    expected: Some(expected),
                    detail: r["explanation"].as_str().unwrap_or_default().to_string(),
                },
            );
        }
    }
    // Jobs that failed: an agent error for every field the row expected.
    let errored = db::analysis::errored_jobs(db, id, batch_id).await?;
    for job in errored {
        for f in &fields {
            let Some(expected) = job
                .ground_truth
                .get(&f.name)
                .and_then(text)
                .filter(|t| !t.trim().is_empty())
            else {
                continue;
            };
            add(
                &f.name,
                "agent_error",
                FailureExample {
                    job_id: job.id,
                    row_index: job.row_index,
                    url: job.site_url.clone(),
                    extracted: None,
                    expected: Some(expected),
                    detail: format!(
                        "{}: {}",
                        job.error_class.as_deref().unwrap_or("error"),
                        job.error.as_deref().unwrap_or_default()
                    ),
                },
            );
        }
    }
    Ok(FailurePatterns {
        execution_id: id,
        fields: out
            .into_iter()
            .map(|(field, (judged, patterns))| {
                let agent = patterns.get("agent_error").map_or(0, |p| p.count);
                FieldFailures {
                    field,
                    judged: judged + agent,
                    patterns: PATTERNS
                        .iter()
                        .filter_map(|p| patterns.get(p).cloned())
                        .collect(),
                }
            })
            .collect(),
    })
}

/// Accuracy overall and per field across a batch's latest hundred runs.
pub async fn trends(db: &PgPool, actor: &Actor, batch_id: Uuid) -> Result<Trends, AppError> {
    let (ctx, _) = super::batches::batch_ctx(db, actor, batch_id).await?;
    crate::server::auth::rbac::require(&ctx, crate::server::auth::rbac::Permission::ViewResults)?;
    // The latest 100 runs, shown oldest first.
    let runs = db::analysis::recent_runs(db, ctx.org_id(), batch_id).await?;
    // Each run's counts and per-field accuracy, kept per finished run: a
    // batch page with a hundred million-job runs doesn't scan them all.
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let mut counts: HashMap<Uuid, Counts> = db::summaries::kept(db, &ids, "counts").await?;
    let mut metrics: HashMap<Uuid, MetricParts> = db::summaries::kept(db, &ids, "metrics").await?;
    for id in &ids {
        if !counts.contains_key(id) {
            counts.insert(*id, db::executions::counts(db, *id).await?);
        }
        if !metrics.contains_key(id) {
            metrics.insert(*id, db::executions::metric_parts(db, *id).await?);
        }
    }
    let mut names: Vec<String> = metrics
        .values()
        .flat_map(|m| m.fields.iter().map(|f| f.field.clone()))
        .collect();
    names.sort();
    names.dedup();
    // Per run: field → accuracy, field → F1, the run's accuracy interval.
    type RunFigures = (
        BTreeMap<String, f64>,
        BTreeMap<String, f64>,
        Option<[f64; 2]>,
    );
    let mut by_run: HashMap<Uuid, RunFigures> = metrics
        .into_iter()
        .map(|(run, m)| {
            let judged = || m.fields.iter().filter(|f| f.compared > 0);
            let accuracy = judged()
                .map(|f| (f.field.clone(), f.passed as f64 / f.compared as f64))
                .collect();
            let f1 = judged().map(|f| (f.field.clone(), f.f1)).collect();
            (run, (accuracy, f1, m.accuracy_interval))
        })
        .collect();
    Ok(Trends {
        batch_id,
        fields: names,
        points: runs
            .into_iter()
            .map(|run| {
                let c = counts.remove(&run.id).unwrap_or_default();
                let (fields, f1, accuracy_interval) = by_run.remove(&run.id).unwrap_or_default();
                TrendPoint {
                    execution_id: run.id,
                    created_at: run.created_at,
                    mode: run.mode,
                    state: run.state,
                    instruction_version: run.instruction_version,
                    judged: c.judged,
                    accuracy: c.accuracy,
                    accuracy_interval,
                    fields,
                    f1,
                }
            })
            .collect(),
    })
}

/// A verdict's rank for fixed/regressed: higher is better; None for jobs
/// with nothing to judge (not finished, or no expected values).
fn rank(verdict: Option<Verdict>) -> Option<u8> {
    match verdict? {
        Verdict::Pass => Some(3),
        Verdict::Partial => Some(2),
        Verdict::Fail => Some(1),
        Verdict::Error => Some(0),
        Verdict::NoGroundTruth => None,
    }
}

/// Two runs of one batch side by side: accuracy per field, rows fixed, regressed and changed, and the instructions' diff.
/// Each field's figures in run `a` and run `b` on the rows both judged it
/// on (the same rows for both, so the difference is the runs', not the
/// rows').
async fn shared_field_figures(
    db: &PgPool,
    a: Uuid,
    b: Uuid,
) -> Result<BTreeMap<String, [crate::model::FieldAccuracy; 2]>, AppError> {
    use crate::server::evaluate::metrics::FieldTally;
    let mut sides: BTreeMap<String, [FieldTally; 2]> = BTreeMap::new();
    for r in db::analysis::shared_field_results(db, a, b).await? {
        let [ta, tb] = sides.entry(r.0).or_default();
        ta.add(
            r.1,
            r.2,
            r.3,
            r.4.zip(r.5).zip(r.6).map(|((tp, fp), fn_)| (tp, fp, fn_)),
        );
        tb.add(
            r.7,
            r.8,
            r.9,
            r.10.zip(r.11)
                .zip(r.12)
                .map(|((tp, fp), fn_)| (tp, fp, fn_)),
        );
    }
    Ok(sides
        .into_iter()
        .map(|(name, sides)| {
            // Each side over the rows both judged: their count is the
            // bootstrap's population.
            let figures = sides.map(|side| side.figures(&name, side.judged()));
            (name, figures)
        })
        .collect())
}

pub async fn compare(db: &PgPool, actor: &Actor, a: Uuid, b: Uuid) -> Result<Comparison, AppError> {
    if a == b {
        return Err(AppError::field(
            "b",
            "Choose two different runs to compare.",
        ));
    }
    let ea = super::executions::get(db, actor, a).await?;
    let eb = super::executions::get(db, actor, b).await?;
    if ea.batch_id != eb.batch_id {
        return Err(AppError::field(
            "b",
            "Compare two runs of the same batch: these ran over different batches.",
        ));
    }
    let ma = super::executions::metrics_of(db, &ea).await?;
    let mb = super::executions::metrics_of(db, &eb).await?;
    let mut fields: BTreeMap<String, FieldDelta> = BTreeMap::new();
    for (m, is_a) in [(&ma, true), (&mb, false)] {
        for f in &m.fields {
            let d = fields.entry(f.field.clone()).or_insert_with(|| FieldDelta {
                field: f.field.clone(),
                ..Default::default()
            });
            if is_a {
                d.accuracy_a = Some(f.accuracy);
                d.f1_a = Some(f.f1);
                d.accuracy_interval_a = f.accuracy_interval;
            } else {
                d.accuracy_b = Some(f.accuracy);
                d.f1_b = Some(f.f1);
                d.accuracy_interval_b = f.accuracy_interval;
            }
        }
    }
    for (name, [fa, fb]) in shared_field_figures(db, a, b).await? {
        let d = fields.entry(name.clone()).or_insert_with(|| FieldDelta {
            field: name,
            ..Default::default()
        });
        d.shared_compared = fa.compared;
        d.shared_accuracy_a = Some(fa.accuracy);
        d.shared_accuracy_b = Some(fb.accuracy);
        d.shared_f1_a = Some(fa.f1);
        d.shared_f1_b = Some(fb.f1);
    }
    let shared = db::analysis::shared_rows(db, a, b).await?;
    let seq = db::batches::fetch_seq(db, ea.batch_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Batch".into()))?;
    let pairs = db::analysis::differing_pairs(db, a, b, seq).await?;
    let (mut fixed, mut regressed, mut changed) = (vec![], vec![], vec![]);
    let (mut fixed_count, mut regressed_count, mut changed_count) = (0, 0, 0);
    // Rows judged in both runs that pass in only one of them: McNemar's
    // discordant pairs (a partial that became a fail is no such row).
    let (mut passes_only_a, mut passes_only_b) = (0u64, 0u64);
    for p in pairs {
        let judged = |v: Option<Verdict>| v.filter(|v| *v != Verdict::NoGroundTruth);
        if let (Some(va), Some(vb)) = (judged(p.verdict_a), judged(p.verdict_b)) {
            match (va == Verdict::Pass, vb == Verdict::Pass) {
                (true, false) => passes_only_a += 1,
                (false, true) => passes_only_b += 1,
                _ => {}
            }
        }
        let (xa, xb) = (
            p.extracted_a.map(|j| j.0).unwrap_or_default(),
            p.extracted_b.map(|j| j.0).unwrap_or_default(),
        );
        let mut differences = BTreeMap::new();
        for k in xa.keys().chain(xb.keys()) {
            let (va, vb) = (xa.get(k).and_then(text), xb.get(k).and_then(text));
            if va != vb {
                differences.insert(k.clone(), (va, vb));
            }
        }
        let (ra, rb) = (rank(p.verdict_a), rank(p.verdict_b));
        let pair = JobPair {
            row_index: p.row_index,
            url: p.site_url,
            job_a: p.job_a,
            job_b: p.job_b,
            verdict_a: p.verdict_a,
            verdict_b: p.verdict_b,
            differences,
        };
        let (list, count) = match (ra, rb) {
            (Some(x), Some(y)) if y > x => (&mut fixed, &mut fixed_count),
            (Some(x), Some(y)) if y < x => (&mut regressed, &mut regressed_count),
            _ if !pair.differences.is_empty() => (&mut changed, &mut changed_count),
            _ => continue,
        };
        *count += 1;
        if list.len() < PAIRS {
            list.push(pair);
        }
    }
    let only = db::analysis::unpaired(db, a, b).await?;
    let version_diff = if ea.instruction_version != eb.instruction_version {
        Some(
            super::projects::version_diff(
                db,
                actor,
                ea.project_id,
                ea.instruction_version,
                eb.instruction_version,
            )
            .await?,
        )
    } else {
        None
    };
    let instructions_diff = version_diff.as_ref().map(|d| d.instructions.clone());
    let p_value = crate::server::evaluate::metrics::mcnemar_p(passes_only_b, passes_only_a);
    Ok(Comparison {
        a: ea,
        b: eb,
        significant: p_value < crate::server::evaluate::metrics::ALPHA,
        test: "mcnemar_exact".into(),
        p_value: (p_value * 10_000.0).round() / 10_000.0,
        passes_only_a: passes_only_a as i64,
        passes_only_b: passes_only_b as i64,
        shared_rows: shared.shared_rows,
        judged_in_both: shared.judged_in_both,
        shared_accuracy_a: shared.accuracy_a,
        shared_accuracy_b: shared.accuracy_b,
        fields: fields.into_values().collect(),
        fixed,
        fixed_count,
        regressed,
        regressed_count,
        changed,
        changed_count,
        only_a: only.only_a,
        only_b: only.only_b,
        instructions_diff,
        version_diff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_fall_into_patterns() {
        assert_eq!(classify(ValueType::Number, None, "10", 0.0), "missing");
        assert_eq!(
            classify(ValueType::Number, Some("  "), "10", 0.0),
            "missing"
        );
        assert_eq!(
            classify(ValueType::Number, Some("call us"), "10", 0.0),
            "wrong_type"
        );
        assert_eq!(
            classify(ValueType::Number, Some("10.50"), "10", 0.0),
            "partial"
        );
        assert_eq!(
            classify(ValueType::Number, Some("99"), "10", 0.0),
            "wrong_value"
        );
        assert_eq!(
            classify(ValueType::Text, Some("Blue Shoe"), "Blue Shoe XL", 0.0),
            "partial"
        );
        assert_eq!(
            classify(ValueType::Text, Some("Lamp"), "Blue Shoe", 0.0),
            "wrong_value"
        );
        assert_eq!(
            classify(ValueType::Date, Some("soon"), "2026-01-02", 0.0),
            "wrong_type"
        );
    }
}
