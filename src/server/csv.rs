//! Writing CSV: one quoting rule for every file Mino produces (result
//! exports, the audit log).

/// Appends one CSV field, quoted when it holds a separator, quote or line
/// break, or starts with a character a spreadsheet would run as a formula.
pub fn write_field(buf: &mut Vec<u8>, s: &str) {
    let formula = s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err();
    if formula {
        // Kept as text in Excel and LibreOffice (CSV injection).
        buf.extend_from_slice(b"\"'");
        buf.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        buf.push(b'"');
    } else if s.contains([',', '"', '\n', '\r']) {
        buf.push(b'"');
        buf.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        buf.push(b'"');
    } else {
        buf.extend_from_slice(s.as_bytes());
    }
}

/// Appends a line of fields and its CRLF ending.
pub fn write_record<'a>(buf: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_field(buf, f);
    }
    buf.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(s: &str) -> String {
        let mut b = vec![];
        write_field(&mut b, s);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn fields_are_quoted_only_when_needed_and_formulas_defused() {
        assert_eq!(csv("plain"), "plain");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv("-12.5"), "-12.5");
    }

    #[test]
    fn a_record_ends_in_crlf() {
        let mut b = vec![];
        write_record(&mut b, ["a", "b,c"]);
        assert_eq!(b, b"a,\"b,c\"\r\n");
    }
}
