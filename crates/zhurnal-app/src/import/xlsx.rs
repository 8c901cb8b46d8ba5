//! The Zhurnal set as one XLSX workbook: a sheet per file of the set, named like the file
//! without `.csv` (`persons`, `classes`, …), header row first. Cells may be typed (numbers,
//! dates) or text; both read as the CSV text the rest of the importer checks, so a workbook
//! and a CSV set of the same data give the same batch and the same messages, only the place
//! reads «book.xlsx, лист persons, строка 5» instead of «persons.csv, строка 5».

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use calamine::{Data, Range, Reader, Xlsx};
use chrono::{NaiveTime, SecondsFormat};

use super::source::{MAX_ENTRIES, MAX_ENTRY_BYTES, SourceError};

/// One sheet being read, row by row (the workbook parser has already read its cells).
pub struct Sheet {
    /// How issues name the sheet: `book.xlsx, лист persons`.
    pub label: String,
    range: Range<Data>,
    /// The next row of the range to hand out.
    next: usize,
    /// The sheet's row number (1-based, as the spreadsheet shows it) of the range's first row.
    first_line: u64,
}

/// One row: its number on the sheet, the cells as text, and the cells that could not be
/// read (formula errors), by column index.
pub struct SheetRow {
    pub line: u64,
    pub cells: Vec<String>,
    pub errors: Vec<(usize, String)>,
}

impl Sheet {
    pub fn next_row(&mut self) -> Option<SheetRow> {
        let (height, width) = self.range.get_size();
        if self.next >= height {
            return None;
        }
        let r = self.next;
        let line = self.first_line + r as u64;
        self.next += 1;
        let mut cells = Vec::with_capacity(width);
        let mut errors = Vec::new();
        for i in 0..width {
            match self.range.get((r, i)).map_or(Ok(String::new()), cell_text) {
                Ok(t) => cells.push(t),
                Err(problem) => {
                    cells.push(String::new());
                    errors.push((i, problem));
                }
            }
        }
        Some(SheetRow { line, cells, errors })
    }
}

/// The spreadsheet's letters of a 0-based column index (0 → A, 26 → AA).
pub fn column_letters(mut i: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// A cell as the text a CSV file would hold: integers without `.0` (a СНИЛС or a grade
/// typed as a number), dates as `ГГГГ-ММ-ДД`, date-times as RFC 3339 (UTC).
fn cell_text(c: &Data) -> Result<String, String> {
    Ok(match c {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => float_text(*f),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => {
            if !dt.is_datetime() {
                return Ok(float_text(dt.as_f64()));
            }
            let Some(t) = dt.as_datetime() else {
                return Err(format!(
                    "число {} в ячейке с форматом даты — не дата; пишите ГГГГ-ММ-ДД",
                    dt.as_f64()
                ));
            };
            if t.time() == NaiveTime::MIN {
                t.date().format("%Y-%m-%d").to_string()
            } else {
                t.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true)
            }
        }
        Data::Error(e) => {
            return Err(format!(
                "в ячейке ошибка формулы ({e}): впишите значение или исправьте формулу"
            ));
        }
    })
}

fn float_text(f: f64) -> String {
    // 2^53: beyond it a float no longer holds every integer exactly.
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// The sheet for `file` (`persons.csv` → sheet `persons`, any case, `persons.csv` too);
/// `None` when the workbook has no such sheet.
pub fn open(path: &Path, display: &str, file: &str) -> Result<Option<Sheet>, SourceError> {
    Book::open(path)?.sheet(display, file)
}

/// An opened workbook, for reading several of its sheets. Opening parses the whole shared
/// string table (every distinct text of the workbook): a set read sheet by sheet opens the
/// workbook once, not once per sheet.
pub struct Book {
    path: std::path::PathBuf,
    wb: Xlsx<BufReader<File>>,
}

impl Book {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        check_limits(path)?;
        let f = File::open(path).map_err(|e| SourceError::Io {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
        let opened =
            guarded(path, move || Xlsx::new(BufReader::new(f)).map_err(|e| e.to_string()))?;
        Ok(Self { path: path.to_path_buf(), wb: opened })
    }

    /// The sheet for `file`, as [`open`] finds it.
    pub fn sheet(&mut self, display: &str, file: &str) -> Result<Option<Sheet>, SourceError> {
        let stem = file.strip_suffix(".csv").unwrap_or(file);
        let Some(name) = self.wb.sheet_names().into_iter().find(|n| {
            let n = n.trim();
            n.eq_ignore_ascii_case(stem) || n.eq_ignore_ascii_case(file)
        }) else {
            return Ok(None);
        };
        let wb = &mut self.wb;
        let range = guarded(&self.path, || wb.worksheet_range(&name).map_err(|e| e.to_string()))?;
        let first_line = range.start().map_or(1, |(row, _)| u64::from(row) + 1);
        Ok(Some(Sheet {
            label: format!("{display}, лист {}", name.trim()),
            range,
            next: 0,
            first_line,
        }))
    }
}

/// Runs the workbook parser, which is third-party code fed with untrusted bytes: a panic in
/// it must become a refusal of the file, not the end of the request (or of the CLI run).
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, String>) -> Result<T, SourceError> {
    let not_xlsx =
        |problem: String| SourceError::NotXlsx { path: path.display().to_string(), problem };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(not_xlsx),
        Err(_) => Err(not_xlsx("файл повреждён (разбор книги прерван)".into())),
    }
}

/// The same limits as for a ZIP of CSV files (an XLSX is a ZIP): entries and unpacked sizes.
fn check_limits(path: &Path) -> Result<(), SourceError> {
    let f = File::open(path).map_err(|e| SourceError::Io {
        path: path.display().to_string(),
        problem: e.to_string(),
    })?;
    let mut zip = zip::ZipArchive::new(BufReader::new(f)).map_err(|e| SourceError::NotXlsx {
        path: path.display().to_string(),
        problem: e.to_string(),
    })?;
    let too_big =
        |problem: String| SourceError::TooBig { path: path.display().to_string(), problem };
    if zip.len() > MAX_ENTRIES {
        return Err(too_big(format!("{} файлов", zip.len())));
    }
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| SourceError::NotXlsx {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
        if entry.size() > MAX_ENTRY_BYTES {
            return Err(too_big(format!(
                "{}: {} байт",
                entry.name().unwrap_or_default(),
                entry.size()
            )));
        }
    }
    Ok(())
}

/// Whether `path` names a workbook (by its extension).
pub fn is_xlsx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
}

/// A workbook of the Zhurnal set from CSV files of it (a directory as `zhurnal export`
/// writes it): a sheet per file. With `typed`, dates become date cells and plain integers
/// number cells, as a spreadsheet user's own workbook would have them.
pub fn workbook_from_csv_dir(dir: &Path, typed: bool) -> std::io::Result<Vec<u8>> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (file, _) in super::zcsv::FILES {
        let p = dir.join(file);
        if !p.is_file() {
            continue;
        }
        let sheet = book.add_worksheet();
        sheet.set_name(file.trim_end_matches(".csv")).map_err(std::io::Error::other)?;
        let mut text = String::new();
        File::open(&p)?.read_to_string(&mut text)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        for (r, record) in reader.records().enumerate() {
            let record = record.map_err(std::io::Error::other)?;
            let r = u32::try_from(r).map_err(std::io::Error::other)?;
            for (c, v) in record.iter().enumerate() {
                let c = u16::try_from(c).map_err(std::io::Error::other)?;
                if v.is_empty() {
                    continue;
                }
                let as_date =
                    super::rows::parse_date(v).filter(|_| typed && r > 0 && v.len() == 10);
                let as_int = v.parse::<i64>().ok().filter(|n| {
                    typed && r > 0 && n.to_string() == v && n.abs() < 1_000_000_000_000
                });
                if let Some(d) = as_date {
                    use chrono::Datelike;
                    let when = ExcelDateTime::from_ymd(
                        u16::try_from(d.year()).map_err(std::io::Error::other)?,
                        d.month() as u8,
                        d.day() as u8,
                    )
                    .map_err(std::io::Error::other)?;
                    sheet
                        .write_datetime_with_format(r, c, &when, &date)
                        .map_err(std::io::Error::other)?;
                } else if let Some(n) = as_int {
                    sheet.write_number(r, c, n as f64).map_err(std::io::Error::other)?;
                } else {
                    sheet.write_string(r, c, v).map_err(std::io::Error::other)?;
                }
            }
        }
    }
    book.save_to_buffer().map_err(std::io::Error::other)
}

/// The template workbook: a sheet per file of the set with its header row.
pub fn template_workbook() -> std::io::Result<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    for (file, columns) in super::zcsv::FILES {
        let sheet = book.add_worksheet();
        sheet.set_name(file.trim_end_matches(".csv")).map_err(std::io::Error::other)?;
        for (c, name) in columns.iter().enumerate() {
            let c = u16::try_from(c).map_err(std::io::Error::other)?;
            sheet.write_string_with_format(0, c, *name, &bold).map_err(std::io::Error::other)?;
            sheet.set_column_width(c, 16).map_err(std::io::Error::other)?;
        }
    }
    book.save_to_buffer().map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_are_the_spreadsheets() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn numbers_read_as_csv_text() {
        assert_eq!(float_text(11_223_344_595.0), "11223344595");
        assert_eq!(float_text(9.0), "9");
        assert_eq!(float_text(1.5), "1.5");
        assert_eq!(cell_text(&Data::Bool(true)).as_deref(), Ok("true"));
        assert!(cell_text(&Data::Error(calamine::CellErrorType::Div0)).is_err());
    }
}
