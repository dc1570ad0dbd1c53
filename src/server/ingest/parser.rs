//! A push CSV parser: bytes go in as they arrive from the network, whole
//! records come out, so a file of any size is read in constant memory.
//!
//! It follows RFC 4180 (fields quoted with `"`, a quote inside a quoted
//! field doubled, line breaks inside quotes kept) and, like spreadsheets, is
//! lenient where a file is merely untidy: a quote in the middle of an
//! unquoted field is literal, text after a closing quote is kept, CR, LF and
//! CRLF all end a line, blank lines are skipped. What it refuses is what
//! loses data: a quote still open at the end of the file.

use memchr::{memchr, memchr3};

/// One record: its fields as bytes (not yet checked to be UTF-8) and the
/// line it started on.
pub struct Record<'a> {
    pub line: u64,
    buf: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Record<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> &'a [u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    /// All field bytes back to back, and where each field ends.
    pub fn raw(&self) -> (&'a [u8], &'a [usize]) {
        (self.buf, self.ends)
    }
}

/// A quote opened at `line`, in field `column`, and never closed.
#[derive(Debug, PartialEq, Eq)]
pub struct UnclosedQuote {
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// Just saw a `"` inside a quoted field: either a doubled quote or the
    /// end of the field.
    QuoteInQuoted,
}

pub struct Parser {
    delimiter: u8,
    state: State,
    buf: Vec<u8>,
    ends: Vec<usize>,
    line: u64,
    record_line: u64,
    /// The previous record ended with CR: an LF right after belongs to it.
    pending_cr: bool,
    quote_at: (u64, u64),
    quoted_in_record: bool,
}

impl Parser {
    pub fn new(delimiter: u8) -> Self {
        Parser {
            delimiter,
            state: State::FieldStart,
            buf: Vec::with_capacity(1024),
            ends: Vec::with_capacity(16),
            line: 1,
            record_line: 1,
            pending_cr: false,
            quote_at: (0, 0),
            quoted_in_record: false,
        }
    }

    /// Reads `data`, calling `emit` for every record it completes.
    pub fn feed<E>(
        &mut self,
        data: &[u8],
        emit: &mut impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut i = 0;
        while i < data.len() {
            if self.pending_cr {
                self.pending_cr = false;
                if data[i] == b'\n' {
                    i += 1;
                    continue;
                }
            }
            match self.state {
                State::FieldStart => {
                    if data[i] == b'"' {
                        self.state = State::Quoted;
                        self.quote_at = (self.line, self.ends.len() as u64 + 1);
                        self.quoted_in_record = true;
                        i += 1;
                    } else {
                        self.state = State::Unquoted;
                    }
                }
                State::Unquoted => match memchr3(self.delimiter, b'\n', b'\r', &data[i..]) {
                    None => {
                        self.buf.extend_from_slice(&data[i..]);
                        i = data.len();
                    }
                    Some(k) => {
                        self.buf.extend_from_slice(&data[i..i + k]);
                        let b = data[i + k];
                        i += k + 1;
                        if b == self.delimiter {
                            self.end_field();
                        } else {
                            self.end_record(b == b'\r', emit)?;
                        }
                    }
                },
                State::Quoted => match memchr(b'"', &data[i..]) {
                    None => {
                        self.line += count_lf(&data[i..]);
                        self.buf.extend_from_slice(&data[i..]);
                        i = data.len();
                    }
                    Some(k) => {
                        self.line += count_lf(&data[i..i + k]);
                        self.buf.extend_from_slice(&data[i..i + k]);
                        i += k + 1;
                        self.state = State::QuoteInQuoted;
                    }
                },
                State::QuoteInQuoted => {
                    let b = data[i];
                    if b == b'"' {
                        self.buf.push(b'"');
                        self.state = State::Quoted;
                        i += 1;
                    } else if b == self.delimiter {
                        self.end_field();
                        i += 1;
                    } else if b == b'\n' || b == b'\r' {
                        i += 1;
                        self.end_record(b == b'\r', emit)?;
                    } else {
                        // `"abc"def`: keep the rest of the field as written.
                        self.state = State::Unquoted;
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the input. The last record may lack a final line break. With
    /// `truncated` (only the start of a file was read) the last record is
    /// incomplete and is dropped instead.
    pub fn finish<E>(
        &mut self,
        truncated: bool,
        emit: &mut impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<Result<(), UnclosedQuote>, E> {
        let pending = self.state != State::FieldStart || !self.ends.is_empty();
        if truncated || !pending {
            return Ok(Ok(()));
        }
        if self.state == State::Quoted {
            let (line, column) = self.quote_at;
            return Ok(Err(UnclosedQuote { line, column }));
        }
        self.end_field();
        self.emit_record(emit)?;
        Ok(Ok(()))
    }

    fn end_field(&mut self) {
        self.ends.push(self.buf.len());
        self.state = State::FieldStart;
    }

    fn end_record<E>(
        &mut self,
        cr: bool,
        emit: &mut impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.end_field();
        self.emit_record(emit)?;
        self.line += 1;
        self.record_line = self.line;
        self.pending_cr = cr;
        Ok(())
    }

    fn emit_record<E>(
        &mut self,
        emit: &mut impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let blank = self.ends.len() == 1 && self.buf.is_empty() && !self.quoted_in_record;
        let result = if blank {
            Ok(())
        } else {
            emit(Record {
                line: self.record_line,
                buf: &self.buf,
                ends: &self.ends,
            })
        };
        self.buf.clear();
        self.ends.clear();
        self.quoted_in_record = false;
        result
    }
}

fn count_lf(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` fed in pieces of `step` bytes.
    fn parse(
        input: &str,
        delimiter: u8,
        step: usize,
    ) -> (Vec<(u64, Vec<String>)>, Option<UnclosedQuote>) {
        let mut p = Parser::new(delimiter);
        let mut out = vec![];
        let mut emit = |r: Record<'_>| -> Result<(), ()> {
            let fields = (0..r.len())
                .map(|i| String::from_utf8(r.get(i).to_vec()).unwrap())
                .collect();
            out.push((r.line, fields));
            Ok(())
        };
        for chunk in input.as_bytes().chunks(step.max(1)) {
            p.feed(chunk, &mut emit).unwrap();
        }
        let end = p.finish(false, &mut emit).unwrap().err();
        (out, end)
    }

    fn rows(input: &str) -> Vec<Vec<String>> {
        let whole = parse(input, b',', usize::MAX).0;
        // The same records however the input is split.
        for step in [1, 2, 3, 7] {
            assert_eq!(parse(input, b',', step).0, whole, "step {step}");
        }
        whole.into_iter().map(|(_, f)| f).collect()
    }

    #[test]
    fn plain_and_quoted_fields() {
        assert_eq!(
            rows("a,b,c\n1,\"x, y\",\"say \"\"hi\"\"\"\n"),
            vec![vec!["a", "b", "c"], vec!["1", "x, y", "say \"hi\""]]
        );
    }

    #[test]
    fn newlines_inside_quotes_count_as_lines() {
        let (recs, _) = parse("a,b\n\"one\ntwo\",2\nlast,3\n", b',', 4);
        assert_eq!(recs[1], (2, vec!["one\ntwo".into(), "2".into()]));
        assert_eq!(recs[2].0, 4);
    }

    #[test]
    fn crlf_cr_and_missing_final_newline() {
        assert_eq!(
            rows("a,b\r\n1,2\r3,4"),
            vec![vec!["a", "b"], vec!["1", "2"], vec!["3", "4"]]
        );
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let (recs, _) = parse("a\n\n\nb\n", b',', 1);
        assert_eq!(recs, vec![(1, vec!["a".into()]), (4, vec!["b".into()])]);
    }

    #[test]
    fn empty_fields_and_trailing_delimiter() {
        assert_eq!(
            rows("a,,\n\"\",x,\n"),
            vec![vec!["a", "", ""], vec!["", "x", ""]]
        );
    }

    #[test]
    fn lenient_quotes() {
        assert_eq!(rows("ab\"c,\"q\"rest\n"), vec![vec!["ab\"c", "qrest"]]);
    }

    #[test]
    fn unclosed_quote_points_at_its_start() {
        let (_, err) = parse("a,b\n1,\"open\n2,3\n", b',', 5);
        assert_eq!(err, Some(UnclosedQuote { line: 2, column: 2 }));
    }

    #[test]
    fn other_delimiters() {
        let (recs, _) = parse("a;b\tc\n1;2\t3\n", b';', 3);
        assert_eq!(recs[1].1, vec!["1", "2\t3"]);
        let (recs, _) = parse("a;b\tc\n", b'\t', 3);
        assert_eq!(recs[0].1, vec!["a;b", "c"]);
    }
}
