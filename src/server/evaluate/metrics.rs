//! A run's figures per field (accuracy, precision, recall, F1 with their
//! counts), 95% bootstrap intervals, and the test that says whether two
//! runs differ beyond noise. Pure functions over counts the database
//! gives; `db::executions::metric_parts` feeds them.
//!
//! Definitions (also in the README and the OpenAPI descriptions):
//!
//! - Over the run's judged jobs, micro-averaged. A non-empty extracted
//!   value that passes is a true positive; one that does not pass is a
//!   false positive, and also a false negative when a value was expected;
//!   an empty extracted value where a value was expected is a false
//!   negative. An empty value where none is expected ("expected empty"
//!   set to absent) passes and counts in none of the three.
//! - precision = tp/(tp+fp), recall = tp/(tp+fn); both 1 when fp = fn = 0,
//!   precision 0 when tp = fp = 0, recall 0 when tp = fn = 0; F1 their
//!   harmonic mean (0 when both are 0).
//! - Text similarity fields (see [`super::similarity`]): precision is the
//!   mean of the rows' precisions over rows where tp+fp > 0, recall the
//!   mean of the rows' recalls over rows where tp+fn > 0, F1 the harmonic
//!   mean of the two means; tp/fp/fn are the sums of the rows' shares.
//! - Intervals: 95% percentile bootstrap, 1,000 resamples of the run's
//!   jobs with a fixed seed, so the same run always gives the same figures.
//!   A resample of jobs is a multinomial draw over the jobs' outcomes, so
//!   runs of any size are resampled exactly by drawing outcome counts.
//!   Text similarity rows are grouped by their (pass, precision, recall)
//!   values; when a big run has more than [`MAX_GROUPS`] distinct ones,
//!   they are rounded to hundredths for the resampling and the interval is
//!   shifted by the rounding's effect on the estimate.
//! - Two runs: McNemar's exact test on the rows both ran, over the rows
//!   fixed (failing in A, passing in B) and regressed (the reverse);
//!   "beyond noise" when its two-sided p-value is below 0.05.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};

use crate::model::FieldAccuracy;

/// Resamples per interval.
pub const RESAMPLES: usize = 1_000;
/// Significance level of intervals and of the two-run test.
pub const ALPHA: f64 = 0.05;
/// Most distinct outcome groups resampled exactly (see module docs).
pub const MAX_GROUPS: usize = 5_000;
/// The seed every interval starts from (mixed with the statistic's name).
const SEED: u64 = 0x6d69_6e6f_6576_616c;

/// tp/(tp+fp), with the edge cases of the definitions.
pub fn precision(tp: f64, fp: f64, fn_: f64) -> f64 {
    if fp == 0.0 && fn_ == 0.0 {
        1.0
    } else if tp + fp == 0.0 {
        0.0
    } else {
        tp / (tp + fp)
    }
}

/// tp/(tp+fn), with the edge cases of the definitions.
pub fn recall(tp: f64, fp: f64, fn_: f64) -> f64 {
    if fp == 0.0 && fn_ == 0.0 {
        1.0
    } else if tp + fn_ == 0.0 {
        0.0
    } else {
        tp / (tp + fn_)
    }
}

/// The harmonic mean of precision and recall (0 when both are 0).
pub fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

/// What a judged job's field came to, for fields judged pass/fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A value extracted and passing.
    Hit,
    /// Nothing extracted, nothing expected: passes.
    EmptyOk,
    /// A value extracted, not passing, a value expected: fp and fn.
    Wrong,
    /// A value extracted where none is expected: fp.
    Extra,
    /// Nothing extracted where a value was expected: fn.
    Missed,
}

impl Outcome {
    /// From the field result: passed, whether a value was extracted and
    /// whether one was expected.
    pub fn of(pass: bool, extracted: bool, expected: bool) -> Outcome {
        match (pass, extracted, expected) {
            (true, true, _) => Outcome::Hit,
            (true, false, _) => Outcome::EmptyOk,
            (false, true, true) => Outcome::Wrong,
            (false, true, false) => Outcome::Extra,
            (false, false, _) => Outcome::Missed,
        }
    }
    const ALL: [Outcome; 5] = [
        Outcome::Hit,
        Outcome::EmptyOk,
        Outcome::Wrong,
        Outcome::Extra,
        Outcome::Missed,
    ];
}

/// Judged jobs per outcome of one pass/fail field.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OutcomeCounts([u64; 5]);

impl OutcomeCounts {
    pub fn add(&mut self, outcome: Outcome, n: u64) {
        self.0[outcome as usize] += n;
    }
    fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome as usize]
    }
    pub fn judged(&self) -> u64 {
        self.0.iter().sum()
    }
    /// (compared, passed, tp, fp, fn)
    fn figures(&self) -> (u64, u64, f64, f64, f64) {
        let g = |o| self.get(o);
        let tp = g(Outcome::Hit) as f64;
        let fp = (g(Outcome::Wrong) + g(Outcome::Extra)) as f64;
        let fn_ = (g(Outcome::Wrong) + g(Outcome::Missed)) as f64;
        (
            self.judged(),
            g(Outcome::Hit) + g(Outcome::EmptyOk),
            tp,
            fp,
            fn_,
        )
    }
}

/// One judged row of a text similarity field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimilarityRow {
    pub pass: bool,
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn interval(mut replicas: Vec<f64>) -> Option<[f64; 2]> {
    if replicas.is_empty() {
        return None;
    }
    replicas.sort_by(f64::total_cmp);
    let m = replicas.len() as f64;
    let lo = ((m * ALPHA / 2.0).floor() as usize).min(replicas.len() - 1);
    let hi = (((m * (1.0 - ALPHA / 2.0)).ceil() as usize).max(1) - 1).min(replicas.len() - 1);
    Some([round4(replicas[lo]), round4(replicas[hi])])
}

/// A generator for the statistic `name`: the same name, the same draws.
fn rng_for(name: &str) -> StdRng {
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    StdRng::seed_from_u64(SEED ^ h)
}

/// Draws how many of `n` resampled jobs fall in each group, for groups of
/// `counts` jobs out of `n` (the rest is the last, implicit group): a
/// multinomial draw, one binomial per group.
fn multinomial(rng: &mut StdRng, n: u64, counts: &[u64], out: &mut Vec<u64>) {
    out.clear();
    let mut left_n = n;
    let mut left_p = n as f64;
    for &c in counts {
        if left_n == 0 || c == 0 || left_p <= 0.0 {
            out.push(0);
            left_p -= c as f64;
            continue;
        }
        let p = (c as f64 / left_p).clamp(0.0, 1.0);
        let k = if p >= 1.0 {
            left_n
        } else {
            Binomial::new(left_n, p).map(|b| b.sample(rng)).unwrap_or(0)
        };
        out.push(k);
        left_n -= k;
        left_p -= c as f64;
    }
}

/// Bootstraps `N` statistics of a run of `jobs` jobs whose judged ones
/// fall into groups of `counts` jobs (the rest were not judged): each of
/// [`RESAMPLES`] multinomial draws gives the drawn jobs per group to
/// `stat`, which answers the statistics (None: nothing judged, the draw is
/// left out). Returns each statistic's 95% interval; the draws depend only
/// on `name`.
fn bootstrap<const N: usize>(
    name: &str,
    jobs: u64,
    counts: &[u64],
    mut stat: impl FnMut(&[u64]) -> Option<[f64; N]>,
) -> [Option<[f64; 2]>; N] {
    let judged: u64 = counts.iter().sum();
    let mut replicas: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(RESAMPLES));
    if judged > 0 {
        let mut rng = rng_for(name);
        let mut drawn = Vec::with_capacity(counts.len());
        for _ in 0..RESAMPLES {
            multinomial(&mut rng, jobs.max(judged), counts, &mut drawn);
            if let Some(values) = stat(&drawn) {
                for (r, v) in replicas.iter_mut().zip(values) {
                    r.push(v);
                }
            }
        }
    }
    replicas.map(interval)
}

/// A field's figures from its counts and the intervals of its accuracy
/// and F1.
fn field_figures(
    name: &str,
    (compared, passed): (u64, u64),
    (p, r): (f64, f64),
    (tp, fp, fn_): (f64, f64, f64),
    [accuracy_interval, f1_interval]: [Option<[f64; 2]>; 2],
) -> FieldAccuracy {
    FieldAccuracy {
        field: name.to_string(),
        compared: compared as i64,
        passed: passed as i64,
        accuracy: if compared > 0 {
            passed as f64 / compared as f64
        } else {
            0.0
        },
        precision: p,
        recall: r,
        f1: f1(p, r),
        tp,
        fp,
        fn_,
        accuracy_interval,
        f1_interval,
    }
}

/// A pass/fail field's figures over a run of `jobs` jobs.
pub fn binary_field(name: &str, counts: OutcomeCounts, jobs: u64) -> FieldAccuracy {
    let (compared, passed, tp, fp, fn_) = counts.figures();
    let groups: Vec<u64> = Outcome::ALL.iter().map(|&o| counts.get(o)).collect();
    let intervals = bootstrap(name, jobs, &groups, |drawn| {
        let mut c = OutcomeCounts::default();
        for (o, &k) in Outcome::ALL.iter().zip(drawn) {
            c.add(*o, k);
        }
        let (compared, passed, tp, fp, fn_) = c.figures();
        (compared > 0).then(|| {
            [
                passed as f64 / compared as f64,
                f1(precision(tp, fp, fn_), recall(tp, fp, fn_)),
            ]
        })
    });
    field_figures(
        name,
        (compared, passed),
        (precision(tp, fp, fn_), recall(tp, fp, fn_)),
        (tp, fp, fn_),
        intervals,
    )
}

/// One field's judged results as they are read, row by row: outcomes for
/// a pass/fail field, the rows' overlaps for a text similarity field
/// (whose results carry tp/fp/fn).
#[derive(Debug, Clone, Default)]
pub struct FieldTally {
    counts: OutcomeCounts,
    rows: Vec<SimilarityRow>,
}

impl FieldTally {
    /// One row's result: passed, a value extracted, a value expected, and
    /// for text similarity the row's (tp, fp, fn).
    pub fn add(
        &mut self,
        pass: bool,
        extracted: bool,
        expected: bool,
        overlap: Option<(f64, f64, f64)>,
    ) {
        match overlap {
            Some((tp, fp, fn_)) => self.rows.push(SimilarityRow { pass, tp, fp, fn_ }),
            None => self.counts.add(Outcome::of(pass, extracted, expected), 1),
        }
    }
    /// Rows tallied.
    pub fn judged(&self) -> u64 {
        self.counts.judged() + self.rows.len() as u64
    }
    /// The field's figures over a run of `jobs` jobs.
    pub fn figures(&self, name: &str, jobs: u64) -> FieldAccuracy {
        if self.rows.is_empty() {
            binary_field(name, self.counts, jobs)
        } else {
            similarity_field(name, &self.rows, jobs)
        }
    }
}

/// Aggregate precision and recall of similarity rows given as (row, how
/// many): the means over the rows that have them.
fn similarity_means<'a>(rows: impl Iterator<Item = (&'a SimilarityRow, u64)>) -> (f64, f64) {
    let (mut ps, mut pn, mut rs, mut rn) = (0.0, 0u64, 0.0, 0u64);
    for (row, k) in rows {
        if k == 0 {
            continue;
        }
        if row.tp + row.fp > 0.0 {
            ps += row.tp / (row.tp + row.fp) * k as f64;
            pn += k;
        }
        if row.tp + row.fn_ > 0.0 {
            rs += row.tp / (row.tp + row.fn_) * k as f64;
            rn += k;
        }
    }
    // With no row to average, the edge cases of one row apply.
    match (pn, rn) {
        (0, 0) => (1.0, 1.0),
        (0, _) => (0.0, rs / rn as f64),
        (_, 0) => (ps / pn as f64, 0.0),
        _ => (ps / pn as f64, rs / rn as f64),
    }
}

/// A text similarity field's figures over a run of `jobs` jobs.
pub fn similarity_field(name: &str, rows: &[SimilarityRow], jobs: u64) -> FieldAccuracy {
    let compared = rows.len() as u64;
    let passed = rows.iter().filter(|r| r.pass).count() as u64;
    let (p, r) = similarity_means(rows.iter().map(|r| (r, 1)));
    let (tp, fp, fn_) = rows.iter().fold((0.0, 0.0, 0.0), |(a, b, c), r| {
        (a + r.tp, b + r.fp, c + r.fn_)
    });
    // Distinct rows with how many of each; rounded to hundredths when a big
    // run has too many distinct ones to resample group by group.
    let group = |rows: &[SimilarityRow], round: bool| {
        let q = |x: f64| {
            if round {
                (x * 100.0).round() / 100.0
            } else {
                x
            }
        };
        let mut groups: HashMap<(bool, u64, u64, u64), (SimilarityRow, u64)> = HashMap::new();
        for r in rows {
            let row = SimilarityRow {
                pass: r.pass,
                tp: q(r.tp),
                fp: q(r.fp),
                fn_: q(r.fn_),
            };
            let key = (
                row.pass,
                row.tp.to_bits(),
                row.fp.to_bits(),
                row.fn_.to_bits(),
            );
            groups.entry(key).or_insert((row, 0)).1 += 1;
        }
        let mut groups: Vec<(SimilarityRow, u64)> = groups.into_values().collect();
        // A fixed order, so the draws do not depend on the hash map's.
        groups.sort_by(|a, b| {
            (a.0.pass, a.0.tp, a.0.fp, a.0.fn_)
                .partial_cmp(&(b.0.pass, b.0.tp, b.0.fp, b.0.fn_))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        groups
    };
    let mut groups = group(rows, false);
    // The resampled estimates are shifted by what rounding changed.
    let (mut shift_acc, mut shift_f1) = (0.0, 0.0);
    if groups.len() > MAX_GROUPS {
        groups = group(rows, true);
        let (qp, qr) = similarity_means(groups.iter().map(|(r, k)| (r, *k)));
        let qpassed: u64 = groups.iter().filter(|g| g.0.pass).map(|g| g.1).sum();
        shift_acc = (passed as f64 - qpassed as f64) / compared.max(1) as f64;
        shift_f1 = f1(p, r) - f1(qp, qr);
    }
    let counts: Vec<u64> = groups.iter().map(|g| g.1).collect();
    let intervals = bootstrap(name, jobs, &counts, |drawn| {
        let judged: u64 = drawn.iter().sum();
        if judged == 0 {
            return None;
        }
        let passed: u64 = groups
            .iter()
            .zip(drawn)
            .filter(|(g, _)| g.0.pass)
            .map(|(_, k)| k)
            .sum();
        let (p, r) = similarity_means(groups.iter().zip(drawn).map(|(g, k)| (&g.0, *k)));
        Some([
            passed as f64 / judged as f64 + shift_acc,
            f1(p, r) + shift_f1,
        ])
    });
    field_figures(name, (compared, passed), (p, r), (tp, fp, fn_), intervals)
}

/// The interval of a run's accuracy (the mean of its judged jobs'
/// accuracies), from each distinct job accuracy with how many jobs had it,
/// in a run of `jobs` jobs.
pub fn accuracy_interval(job_accuracies: &[(f64, u64)], jobs: u64) -> Option<[f64; 2]> {
    let mut groups = job_accuracies.to_vec();
    groups.sort_by(|a, b| a.0.total_cmp(&b.0));
    let counts: Vec<u64> = groups.iter().map(|g| g.1).collect();
    let [interval] = bootstrap("\0run accuracy", jobs, &counts, |drawn| {
        let n: u64 = drawn.iter().sum();
        let sum: f64 = groups.iter().zip(drawn).map(|(g, k)| g.0 * *k as f64).sum();
        (n > 0).then(|| [sum / n as f64])
    });
    interval
}

/// McNemar's exact test: the two-sided p-value of `fixed` rows against
/// `regressed` ones, under "both runs are as good" (each changed row as
/// likely to go either way).
pub fn mcnemar_p(fixed: u64, regressed: u64) -> f64 {
    let n = fixed + regressed;
    if n == 0 {
        return 1.0;
    }
    let k = fixed.min(regressed);
    // P(X <= k) for X ~ Binomial(n, 1/2), summed in logs.
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let mut ln_c = 0.0f64; // ln C(n, 0)
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(ln_c - ln_half_n);
    }
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn precision_recall_edge_cases() {
        assert_eq!(
            (precision(0.0, 0.0, 0.0), recall(0.0, 0.0, 0.0)),
            (1.0, 1.0)
        );
        assert_eq!(
            (precision(0.0, 0.0, 3.0), recall(0.0, 0.0, 3.0)),
            (0.0, 0.0)
        );
        assert_eq!(
            (precision(0.0, 2.0, 0.0), recall(0.0, 2.0, 0.0)),
            (0.0, 0.0)
        );
        assert!(close(precision(3.0, 1.0, 2.0), 0.75) && close(recall(3.0, 1.0, 2.0), 0.6));
        assert_eq!(f1(0.0, 0.0), 0.0);
        assert!(close(f1(0.75, 0.6), 2.0 * 0.45 / 1.35));
    }

    #[test]
    fn binary_counts_by_hand() {
        // 6 hits, 2 wrong, 1 missed, 1 extra, 2 empty-and-right, in 14 jobs.
        let mut c = OutcomeCounts::default();
        c.add(Outcome::Hit, 6);
        c.add(Outcome::Wrong, 2);
        c.add(Outcome::Missed, 1);
        c.add(Outcome::Extra, 1);
        c.add(Outcome::EmptyOk, 2);
        let f = binary_field("price", c, 14);
        assert_eq!((f.compared, f.passed), (12, 8));
        assert_eq!((f.tp, f.fp, f.fn_), (6.0, 3.0, 3.0));
        assert!(close(f.precision, 6.0 / 9.0) && close(f.recall, 6.0 / 9.0));
        assert!(close(f.f1, 6.0 / 9.0));
        let [lo, hi] = f.accuracy_interval.unwrap();
        assert!(lo < 8.0 / 12.0 && 8.0 / 12.0 < hi, "{lo} {hi}");
    }

    #[test]
    fn intervals_are_reproducible_and_shrink_with_more_jobs() {
        let counts = |k: u64| {
            let mut c = OutcomeCounts::default();
            c.add(Outcome::Hit, 9 * k);
            c.add(Outcome::Wrong, k);
            c
        };
        let small = binary_field("title", counts(10), 100);
        assert_eq!(small, binary_field("title", counts(10), 100));
        let big = binary_field("title", counts(1000), 10_000);
        let width = |f: &FieldAccuracy| {
            let [lo, hi] = f.accuracy_interval.unwrap();
            hi - lo
        };
        assert!(width(&big) < width(&small) / 5.0, "{small:?} {big:?}");
        // A run of 100 at 90%: the binomial standard error is 0.03, so
        // the 95% interval is about ±0.06.
        assert!((width(&small) - 0.12).abs() < 0.03, "{}", width(&small));
    }

    #[test]
    fn similarity_aggregates_by_hand() {
        let row = |pass, tp, fp, fn_| SimilarityRow { pass, tp, fp, fn_ };
        let rows = [
            // precision 1/2, recall 1/2
            row(false, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0),
            // precision 1, recall 1/4
            row(false, 0.25, 0.0, 0.75),
            // nothing extracted: no precision, recall 0
            row(false, 0.0, 0.0, 1.0),
            // identical
            row(true, 1.0, 0.0, 0.0),
        ];
        let f = similarity_field("body", &rows, 4);
        let p = (0.5 + 1.0 + 1.0) / 3.0;
        let r = (0.5 + 0.25 + 0.0 + 1.0) / 4.0;
        assert!(close(f.precision, p) && close(f.recall, r), "{f:?}");
        assert!(close(f.f1, 2.0 * p * r / (p + r)));
        assert_eq!((f.compared, f.passed), (4, 1));
        assert!(close(f.tp, 1.0 / 3.0 + 0.25 + 1.0));
    }

    #[test]
    fn big_similarity_runs_are_resampled_from_rounded_groups() {
        let rows: Vec<SimilarityRow> = (0..20_000)
            .map(|i| {
                let tp = (i % 997) as f64 / 997.0;
                SimilarityRow {
                    pass: tp > 0.5,
                    tp,
                    fp: (1.0 - tp) / 2.0,
                    fn_: (1.0 - tp) / 2.0,
                }
            })
            .collect();
        let f = similarity_field("body", &rows, 20_000);
        let [lo, hi] = f.f1_interval.unwrap();
        assert!(lo < f.f1 && f.f1 < hi && hi - lo < 0.02, "{f:?}");
    }

    #[test]
    fn mcnemar_by_hand() {
        // 6 fixed, 0 regressed: 2 × (1/2)^6 = 0.03125.
        assert!(close(mcnemar_p(6, 0), 0.03125));
        // 5 against 0 is not enough: 0.0625.
        assert!(close(mcnemar_p(0, 5), 0.0625));
        assert_eq!(mcnemar_p(0, 0), 1.0);
        assert_eq!(mcnemar_p(3, 3), 1.0);
        // Big counts stay finite: 5,200 against 4,800 is beyond noise.
        let p = mcnemar_p(5_200, 4_800);
        assert!(p > 0.0 && p < 0.001, "{p}");
    }

    #[test]
    fn accuracy_interval_covers_the_estimate() {
        let i = accuracy_interval(&[(1.0, 80), (0.5, 10), (0.0, 10)], 120).unwrap();
        let est = (80.0 + 5.0) / 100.0;
        assert!(i[0] < est && est < i[1], "{i:?}");
        assert_eq!(accuracy_interval(&[], 10), None);
    }
}
