//! Currencies: ISO 4217 codes, the symbols and names pages write instead,
//! and which symbols need a locale to say which currency they mean (`$`
//! is the dollar of a dozen countries and the peso of several more).

/// ISO 4217 codes in use, for finding a code inside text (any three
/// letters compare as a code when both sides are codes).
const CODES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HRK", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SYP", "SZL", "THB", "TJS",
    "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWL",
];

/// Symbols and names that name one currency wherever they appear, longest
/// first so that `NT$` wins over `$` and `R$` over `R`.
const UNAMBIGUOUS: &[(&str, &str)] = &[
    ("pounds sterling", "GBP"),
    ("pound sterling", "GBP"),
    ("euros", "EUR"),
    ("euro", "EUR"),
    ("рублей", "RUB"),
    ("руб.", "RUB"),
    ("руб", "RUB"),
    ("грн", "UAH"),
    ("ر.س", "SAR"),
    ("د.إ", "AED"),
    ("ج.م", "EGP"),
    ("NT$", "TWD"),
    ("HK$", "HKD"),
    ("US$", "USD"),
    ("CA$", "CAD"),
    ("AU$", "AUD"),
    ("NZ$", "NZD"),
    ("MX$", "MXN"),
    ("R$", "BRL"),
    ("S$", "SGD"),
    ("A$", "AUD"),
    ("C$", "CAD"),
    ("E£", "EGP"),
    ("zł", "PLN"),
    ("Kč", "CZK"),
    ("Ft", "HUF"),
    ("kn", "HRK"),
    ("lei", "RON"),
    ("лв", "BGN"),
    ("TL", "TRY"),
    ("RM", "MYR"),
    ("Rp", "IDR"),
    ("S/", "PEN"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("₹", "INR"),
    ("₽", "RUB"),
    ("₺", "TRY"),
    ("₩", "KRW"),
    ("₪", "ILS"),
    ("₴", "UAH"),
    ("₫", "VND"),
    ("฿", "THB"),
    ("₱", "PHP"),
    ("₦", "NGN"),
    ("₡", "CRC"),
    ("₲", "PYG"),
    ("₸", "KZT"),
    ("₼", "AZN"),
    ("₾", "GEL"),
];

/// Symbols that several currencies use, each with the currency a region
/// (ISO 3166 code, as in a locale such as `en-CA` or a country domain)
/// means by it.
const AMBIGUOUS: &[(&str, &[(&str, &str)])] = &[
    (
        "$",
        &[
            ("US", "USD"),
            ("CA", "CAD"),
            ("AU", "AUD"),
            ("NZ", "NZD"),
            ("SG", "SGD"),
            ("HK", "HKD"),
            ("TW", "TWD"),
            ("MX", "MXN"),
            ("AR", "ARS"),
            ("CL", "CLP"),
            ("CO", "COP"),
            ("UY", "UYU"),
            ("EC", "USD"),
            ("SV", "USD"),
            ("PA", "USD"),
            ("PR", "USD"),
            ("JM", "JMD"),
            ("FJ", "FJD"),
        ],
    ),
    (
        "dollars",
        &[
            ("US", "USD"),
            ("CA", "CAD"),
            ("AU", "AUD"),
            ("NZ", "NZD"),
            ("SG", "SGD"),
        ],
    ),
    ("¥", &[("JP", "JPY"), ("CN", "CNY")]),
    ("円", &[("JP", "JPY")]),
    ("元", &[("CN", "CNY"), ("TW", "TWD")]),
    (
        "kr",
        &[("SE", "SEK"), ("NO", "NOK"), ("DK", "DKK"), ("IS", "ISK")],
    ),
    (
        "Rs",
        &[("IN", "INR"), ("PK", "PKR"), ("LK", "LKR"), ("NP", "NPR")],
    ),
    (
        "₨",
        &[("PK", "PKR"), ("IN", "INR"), ("LK", "LKR"), ("NP", "NPR")],
    ),
    ("Fr", &[("CH", "CHF"), ("LI", "CHF")]),
    ("R", &[("ZA", "ZAR")]),
];

/// What a currency text names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Currency {
    /// One currency, by its ISO code.
    Code(String),
    /// A symbol several currencies use, with those currencies' codes.
    Ambiguous {
        symbol: &'static str,
        codes: Vec<&'static str>,
    },
}

/// The region (upper-case ISO 3166 code) of a locale (`en-CA`, `pt_BR`),
/// a bare region (`cl`) or a country domain (`shop.example.co.uk`).
pub fn region(locale: &str) -> Option<String> {
    let l = locale.trim();
    if l.is_empty() {
        return None;
    }
    let tail = l
        .rsplit(['-', '_', '.'])
        .next()
        .unwrap_or(l)
        .to_ascii_uppercase();
    let tail = if tail == "UK" { "GB".to_string() } else { tail };
    (tail.len() == 2 && tail.chars().all(|c| c.is_ascii_alphabetic())).then_some(tail)
}

fn symbol_eq(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// What `text` names as a whole (`EUR`, `€`, `euro`, `$`), resolving an
/// ambiguous symbol by `locale` when one is given and it settles it.
pub fn parse(text: &str, locale: Option<&str>) -> Option<Currency> {
    let t = text.trim().trim_end_matches('.').trim();
    if t.is_empty() {
        return None;
    }
    let three_letters = t.len() == 3 && t.chars().all(|c| c.is_ascii_alphabetic());
    if three_letters && CODES.contains(&t.to_ascii_uppercase().as_str()) {
        return Some(Currency::Code(t.to_ascii_uppercase()));
    }
    if let Some((_, code)) = UNAMBIGUOUS.iter().find(|(s, _)| symbol_eq(s, t)) {
        return Some(Currency::Code((*code).to_string()));
    }
    // A code this table doesn't list (a new or historic one) is still a code.
    if three_letters && t.chars().all(|c| c.is_ascii_uppercase()) {
        return Some(Currency::Code(t.to_string()));
    }
    let (symbol, by_region) = AMBIGUOUS.iter().find(|(s, _)| symbol_eq(s, t))?;
    let wanted = locale.and_then(region);
    if let Some(code) = wanted
        .as_deref()
        .and_then(|r| by_region.iter().find(|(reg, _)| *reg == r))
        .map(|(_, c)| *c)
    {
        return Some(Currency::Code(code.to_string()));
    }
    let mut codes: Vec<&'static str> = by_region.iter().map(|(_, c)| *c).collect();
    codes.dedup();
    codes.sort_unstable();
    codes.dedup();
    Some(Currency::Ambiguous { symbol, codes })
}

/// The ISO code `text` names, when it names exactly one currency.
pub fn code(text: &str, locale: Option<&str>) -> Option<String> {
    match parse(text, locale)? {
        Currency::Code(c) => Some(c),
        Currency::Ambiguous { .. } => None,
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// The first currency written in `text` (a code, a symbol or a name; for
/// words and codes only as a whole word), with the symbol as written.
pub fn find(text: &str, locale: Option<&str>) -> Option<(String, Option<String>)> {
    let mut best: Option<(usize, String)> = None;
    let mut consider = |at: usize, symbol: &str| {
        if best
            .as_ref()
            .is_none_or(|(b, s)| at < *b || (at == *b && symbol.len() > s.len()))
        {
            best = Some((at, symbol.to_string()));
        }
    };
    let symbols = UNAMBIGUOUS
        .iter()
        .map(|(s, _)| *s)
        .chain(AMBIGUOUS.iter().map(|(s, _)| *s));
    for s in symbols {
        let wordy = s.chars().all(|c| c.is_alphabetic());
        let mut from = 0;
        while let Some(i) = text[from..].find(s) {
            let at = from + i;
            let end = at + s.len();
            let before_ok = !wordy || !text[..at].chars().next_back().is_some_and(is_word_char);
            let after_ok = !wordy || !text[end..].chars().next().is_some_and(is_word_char);
            // "R" alone is only the rand when it stands right before a number.
            let rand_ok = s != "R"
                || text[end..]
                    .trim_start()
                    .starts_with(|c: char| c.is_ascii_digit());
            if before_ok && after_ok && rand_ok {
                consider(at, s);
                break;
            }
            from = end;
        }
    }
    for (at, word) in words(text) {
        if word.len() == 3 && CODES.contains(&word) {
            consider(at, word);
        }
    }
    let (_, symbol) = best?;
    let code = code(&symbol, locale);
    Some((symbol, code))
}

fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.char_indices()
        .filter(move |(i, c)| {
            c.is_ascii_uppercase() && !text[..*i].chars().next_back().is_some_and(is_word_char)
        })
        .map(move |(i, _)| {
            let end = text[i..]
                .char_indices()
                .find(|(_, c)| !c.is_ascii_uppercase())
                .map_or(text.len(), |(j, _)| i + j);
            (i, &text[i..end])
        })
        .filter(move |(i, w)| !text[i + w.len()..].chars().next().is_some_and(is_word_char))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_codes_and_names() {
        assert_eq!(code("€", None).as_deref(), Some("EUR"));
        assert_eq!(code("eur", None).as_deref(), Some("EUR"));
        assert_eq!(code("Euro", None).as_deref(), Some("EUR"));
        assert_eq!(code("£", None).as_deref(), Some("GBP"));
        assert_eq!(code("₹", None).as_deref(), Some("INR"));
        assert_eq!(code("zł", None).as_deref(), Some("PLN"));
        assert_eq!(code("Lei", None).as_deref(), Some("RON"));
        assert_eq!(
            code("XYZ", None).as_deref(),
            Some("XYZ"),
            "an unlisted code"
        );
        assert_eq!(code("ر.س", None).as_deref(), Some("SAR"));
        assert_eq!(code("$", None), None, "the dollar sign needs a locale");
        assert_eq!(code("$", Some("en-CA")).as_deref(), Some("CAD"));
        assert_eq!(code("$", Some("es_CL")).as_deref(), Some("CLP"));
        assert_eq!(code("Rs", Some("pk")).as_deref(), Some("PKR"));
        assert_eq!(
            code("$", Some("shop.example.com.ar")).as_deref(),
            Some("ARS")
        );
        assert!(matches!(
            parse("$", None),
            Some(Currency::Ambiguous { symbol: "$", .. })
        ));
        assert_eq!(parse("banana", None), None);
    }

    #[test]
    fn currencies_inside_price_text() {
        let f = |t: &str| find(t, None).map(|(s, c)| (s, c.unwrap_or_default()));
        assert_eq!(f("24,99 €"), Some(("€".into(), "EUR".into())));
        assert_eq!(f("NT$2,320"), Some(("NT$".into(), "TWD".into())));
        assert_eq!(f("Price: 19.50 CHF"), Some(("CHF".into(), "CHF".into())));
        assert_eq!(f("1 299 Kč"), Some(("Kč".into(), "CZK".into())));
        assert_eq!(f("R$ 689,99"), Some(("R$".into(), "BRL".into())));
        assert_eq!(f("$9.49"), Some(("$".into(), String::new())));
        assert_eq!(f("THE BEST 12"), None, "capital words are not codes");
        assert_eq!(f("Free delivery"), None);
        assert_eq!(
            find("$9.49", Some("en-US")).unwrap().1.as_deref(),
            Some("USD")
        );
    }
}
