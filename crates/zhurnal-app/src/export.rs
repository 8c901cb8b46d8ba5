//! Report documents: the same tables on screen, as XLSX (rust_xlsxwriter) and as PDF (krilla,
//! with the vendored DejaVu Sans so Cyrillic prints everywhere; licence in `fonts/`).

use std::sync::Arc;

use krilla::Document;
use krilla::geom::{PathBuilder, Point};
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::text::{Font, TextDirection};
use rust_xlsxwriter::{Format, Workbook};
use serde::Serialize;

/// DejaVu Sans (Bitstream Vera licence, see `fonts/DejaVu-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// One table of a report: a title, column headers and rows of text.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Relative column widths (defaults to equal).
    pub widths: Vec<f32>,
}

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Self {
        Self {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            widths: Vec::new(),
        }
    }
    pub fn widths(mut self, widths: &[f32]) -> Self {
        self.widths = widths.to_vec();
        self
    }
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }
}

/// A whole report: a heading, a line of context and its tables.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReportDoc {
    pub title: String,
    pub subtitle: String,
    pub tables: Vec<Table>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("не удалось сформировать XLSX: {0}")]
    Xlsx(String),
    #[error("не удалось сформировать PDF: {0}")]
    Pdf(String),
}

/// Excel sheet names: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(title: &str, n: usize) -> String {
    let clean: String =
        title.chars().filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\')).collect();
    let short: String = clean.chars().take(27).collect();
    format!("{n} {short}")
}

/// One sheet per table; numbers stay numbers so the file can be summed in a spreadsheet.
pub fn to_xlsx(doc: &ReportDoc) -> Result<Vec<u8>, ExportError> {
    let err = |e: rust_xlsxwriter::XlsxError| ExportError::Xlsx(e.to_string());
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let tables: Vec<Table> = if doc.tables.is_empty() {
        vec![Table::new("Нет данных", &["Нет данных за выбранный период"])]
    } else {
        doc.tables.clone()
    };
    for (i, t) in tables.iter().enumerate() {
        let ws = wb.add_worksheet();
        ws.set_name(sheet_name(&t.title, i + 1)).map_err(err)?;
        ws.write_string_with_format(0, 0, &doc.title, &bold).map_err(err)?;
        ws.write_string(1, 0, &doc.subtitle).map_err(err)?;
        ws.write_string_with_format(2, 0, &t.title, &bold).map_err(err)?;
        for (c, h) in t.headers.iter().enumerate() {
            let col = u16::try_from(c).unwrap_or(u16::MAX);
            ws.write_string_with_format(4, col, h, &bold).map_err(err)?;
            ws.set_column_width(col, (h.chars().count() as f64 + 4.0).clamp(8.0, 40.0))
                .map_err(err)?;
        }
        for (r, row) in t.rows.iter().enumerate() {
            let line = u32::try_from(r + 5).unwrap_or(u32::MAX);
            for (c, v) in row.iter().enumerate() {
                let col = u16::try_from(c).unwrap_or(u16::MAX);
                match v.replace(',', ".").trim_end_matches('%').parse::<f64>() {
                    Ok(n) if !v.is_empty() && !v.contains(' ') => {
                        ws.write_number(line, col, n).map_err(err)?
                    }
                    _ => ws.write_string(line, col, v).map_err(err)?,
                };
            }
        }
    }
    wb.save_to_buffer().map_err(err)
}

const PAGE_W: f32 = 842.0; // A4 landscape, points
const PAGE_H: f32 = 595.0;
const MARGIN: f32 = 36.0;
const SIZE: f32 = 8.5;
const LINE: f32 = 13.0;

/// Cuts text to what fits in `width` points (DejaVu Sans averages ~0.56 em per glyph).
fn fit(text: &str, width: f32, size: f32) -> String {
    let max = ((width - 4.0) / (size * 0.56)).floor().max(1.0) as usize;
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

struct Pen {
    lines: Vec<Vec<(f32, f32, String, f32)>>,
    rules: Vec<Vec<f32>>,
    y: f32,
}

impl Pen {
    fn new() -> Self {
        Self { lines: vec![Vec::new()], rules: vec![Vec::new()], y: MARGIN }
    }
    fn ensure(&mut self, height: f32) -> bool {
        if self.y + height > PAGE_H - MARGIN {
            self.lines.push(Vec::new());
            self.rules.push(Vec::new());
            self.y = MARGIN;
            return true;
        }
        false
    }
    fn text(&mut self, x: f32, text: String, size: f32) {
        let y = self.y;
        if let Some(page) = self.lines.last_mut() {
            page.push((x, y, text, size));
        }
    }
    fn rule(&mut self) {
        let y = self.y;
        if let Some(page) = self.rules.last_mut() {
            page.push(y);
        }
    }
}

/// Lays the tables out on A4 landscape pages, repeating a table's header on each new page.
pub fn to_pdf(doc: &ReportDoc) -> Result<Vec<u8>, ExportError> {
    let font = Font::new(Arc::new(FONT.to_vec()).into(), 0)
        .ok_or_else(|| ExportError::Pdf("шрифт DejaVu Sans не читается".into()))?;
    let mut pen = Pen::new();
    let usable = PAGE_W - 2.0 * MARGIN;
    pen.y += 14.0;
    pen.text(MARGIN, fit(&doc.title, usable, 14.0), 14.0);
    pen.y += LINE + 2.0;
    pen.text(MARGIN, fit(&doc.subtitle, usable, 9.0), 9.0);
    pen.y += LINE;
    if doc.tables.is_empty() {
        pen.y += LINE;
        pen.text(MARGIN, "Нет данных за выбранный период.".into(), SIZE);
    }
    for t in &doc.tables {
        let cols = t.headers.len().max(1);
        let weights: Vec<f32> =
            if t.widths.len() == cols { t.widths.clone() } else { vec![1.0; cols] };
        let total: f32 = weights.iter().sum::<f32>().max(f32::EPSILON);
        let widths: Vec<f32> = weights.iter().map(|w| w / total * usable).collect();
        let header = |pen: &mut Pen| {
            pen.y += LINE;
            let mut x = MARGIN;
            for (h, w) in t.headers.iter().zip(&widths) {
                pen.text(x, fit(h, *w, SIZE), SIZE);
                x += w;
            }
            pen.y += 4.0;
            pen.rule();
        };
        pen.ensure(4.0 * LINE);
        pen.y += LINE + 6.0;
        pen.text(MARGIN, fit(&t.title, usable, 11.0), 11.0);
        header(&mut pen);
        if t.rows.is_empty() {
            pen.y += LINE;
            pen.text(MARGIN, "нет строк".into(), SIZE);
        }
        for row in &t.rows {
            if pen.ensure(LINE) {
                header(&mut pen);
            }
            pen.y += LINE;
            let mut x = MARGIN;
            for (v, w) in row.iter().zip(&widths) {
                pen.text(x, fit(v, *w, SIZE), SIZE);
                x += w;
            }
        }
        pen.y += 4.0;
    }

    let mut document = Document::new();
    let pages = pen.lines.len();
    for (n, (lines, rules)) in pen.lines.into_iter().zip(pen.rules).enumerate() {
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H)
            .ok_or_else(|| ExportError::Pdf("размер страницы".into()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for (x, y, text, size) in lines {
            surface.draw_text(
                Point::from_xy(x, y),
                font.clone(),
                size,
                &text,
                false,
                TextDirection::Auto,
            );
        }
        let footer = format!("Zhurnal · стр. {} из {pages}", n + 1);
        surface.draw_text(
            Point::from_xy(MARGIN, PAGE_H - MARGIN / 2.0),
            font.clone(),
            7.0,
            &footer,
            false,
            TextDirection::Auto,
        );
        surface.set_fill(None);
        surface.set_stroke(Some(Stroke { width: 0.5, ..Stroke::default() }));
        for y in rules {
            let mut pb = PathBuilder::new();
            pb.move_to(MARGIN, y);
            pb.line_to(PAGE_W - MARGIN, y);
            if let Some(path) = pb.finish() {
                surface.draw_path(&path);
            }
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| ExportError::Pdf(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> ReportDoc {
        let mut t =
            Table::new("Успеваемость по классам", &["Класс", "Учеников", "Успеваемость, %"]);
        for i in 0..120 {
            t.push(vec![format!("{}А", i % 11 + 1), "25".into(), "96.0".into()]);
        }
        ReportDoc {
            title: "Отчёт".into(), subtitle: "Школа № 1".into(), tables: vec![t]
        }
    }

    #[test]
    fn a_pdf_has_pages_and_embeds_the_font() {
        let pdf = to_pdf(&doc()).expect("pdf");
        assert!(pdf.starts_with(b"%PDF"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.matches("/Type/Page/").count() >= 3, "several pages");
        assert!(text.contains("DejaVu"), "the Cyrillic font is embedded");
    }

    #[test]
    fn an_xlsx_is_a_zip() {
        let x = to_xlsx(&doc()).expect("xlsx");
        assert_eq!(&x[..4], b"PK\x03\x04");
    }

    #[test]
    fn long_text_is_cut_to_its_column() {
        assert_eq!(fit("коротко", 200.0, 8.0), "коротко");
        assert!(fit(&"д".repeat(100), 40.0, 8.0).ends_with('…'));
    }
}
