//! Amounts as shops write them: `24,99 €`, `$1,299.00`, `1.299,00`,
//! `1 299,00`, `1'299.50`, `Rs 23,450`. The result is one canonical
//! decimal (`1299.00`: digits, a dot, the decimals as written), so that a
//! price reads the same whatever the page's locale.

use super::currency;

/// How to read a lone dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notation {
    /// Text people read: one separator followed by exactly three digits
    /// groups thousands (`1,299`, `23.450`), otherwise it is the decimal
    /// point (`24,99`, `3.5`).
    Display,
    /// A structured-data value (schema.org asks for a dot as the decimal
    /// point): a lone dot is always the decimal point (`23.450` is 23.45);
    /// anything with a comma is read as display text.
    Structured,
}

fn is_space_sep(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}')
}

fn is_sep(c: char) -> bool {
    matches!(c, '.' | ',' | '\'' | '’') || is_space_sep(c)
}

/// The first number in `text`, with its byte range: digits and the
/// separators between digit groups (a space only before exactly three
/// digits, so that "2 items 3" is not 23).
fn number_token(text: &str) -> Option<(usize, usize)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let start = chars.iter().position(|(_, c)| c.is_ascii_digit())?;
    let mut end = start;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i].1;
        if c.is_ascii_digit() {
            end = i;
            i += 1;
            continue;
        }
        if is_sep(c) && i + 1 < chars.len() && chars[i + 1].1.is_ascii_digit() {
            if is_space_sep(c) || matches!(c, '\'' | '’') {
                let run = chars[i + 1..]
                    .iter()
                    .take_while(|(_, d)| d.is_ascii_digit())
                    .count();
                if run != 3 {
                    break;
                }
            }
            i += 1;
            continue;
        }
        break;
    }
    let from = chars[start].0;
    let to = chars[end].0 + 1;
    Some((from, to))
}

/// The number in `token` (digits and separators only) as a canonical
/// decimal.
fn canonical(token: &str, notation: Notation) -> Option<String> {
    // Digit groups and the separators between them.
    let mut groups: Vec<String> = vec![String::new()];
    let mut seps: Vec<char> = Vec::new();
    for c in token.chars() {
        if c.is_ascii_digit() {
            groups.last_mut().expect("a group").push(c);
        } else {
            seps.push(if is_space_sep(c) || c == '’' {
                '\''
            } else {
                c
            });
            groups.push(String::new());
        }
    }
    if groups.iter().any(String::is_empty) {
        return None;
    }
    let decimal_at: Option<usize> = match seps.as_slice() {
        [] => None,
        _ => {
            let last = *seps.last().expect("a separator");
            let last_group = groups.last().expect("a group");
            let same_kind = seps.iter().filter(|s| **s == last).count();
            if last == '\'' {
                None
            } else if seps.iter().any(|s| *s != last) {
                // Two kinds: the last one, if it appears once, is the point.
                (same_kind == 1).then_some(seps.len() - 1)
            } else if same_kind > 1 {
                None
            } else if notation == Notation::Structured && last == '.' {
                Some(0)
            } else if last_group.len() == 3 {
                None
            } else {
                Some(0)
            }
        }
    };
    let (int_groups, decimals) = match decimal_at {
        Some(i) => (&groups[..=i], Some(groups[i + 1].as_str())),
        None => (&groups[..], None),
    };
    // Thousands groups after the first hold exactly three digits.
    if int_groups.iter().skip(1).any(|g| g.len() != 3) {
        return None;
    }
    let int: String = int_groups.concat();
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    Some(match decimals {
        // "23.450" is 23.45: zeros past the cents say nothing.
        Some(d) if d.len() > 2 => format!("{int}.{}", trim_zeros(d)),
        Some(d) => format!("{int}.{d}"),
        None => int.to_string(),
    })
}

fn trim_zeros(decimals: &str) -> &str {
    let t = decimals.trim_end_matches('0');
    if t.len() >= 2 {
        t
    } else {
        &decimals[..2]
    }
}

/// The first amount in `text` as a canonical decimal (`"1.299,00 €"` →
/// `"1299.00"`), or `None` when it holds no number.
pub fn amount(text: &str, notation: Notation) -> Option<String> {
    let (from, to) = number_token(text)?;
    canonical(&text[from..to], notation)
}

/// A price read from text: the amount, and the currency written next to
/// it (its symbol as written, and its ISO code when that is certain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub amount: String,
    pub symbol: Option<String>,
    pub currency: Option<String>,
}

/// A price in display text (`24,99 €`, `NT$2,320`, `From £49`), with the
/// currency written before or after the number resolved by `locale`.
pub fn parse(text: &str, locale: Option<&str>) -> Option<Price> {
    let (from, to) = number_token(text)?;
    let amount = canonical(&text[from..to], Notation::Display)?;
    // The currency next to the number: up to a few characters either side.
    let near = |s: &str| currency::find(s, locale);
    let before: String = {
        let head = &text[..from];
        let cut = head.char_indices().rev().nth(7).map_or(0, |(i, _)| i);
        head[cut..].to_string()
    };
    let after: String = text[to..].chars().take(8).collect();
    let found = near(&after).or_else(|| near(&before));
    Some(Price {
        amount,
        symbol: found.as_ref().map(|(s, _)| s.clone()),
        currency: found.and_then(|(_, c)| c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_every_common_notation() {
        let d = |t: &str| amount(t, Notation::Display);
        assert_eq!(d("24,99 €").as_deref(), Some("24.99"));
        assert_eq!(d("3,34").as_deref(), Some("3.34"));
        assert_eq!(d("$1,299.00").as_deref(), Some("1299.00"));
        assert_eq!(d("1.299,00 €").as_deref(), Some("1299.00"));
        assert_eq!(d("1 299,00 Kč").as_deref(), Some("1299.00"));
        assert_eq!(d("1\u{a0}299,00").as_deref(), Some("1299.00"));
        assert_eq!(d("CHF 1'299.50").as_deref(), Some("1299.50"));
        assert_eq!(d("Rs 23,450").as_deref(), Some("23450"));
        assert_eq!(d("1.234.567").as_deref(), Some("1234567"));
        assert_eq!(d("19.5").as_deref(), Some("19.5"));
        assert_eq!(d("0099").as_deref(), Some("99"));
        assert_eq!(d("2 items 3").as_deref(), Some("2"));
        assert_eq!(d("no price"), None);
        let s = |t: &str| amount(t, Notation::Structured);
        assert_eq!(s("23.450").as_deref(), Some("23.45"));
        assert_eq!(s("10.5000").as_deref(), Some("10.50"));
        assert_eq!(s("119.01").as_deref(), Some("119.01"));
        assert_eq!(s("24,99").as_deref(), Some("24.99"));
        assert_eq!(s("1.299,00").as_deref(), Some("1299.00"));
    }

    #[test]
    fn prices_with_their_currency() {
        let p = parse("24,99 €", None).unwrap();
        assert_eq!(
            (p.amount.as_str(), p.currency.as_deref()),
            ("24.99", Some("EUR"))
        );
        let p = parse("NT$2,320", None).unwrap();
        assert_eq!(
            (p.amount.as_str(), p.currency.as_deref()),
            ("2320", Some("TWD"))
        );
        let p = parse("From £49", None).unwrap();
        assert_eq!(p.currency.as_deref(), Some("GBP"));
        let p = parse("$ 229.99", Some("en-CA")).unwrap();
        assert_eq!(
            (p.symbol.as_deref(), p.currency.as_deref()),
            (Some("$"), Some("CAD"))
        );
        let p = parse("$9.49", None).unwrap();
        assert_eq!((p.symbol.as_deref(), p.currency), (Some("$"), None));
        assert_eq!(parse("12", None).unwrap().symbol, None);
    }
}
