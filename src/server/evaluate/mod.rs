//! Evaluation against ground truth: comparing an extracted value with the
//! expected one by the field's comparator (`comparators`). Verdicts per job
//! and metrics per execution build on these.

pub mod baseline;
pub mod comparators;
pub mod dataset;
pub mod metrics;
pub mod similarity;

use serde_json::{json, Map, Value};

use crate::model::{Comparator, EmptyMeans, OutputField, Verdict};

/// A job's evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct JobVerdict {
    /// Pass, partial, fail or no ground truth (never error: that is a
    /// failed job's).
    pub verdict: Verdict,
    /// Per judged field: pass, score, expected (a list when several values
    /// are acceptable; null when "expected empty" means absent),
    /// extracted, explanation; text similarity adds the row's precision,
    /// recall and normalized tp/fp/fn.
    pub fields: Map<String, Value>,
    /// Share of the compared fields that passed.
    pub accuracy: Option<f64>,
}

/// The acceptable values of an expected cell: one, several (a JSON list),
/// or none (empty).
pub fn expected_values(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Judges a job's extracted values against its row's expected values,
/// field by field with each field's comparator. A field with an expected
/// list passes when any of its values matches; a field without an
/// expected value is not judged, unless the field says an empty expected
/// value means the page has none (then extracting nothing passes).
pub fn evaluate_job(
    fields: &[OutputField],
    extracted: &Map<String, Value>,
    expected: &Map<String, Value>,
) -> JobVerdict {
    let mut results = Map::new();
    let (mut compared, mut passed) = (0usize, 0usize);
    for f in fields {
        let wants = expected_values(expected.get(&f.name));
        if wants.is_empty() && f.empty_means == EmptyMeans::Unknown {
            continue;
        }
        let got = extracted.get(&f.name).and_then(scalar);
        let result = judge_field(f, got.as_deref(), &wants);
        compared += 1;
        if result.get("pass").and_then(Value::as_bool) == Some(true) {
            passed += 1;
        }
        results.insert(f.name.clone(), result);
    }
    let verdict = match (compared, passed) {
        (0, _) => Verdict::NoGroundTruth,
        (c, p) if c == p => Verdict::Pass,
        (_, 0) => Verdict::Fail,
        _ => Verdict::Partial,
    };
    JobVerdict {
        verdict,
        fields: results,
        accuracy: (compared > 0).then(|| passed as f64 / compared as f64),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One field's result against its acceptable values (none: the field is
/// expected to be absent).
fn judge_field(f: &OutputField, got: Option<&str>, wants: &[String]) -> Value {
    let expected = match wants {
        [] => Value::Null,
        [one] => Value::String(one.clone()),
        many => json!(many),
    };
    if f.comparator == Comparator::TextSimilarity {
        let threshold = f.comparator_options.threshold.unwrap_or(0.8);
        // The acceptable value the extraction is closest to.
        let best = if wants.is_empty() {
            similarity::overlap(got, None)
        } else {
            wants
                .iter()
                .map(|w| similarity::overlap(got, Some(w)))
                .max_by(|a, b| a.score().total_cmp(&b.score()))
                .expect("at least one value")
        };
        let score = best.score();
        let pass = score >= threshold;
        let explanation = match (got.is_some(), wants.is_empty()) {
            (false, true) => "Nothing extracted, and no text is expected.".to_string(),
            (true, true) => "A text was extracted where none is expected.".to_string(),
            (false, false) => "Nothing was extracted.".to_string(),
            (true, false) => format!(
                "Shingle overlap: precision {:.2}, recall {:.2}, score {score:.2} (threshold {threshold:.2}).",
                best.precision(),
                best.recall()
            ),
        };
        return json!({
            "pass": pass,
            "score": round3(score),
            "expected": expected,
            "extracted": got,
            "explanation": explanation,
            "precision": round3(best.precision()),
            "recall": round3(best.recall()),
            "tp": best.tp,
            "fp": best.fp,
            "fn": best.fn_,
        });
    }
    let v = if wants.is_empty() {
        match got {
            None => comparators::Verdict {
                pass: true,
                score: 1.0,
                explanation: "Nothing extracted, and the page has no such value.".into(),
            },
            Some(g) => comparators::Verdict {
                pass: false,
                score: 0.0,
                explanation: format!("{g:?} was extracted, but the page has no such value."),
            },
        }
    } else {
        // The first acceptable value that passes, else the closest.
        let mut best: Option<comparators::Verdict> = None;
        for w in wants {
            let v = comparators::compare(f.comparator, &f.comparator_options, got, w);
            let better = best
                .as_ref()
                .is_none_or(|b| (v.pass, v.score) > (b.pass, b.score));
            if better {
                best = Some(v);
            }
            if best.as_ref().is_some_and(|b| b.pass) {
                break;
            }
        }
        let mut v = best.expect("at least one value");
        if wants.len() > 1 && !v.pass && got.is_some() {
            v.explanation = format!(
                "None of the {} acceptable values: {}",
                wants.len(),
                v.explanation
            );
        }
        v
    };
    json!({
        "pass": v.pass,
        "score": round3(v.score),
        "expected": expected,
        "extracted": got,
        "explanation": v.explanation,
    })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Comparator, ExtractionRule, ValueType};

    fn field(name: &str, t: ValueType, c: Comparator) -> OutputField {
        OutputField {
            name: name.into(),
            field_type: t,
            comparator: c,
            comparator_options: Default::default(),
            rule: ExtractionRule::Auto,
            source: "csv".into(),
            description: String::new(),
            empty_means: Default::default(),
            multi_value_separator: None,
        }
    }

    #[test]
    fn verdicts_by_field() {
        let fields = [
            field("title", ValueType::Text, Comparator::NormalizedText),
            field("price", ValueType::Number, Comparator::Number),
            field("note", ValueType::Text, Comparator::Exact),
        ];
        let got = json!({"title": "Blue Mug", "price": "12.50", "note": "x"});
        let got = got.as_object().unwrap();
        let all = json!({"title": "blue mug", "price": "12.5"});
        let v = evaluate_job(&fields, got, all.as_object().unwrap());
        assert_eq!((v.verdict, v.accuracy), (Verdict::Pass, Some(1.0)));
        assert!(
            !v.fields.contains_key("note"),
            "no expected value, not judged"
        );
        let half = json!({"title": "blue mug", "price": "13"});
        let v = evaluate_job(&fields, got, half.as_object().unwrap());
        assert_eq!((v.verdict, v.accuracy), (Verdict::Partial, Some(0.5)));
        assert_eq!(v.fields["price"]["pass"], false);
        assert_eq!(v.fields["price"]["expected"], "13");
        let none = json!({"title": "red", "price": ""});
        let v = evaluate_job(&fields, got, none.as_object().unwrap());
        assert_eq!((v.verdict, v.accuracy), (Verdict::Fail, Some(0.0)));
        let v = evaluate_job(&fields, got, &Map::new());
        assert_eq!((v.verdict, v.accuracy), (Verdict::NoGroundTruth, None));
    }

    #[test]
    fn expected_empty_means_unknown_or_absent() {
        let mut sale = field("sale_price", ValueType::Number, Comparator::Number);
        let got = json!({"sale_price": "9.99"});
        let nothing = Map::new();
        let want = Map::new();
        // Unknown (the default): not judged either way.
        let v = evaluate_job(std::slice::from_ref(&sale), got.as_object().unwrap(), &want);
        assert_eq!(v.verdict, Verdict::NoGroundTruth);
        // Absent: a value is wrong, nothing passes.
        sale.empty_means = EmptyMeans::Absent;
        let v = evaluate_job(std::slice::from_ref(&sale), got.as_object().unwrap(), &want);
        assert_eq!(v.verdict, Verdict::Fail);
        assert_eq!(v.fields["sale_price"]["expected"], Value::Null);
        assert_eq!(v.fields["sale_price"]["extracted"], "9.99");
        let v = evaluate_job(std::slice::from_ref(&sale), &nothing, &want);
        assert_eq!((v.verdict, v.accuracy), (Verdict::Pass, Some(1.0)));
    }

    #[test]
    fn any_of_several_expected_values_passes() {
        let fields = [field("color", ValueType::Text, Comparator::NormalizedText)];
        let want = json!({"color": ["Navy blue", "Blue"]});
        let want = want.as_object().unwrap();
        let v = evaluate_job(&fields, json!({"color": "blue"}).as_object().unwrap(), want);
        assert_eq!(v.verdict, Verdict::Pass);
        assert_eq!(v.fields["color"]["expected"], json!(["Navy blue", "Blue"]));
        let v = evaluate_job(&fields, json!({"color": "red"}).as_object().unwrap(), want);
        assert_eq!(v.verdict, Verdict::Fail);
        let why = v.fields["color"]["explanation"].as_str().unwrap();
        assert!(why.starts_with("None of the 2 acceptable values"), "{why}");
        // An empty list is no expected value.
        let v = evaluate_job(
            &fields,
            json!({"color": "red"}).as_object().unwrap(),
            json!({"color": []}).as_object().unwrap(),
        );
        assert_eq!(v.verdict, Verdict::NoGroundTruth);
    }

    #[test]
    fn text_similarity_keeps_the_rows_counts() {
        let mut body = field("body", ValueType::Text, Comparator::TextSimilarity);
        body.comparator_options.threshold = Some(0.5);
        let v = evaluate_job(
            std::slice::from_ref(&body),
            json!({"body": "a b c d x"}).as_object().unwrap(),
            json!({"body": "a b c d e"}).as_object().unwrap(),
        );
        let r = &v.fields["body"];
        assert_eq!(
            (
                r["pass"].as_bool(),
                r["precision"].as_f64(),
                r["recall"].as_f64()
            ),
            (Some(true), Some(0.5), Some(0.5))
        );
        assert!((r["tp"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
    }
}
