//! Guessing what a file does not say: its delimiter, each column's type,
//! which column holds the site URL, and whether a value is a web address.

use chrono::NaiveDate;

use super::parser::{Parser, Record};
use crate::model::ValueType;

pub const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

/// The delimiter that splits the sample's first lines into the same number
/// of fields — more than one — most consistently; ties go to more fields,
/// then to the order `,` `;` tab. A one-column file gets `,`.
pub fn sniff_delimiter(sample: &[u8]) -> u8 {
    let mut best = (b',', 0usize, 0usize);
    for d in DELIMITERS {
        let mut counts = Vec::new();
        let mut p = Parser::new(d);
        let mut emit = |r: Record<'_>| -> Result<(), ()> {
            if counts.len() < 50 {
                counts.push(r.len());
            }
            Ok(())
        };
        let _ = p.feed(sample, &mut emit);
        // The sample may end mid-record: only complete records count.
        let Some(&header) = counts.first() else {
            continue;
        };
        if header < 2 {
            continue;
        }
        let agreeing = counts.iter().filter(|&&c| c == header).count();
        if (agreeing, header) > (best.1, best.2) {
            best = (d, agreeing, header);
        }
    }
    best.0
}

/// Names that mean "the site" when a header uses them.
const URL_HEADERS: [&str; 10] = [
    "url",
    "site_url",
    "site",
    "website",
    "link",
    "homepage",
    "page_url",
    "web_address",
    "domain",
    "uri",
];

/// Whether a header names the URL column (case, spaces and dashes aside).
pub fn is_url_header(name: &str) -> bool {
    let key: String = name
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    URL_HEADERS.contains(&key.as_str())
}

/// The address an agent visits for a URL cell, or `None` if it is not a
/// web address. A bare host (`example.com/shop`) gets `https://`.
pub fn normalize_site_url(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return None;
    }
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let candidate = if lower.starts_with("http://") || lower.starts_with("https://") {
        s.to_string()
    } else if !s.contains("://") && looks_like_host(s) {
        format!("https://{s}")
    } else {
        return None;
    };
    let url = url::Url::parse(&candidate).ok()?;
    let host = url.host_str()?;
    if host.is_empty() || !(host.contains('.') || host == "localhost" || host.starts_with('[')) {
        return None;
    }
    Some(url.to_string())
}

/// `example.com`, `shop.example.co.uk/path`: a dotted name of letters,
/// digits and dashes, optionally followed by a path.
fn looks_like_host(s: &str) -> bool {
    let host = s.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("");
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
                && !l.starts_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().all(char::is_alphabetic))
}

/// Whether a value reads as a number: a sign, digits with thousands
/// separators (`,` `.` space `'`), a decimal part, a currency symbol or code
/// before or after, a trailing `%`.
pub fn is_number(raw: &str) -> bool {
    let mut s = raw.trim();
    for sym in [
        "$", "€", "£", "¥", "₹", "CHF", "USD", "EUR", "GBP", "JPY", "INR",
    ] {
        if let Some(rest) = s.strip_prefix(sym) {
            s = rest.trim_start();
        }
        if let Some(rest) = s.strip_suffix(sym) {
            s = rest.trim_end();
        }
    }
    let s = s.strip_suffix('%').unwrap_or(s);
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    if !s.ends_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    // Digits and separators only, and no two separators in a row.
    let mut prev_sep = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            prev_sep = false;
        } else if matches!(c, ',' | '.' | ' ' | '\'' | '\u{a0}') {
            if prev_sep {
                return false;
            }
            prev_sep = true;
        } else {
            return false;
        }
    }
    true
}

pub fn is_email(raw: &str) -> bool {
    let s = raw.trim();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

pub fn is_url(raw: &str) -> bool {
    let s = raw.trim();
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && normalize_site_url(s).is_some()
}

/// Dates in the forms people put in spreadsheets: ISO (with or without a
/// time), day/month/year with `/` `.` `-`, month names.
pub fn is_date(raw: &str) -> bool {
    let s = raw.trim();
    if s.len() < 6 || s.len() > 40 || !s.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        return true;
    }
    const FORMATS: [&str; 14] = [
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%d/%m/%Y",
        "%m/%d/%Y",
        "%d.%m.%Y",
        "%d-%m-%Y",
        "%b %d, %Y",
        "%B %d, %Y",
        "%d %b %Y",
        "%d %B %Y",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%a, %d %b %Y",
    ];
    FORMATS.iter().any(|f| {
        NaiveDate::parse_from_str(s, f).is_ok()
            || chrono::NaiveDateTime::parse_from_str(s, f).is_ok()
    })
}

/// Narrows a column's type value by value: starts as "could be anything"
/// and keeps only the types every non-empty value fits.
#[derive(Debug, Clone)]
pub struct TypeGuess {
    number: bool,
    date: bool,
    url: bool,
    email: bool,
    seen: bool,
}

impl Default for TypeGuess {
    fn default() -> Self {
        TypeGuess {
            number: true,
            date: true,
            url: true,
            email: true,
            seen: false,
        }
    }
}

impl TypeGuess {
    pub fn add(&mut self, value: &str) {
        if value.trim().is_empty() {
            return;
        }
        self.seen = true;
        self.number = self.number && is_number(value);
        self.date = self.date && is_date(value);
        self.url = self.url && is_url(value);
        self.email = self.email && is_email(value);
    }

    /// The most specific type that fits every value; text when none (or no
    /// value) does.
    pub fn result(&self) -> ValueType {
        match self {
            TypeGuess { seen: false, .. } => ValueType::Text,
            TypeGuess { number: true, .. } => ValueType::Number,
            TypeGuess { date: true, .. } => ValueType::Date,
            TypeGuess { url: true, .. } => ValueType::Url,
            TypeGuess { email: true, .. } => ValueType::Email,
            _ => ValueType::Text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_comma_semicolon_tab() {
        assert_eq!(
            sniff_delimiter(b"url,name,gt_price\nhttps://a.com,A,1\n"),
            b','
        );
        assert_eq!(
            sniff_delimiter(b"url;name;gt_price\nhttps://a.com;A;1,50\n"),
            b';'
        );
        assert_eq!(
            sniff_delimiter(b"url\tname\nhttps://a.com\tA, B; C\n"),
            b'\t'
        );
    }

    #[test]
    fn sniffing_ignores_delimiters_inside_quotes() {
        let s = b"url;title\n\"https://a.com/?a=1,2,3\";\"x, y, z\"\nhttps://b.com;t\n";
        assert_eq!(sniff_delimiter(s), b';');
    }

    #[test]
    fn sniffing_a_single_column_gives_comma() {
        assert_eq!(sniff_delimiter(b"url\nhttps://a.com\n"), b',');
        assert_eq!(sniff_delimiter(b""), b',');
    }

    #[test]
    fn sniffing_tolerates_a_cut_last_line() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1;2;3\n4;5;6\n7;8"), b';');
    }

    #[test]
    fn numbers() {
        for yes in [
            "42",
            "-3.5",
            "1,234.56",
            "1.234,56",
            "$19.99",
            "19.99 EUR",
            "12%",
            "1 000",
            "€ 5",
        ] {
            assert!(is_number(yes), "{yes}");
        }
        for no in ["", "abc", "1..2", "12a", "1.2.3a", "$", "-", "1,", "v1.2"] {
            assert!(!is_number(no), "{no}");
        }
    }

    #[test]
    fn dates() {
        for yes in [
            "2024-03-05",
            "05/03/2024",
            "12/31/2024",
            "5.3.2024",
            "Mar 5, 2024",
            "5 March 2024",
            "2024-03-05T10:00:00Z",
        ] {
            assert!(is_date(yes), "{yes}");
        }
        for no in ["2024", "hello", "13/13/2024", "1.5", "March"] {
            assert!(!is_date(no), "{no}");
        }
    }

    #[test]
    fn emails() {
        assert!(is_email("ana@example.com"));
        assert!(!is_email("ana@localhost"));
        assert!(!is_email("a b@example.com"));
        assert!(!is_email("example.com"));
    }

    #[test]
    fn site_urls() {
        assert_eq!(
            normalize_site_url(" https://Example.com ").as_deref(),
            Some("https://example.com/")
        );
        assert_eq!(
            normalize_site_url("example.com/shop?q=1").as_deref(),
            Some("https://example.com/shop?q=1")
        );
        assert_eq!(
            normalize_site_url("http://127.0.0.1:8080/p").as_deref(),
            Some("http://127.0.0.1:8080/p")
        );
        assert_eq!(
            normalize_site_url("http://localhost:3000/").as_deref(),
            Some("http://localhost:3000/")
        );
        for bad in [
            "",
            "not a url",
            "ftp://example.com",
            "https://",
            "mailto:a@b.com",
            "example",
            "http://exa mple.com",
            "1.5",
        ] {
            assert_eq!(normalize_site_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn url_headers() {
        assert!(is_url_header("URL"));
        assert!(is_url_header(" Site URL "));
        assert!(is_url_header("page-url"));
        assert!(!is_url_header("gt_url_title"));
    }

    #[test]
    fn type_guesses() {
        let guess = |vals: &[&str]| {
            let mut g = TypeGuess::default();
            vals.iter().for_each(|v| g.add(v));
            g.result()
        };
        assert_eq!(guess(&["1", "2.5", ""]), ValueType::Number);
        assert_eq!(guess(&["2024-01-01", "2024-02-03"]), ValueType::Date);
        assert_eq!(guess(&["https://a.com", "http://b.org/x"]), ValueType::Url);
        assert_eq!(guess(&["a@b.co", "c@d.org"]), ValueType::Email);
        assert_eq!(guess(&["1", "two"]), ValueType::Text);
        assert_eq!(guess(&["", " "]), ValueType::Text);
    }
}
