//! The formats an export is written in: CSV and JSON as text written row
//! by row, and the XLSX workbook (results and a summary sheet).

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::server::csv;
use crate::server::db::executions::MetricParts;
use crate::server::db::exports::{Column, Kind};

/// Rows handed from the database stream to the workbook thread.
pub(super) type RowChunk = Vec<Vec<Option<String>>>;

/// A text format: a header, rows, an ending.
pub(super) trait TextFormat {
    fn header(&mut self, buf: &mut Vec<u8>, columns: &[Column]);
    fn row(&mut self, buf: &mut Vec<u8>, columns: &[Column], cells: &[Option<&str>]);
    fn end(&mut self, buf: &mut Vec<u8>);
}

pub(super) struct Csv;

impl TextFormat for Csv {
    fn header(&mut self, buf: &mut Vec<u8>, columns: &[Column]) {
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            csv::write_field(buf, &c.name);
        }
        buf.extend_from_slice(b"\r\n");
    }
    fn row(&mut self, buf: &mut Vec<u8>, _: &[Column], cells: &[Option<&str>]) {
        for (i, v) in cells.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            if let Some(v) = v {
                csv::write_field(buf, v);
            }
        }
        buf.extend_from_slice(b"\r\n");
    }
    fn end(&mut self, _: &mut Vec<u8>) {}
}

/// A JSON array of objects, one per job; numbers as numbers, missing
/// values as null.
#[derive(Default)]
pub(super) struct JsonLines {
    rows: u64,
}

impl TextFormat for JsonLines {
    fn header(&mut self, buf: &mut Vec<u8>, _: &[Column]) {
        buf.push(b'[');
    }
    fn row(&mut self, buf: &mut Vec<u8>, columns: &[Column], cells: &[Option<&str>]) {
        buf.extend_from_slice(if self.rows == 0 { b"\n{" } else { b",\n{" });
        self.rows += 1;
        for (i, (c, v)) in columns.iter().zip(cells).enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let _ = serde_json::to_writer(&mut *buf, &c.name);
            buf.push(b':');
            match v {
                None => buf.extend_from_slice(b"null"),
                Some(v) if c.kind.numeric() && v.parse::<f64>().is_ok_and(f64::is_finite) => {
                    buf.extend_from_slice(v.as_bytes())
                }
                Some(v) => {
                    let _ = serde_json::to_writer(&mut *buf, v);
                }
            }
        }
        buf.push(b'}');
    }
    fn end(&mut self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(b"\n]\n");
    }
}

/// What the workbook thread needs.
pub(super) struct Book {
    pub columns: Vec<Column>,
    pub metrics: MetricParts,
    pub run_accuracy: Option<f64>,
    pub filters: BTreeMap<String, String>,
    pub execution_id: Uuid,
    /// What the Summary sheet is titled with: the project, the batch and
    /// the run told apart by mode, version and date.
    pub project: String,
    pub batch: String,
    pub run: String,
    pub path: PathBuf,
}

impl Book {
    /// A "Results" sheet (bold header, frozen, widths fitted to the first
    /// thousand rows, numbers as numbers, pass/fail coloured) and a
    /// "Summary" sheet with the run's accuracy per field.
    pub fn write(self, mut rx: mpsc::Receiver<RowChunk>) -> Result<(), rust_xlsxwriter::XlsxError> {
        use rust_xlsxwriter::{Color, ExcelDateTime, Format, FormatBorder, Workbook};
        let mut book = Workbook::new();
        let percent = Format::new().set_num_format("0.0%");
        let date = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        let header = Format::new()
            .set_bold()
            .set_background_color(Color::RGB(0xEEF2F6))
            .set_border_bottom(FormatBorder::Thin);
        let pass = Format::new()
            .set_background_color(Color::RGB(0xC6EFCE))
            .set_font_color(Color::RGB(0x006100));
        let partial = Format::new()
            .set_background_color(Color::RGB(0xFFEB9C))
            .set_font_color(Color::RGB(0x9C5700));
        let fail = Format::new()
            .set_background_color(Color::RGB(0xFFC7CE))
            .set_font_color(Color::RGB(0x9C0006));
        let first = rx.blocking_recv().unwrap_or_default();
        let sheet = book.add_worksheet_with_constant_memory()?;
        sheet.set_name("Results")?;
        for (c, col) in self.columns.iter().enumerate() {
            let widest = first
                .iter()
                .filter_map(|r| r[c].as_deref())
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
                .max(col.name.chars().count())
                .max(if col.kind == Kind::DateTime { 19 } else { 0 });
            sheet.set_column_width(c as u16, (widest as f64 + 2.0).clamp(6.0, 60.0))?;
        }
        sheet.set_freeze_panes(1, 0)?;
        for (c, col) in self.columns.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, &col.name, &header)?;
        }
        let mut r: u32 = 1;
        let mut chunk = first;
        loop {
            for cells in &chunk {
                for (c, (col, v)) in self.columns.iter().zip(cells).enumerate() {
                    let Some(v) = v else { continue };
                    let c = c as u16;
                    match col.kind {
                        Kind::Number | Kind::Percent => match v.parse::<f64>() {
                            Ok(n) if n.is_finite() && col.kind == Kind::Percent => {
                                sheet.write_number_with_format(r, c, n, &percent)?;
                            }
                            Ok(n) if n.is_finite() => {
                                sheet.write_number(r, c, n)?;
                            }
                            _ => {
                                sheet.write_string(r, c, v)?;
                            }
                        },
                        Kind::DateTime => {
                            // ISO 8601 without the zone letter: the cell is UTC.
                            match ExcelDateTime::parse_from_str(v.trim_end_matches('Z')) {
                                Ok(d) => sheet.write_datetime_with_format(r, c, &d, &date)?,
                                Err(_) => sheet.write_string(r, c, v)?,
                            };
                        }
                        Kind::Judgement => {
                            let f = match v.as_str() {
                                "pass" => Some(&pass),
                                "partial" => Some(&partial),
                                "fail" | "error" => Some(&fail),
                                _ => None,
                            };
                            match f {
                                Some(f) => sheet.write_string_with_format(r, c, v, f)?,
                                None => sheet.write_string(r, c, v)?,
                            };
                        }
                        Kind::Text => {
                            sheet.write_string(r, c, v)?;
                        }
                    }
                }
                r += 1;
            }
            match rx.blocking_recv() {
                Some(next) => chunk = next,
                None => break,
            }
        }

        let summary = book.add_worksheet();
        summary.set_name("Summary")?;
        summary.set_column_width(0, 28)?;
        summary.set_column_width(1, 16)?;
        summary.set_column_width(2, 12)?;
        summary.set_column_width(3, 12)?;
        let title = Format::new().set_bold().set_font_size(14);
        summary.write_string_with_format(
            0,
            0,
            format!("{} · {} · {}", self.project, self.batch, self.run),
            &title,
        )?;
        // The facts start on row 2 (0-based); every later row is offset by it.
        const TOP: u32 = 2;
        summary.write_string_with_format(TOP, 0, "Project", &header)?;
        summary.write_string(TOP, 1, &self.project)?;
        summary.write_string_with_format(TOP + 1, 0, "Batch", &header)?;
        summary.write_string(TOP + 1, 1, &self.batch)?;
        summary.write_string_with_format(TOP + 2, 0, "Run", &header)?;
        summary.write_string(TOP + 2, 1, &self.run)?;
        summary.write_string_with_format(TOP + 3, 0, "Execution id", &header)?;
        summary.write_string(TOP + 3, 1, self.execution_id.to_string())?;
        summary.write_string_with_format(TOP + 4, 0, "Rows exported", &header)?;
        summary.write_number(TOP + 4, 1, (r - 1) as f64)?;
        summary.write_string_with_format(TOP + 5, 0, "Filters", &header)?;
        let filters = if self.filters.is_empty() {
            "none (every job)".to_string()
        } else {
            self.filters
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        summary.write_string(TOP + 5, 1, filters)?;
        let accuracy_row = TOP + 6;
        summary.write_string_with_format(accuracy_row, 0, "Run accuracy", &header)?;
        if let Some(a) = self.run_accuracy {
            summary.write_number_with_format(accuracy_row, 1, a, &percent)?;
        }
        // The 95% bootstrap interval: low and high.
        let interval = |sheet: &mut rust_xlsxwriter::Worksheet,
                        row: u32,
                        col: u16,
                        i: Option<[f64; 2]>|
         -> Result<(), rust_xlsxwriter::XlsxError> {
            if let Some([lo, hi]) = i {
                sheet.write_number_with_format(row, col, lo, &percent)?;
                sheet.write_number_with_format(row, col + 1, hi, &percent)?;
            }
            Ok(())
        };
        interval(summary, accuracy_row, 2, self.metrics.accuracy_interval)?;
        summary.write_string_with_format(accuracy_row + 1, 2, "95% low", &header)?;
        summary.write_string_with_format(accuracy_row + 1, 3, "95% high", &header)?;
        let head_row = accuracy_row + 2;
        let columns = [
            "Field (whole run)",
            "Accuracy",
            "Passed",
            "Compared",
            "Precision",
            "Recall",
            "F1",
            "TP",
            "FP",
            "FN",
            "Accuracy 95% low",
            "Accuracy 95% high",
            "F1 95% low",
            "F1 95% high",
        ];
        for (c, name) in columns.iter().enumerate() {
            summary.write_string_with_format(head_row, c as u16, *name, &header)?;
            if c >= 4 {
                summary.set_column_width(c as u16, 12)?;
            }
        }
        for (i, f) in self.metrics.fields.iter().enumerate() {
            let row = head_row + 1 + i as u32;
            summary.write_string(row, 0, &f.field)?;
            let colour = if f.accuracy >= 0.9 {
                &pass
            } else if f.accuracy >= 0.5 {
                &partial
            } else {
                &fail
            };
            summary.write_number_with_format(
                row,
                1,
                f.accuracy,
                &colour.clone().set_num_format("0.0%"),
            )?;
            summary.write_number(row, 2, f.passed as f64)?;
            summary.write_number(row, 3, f.compared as f64)?;
            summary.write_number_with_format(row, 4, f.precision, &percent)?;
            summary.write_number_with_format(row, 5, f.recall, &percent)?;
            summary.write_number_with_format(row, 6, f.f1, &percent)?;
            summary.write_number(row, 7, f.tp)?;
            summary.write_number(row, 8, f.fp)?;
            summary.write_number(row, 9, f.fn_)?;
            interval(summary, row, 10, f.accuracy_interval)?;
            interval(summary, row, 12, f.f1_interval)?;
        }
        let mut row = head_row + 2 + self.metrics.fields.len() as u32;
        summary.write_string_with_format(row, 0, "Verdict (whole run)", &header)?;
        summary.write_string_with_format(row, 1, "Jobs", &header)?;
        for (v, n) in &self.metrics.verdicts {
            row += 1;
            summary.write_string(row, 0, v)?;
            summary.write_number(row, 1, *n as f64)?;
        }
        book.save(&self.path)?;
        Ok(())
    }
}
