//! The comparators: how an extracted value is judged against the expected
//! one. Each gives pass/fail, a score in 0..=1 (for token F1 the F1 itself;
//! for numbers how close), and an explanation a person can act on.

use std::collections::HashMap;

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;

use crate::model::{Comparator, ComparatorOptions};
use crate::server::values::currency::{self, Currency};
use crate::server::values::schema_org;

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub pass: bool,
    pub score: f64,
    pub explanation: String,
}

impl Verdict {
    fn pass(explanation: impl Into<String>) -> Verdict {
        Verdict {
            pass: true,
            score: 1.0,
            explanation: explanation.into(),
        }
    }
    fn fail(score: f64, explanation: impl Into<String>) -> Verdict {
        Verdict {
            pass: false,
            score: score.clamp(0.0, 1.0),
            explanation: explanation.into(),
        }
    }
}

/// Judges `extracted` (None: the agent found nothing) against `expected`.
pub fn compare(
    comparator: Comparator,
    options: &ComparatorOptions,
    extracted: Option<&str>,
    expected: &str,
) -> Verdict {
    let Some(got) = extracted.map(str::trim).filter(|s| !s.is_empty()) else {
        return Verdict::fail(0.0, "Nothing was extracted.");
    };
    let want = expected.trim();
    match comparator {
        Comparator::Exact => {
            if got == want {
                Verdict::pass("Identical.")
            } else if is_enumeration(got, want) {
                Verdict::pass(format!(
                    "Both are schema.org's {}.",
                    schema_org::strip_prefix(want)
                ))
            } else {
                Verdict::fail(0.0, format!("{got:?} is not exactly {want:?}."))
            }
        }
        Comparator::NormalizedText => {
            if is_enumeration(got, want) {
                return Verdict::pass(format!(
                    "Both are schema.org's {}.",
                    schema_org::canonical(want)
                ));
            }
            let (g, w) = (normalize_text(got), normalize_text(want));
            if g == w {
                Verdict::pass("Equal ignoring case, spacing and punctuation.")
            } else {
                Verdict::fail(
                    token_f1(&g, &w),
                    format!(
                        "{g:?} differs from {w:?} (after ignoring case, spacing and punctuation)."
                    ),
                )
            }
        }
        Comparator::Number => compare_numbers(options, got, want),
        Comparator::Url => match (normalize_url(got), normalize_url(want)) {
            (Some(g), Some(w)) if g == w => Verdict::pass("Same address once normalized."),
            (Some(g), Some(w)) => Verdict::fail(0.0, format!("{g} is not {w}.")),
            (None, _) => Verdict::fail(0.0, format!("{got:?} is not a web address.")),
            (_, None) => Verdict::fail(
                0.0,
                format!("The expected value {want:?} is not a web address."),
            ),
        },
        Comparator::Date => {
            let (g, w) = (parse_dates(got), parse_dates(want));
            if g.is_empty() {
                return Verdict::fail(0.0, format!("{got:?} is not a date Mino can read."));
            }
            if w.is_empty() {
                return Verdict::fail(
                    0.0,
                    format!("The expected value {want:?} is not a date Mino can read."),
                );
            }
            match g.iter().find(|d| w.contains(d)) {
                Some(d) => Verdict::pass(format!("Both are {d}.")),
                None => Verdict::fail(0.0, format!("{} is not {}.", g[0], w[0])),
            }
        }
        Comparator::Contains => {
            let (g, w) = (normalize_text(got), normalize_text(want));
            if g.contains(&w) {
                Verdict::pass(format!("Contains {want:?}."))
            } else {
                Verdict::fail(
                    token_f1(&g, &w),
                    format!("{got:?} does not contain {want:?}."),
                )
            }
        }
        Comparator::Regex => match regex::Regex::new(want) {
            Ok(re) if re.is_match(got) => Verdict::pass(format!("Matches /{want}/.")),
            Ok(_) => Verdict::fail(0.0, format!("{got:?} does not match /{want}/.")),
            Err(_) => Verdict::fail(
                0.0,
                format!("The expected value /{want}/ is not a valid pattern."),
            ),
        },
        Comparator::OneOf => {
            let g = normalize_text(got);
            let choices: Vec<&str> = want
                .split(['|', '\n'])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            if choices
                .iter()
                .any(|c| normalize_text(c) == g || is_enumeration(got, c))
            {
                Verdict::pass("One of the accepted values.")
            } else {
                Verdict::fail(0.0, format!("{got:?} is none of {}.", choices.join(", ")))
            }
        }
        Comparator::Currency => compare_currencies(options, got, want),
        Comparator::TokenF1 => {
            let threshold = options.threshold.unwrap_or(0.8);
            let f1 = token_f1(&normalize_text(got), &normalize_text(want));
            let text = format!("Token overlap F1 {f1:.2} (threshold {threshold:.2}).");
            if f1 >= threshold {
                Verdict {
                    pass: true,
                    score: f1,
                    explanation: text,
                }
            } else {
                Verdict::fail(f1, text)
            }
        }
        Comparator::TextSimilarity => {
            let threshold = options.threshold.unwrap_or(0.8);
            let o = super::similarity::overlap(Some(got), Some(want));
            let score = o.score();
            let text = format!(
                "Shingle overlap: precision {:.2}, recall {:.2}, score {score:.2} (threshold {threshold:.2}).",
                o.precision(),
                o.recall()
            );
            if score >= threshold {
                Verdict {
                    pass: true,
                    score,
                    explanation: text,
                }
            } else {
                Verdict::fail(score, text)
            }
        }
    }
}

/// Both sides name the same schema.org enumeration member, one of them
/// perhaps by its URL (`http://schema.org/InStock` and `InStock`).
fn is_enumeration(got: &str, want: &str) -> bool {
    let member = |s: &str| {
        schema_org::member(s, schema_org::AVAILABILITY)
            .or_else(|| schema_org::member(s, schema_org::CONDITION))
    };
    let prefixed = |s: &str| schema_org::strip_prefix(s) != s.trim();
    (prefixed(got) || prefixed(want)) && member(got).is_some() && member(got) == member(want)
}

/// Case folded (after Unicode NFKC), punctuation as spaces, whitespace
/// collapsed. A value made only of symbols (`€`, `%`) keeps them, folded,
/// rather than becoming empty.
pub fn normalize_text(s: &str) -> String {
    let lowered: String = s.nfkc().flat_map(char::to_lowercase).collect();
    let folded: String = lowered
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let words = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.is_empty() {
        lowered.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        words
    }
}

/// Currencies by what they name: ISO codes, unambiguous symbols and names
/// are one currency (`€` = `EUR` = `euro`); a shared symbol (`$`, `kr`,
/// `¥`) names one only with the comparator's locale.
fn compare_currencies(options: &ComparatorOptions, got: &str, want: &str) -> Verdict {
    let locale = options.locale.as_deref().filter(|l| !l.trim().is_empty());
    if got == want || normalize_text(got) == normalize_text(want) {
        return Verdict::pass("Identical.");
    }
    let (g, w) = (currency::parse(got, locale), currency::parse(want, locale));
    let ambiguous = |symbol: &str, codes: &[&str], other: &str| {
        let with = match locale {
            Some(l) => format!("the locale {l:?} doesn't say which"),
            None => "set the comparator's locale (such as en-CA) to say which".to_string(),
        };
        Verdict::fail(
            0.5,
            format!(
                "{symbol:?} may be any of {} ({with}), so it can't be judged equal to {other:?}.",
                codes.join(", ")
            ),
        )
    };
    match (g, w) {
        (Some(Currency::Code(a)), Some(Currency::Code(b))) if a == b => {
            Verdict::pass(format!("Both are {a}."))
        }
        (Some(Currency::Code(a)), Some(Currency::Code(b))) => {
            Verdict::fail(0.0, format!("{a} is not {b}."))
        }
        (Some(Currency::Ambiguous { symbol, codes }), Some(Currency::Code(b))) => {
            if codes.contains(&b.as_str()) {
                ambiguous(symbol, &codes, &b)
            } else {
                Verdict::fail(0.0, format!("{symbol:?} is never {b}."))
            }
        }
        (Some(Currency::Code(a)), Some(Currency::Ambiguous { symbol, codes })) => {
            if codes.contains(&a.as_str()) {
                ambiguous(symbol, &codes, &a)
            } else {
                Verdict::fail(0.0, format!("{a} is never written {symbol:?}."))
            }
        }
        (
            Some(Currency::Ambiguous { symbol: a, .. }),
            Some(Currency::Ambiguous { symbol: b, .. }),
        ) => Verdict::fail(0.0, format!("{a:?} is not {b:?}.")),
        (None, _) => Verdict::fail(0.0, format!("{got:?} is not a currency Mino knows.")),
        (_, None) => Verdict::fail(
            0.0,
            format!("The expected value {want:?} is not a currency Mino knows."),
        ),
    }
}

/// F1 of the two texts' word multisets (both already normalized).
pub fn token_f1(got: &str, want: &str) -> f64 {
    fn count(s: &str) -> HashMap<&str, usize> {
        let mut m: HashMap<&str, usize> = HashMap::new();
        for t in s.split_whitespace() {
            *m.entry(t).or_default() += 1;
        }
        m
    }
    let (g, w) = (count(got), count(want));
    let (ng, nw): (usize, usize) = (g.values().sum(), w.values().sum());
    if ng == 0 || nw == 0 {
        return if ng == nw { 1.0 } else { 0.0 };
    }
    let common: usize = g
        .iter()
        .map(|(t, n)| (*n).min(*w.get(t).unwrap_or(&0)))
        .sum();
    if common == 0 {
        return 0.0;
    }
    let (p, r) = (common as f64 / ng as f64, common as f64 / nw as f64);
    2.0 * p * r / (p + r)
}

const CURRENCY_CODES: &[&str] = &[
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK",
    "HUF", "INR", "CNY", "RMB", "BRL", "MXN", "ZAR", "SGD", "HKD", "KRW", "TRY", "RUB",
];

/// A number as people write prices and quantities: currency symbols and
/// codes, thousands separators (`,` `.` space, apostrophe) and decimal
/// separators of common locales, a leading minus or parentheses.
/// "1.234,56 €" and "$1,234.56" are both 1234.56. A single separator
/// followed by exactly three digits is read as thousands ("1,234" is
/// 1234), otherwise as the decimal point ("12,5" is 12.5).
pub fn parse_number(s: &str) -> Option<f64> {
    let mut t = s.trim().to_string();
    for code in CURRENCY_CODES {
        if let Some(i) = t.to_ascii_uppercase().find(code) {
            t.replace_range(i..i + code.len(), "");
        }
    }
    let negative_parens = t.trim().starts_with('(') && t.trim().ends_with(')');
    let mut negative = negative_parens;
    let mut kept = String::new();
    for c in t.chars() {
        match c {
            '0'..='9' | '.' | ',' => kept.push(c),
            '-' | '−' if kept.is_empty() => negative = true,
            // Spaces (also no-break and thin), apostrophes: thousands.
            ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}' | '\'' | '’' => {}
            _ => {}
        }
    }
    if !kept.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let last_dot = kept.rfind('.');
    let last_comma = kept.rfind(',');
    let decimal = match (last_dot, last_comma) {
        (Some(d), Some(c)) => Some(if d > c { '.' } else { ',' }),
        (Some(_), None) | (None, Some(_)) => {
            let sep = if last_dot.is_some() { '.' } else { ',' };
            let count = kept.matches(sep).count();
            let after = kept.len() - kept.rfind(sep).unwrap_or(0) - 1;
            if count > 1 || (after == 3 && kept.find(sep).unwrap_or(0) > 0) {
                None
            } else {
                Some(sep)
            }
        }
        (None, None) => None,
    };
    let digits: String = kept
        .chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            c if Some(c) == decimal => Some('.'),
            _ => None,
        })
        .collect();
    let value: f64 = digits.parse().ok()?;
    Some(if negative { -value } else { value })
}

fn compare_numbers(options: &ComparatorOptions, got: &str, want: &str) -> Verdict {
    let Some(g) = parse_number(got) else {
        return Verdict::fail(0.0, format!("{got:?} is not a number."));
    };
    let Some(w) = parse_number(want) else {
        return Verdict::fail(0.0, format!("The expected value {want:?} is not a number."));
    };
    let diff = (g - w).abs();
    let abs = options.tolerance.unwrap_or(0.0).max(1e-9);
    let rel = options.relative_tolerance.unwrap_or(0.0) * w.abs();
    if diff <= abs || diff <= rel {
        if diff < 1e-9 {
            Verdict::pass(format!("Both are {w}."))
        } else {
            Verdict::pass(format!("{g} is within tolerance of {w}."))
        }
    } else {
        let closeness = 1.0 - diff / w.abs().max(g.abs()).max(1e-9);
        Verdict::fail(
            closeness,
            format!("{g} is not {w} (off by {}).", round(diff)),
        )
    }
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Query parameters that only track where a visit came from.
fn is_tracking(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("utm_")
        || matches!(
            k.as_str(),
            "gclid"
                | "fbclid"
                | "msclkid"
                | "yclid"
                | "dclid"
                | "igshid"
                | "mc_cid"
                | "mc_eid"
                | "_ga"
                | "_gl"
                | "ref"
                | "ref_src"
                | "spm"
        )
}

/// A URL in one canonical form: https for http, lowercase host, no default
/// port, no fragment, no tracking parameters, the rest sorted, no trailing
/// slash (except the root). Idempotent.
pub fn normalize_url(s: &str) -> Option<String> {
    let s = s.trim();
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        // "mailto:x", "tel:1": another kind of address, not a host:port.
        if let Some((head, rest)) = s.split_once(':') {
            let is_port = rest.starts_with(|c: char| c.is_ascii_digit());
            if !is_port && !head.contains('.') {
                return None;
            }
        }
        format!("https://{s}")
    };
    let mut url = reqwest::Url::parse(&with_scheme).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    if url.scheme() == "http" {
        let _ = url.set_scheme("https");
        if url.port() == Some(443) {
            let _ = url.set_port(None);
        }
    }
    url.set_fragment(None);
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_tracking(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let path = url.path().to_string();
    if path.len() > 1 && path.ends_with('/') {
        url.set_path(path.trim_end_matches('/'));
    }
    Some(url.to_string())
}

const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%d.%m.%Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d-%m-%Y",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%b %d %Y",
    "%d. %B %Y",
];

/// Every date the text can mean (day-first and month-first readings of
/// "03/04/2026" both), as ISO dates; a date-time keeps its date.
pub fn parse_dates(s: &str) -> Vec<NaiveDate> {
    let s = s.trim();
    let mut out = Vec::new();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        out.push(dt.date_naive());
    }
    let head = s.split(['T', ' ']).next().unwrap_or(s);
    for candidate in [s, head] {
        for f in DATE_FORMATS {
            if let Ok(d) = NaiveDate::parse_from_str(candidate, f) {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ComparatorOptions {
        ComparatorOptions::default()
    }

    #[test]
    fn numbers_of_common_locales() {
        for (text, want) in [
            ("1.234,56 €", 1234.56),
            ("$1,234.56", 1234.56),
            ("1 234,56", 1234.56),
            ("1\u{a0}234,56 EUR", 1234.56),
            ("1'234.56 CHF", 1234.56),
            ("USD 19.99", 19.99),
            ("£7", 7.0),
            ("12,5", 12.5),
            ("1,234", 1234.0),
            ("1.234.567", 1234567.0),
            ("-3.5", -3.5),
            ("(12.50)", -12.5),
            ("0.5", 0.5),
        ] {
            assert_eq!(parse_number(text), Some(want), "{text}");
        }
        assert_eq!(parse_number("free"), None);
        assert_eq!(parse_number(""), None);
    }

    #[test]
    fn number_tolerances() {
        let v = compare(Comparator::Number, &opts(), Some("$1,234.56"), "1234.56");
        assert!(v.pass, "{v:?}");
        let v = compare(Comparator::Number, &opts(), Some("10.01"), "10");
        assert!(!v.pass);
        assert!(v.score > 0.99 && v.score < 1.0, "closeness {}", v.score);
        let abs = ComparatorOptions {
            tolerance: Some(0.05),
            ..opts()
        };
        assert!(compare(Comparator::Number, &abs, Some("10.04"), "10").pass);
        let rel = ComparatorOptions {
            relative_tolerance: Some(0.01),
            ..opts()
        };
        assert!(compare(Comparator::Number, &rel, Some("101"), "100").pass);
        assert!(!compare(Comparator::Number, &rel, Some("102"), "100").pass);
        assert!(compare(Comparator::Number, &opts(), Some("n/a"), "100")
            .explanation
            .contains("not a number"));
    }

    #[test]
    fn text_comparators() {
        assert!(compare(Comparator::Exact, &opts(), Some(" Blue Mug "), "Blue Mug").pass);
        assert!(!compare(Comparator::Exact, &opts(), Some("blue mug"), "Blue Mug").pass);
        assert!(
            compare(
                Comparator::NormalizedText,
                &opts(),
                Some("BLUE-mug!!"),
                "blue mug"
            )
            .pass
        );
        // NFKC: a full-width letter and a ligature fold to plain letters.
        assert!(
            compare(
                Comparator::NormalizedText,
                &opts(),
                Some("Ｃafé ﬁne"),
                "café fine"
            )
            .pass
        );
        assert!(
            compare(
                Comparator::Contains,
                &opts(),
                Some("The Blue Mug, 300 ml"),
                "blue mug"
            )
            .pass
        );
        assert!(
            compare(
                Comparator::Regex,
                &opts(),
                Some("SKU-00042"),
                r"^SKU-\d{5}$"
            )
            .pass
        );
        assert!(compare(Comparator::Regex, &opts(), Some("x"), "(")
            .explanation
            .contains("not a valid pattern"));
        assert!(
            compare(
                Comparator::OneOf,
                &opts(),
                Some("In stock"),
                "in stock|available"
            )
            .pass
        );
        assert!(
            !compare(
                Comparator::OneOf,
                &opts(),
                Some("sold out"),
                "in stock|available"
            )
            .pass
        );
        assert!(!compare(Comparator::Exact, &opts(), None, "x").pass);
    }

    #[test]
    fn token_f1_reports_its_score() {
        let v = compare(
            Comparator::TokenF1,
            &opts(),
            Some("blue ceramic mug"),
            "blue mug",
        );
        assert!((v.score - 0.8).abs() < 1e-9, "{}", v.score);
        assert!(v.pass, "0.8 meets the default threshold");
        let strict = ComparatorOptions {
            threshold: Some(0.9),
            ..opts()
        };
        let v = compare(
            Comparator::TokenF1,
            &strict,
            Some("blue ceramic mug"),
            "blue mug",
        );
        assert!(!v.pass);
        assert!(v.explanation.contains("0.80"));
        assert_eq!(token_f1("a b", "c d"), 0.0);
    }

    #[test]
    fn urls_normalize() {
        assert_eq!(
            normalize_url("HTTP://Shop.Example.com:80/p/1/?utm_source=x&b=2&a=1#top").as_deref(),
            Some("https://shop.example.com/p/1?a=1&b=2")
        );
        assert_eq!(
            normalize_url("shop.example.com").as_deref(),
            Some("https://shop.example.com/")
        );
        assert!(
            compare(
                Comparator::Url,
                &opts(),
                Some("https://shop.example.com:443/p/1/"),
                "http://SHOP.example.com/p/1?gclid=1"
            )
            .pass
        );
        assert!(
            !compare(
                Comparator::Url,
                &opts(),
                Some("https://shop.example.com/p/2"),
                "https://shop.example.com/p/1"
            )
            .pass
        );
        assert_eq!(normalize_url("mailto:a@b.c"), None);
    }

    #[test]
    fn url_normalization_is_idempotent() {
        // A small property test over generated addresses.
        let hosts = ["Shop.Example.com", "a.b", "x-y.example.org:8080"];
        let paths = ["", "/", "/p/1", "/p/1/", "/a%20b/"];
        let queries = ["", "?utm_medium=m", "?b=2&a=1", "?ref=x&q=lamp"];
        for scheme in ["http://", "https://", ""] {
            for h in hosts {
                for p in paths {
                    for q in queries {
                        let raw = format!("{scheme}{h}{p}{q}#frag");
                        let once = normalize_url(&raw).unwrap();
                        assert_eq!(
                            normalize_url(&once).as_deref(),
                            Some(once.as_str()),
                            "{raw}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn normalized_text_is_idempotent() {
        for s in [
            "  Hello,   WORLD!! ",
            "Ｃafé ﬁne",
            "a—b–c",
            "",
            "Ünïcödé   test",
        ] {
            let once = normalize_text(s);
            assert_eq!(normalize_text(&once), once, "{s:?}");
        }
    }

    #[test]
    fn dates_in_common_formats() {
        for text in [
            "2026-11-26",
            "26.11.2026",
            "26/11/2026",
            "11/26/2026",
            "26 November 2026",
            "Nov 26, 2026",
            "2026-11-26T10:00:00Z",
        ] {
            let v = compare(Comparator::Date, &opts(), Some(text), "2026-11-26");
            assert!(v.pass, "{text}: {v:?}");
        }
        // Ambiguous day/month: either reading may match.
        assert!(compare(Comparator::Date, &opts(), Some("03/04/2026"), "2026-04-03").pass);
        assert!(compare(Comparator::Date, &opts(), Some("03/04/2026"), "2026-03-04").pass);
        assert!(!compare(Comparator::Date, &opts(), Some("2026-11-25"), "2026-11-26").pass);
        assert!(
            compare(Comparator::Date, &opts(), Some("soon"), "2026-11-26")
                .explanation
                .contains("not a date")
        );
    }

    #[test]
    fn currencies_compare_by_what_they_name() {
        let c = |got: &str, want: &str, locale: Option<&str>| {
            let o = ComparatorOptions {
                locale: locale.map(str::to_string),
                ..opts()
            };
            compare(Comparator::Currency, &o, Some(got), want)
        };
        assert!(c("EUR", "€", None).pass);
        assert!(c("€", "eur", None).pass);
        assert!(c("GBP", "£", None).pass);
        assert!(c("INR", "₹", None).pass);
        assert!(c("PLN", "zł", None).pass);
        assert!(!c("EUR", "£", None).pass);
        let v = c("USD", "$", None);
        assert!(!v.pass);
        assert!(v.explanation.contains("locale"), "{}", v.explanation);
        assert!(c("USD", "$", Some("en-US")).pass);
        assert!(c("CAD", "$", Some("en-CA")).pass);
        assert!(!c("USD", "$", Some("en-CA")).pass);
        assert!(!c("EUR", "$", None).pass, "a dollar sign is never the euro");
        assert!(c("$", "$", None).pass);
        assert!(c("banana", "nope", None)
            .explanation
            .contains("not a currency"));
    }

    #[test]
    fn enumerations_equal_their_url_forms() {
        for comparator in [
            Comparator::Exact,
            Comparator::NormalizedText,
            Comparator::OneOf,
        ] {
            let v = compare(
                comparator,
                &opts(),
                Some("http://schema.org/InStock"),
                "InStock",
            );
            assert!(v.pass, "{comparator:?}: {v:?}");
            let v = compare(
                comparator,
                &opts(),
                Some("https://schema.org/OutOfStock"),
                "InStock",
            );
            assert!(!v.pass, "{comparator:?}");
        }
    }

    #[test]
    fn symbols_survive_normalization() {
        assert_eq!(normalize_text("€"), "€");
        assert_eq!(normalize_text(" £ "), "£");
        assert_eq!(normalize_text("€ 5"), "5");
        assert!(!compare(Comparator::NormalizedText, &opts(), Some("$"), "€").pass);
        assert!(compare(Comparator::NormalizedText, &opts(), Some("€"), "€").pass);
    }
}
