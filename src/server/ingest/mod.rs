//! Reading an uploaded CSV into batch rows. [`CsvReader`] takes the file in
//! chunks as they arrive, checks it, works out its schema and turns each
//! row into a line of Postgres `COPY` text, so a million-row file streams
//! through in constant memory. It does no I/O itself: `service::batches`
//! feeds it from the request body and sends its output to the database.

pub mod detect;
pub mod parser;

use std::collections::HashMap;

use crate::error::AppError;
use crate::model::{
    ColumnRole, ColumnSchema, CsvReport, FileProblem, FileProblemCode, InvalidUrls, PreviewRow,
    ValueType,
};
use detect::TypeGuess;
use parser::{Parser, Record};

pub const MAX_ROWS: u64 = 1_000_000;
pub const MAX_FILE_BYTES: u64 = 200 * 1024 * 1024;
/// Rows shown before confirming.
pub const PREVIEW_ROWS: usize = 10;
/// Rows read before deciding types and the URL column; held in memory.
const SAMPLE_ROWS: usize = 1000;
/// Bytes read before choosing the delimiter.
const SNIFF_BYTES: usize = 64 * 1024;
const INVALID_URL_EXAMPLES: usize = 5;
const MAX_HEADER: usize = 200;
const MAX_FIELD_NAME: usize = 64;

/// What the uploader chose, on top of what detection finds.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The column holding the site URL, when not the detected one.
    pub url_column: Option<String>,
    /// Type corrections by column name.
    pub types: HashMap<String, ValueType>,
    /// Leave out rows whose URL is invalid instead of refusing the file.
    pub skip_invalid_urls: bool,
    /// Only the start of the file is given (a preview): the last record may
    /// be cut and is ignored, and the row count is not checked.
    pub truncated: bool,
    /// Field (lowercase) → the separator that splits its expected cells
    /// into several acceptable values, stored as a JSON list.
    pub separators: HashMap<String, String>,
}

fn problem(code: FileProblemCode, message: impl Into<String>) -> FileProblem {
    FileProblem {
        code,
        message: message.into(),
        line: None,
        column: None,
        column_name: None,
        invalid_urls: None,
    }
}

fn at(mut p: FileProblem, line: u64, column: Option<u64>, name: Option<&str>) -> FileProblem {
    p.line = Some(line);
    p.column = column;
    p.column_name = name.map(str::to_string);
    p
}

fn refuse(p: FileProblem) -> AppError {
    AppError::BadFile(Box::new(p))
}

pub fn too_large() -> AppError {
    refuse(problem(
        FileProblemCode::FileTooLarge,
        format!(
            "The file is larger than {} MB. Split it into smaller batches.",
            MAX_FILE_BYTES / 1024 / 1024
        ),
    ))
}

struct Header {
    columns: Vec<ColumnSchema>,
    url_index: usize,
    /// `"name":` already JSON- and COPY-escaped, per column.
    json_keys: Vec<Vec<u8>>,
    /// Per column, the separator of several acceptable expected values.
    separators: Vec<Option<String>>,
}

pub struct CsvReader {
    options: ReadOptions,
    /// The batch's seq as COPY text, the first column of every row.
    row_prefix: Vec<u8>,
    has_bom: bool,
    head: Vec<u8>,
    parser: Option<Parser>,
    delimiter: u8,
    names: Option<Vec<String>>,
    header: Option<Header>,
    guesses: Vec<TypeGuess>,
    sample: Vec<(u64, Vec<String>)>,
    preview: Vec<PreviewRow>,
    rows: u64,
    stored: u64,
    invalid: InvalidUrls,
    coverage: Vec<u64>,
    out: Vec<u8>,
}

impl CsvReader {
    pub fn new(options: ReadOptions, batch_seq: i64) -> Self {
        CsvReader {
            options,
            row_prefix: format!("{batch_seq}\t").into_bytes(),
            has_bom: false,
            head: Vec::new(),
            parser: None,
            delimiter: b',',
            names: None,
            header: None,
            guesses: Vec::new(),
            sample: Vec::new(),
            preview: Vec::new(),
            rows: 0,
            stored: 0,
            invalid: InvalidUrls::default(),
            coverage: Vec::new(),
            out: Vec::with_capacity(1 << 20),
        }
    }

    /// COPY text produced so far; the caller sends it and it is cleared.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.out, Vec::with_capacity(1 << 20))
    }

    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    pub fn rows_stored(&self) -> u64 {
        self.stored
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<(), AppError> {
        if self.parser.is_none() {
            self.head.extend_from_slice(data);
            if self.head.len() < SNIFF_BYTES {
                return Ok(());
            }
            let head = std::mem::take(&mut self.head);
            return self.start(&head);
        }
        self.parse(data)
    }

    /// Called once the whole input (or, for a preview, all of it that was
    /// sent) has been fed.
    pub fn finish(&mut self) -> Result<(), AppError> {
        if self.parser.is_none() {
            let head = std::mem::take(&mut self.head);
            self.start(&head)?;
        }
        let truncated = self.options.truncated;
        let mut parser = self.parser.take().expect("started above");
        let end = parser.finish(truncated, &mut |r: Record<'_>| self.record(r))?;
        if let Err(q) = end {
            return Err(refuse(at(
                problem(
                    FileProblemCode::CsvUnclosedQuote,
                    "A quoted field is never closed: add the missing \" or remove the stray one.",
                ),
                q.line,
                Some(q.column),
                self.column_name(q.column),
            )));
        }
        if self.names.is_none() {
            return Err(refuse(at(
                problem(FileProblemCode::CsvEmpty, "The file is empty."),
                1,
                None,
                None,
            )));
        }
        if self.header.is_none() {
            self.decide_schema()?;
        }
        if self.rows == 0 && !truncated {
            return Err(refuse(at(
                problem(
                    FileProblemCode::CsvNoRows,
                    "The file has a header but no rows: add one row per site below it.",
                ),
                2,
                None,
                None,
            )));
        }
        if self.invalid.count > 0 && !self.options.skip_invalid_urls {
            return Err(self.invalid_urls_problem());
        }
        Ok(())
    }

    fn invalid_urls_problem(&self) -> AppError {
        let header = self.header.as_ref().expect("schema decided");
        let column = &header.columns[header.url_index].name;
        let lines: Vec<String> = self
            .invalid
            .examples
            .iter()
            .map(|(l, _)| l.to_string())
            .collect();
        let n = self.invalid.count;
        let mut p = problem(
            FileProblemCode::CsvInvalidUrls,
            format!(
                "{n} {} no valid web address in column {column:?} (first on {} {}). Fix {}, or skip {} and upload the rest.",
                if n == 1 { "row has" } else { "rows have" },
                if lines.len() == 1 { "line" } else { "lines" },
                lines.join(", "),
                if n == 1 { "it" } else { "them" },
                if n == 1 { "that row" } else { "those rows" },
            ),
        );
        p.line = self.invalid.examples.first().map(|(l, _)| *l);
        p.column = Some(header.url_index as u64 + 1);
        p.column_name = Some(column.clone());
        p.invalid_urls = Some(self.invalid.clone());
        refuse(p)
    }

    /// The report of what was read; `problem` is the error that stopped
    /// reading, if one did.
    pub fn report(&self, problem: Option<FileProblem>) -> CsvReport {
        let columns = match (&self.header, &self.names) {
            (Some(h), _) => h.columns.clone(),
            // Stopped before the schema was decided: show the names.
            (None, Some(names)) => names
                .iter()
                .map(|n| ColumnSchema {
                    name: n.clone(),
                    role: ColumnRole::Input,
                    field: None,
                    value_type: ValueType::Text,
                    detected_type: ValueType::Text,
                })
                .collect(),
            (None, None) => vec![],
        };
        CsvReport {
            delimiter: (self.delimiter as char).to_string(),
            has_bom: self.has_bom,
            columns,
            preview: self.preview.clone(),
            rows: self.rows,
            invalid_urls: self.invalid.clone(),
            complete: !self.options.truncated,
            problem,
        }
    }

    pub fn columns(&self) -> Option<&[ColumnSchema]> {
        self.header.as_ref().map(|h| h.columns.as_slice())
    }

    pub fn url_column(&self) -> Option<&str> {
        self.header
            .as_ref()
            .map(|h| h.columns[h.url_index].name.as_str())
    }

    pub fn delimiter(&self) -> char {
        self.delimiter as char
    }

    pub fn skipped_rows(&self) -> u64 {
        self.invalid.count
    }

    /// Rows with an expected value, per field.
    pub fn coverage(&self) -> Vec<(String, u64)> {
        let Some(h) = &self.header else { return vec![] };
        h.columns
            .iter()
            .zip(&self.coverage)
            .filter_map(|(c, n)| c.field.clone().map(|f| (f, *n)))
            .collect()
    }

    fn start(&mut self, head: &[u8]) -> Result<(), AppError> {
        let mut body = head;
        if body.starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.has_bom = true;
            body = &body[3..];
        } else if body.starts_with(&[0xFF, 0xFE]) || body.starts_with(&[0xFE, 0xFF]) {
            return Err(refuse(at(
                problem(
                    FileProblemCode::CsvInvalidUtf8,
                    "The file is UTF-16. Save it as CSV UTF-8 and upload it again.",
                ),
                1,
                None,
                None,
            )));
        }
        self.delimiter = detect::sniff_delimiter(body);
        self.parser = Some(Parser::new(self.delimiter));
        let body = body.to_vec();
        self.parse(&body)
    }

    fn parse(&mut self, data: &[u8]) -> Result<(), AppError> {
        let mut parser = self.parser.take().expect("started");
        let result = parser.feed(data, &mut |r: Record<'_>| self.record(r));
        self.parser = Some(parser);
        result
    }

    fn column_name(&self, column: u64) -> Option<&str> {
        self.names
            .as_ref()
            .and_then(|n| n.get(column as usize - 1))
            .map(String::as_str)
    }

    /// The record's fields as text, or where it is not UTF-8 / holds a NUL.
    fn fields<'r>(&self, r: &Record<'r>) -> Result<Vec<&'r str>, AppError> {
        let (raw, ends) = r.raw();
        let field_of =
            |offset: usize| ends.iter().position(|&e| offset < e).unwrap_or(0) as u64 + 1;
        if let Err(e) = std::str::from_utf8(raw) {
            let column = field_of(e.valid_up_to());
            return Err(refuse(at(
                problem(
                    FileProblemCode::CsvInvalidUtf8,
                    "This is not UTF-8 text. Save the file as CSV UTF-8 and upload it again.",
                ),
                r.line,
                Some(column),
                self.column_name(column),
            )));
        }
        if let Some(offset) = memchr::memchr(0, raw) {
            let column = field_of(offset);
            return Err(refuse(at(
                problem(
                    FileProblemCode::CsvNulByte,
                    "This field holds a NUL byte; is the file binary rather than CSV?",
                ),
                r.line,
                Some(column),
                self.column_name(column),
            )));
        }
        Ok((0..r.len())
            // Checked above: the whole record is UTF-8, and fields split at
            // ASCII delimiters, so each piece is too.
            .map(|i| std::str::from_utf8(r.get(i)).unwrap_or_default())
            .collect())
    }

    fn record(&mut self, r: Record<'_>) -> Result<(), AppError> {
        let fields = self.fields(&r)?;
        let Some(names) = &self.names else {
            return self.read_header(r.line, &fields);
        };
        if fields.len() != names.len() {
            let (column, message) = if fields.len() > names.len() {
                (
                    names.len() as u64 + 1,
                    format!(
                        "This row has {} fields but the header has {}: is a value missing its quotes?",
                        fields.len(),
                        names.len()
                    ),
                )
            } else {
                (
                    // Point at the first column the row is missing.
                    fields.len() as u64 + 1,
                    format!(
                        "This row has {} {} but the header has {}.",
                        fields.len(),
                        if fields.len() == 1 { "field" } else { "fields" },
                        names.len()
                    ),
                )
            };
            let name = names.get(column as usize - 1).cloned();
            return Err(refuse(at(
                problem(FileProblemCode::CsvFieldCount, message),
                r.line,
                Some(column),
                name.as_deref(),
            )));
        }
        self.rows += 1;
        if self.rows > MAX_ROWS && !self.options.truncated {
            return Err(refuse(at(
                problem(
                    FileProblemCode::CsvTooManyRows,
                    format!("A batch holds at most {MAX_ROWS} rows; split the file."),
                ),
                r.line,
                None,
                None,
            )));
        }
        if self.preview.len() < PREVIEW_ROWS {
            self.preview.push(PreviewRow {
                line: r.line,
                cells: fields.iter().map(|f| f.to_string()).collect(),
            });
        }
        if self.header.is_some() {
            self.write_row(r.line, &fields);
            return Ok(());
        }
        for (g, f) in self.guesses.iter_mut().zip(&fields) {
            g.add(f);
        }
        self.sample
            .push((r.line, fields.iter().map(|f| f.to_string()).collect()));
        if self.sample.len() >= SAMPLE_ROWS {
            self.decide_schema()?;
        }
        Ok(())
    }

    fn read_header(&mut self, line: u64, fields: &[&str]) -> Result<(), AppError> {
        let mut names: Vec<String> = Vec::with_capacity(fields.len());
        let mut seen: HashMap<String, u64> = HashMap::new();
        for (i, f) in fields.iter().enumerate() {
            let column = i as u64 + 1;
            let name = f.trim().to_string();
            if name.is_empty() {
                return Err(refuse(at(
                    problem(
                        FileProblemCode::CsvEmptyHeader,
                        "This column has no name. Name every column in the first line.",
                    ),
                    line,
                    Some(column),
                    None,
                )));
            }
            if ground_truth_field(&name) == Some("") {
                return Err(refuse(at(
                    problem(
                        FileProblemCode::CsvEmptyHeader,
                        "A ground-truth column needs a field name after gt_, e.g. gt_price.",
                    ),
                    line,
                    Some(column),
                    Some(&name),
                )));
            }
            let too_long = match ground_truth_field(&name) {
                Some(field) => field.chars().count() > MAX_FIELD_NAME,
                None => name.chars().count() > MAX_HEADER,
            };
            if too_long {
                return Err(refuse(at(
                    problem(
                        FileProblemCode::CsvInvalidHeader,
                        format!("This column name is too long: at most {MAX_HEADER} characters, and {MAX_FIELD_NAME} after gt_."),
                    ),
                    line,
                    Some(column),
                    None,
                )));
            }
            if let Some(first) = seen.insert(name.to_lowercase(), column) {
                return Err(refuse(at(
                    problem(
                        FileProblemCode::CsvDuplicateHeader,
                        format!("Column {column} has the same name as column {first}. Column names must differ."),
                    ),
                    line,
                    Some(column),
                    Some(&name),
                )));
            }
            names.push(name);
        }
        self.guesses = vec![TypeGuess::default(); names.len()];
        self.coverage = vec![0; names.len()];
        self.names = Some(names);
        Ok(())
    }

    /// Picks the URL column and the types from the rows read so far, then
    /// writes those rows out.
    fn decide_schema(&mut self) -> Result<(), AppError> {
        let names = self.names.clone().expect("header read");
        for name in self.options.types.keys() {
            if !names.iter().any(|n| n == name) {
                return Err(AppError::field(
                    "types",
                    format!(
                        "There is no column {name:?} to set a type for. The columns are {}.",
                        names.join(", ")
                    ),
                ));
            }
        }
        let detected: Vec<ValueType> = self.guesses.iter().map(TypeGuess::result).collect();
        let url_index = self.pick_url_column(&names, &detected)?;
        let columns: Vec<ColumnSchema> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let field = ground_truth_field(name).map(str::to_string);
                let role = if i == url_index {
                    ColumnRole::Url
                } else if field.is_some() {
                    ColumnRole::GroundTruth
                } else {
                    ColumnRole::Input
                };
                let detected_type = if role == ColumnRole::Url {
                    ValueType::Url
                } else {
                    detected[i]
                };
                ColumnSchema {
                    name: name.clone(),
                    role,
                    value_type: self
                        .options
                        .types
                        .get(name)
                        .copied()
                        .unwrap_or(detected_type),
                    detected_type,
                    field,
                }
            })
            .collect();
        let json_keys = columns
            .iter()
            .map(|c| {
                let mut key = Vec::new();
                push_json_string(&mut key, c.field.as_deref().unwrap_or(&c.name));
                key.push(b':');
                key
            })
            .collect();
        let separators = columns
            .iter()
            .map(|c| {
                let field = c
                    .field
                    .as_deref()
                    .filter(|_| c.role == ColumnRole::GroundTruth)?;
                self.options.separators.get(&field.to_lowercase()).cloned()
            })
            .collect();
        self.header = Some(Header {
            columns,
            url_index,
            json_keys,
            separators,
        });
        for (line, row) in std::mem::take(&mut self.sample) {
            let fields: Vec<&str> = row.iter().map(String::as_str).collect();
            self.write_row(line, &fields);
        }
        Ok(())
    }

    fn pick_url_column(&self, names: &[String], detected: &[ValueType]) -> Result<usize, AppError> {
        if let Some(chosen) = &self.options.url_column {
            return match names.iter().position(|n| n == chosen.trim()) {
                Some(i) if ground_truth_field(&names[i]).is_none() => Ok(i),
                Some(_) => Err(AppError::field(
                    "url_column",
                    "A ground-truth (gt_) column can't be the URL column.",
                )),
                None => Err(AppError::field(
                    "url_column",
                    format!(
                        "There is no column {chosen:?}. The columns are {}.",
                        names.join(", ")
                    ),
                )),
            };
        }
        let candidates = || {
            names
                .iter()
                .enumerate()
                .filter(|(_, n)| ground_truth_field(n).is_none())
        };
        if let Some((i, _)) = candidates().find(|(_, n)| detect::is_url_header(n)) {
            return Ok(i);
        }
        if let Some((i, _)) = candidates().find(|(i, _)| detected[*i] == ValueType::Url) {
            return Ok(i);
        }
        Err(refuse(at(
            problem(
                FileProblemCode::CsvNoUrlColumn,
                format!(
                    "No column holds the site URLs. Name it \"url\" or choose it; the columns are {}.",
                    names.join(", ")
                ),
            ),
            1,
            None,
            None,
        )))
    }

    /// One row as a line of COPY text: batch_seq, row_index, line,
    /// site_url, inputs (json), ground_truth (json).
    fn write_row(&mut self, line: u64, fields: &[&str]) {
        let header = self.header.as_ref().expect("schema decided");
        let Some(url) = detect::normalize_site_url(fields[header.url_index]) else {
            self.invalid.count += 1;
            if self.invalid.examples.len() < INVALID_URL_EXAMPLES {
                self.invalid
                    .examples
                    .push((line, fields[header.url_index].chars().take(200).collect()));
            }
            return;
        };
        self.stored += 1;
        let out = &mut self.out;
        out.extend_from_slice(&self.row_prefix);
        out.extend_from_slice(self.stored.to_string().as_bytes());
        out.push(b'\t');
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\t');
        push_copy_text(out, &url);
        for role in [ColumnRole::Input, ColumnRole::GroundTruth] {
            out.extend_from_slice(b"\t{");
            let mut first = true;
            for (i, c) in header.columns.iter().enumerate() {
                if c.role != role {
                    continue;
                }
                let value = fields[i];
                if role == ColumnRole::GroundTruth {
                    if value.trim().is_empty() {
                        continue;
                    }
                    self.coverage[i] += 1;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(&header.json_keys[i]);
                match header.separators[i].as_deref() {
                    Some(sep) if value.contains(sep) => push_json_list(out, value, sep),
                    _ => push_json_string(out, value),
                }
            }
            out.push(b'}');
        }
        out.push(b'\n');
    }
}

/// A refusal of an uploaded file that names where: "Line 3, column 2: …"
/// (no column: "Line 3: …").
pub fn located(line: u64, column: usize, message: impl AsRef<str>) -> AppError {
    let message = message.as_ref();
    AppError::field(
        "file",
        if column > 0 {
            format!("Line {line}, column {column}: {message}")
        } else {
            format!("Line {line}: {message}")
        },
    )
}

/// Reads a small CSV (or tab-separated) file whole into its records, each
/// with its line: for files of values keyed by row (expected-value sets,
/// imported runs), not batches (those stream through [`CsvReader`]). A
/// byte-order mark is skipped. Refused: a cell that is not UTF-8 text (or
/// holds a NUL), an unclosed quote, more than `max_records` records
/// (`too_many` says so).
pub fn read_records(
    bytes: &[u8],
    max_records: usize,
    too_many: &str,
) -> Result<Vec<(u64, Vec<String>)>, AppError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let delimiter = detect::sniff_delimiter(&bytes[..bytes.len().min(64 * 1024)]);
    let mut records: Vec<(u64, Vec<String>)> = Vec::new();
    let mut bad: Option<AppError> = None;
    let mut emit = |r: Record<'_>| -> Result<(), ()> {
        let mut cells = Vec::with_capacity(r.len());
        for i in 0..r.len() {
            match std::str::from_utf8(r.get(i)) {
                Ok(s) if !s.contains('\0') => cells.push(s.to_string()),
                _ => {
                    bad = Some(located(r.line, i + 1, "this cell is not UTF-8 text."));
                    return Err(());
                }
            }
        }
        if records.len() > max_records {
            bad = Some(AppError::field("file", too_many));
            return Err(());
        }
        records.push((r.line, cells));
        Ok(())
    };
    let mut parser = Parser::new(delimiter);
    let fed = parser.feed(bytes, &mut emit);
    let finished = if fed.is_ok() {
        parser.finish(false, &mut emit)
    } else {
        Ok(Ok(()))
    };
    if let Some(e) = bad {
        return Err(e);
    }
    if let Ok(Err(q)) = finished {
        return Err(located(
            q.line,
            q.column as usize,
            "a quote opened here is never closed.",
        ));
    }
    Ok(records)
}

/// The field a `gt_<field>` header names (case-insensitive prefix).
pub fn ground_truth_field(header: &str) -> Option<&str> {
    let prefix = header.get(..3)?;
    prefix
        .eq_ignore_ascii_case("gt_")
        .then(|| header[3..].trim())
}

/// Text escaped for COPY's text format (backslash, tab, newline, CR).
fn push_copy_text(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// A JSON string literal, then escaped for COPY text. JSON already escapes
/// every control character, so only its backslashes need doubling.
/// Several acceptable values as a JSON list: `value` split at `sep`,
/// trimmed, empty and repeated parts left out (one left: a string).
fn push_json_list(out: &mut Vec<u8>, value: &str, sep: &str) {
    let mut parts: Vec<&str> = Vec::new();
    for p in value.split(sep).map(str::trim) {
        if !p.is_empty() && !parts.contains(&p) {
            parts.push(p);
        }
    }
    match parts.as_slice() {
        [] => push_json_string(out, ""),
        [one] => push_json_string(out, one),
        many => {
            out.push(b'[');
            for (n, p) in many.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                push_json_string(out, p);
            }
            out.push(b']');
        }
    }
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\\\"",
            b'\\' => b"\\\\\\\\",
            b'\n' => b"\\\\n",
            b'\r' => b"\\\\r",
            b'\t' => b"\\\\t",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(format!("\\\\u{:04x}", b).as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], options: ReadOptions) -> Result<CsvReader, AppError> {
        let mut r = CsvReader::new(options, 7);
        for chunk in input.chunks(5) {
            r.feed(chunk)?;
        }
        r.finish()?;
        Ok(r)
    }

    fn code(e: AppError) -> (String, Option<u64>, Option<u64>) {
        match e {
            AppError::BadFile(p) => (p.code.as_str().to_string(), p.line, p.column),
            other => panic!("not a file problem: {other:?}"),
        }
    }

    #[test]
    fn rows_become_copy_lines() {
        let mut r = read(
            b"\xEF\xBB\xBFurl;name;gt_Price\nexample.com;\"A \"\"b\"\"\";19.99\nhttps://x.org/p;tab\\;\n",
            ReadOptions::default(),
        )
        .unwrap();
        assert_eq!(r.delimiter(), ';');
        let out = String::from_utf8(r.take_output()).unwrap();
        assert_eq!(
            out,
            "7\t1\t2\thttps://example.com/\t{\"name\":\"A \\\\\"b\\\\\"\"}\t{\"Price\":\"19.99\"}\n\
             7\t2\t3\thttps://x.org/p\t{\"name\":\"tab\\\\\\\\\"}\t{}\n"
        );
        assert_eq!(r.coverage(), vec![("Price".to_string(), 1)]);
        let cols = r.columns().unwrap();
        assert_eq!(cols[2].role, ColumnRole::GroundTruth);
        assert_eq!(cols[2].value_type, ValueType::Number);
        assert_eq!(cols[2].field.as_deref(), Some("Price"));
    }

    #[test]
    fn url_column_found_by_content_when_not_by_name() {
        let r = read(
            b"name,address\nA,https://a.com\nB,https://b.com\n",
            ReadOptions::default(),
        )
        .unwrap();
        assert_eq!(r.url_column(), Some("address"));
    }

    #[test]
    fn chosen_url_column_and_type_corrections() {
        let mut types = HashMap::new();
        types.insert("code".to_string(), ValueType::Text);
        let r = read(
            b"url,mirror,code\nhttps://a.com,https://m.a.com,1\n",
            ReadOptions {
                url_column: Some("mirror".into()),
                types,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.url_column(), Some("mirror"));
        let code_col = &r.columns().unwrap()[2];
        assert_eq!(
            (code_col.value_type, code_col.detected_type),
            (ValueType::Text, ValueType::Number)
        );
    }

    #[test]
    fn refusals_say_where() {
        type Case<'a> = (&'a [u8], &'a str, Option<u64>, Option<u64>);
        let cases: [Case; 9] = [
            (b"", "CSV_EMPTY", Some(1), None),
            (b"url,name\n", "CSV_NO_ROWS", Some(2), None),
            (
                b"url,,name\nhttps://a.com,1,2\n",
                "CSV_EMPTY_HEADER",
                Some(1),
                Some(2),
            ),
            (b"url,Name,name\n", "CSV_DUPLICATE_HEADER", Some(1), Some(3)),
            (
                b"url,a\nhttps://a.com,1\nhttps://b.com,1,2\n",
                "CSV_FIELD_COUNT",
                Some(3),
                Some(3),
            ),
            (
                b"url,a\nhttps://a.com,\"x\nhttps://b.com,1\n",
                "CSV_UNCLOSED_QUOTE",
                Some(2),
                Some(2),
            ),
            (
                b"url,a\nhttps://a.com,caf\xe9\n",
                "CSV_INVALID_UTF8",
                Some(2),
                Some(2),
            ),
            (b"name,a\nx,1\n", "CSV_NO_URL_COLUMN", Some(1), None),
            (
                b"url\nhttps://a.com\nnot a url\n",
                "CSV_INVALID_URLS",
                Some(3),
                Some(1),
            ),
        ];
        for (input, want, line, column) in cases {
            let got = code(read(input, ReadOptions::default()).err().expect(want));
            assert_eq!(got, (want.to_string(), line, column), "{want}");
        }
    }

    #[test]
    fn invalid_urls_can_be_skipped() {
        let r = read(
            b"url\nhttps://a.com\nnope\nhttps://b.com\n",
            ReadOptions {
                skip_invalid_urls: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((r.rows_stored(), r.skipped_rows()), (2, 1));
    }

    #[test]
    fn a_truncated_preview_ignores_the_cut_row() {
        let r = read(
            b"url,a\nhttps://a.com,1\nhttps://b.com,\"cut",
            ReadOptions {
                truncated: true,
                ..Default::default()
            },
        )
        .unwrap();
        let report = r.report(None);
        assert_eq!(report.rows, 1);
        assert!(!report.complete);
    }

    #[test]
    fn control_characters_are_escaped_for_json_and_copy() {
        let mut out = Vec::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\\\"b\\\\\\\\c\\\\nd\\\\u0001\""
        );
    }
}
