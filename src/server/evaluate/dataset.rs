//! Labelled page datasets and their scoring, for measuring the automatic
//! rule on real pages (`mino bench-extract`, `tests/suite/product_pages.rs`).
//!
//! The format is the product-pages dataset's: `ground-truth.json` maps a
//! page key to `{url, price: [..], sku: [..], …}` (every acceptable value
//! of an attribute; an absent attribute means the page has none) and
//! `html/<key>.html.gz` holds the page as saved.
//!
//! Scoring, one predicted value per page and attribute, counts summed over
//! pages: a predicted value that is one of the page's values is a true
//! positive; one that is not is a false positive, and also a false
//! negative when the page has values; no prediction where the page has
//! values is a false negative. Precision tp/(tp+fp), recall tp/(tp+fn)
//! (each 1 when its denominator is 0), F1 their harmonic mean (0 when both
//! are 0). Prices compare as decimal numbers, availability by schema.org
//! short name, currencies as currencies (`€` is `EUR`; `$` by the page's
//! locale), brands ignoring case and punctuation, identifiers exactly.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::model::{ExtractionRule, OutputField, ValueType};
use crate::server::agents::extract::Page;
use crate::server::evaluate::comparators::normalize_text;
use crate::server::values::price::{self, Notation};
use crate::server::values::{currency, schema_org};

/// The attributes scored, with the field type Mino extracts them as.
pub const ATTRIBUTES: [(&str, ValueType); 7] = [
    ("price", ValueType::Number),
    ("sku", ValueType::Text),
    ("availability", ValueType::Text),
    ("brand", ValueType::Text),
    ("currency", ValueType::Text),
    ("mpn", ValueType::Text),
    ("gtin", ValueType::Text),
];

/// One page of a dataset with the values a person read from it.
#[derive(Debug, Clone)]
pub struct LabelledPage {
    pub key: String,
    pub url: String,
    /// Acceptable values by attribute; attributes the page lacks are absent.
    pub expected: BTreeMap<String, Vec<String>>,
    pub html_path: PathBuf,
}

impl LabelledPage {
    /// The page's path and query on its shop (`/dp/B07FW264WL`): the
    /// benchmark serves each page there, on 127.0.0.1, so that the
    /// extractor sees the address's path as it would on the shop.
    pub fn path(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(u) => match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            },
            Err(_) => "/".to_string(),
        }
    }

    /// The saved page, decompressed.
    pub fn html(&self) -> anyhow::Result<String> {
        let file = std::fs::File::open(&self.html_path)
            .with_context(|| format!("opening {}", self.html_path.display()))?;
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut bytes)
            .with_context(|| format!("decompressing {}", self.html_path.display()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The dataset in `dir`, pages in key order.
pub fn load(dir: &Path) -> anyhow::Result<Vec<LabelledPage>> {
    let truth_path = dir.join("ground-truth.json");
    let text = std::fs::read_to_string(&truth_path)
        .with_context(|| format!("reading {}", truth_path.display()))?;
    let truth: BTreeMap<String, Value> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", truth_path.display()))?;
    let mut pages = Vec::new();
    for (key, entry) in truth {
        let url = entry
            .get("url")
            .and_then(Value::as_str)
            .with_context(|| format!("page {key} has no url"))?
            .to_string();
        let mut expected = BTreeMap::new();
        for (attribute, _) in ATTRIBUTES {
            let values: Vec<String> = match entry.get(attribute) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_string()],
                _ => Vec::new(),
            };
            if !values.is_empty() {
                expected.insert(attribute.to_string(), values);
            }
        }
        let html_path = dir.join("html").join(format!("{key}.html.gz"));
        pages.push(LabelledPage {
            key,
            url,
            expected,
            html_path,
        });
    }
    Ok(pages)
}

/// Whether `predicted` is one of `acceptable` for `attribute`.
pub fn matches(
    attribute: &str,
    predicted: &str,
    acceptable: &[String],
    locale: Option<&str>,
) -> bool {
    let p = predicted.trim();
    acceptable.iter().any(|want| {
        let w = want.trim();
        match attribute {
            "price" => {
                let number = |s: &str| {
                    price::amount(s, Notation::Structured).and_then(|a| a.parse::<f64>().ok())
                };
                matches!((number(p), number(w)), (Some(a), Some(b)) if (a - b).abs() < 1e-9)
            }
            "availability" => schema_org::canonical(p) == schema_org::canonical(w),
            "currency" => {
                p == w
                    || matches!(
                        (currency::code(p, locale), currency::code(w, locale)),
                        (Some(a), Some(b)) if a == b
                    )
            }
            "brand" => normalize_text(p) == normalize_text(w),
            _ => p == w,
        }
    })
}

/// True and false positives and false negatives of one attribute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tp: u32,
    pub fp: u32,
    pub fn_: u32,
    /// Pages that have a value for the attribute.
    pub labelled: u32,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        if self.fp == 0 && self.fn_ == 0 {
            return 1.0;
        }
        if self.tp + self.fp == 0 {
            return 0.0;
        }
        f64::from(self.tp) / f64::from(self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        if self.fp == 0 && self.fn_ == 0 {
            return 1.0;
        }
        if self.tp + self.fn_ == 0 {
            return 0.0;
        }
        f64::from(self.tp) / f64::from(self.tp + self.fn_)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    fn add(
        &mut self,
        predicted: Option<&str>,
        acceptable: Option<&Vec<String>>,
        attribute: &str,
        locale: Option<&str>,
    ) -> Outcome {
        if acceptable.is_some() {
            self.labelled += 1;
        }
        match (predicted, acceptable) {
            (Some(p), Some(want)) if matches(attribute, p, want, locale) => {
                self.tp += 1;
                Outcome::Right
            }
            (Some(_), Some(_)) => {
                self.fp += 1;
                self.fn_ += 1;
                Outcome::Wrong
            }
            (Some(_), None) => {
                self.fp += 1;
                Outcome::Unexpected
            }
            (None, Some(_)) => {
                self.fn_ += 1;
                Outcome::Missed
            }
            (None, None) => Outcome::Right,
        }
    }
}

/// How one prediction scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Right,
    /// A value that is not one of the page's.
    Wrong,
    /// A value where the page has none.
    Unexpected,
    /// No value where the page has one.
    Missed,
}

/// What an extractor said about one page.
#[derive(Debug, Clone, Default)]
pub struct Prediction {
    pub values: BTreeMap<String, String>,
    /// The page's locale, for reading `$` and other shared symbols.
    pub locale: Option<String>,
}

/// A prediction that scored other than right, for reports.
#[derive(Debug, Clone)]
pub struct Miss {
    pub page: String,
    pub attribute: String,
    pub outcome: Outcome,
    pub predicted: Option<String>,
    pub expected: Vec<String>,
}

/// Counts per attribute over a dataset, and every miss.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub counts: BTreeMap<String, Counts>,
    pub misses: Vec<Miss>,
    pub pages: usize,
}

impl Report {
    /// Adds one page's prediction.
    pub fn add(&mut self, page: &LabelledPage, prediction: &Prediction) {
        self.pages += 1;
        for (attribute, _) in ATTRIBUTES {
            let predicted = prediction.values.get(attribute).map(String::as_str);
            let acceptable = page.expected.get(attribute);
            let outcome = self.counts.entry(attribute.to_string()).or_default().add(
                predicted,
                acceptable,
                attribute,
                prediction.locale.as_deref(),
            );
            if outcome != Outcome::Right {
                self.misses.push(Miss {
                    page: page.key.clone(),
                    attribute: attribute.to_string(),
                    outcome,
                    predicted: predicted.map(str::to_string),
                    expected: acceptable.cloned().unwrap_or_default(),
                });
            }
        }
    }

    pub fn f1(&self, attribute: &str) -> f64 {
        self.counts.get(attribute).map_or(0.0, Counts::f1)
    }

    /// A table: attribute, pages with a value, tp, fp, fn, precision,
    /// recall, F1.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<13} {:>5} {:>4} {:>4} {:>4} {:>9} {:>7} {:>6}\n",
            "attribute", "pages", "tp", "fp", "fn", "precision", "recall", "F1"
        );
        for (attribute, _) in ATTRIBUTES {
            let c = self.counts.get(attribute).copied().unwrap_or_default();
            out.push_str(&format!(
                "{:<13} {:>5} {:>4} {:>4} {:>4} {:>9.3} {:>7.3} {:>6.3}\n",
                attribute,
                c.labelled,
                c.tp,
                c.fp,
                c.fn_,
                c.precision(),
                c.recall(),
                c.f1()
            ));
        }
        out
    }
}

/// Where the dataset sits relative to the repository.
pub const DEFAULT_DIR: &str = "../shared/datasets/product-pages";

/// The dataset's directory: `MINO_PRODUCT_PAGES`, else the default.
pub fn dataset_dir() -> PathBuf {
    std::env::var_os("MINO_PRODUCT_PAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// The output fields the dataset is scored on: every attribute, automatic.
pub fn fields() -> Vec<OutputField> {
    ATTRIBUTES
        .iter()
        .map(|(name, t)| OutputField {
            name: (*name).to_string(),
            field_type: *t,
            comparator: t.comparator_for(name),
            comparator_options: Default::default(),
            rule: ExtractionRule::Auto,
            source: "dataset".into(),
            description: String::new(),
            empty_means: Default::default(),
            multi_value_separator: None,
        })
        .collect()
}

/// The automatic rule's prediction for a page's HTML fetched from `url`.
pub fn predict(html: &str, url: &str) -> Prediction {
    let page = Page::parse_at(html, Some(url));
    let mut values = BTreeMap::new();
    for f in fields() {
        if let Some(v) = page.extract(&f) {
            values.insert(f.name.clone(), v);
        }
    }
    Prediction {
        values,
        locale: page.locale(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_definitions() {
        let c = Counts::default();
        assert_eq!((c.precision(), c.recall(), c.f1()), (1.0, 1.0, 1.0));
        let c = Counts {
            tp: 0,
            fp: 0,
            fn_: 3,
            labelled: 3,
        };
        assert_eq!((c.precision(), c.recall(), c.f1()), (0.0, 0.0, 0.0));
        let c = Counts {
            tp: 6,
            fp: 2,
            fn_: 4,
            labelled: 10,
        };
        assert!((c.precision() - 0.75).abs() < 1e-9);
        assert!((c.recall() - 0.6).abs() < 1e-9);
        assert!((c.f1() - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-9);
    }

    #[test]
    fn values_compare_as_their_kind() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(matches("price", "24.99", &v(&["24.990"]), None));
        assert!(matches("price", "1299.00", &v(&["1299"]), None));
        assert!(!matches("price", "2499", &v(&["24.99"]), None));
        assert!(matches(
            "availability",
            "InStock",
            &v(&["http://schema.org/InStock"]),
            None
        ));
        assert!(matches("currency", "EUR", &v(&["€"]), None));
        assert!(matches("currency", "CAD", &v(&["$"]), Some("en-CA")));
        assert!(!matches("currency", "USD", &v(&["$"]), None));
        assert!(matches("brand", "GOOGLE", &v(&["Google"]), None));
        assert!(!matches("sku", "MKI6IKW1N4-1", &v(&["MKI6IKW1N4"]), None));
    }
}
