//! Evaluation against ground truth: comparing an extracted value with the
//! expected one by the field's comparator (`comparators`). Verdicts per job
//! and metrics per execution build on these.

pub mod baseline;
pub mod comparators;
pub mod dataset;

use serde_json::{json, Map, Value};

use crate::model::{OutputField, Verdict};

/// A job's evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct JobVerdict {
    /// Pass, partial, fail or no ground truth (never error: that is a
    /// failed job's).
    pub verdict: Verdict,
    /// Per field with an expected value.
    pub fields: Map<String, Value>,
    /// Share of the compared fields that passed.
    pub accuracy: Option<f64>,
}

/// Judges a job's extracted values against its row's expected values,
/// field by field with each field's comparator. Fields without an
/// expected value are not judged.
pub fn evaluate_job(
    fields: &[OutputField],
    extracted: &Map<String, Value>,
    expected: &Map<String, Value>,
) -> JobVerdict {
    let mut results = Map::new();
    let (mut compared, mut passed) = (0usize, 0usize);
    for f in fields {
        let Some(want) = expected.get(&f.name).and_then(scalar) else {
            continue;
        };
        let got = extracted.get(&f.name).and_then(scalar);
        let v = comparators::compare(f.comparator, &f.comparator_options, got.as_deref(), &want);
        compared += 1;
        if v.pass {
            passed += 1;
        }
        results.insert(
            f.name.clone(),
            json!({
                "pass": v.pass,
                "score": (v.score * 1000.0).round() / 1000.0,
                "expected": want,
                "extracted": got,
                "explanation": v.explanation,
            }),
        );
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
}
