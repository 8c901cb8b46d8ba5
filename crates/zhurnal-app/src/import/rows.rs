//! Reading CSV rows into typed values with every problem recorded by file, row and column.

use std::collections::HashMap;
use std::io::Read;

use chrono::NaiveDate;
use serde::Serialize;

/// One problem in the input: where, and what to do about it, in Russian.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub file: String,
    /// Line number in the file (the header is line 1); 0 for the file as a whole.
    pub row: u64,
    pub column: String,
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.row, self.column.is_empty()) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (r, true) => write!(f, "{}, строка {r}: {}", self.file, self.message),
            (r, false) => {
                write!(f, "{}, строка {r}, столбец «{}»: {}", self.file, self.column, self.message)
            }
        }
    }
}

/// Every problem found; stops recording (but keeps counting) past a limit, so a file of a
/// million bad rows cannot exhaust memory.
#[derive(Debug, Default)]
pub struct Issues {
    pub list: Vec<Issue>,
    pub total: u64,
}

pub const MAX_ISSUES: usize = 10_000;

impl Issues {
    pub fn push(&mut self, file: &str, row: u64, column: &str, message: impl Into<String>) {
        self.total += 1;
        if self.list.len() < MAX_ISSUES {
            self.list.push(Issue {
                file: file.to_string(),
                row,
                column: column.to_string(),
                message: message.into(),
            });
        }
    }
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
    /// Adds another list's problems (the count stays exact past the listing limit).
    pub fn append(&mut self, other: Issues) {
        let listed = other.list.len() as u64;
        for i in other.list {
            self.push(&i.file, i.row, &i.column, i.message);
        }
        self.total += other.total - listed;
    }
}

/// Picks `;` when the header line has semicolons and no commas (spreadsheets in the Russian
/// locale save CSV that way), else `,`.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    if line.contains(&b';') && !line.contains(&b',') { b';' } else { b',' }
}

/// The sniffed head of a file followed by the rest of it.
type Head = std::io::Chain<std::io::Cursor<Vec<u8>>, Box<dyn Read + Send>>;

/// One table of the input as the source found it: the bytes of a CSV file, or a sheet of an
/// XLSX workbook (cells already read by the workbook parser).
pub enum Input {
    Csv(Box<dyn Read + Send>),
    Sheet(super::xlsx::Sheet),
}

enum Rows {
    Csv(csv::Reader<Head>),
    Sheet(super::xlsx::Sheet),
}

/// A table being read (a CSV file or a sheet): header positions and the current record.
pub struct Table {
    /// How issues name the table: `persons.csv`, or `book.xlsx, лист persons`.
    pub file: String,
    rows: Rows,
    cols: HashMap<String, usize>,
    record: csv::StringRecord,
    pub line: u64,
}

/// The columns of a header row, with the `required` ones checked.
fn columns<'a>(
    file: &str,
    line: u64,
    header: impl Iterator<Item = &'a str>,
    required: &[&str],
    issues: &mut Issues,
) -> Option<HashMap<String, usize>> {
    let cols: HashMap<String, usize> =
        header.enumerate().map(|(i, h)| (h.trim().to_string(), i)).collect();
    let missing: Vec<&str> = required.iter().copied().filter(|c| !cols.contains_key(*c)).collect();
    if !missing.is_empty() {
        issues.push(
            file,
            line,
            "",
            format!(
                "нет обязательных столбцов: {}; первая строка должна содержать названия столбцов (см. шаблон)",
                missing.join(", ")
            ),
        );
        return None;
    }
    Some(cols)
}

impl Table {
    /// Opens the table and checks that the `required` columns are present.
    pub fn open(file: &str, input: Input, required: &[&str], issues: &mut Issues) -> Option<Self> {
        let mut input = match input {
            Input::Csv(r) => r,
            Input::Sheet(mut sheet) => {
                let file = sheet.label.clone();
                let Some(header) = sheet.next_row() else {
                    issues.push(
                        &file,
                        0,
                        "",
                        "лист пуст: в первой строке должны быть названия столбцов (см. шаблон)",
                    );
                    return None;
                };
                let cols = columns(
                    &file,
                    header.line,
                    header.cells.iter().map(String::as_str),
                    required,
                    issues,
                )?;
                return Some(Self {
                    file,
                    rows: Rows::Sheet(sheet),
                    cols,
                    record: csv::StringRecord::new(),
                    line: header.line,
                });
            }
        };
        let mut head = vec![0u8; 4096];
        let mut got = 0;
        while got < head.len() {
            match input.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => {
                    issues.push(file, 0, "", format!("файл не читается: {e}"));
                    return None;
                }
            }
        }
        head.truncate(got);
        if head.starts_with(b"\xEF\xBB\xBF") {
            head.drain(..3);
        }
        let delimiter = sniff_delimiter(&head);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(std::io::Cursor::new(head).chain(input));
        let headers = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                issues.push(
                    file,
                    1,
                    "",
                    format!("заголовок не читается ({e}); нужна кодировка UTF-8"),
                );
                return None;
            }
        };
        let cols = columns(file, 1, headers.iter(), required, issues)?;
        Some(Self {
            file: file.to_string(),
            rows: Rows::Csv(reader),
            cols,
            record: csv::StringRecord::new(),
            line: 1,
        })
    }

    /// Advances to the next row; records unreadable rows and skips them.
    pub fn next(&mut self, issues: &mut Issues) -> bool {
        let reader = match &mut self.rows {
            Rows::Csv(reader) => reader,
            Rows::Sheet(sheet) => loop {
                let Some(row) = sheet.next_row() else { return false };
                if row.cells.iter().all(|c| c.trim().is_empty()) && row.errors.is_empty() {
                    continue;
                }
                self.line = row.line;
                for (i, problem) in &row.errors {
                    let column = self
                        .cols
                        .iter()
                        .find(|(_, c)| *c == i)
                        .map(|(name, _)| name.clone())
                        .unwrap_or_else(|| super::xlsx::column_letters(*i));
                    issues.push(&self.file, row.line, &column, problem.clone());
                }
                self.record = csv::StringRecord::from(row.cells);
                return true;
            },
        };
        loop {
            match reader.read_record(&mut self.record) {
                Ok(true) => {
                    self.line = self.record.position().map(|p| p.line()).unwrap_or(self.line + 1);
                    if self.record.iter().all(|f| f.trim().is_empty()) {
                        continue;
                    }
                    return true;
                }
                Ok(false) => return false,
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(self.line + 1);
                    self.line = line;
                    let problem = match e.kind() {
                        csv::ErrorKind::Utf8 { .. } => {
                            "строка не в кодировке UTF-8: сохраните файл как «CSV UTF-8»"
                                .to_string()
                        }
                        csv::ErrorKind::Io(_) => {
                            issues.push(&self.file, line, "", format!("файл не читается: {e}"));
                            return false;
                        }
                        _ => format!("строка не разбирается как CSV: {e}"),
                    };
                    issues.push(&self.file, line, "", problem);
                }
            }
        }
    }

    /// The cell of `column` in the current row, trimmed; `None` when empty or absent.
    pub fn get(&self, column: &str) -> Option<String> {
        let i = *self.cols.get(column)?;
        let v = self.record.get(i)?.trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    pub fn has_column(&self, column: &str) -> bool {
        self.cols.contains_key(column)
    }

    pub fn issue(&self, issues: &mut Issues, column: &str, message: impl Into<String>) {
        issues.push(&self.file, self.line, column, message);
    }

    /// A required text cell.
    pub fn req(&self, issues: &mut Issues, column: &str) -> Option<String> {
        let v = self.get(column);
        if v.is_none() {
            self.issue(issues, column, "обязательное поле не заполнено");
        }
        v
    }

    pub fn date_opt(&self, issues: &mut Issues, column: &str) -> Option<Option<NaiveDate>> {
        match self.get(column) {
            None => Some(None),
            Some(v) => match parse_date(&v) {
                Some(d) => Some(Some(d)),
                None => {
                    self.issue(
                        issues,
                        column,
                        format!("«{v}» — не дата; пишите ГГГГ-ММ-ДД (2026-09-01) или ДД.ММ.ГГГГ"),
                    );
                    None
                }
            },
        }
    }

    pub fn date(&self, issues: &mut Issues, column: &str) -> Option<NaiveDate> {
        match self.date_opt(issues, column)? {
            Some(d) => Some(d),
            None => {
                self.issue(issues, column, "обязательная дата не заполнена");
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub fn number(&self, issues: &mut Issues, column: &str, min: u8, max: u8) -> Option<u8> {
        let v = self.req(issues, column)?;
        match v.parse::<u8>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.issue(issues, column, format!("«{v}» — нужно целое число от {min} до {max}"));
                None
            }
        }
    }

    /// One of the listed codes.
    pub fn one_of(&self, issues: &mut Issues, column: &str, allowed: &[&str]) -> Option<String> {
        let v = self.req(issues, column)?;
        if allowed.contains(&v.as_str()) {
            Some(v)
        } else {
            self.issue(
                issues,
                column,
                format!("«{v}» — недопустимое значение; допустимы: {}", allowed.join(", ")),
            );
            None
        }
    }

    pub fn bool_opt(&self, issues: &mut Issues, column: &str) -> Option<bool> {
        match self.get(column).as_deref() {
            None | Some("false") | Some("0") | Some("нет") => Some(false),
            Some("true") | Some("1") | Some("да") => Some(true),
            Some(v) => {
                self.issue(issues, column, format!("«{v}» — пишите true или false"));
                None
            }
        }
    }
}

pub fn parse_date(v: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(v, "%d.%m.%Y"))
        .ok()
}
