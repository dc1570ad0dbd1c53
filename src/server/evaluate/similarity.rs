//! Text similarity for long text (article bodies, descriptions): how much
//! of the expected text the extracted one reproduces, by overlapping
//! four-word shingles.
//!
//! Tokens are the maximal runs of Unicode word characters (letters, marks,
//! digits, connector punctuation), compared as written. Shingles are the
//! consecutive four-token sequences, counted as multisets; a text of fewer
//! than four tokens is one shingle of all its tokens, an empty text has
//! none. For one row, with `t` and `e` the true and extracted counts of a
//! shingle:
//!
//! - tp = Σ min(t, e), fp = Σ max(0, e − t), fn = Σ max(0, t − e),
//!   each divided by tp + fp + fn so that a long text weighs no more than a
//!   short one when rows are summed;
//! - precision and recall as for any field (see [`super::metrics::ratio`]),
//!   the row's score their harmonic mean; the row passes at the field's
//!   threshold.

use std::sync::LazyLock;

use regex::Regex;

/// Shingle length in tokens.
const SHINGLE: usize = 4;

static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\w+").expect("word pattern"));

/// One row's overlap, normalized so tp + fp + fn = 1 (all 0 when neither
/// text has a shingle).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overlap {
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
}

impl Overlap {
    pub fn precision(&self) -> f64 {
        super::metrics::precision(self.tp, self.fp, self.fn_)
    }
    pub fn recall(&self) -> f64 {
        super::metrics::recall(self.tp, self.fp, self.fn_)
    }
    /// The row's score: the harmonic mean of its precision and recall.
    pub fn score(&self) -> f64 {
        super::metrics::f1(self.precision(), self.recall())
    }
}

/// The text's tokens.
pub fn tokens(text: &str) -> Vec<&str> {
    WORD.find_iter(text).map(|m| m.as_str()).collect()
}

/// The text's shingles, sorted, so that equal ones sit together and two
/// texts' multisets can be compared in one merge.
fn sorted_shingles<'a>(tokens: &'a [&'a str]) -> Vec<&'a [&'a str]> {
    if tokens.is_empty() {
        return Vec::new();
    }
    if tokens.len() < SHINGLE {
        return vec![tokens];
    }
    let mut shingles: Vec<&[&str]> = tokens.windows(SHINGLE).collect();
    shingles.sort_unstable();
    shingles
}

/// The overlap of `extracted` with `expected` (None: nothing extracted).
///
/// Both multisets are sorted and merged (a shingle in both counts once per
/// pair toward tp; the rest of either side is fp or fn): exact, and no
/// hashing of every shingle's words as counting in maps would need.
pub fn overlap(extracted: Option<&str>, expected: Option<&str>) -> Overlap {
    let got_tokens = tokens(extracted.unwrap_or(""));
    let want_tokens = tokens(expected.unwrap_or(""));
    let got = sorted_shingles(&got_tokens);
    let want = sorted_shingles(&want_tokens);
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    let (mut g, mut w) = (0, 0);
    while g < got.len() && w < want.len() {
        match got[g].cmp(want[w]) {
            std::cmp::Ordering::Equal => {
                tp += 1;
                g += 1;
                w += 1;
            }
            std::cmp::Ordering::Less => {
                fp += 1;
                g += 1;
            }
            std::cmp::Ordering::Greater => {
                fn_ += 1;
                w += 1;
            }
        }
    }
    fp += (got.len() - g) as u64;
    fn_ += (want.len() - w) as u64;
    let total = (tp + fp + fn_) as f64;
    if total == 0.0 {
        return Overlap {
            tp: 0.0,
            fp: 0.0,
            fn_: 0.0,
        };
    }
    Overlap {
        tp: tp as f64 / total,
        fp: fp as f64 / total,
        fn_: fn_ as f64 / total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn tokens_are_runs_of_word_characters() {
        assert_eq!(
            tokens("Größe: 42 cm — très_bien! l'été"),
            ["Größe", "42", "cm", "très_bien", "l", "été"]
        );
        assert!(tokens(" — ! ").is_empty());
    }

    #[test]
    fn identical_texts_score_one() {
        let o = overlap(Some("a b c d e f"), Some("a  b, c d. e f"));
        // 3 shingles each, all shared.
        assert_eq!(
            o,
            Overlap {
                tp: 1.0,
                fp: 0.0,
                fn_: 0.0
            }
        );
        assert_eq!((o.precision(), o.recall(), o.score()), (1.0, 1.0, 1.0));
    }

    #[test]
    fn partial_overlap_by_hand() {
        // Expected "a b c d e": shingles abcd, bcde (2).
        // Extracted "a b c d x": shingles abcd, bcdx (2).
        // tp = 1 (abcd), fp = 1 (bcdx), fn = 1 (bcde); total 3.
        let o = overlap(Some("a b c d x"), Some("a b c d e"));
        assert!(close(o.tp, 1.0 / 3.0) && close(o.fp, 1.0 / 3.0) && close(o.fn_, 1.0 / 3.0));
        assert!(close(o.precision(), 0.5) && close(o.recall(), 0.5) && close(o.score(), 0.5));
        // A longer extraction holding the whole expected text: expected
        // "a b c d e" (abcd, bcde); extracted "a b c d e f g" (abcd,
        // bcde, cdef, defg): tp 2, fp 2, fn 0 → precision 1/2, recall 1,
        // score 2/3.
        let o = overlap(Some("a b c d e f g"), Some("a b c d e"));
        assert!(close(o.precision(), 0.5) && close(o.recall(), 1.0));
        assert!(close(o.score(), 2.0 / 3.0));
    }

    #[test]
    fn repeats_count_as_multisets() {
        // Expected "x y z w x y z w" (8 tokens, 5 shingles): xyzw ×2,
        // yzwx, zwxy, wxyz. Extracted "x y z w": xyzw ×1.
        // tp 1, fp 0, fn 4; total 5.
        let o = overlap(Some("x y z w"), Some("x y z w x y z w"));
        assert!(close(o.tp, 0.2) && close(o.fn_, 0.8) && close(o.fp, 0.0));
        assert!(close(o.precision(), 1.0) && close(o.recall(), 0.2));
        assert!(close(o.score(), 1.0 / 3.0));
        // The other way round: extracted repeats what is expected once.
        let o = overlap(Some("x y z w x y z w"), Some("x y z w"));
        assert!(close(o.precision(), 0.2) && close(o.recall(), 1.0));
    }

    #[test]
    fn short_texts_are_one_shingle() {
        // Fewer than four tokens: the whole text is one shingle.
        let o = overlap(Some("Blue mug"), Some("Blue mug"));
        assert_eq!((o.tp, o.precision(), o.recall()), (1.0, 1.0, 1.0));
        let o = overlap(Some("Blue cup"), Some("Blue mug"));
        assert_eq!((o.tp, o.fp, o.fn_), (0.0, 0.5, 0.5));
        assert_eq!(o.score(), 0.0);
        // Tokens are compared as written.
        let o = overlap(Some("blue mug"), Some("Blue mug"));
        assert_eq!(o.score(), 0.0);
    }

    #[test]
    fn empty_on_either_side() {
        // Nothing extracted where a text was expected: recall 0, and
        // precision 0 (tp = fp = 0).
        let o = overlap(None, Some("a b c d"));
        assert_eq!((o.tp, o.fp, o.fn_), (0.0, 0.0, 1.0));
        assert_eq!((o.precision(), o.recall(), o.score()), (0.0, 0.0, 0.0));
        // A text where none was expected: precision 0, recall 0 (tp = fn = 0).
        let o = overlap(Some("a b c d"), Some(""));
        assert_eq!((o.tp, o.fp, o.fn_), (0.0, 1.0, 0.0));
        assert_eq!((o.precision(), o.recall(), o.score()), (0.0, 0.0, 0.0));
        // Neither has a word: fp = fn = 0, so both are 1.
        let o = overlap(Some(" — "), None);
        assert_eq!((o.tp, o.fp, o.fn_), (0.0, 0.0, 0.0));
        assert_eq!((o.precision(), o.recall(), o.score()), (1.0, 1.0, 1.0));
    }

    /// The definition read literally: count each text's shingles in a map,
    /// then sum min, and the excess on either side.
    fn overlap_by_counting(extracted: &str, expected: &str) -> (u64, u64, u64) {
        use std::collections::HashMap;
        let count = |t: &str| {
            let words: Vec<String> = tokens(t).into_iter().map(str::to_string).collect();
            let mut m: HashMap<Vec<String>, u64> = HashMap::new();
            if words.len() < SHINGLE {
                if !words.is_empty() {
                    m.insert(words, 1);
                }
                return m;
            }
            for w in words.windows(SHINGLE) {
                *m.entry(w.to_vec()).or_default() += 1;
            }
            m
        };
        let (got, want) = (count(extracted), count(expected));
        let tp = got
            .iter()
            .map(|(s, e)| (*e).min(want.get(s).copied().unwrap_or(0)))
            .sum();
        let fp = got
            .iter()
            .map(|(s, e)| e.saturating_sub(want.get(s).copied().unwrap_or(0)))
            .sum();
        let fn_ = want
            .iter()
            .map(|(s, t)| t.saturating_sub(got.get(s).copied().unwrap_or(0)))
            .sum();
        (tp, fp, fn_)
    }

    #[test]
    fn the_merge_agrees_with_counting_on_generated_texts() {
        // Texts from a five-word vocabulary, so shingles repeat a lot.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let words = ["a", "b", "c", "dd", "é"];
        for _ in 0..500 {
            let text = |next: &mut dyn FnMut() -> u64| {
                let n = next() % 30;
                (0..n)
                    .map(|_| words[(next() % 5) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let (a, b) = (text(&mut next), text(&mut next));
            let (tp, fp, fn_) = overlap_by_counting(&a, &b);
            let total = (tp + fp + fn_) as f64;
            let o = overlap(Some(&a), Some(&b));
            if total == 0.0 {
                assert_eq!((o.tp, o.fp, o.fn_), (0.0, 0.0, 0.0));
            } else {
                assert!(
                    close(o.tp, tp as f64 / total)
                        && close(o.fp, fp as f64 / total)
                        && close(o.fn_, fn_ as f64 / total),
                    "{a:?} vs {b:?}: {o:?}, counted {tp}/{fp}/{fn_}"
                );
            }
        }
    }
}
