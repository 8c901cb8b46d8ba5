//! Rules of editing the class journal (классный журнал) that do not depend on storage: which
//! lesson dates accept marks and attendance, and what a correction must carry.

use chrono::NaiveDate;
use thiserror::Error;

use crate::{Period, PeriodError};

/// Why a journal entry cannot be written.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum JournalError {
    #[error(transparent)]
    Period(#[from] PeriodError),
    #[error(
        "урок {0} ещё не прошёл: отметки и посещаемость ставятся в день урока или позже (тему и домашнее задание можно указать заранее)"
    )]
    FutureLesson(NaiveDate),
    #[error(
        "замещающий учитель вносит записи только за день замены ({0}); остальные уроки ведёт учитель нагрузки"
    )]
    SubstituteOutsideDay(NaiveDate),
    #[error(
        "укажите причину исправления (например, «ошибка ввода» или «пересдача»): без неё отметку нельзя изменить или удалить"
    )]
    ReasonRequired,
    #[error("причина исправления слишком длинная: не более {max} символов, сейчас {len}")]
    ReasonTooLong { len: usize, max: usize },
}

/// What is being written: marks and attendance are facts about a held lesson; a topic or
/// homework may be planned ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    MarkOrAttendance,
    TopicOrHomework,
}

/// The longest correction reason kept in `mark_history`.
pub const MAX_REASON_CHARS: usize = 500;

/// Decides whether an entry for a lesson on `date` may be written today by this teacher.
/// `periods` are the periods of the class's scheme; a date outside every period is refused,
/// a date inside a closed period is refused with the period's name and closing date.
/// `substitute_today` is set when the writer holds the assignment only as a substitute (their
/// access comes from today's замена), which confines them to today's lessons.
pub fn ensure_editable(
    periods: &[Period],
    date: NaiveDate,
    today: NaiveDate,
    kind: EntryKind,
    substitute_today: bool,
) -> Result<(), JournalError> {
    let period = Period::for_date(periods, date)?;
    period.ensure_open()?;
    if kind == EntryKind::MarkOrAttendance && date > today {
        return Err(JournalError::FutureLesson(date));
    }
    if substitute_today && date != today {
        return Err(JournalError::SubstituteOutsideDay(today));
    }
    Ok(())
}

/// A correction (изменение или удаление отметки) must say why; returns the trimmed reason.
pub fn correction_reason(input: Option<&str>) -> Result<String, JournalError> {
    let reason = input.map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(JournalError::ReasonRequired);
    }
    let len = reason.chars().count();
    if len > MAX_REASON_CHARS {
        return Err(JournalError::ReasonTooLong { len, max: MAX_REASON_CHARS });
    }
    Ok(reason.to_string())
}

/// The largest homework file accepted (10 МБ): enough for a scanned worksheet, small enough
/// to keep the database and the pupils' mobile data in check.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

/// Why a homework file is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FileError {
    #[error("файл пустой: выберите файл с содержимым")]
    Empty,
    #[error("файл «{name}» слишком большой: {size} байт, допускается не более {max} байт (10 МБ)")]
    TooLarge { name: String, size: usize, max: usize },
    #[error(
        "тип файла «{name}» не допускается: прикрепляйте PDF, изображения (PNG, JPEG), текст (TXT) или документы Office/OpenDocument (DOCX, XLSX, PPTX, ODT, ODS, ODP)"
    )]
    Forbidden { name: String },
    #[error(
        "содержимое файла «{name}» не соответствует расширению: файл повреждён или переименован"
    )]
    Mismatch { name: String },
    #[error("имя файла должно быть от 1 до 200 символов без служебных знаков")]
    BadName,
}

/// An accepted homework file: the cleaned name and the content type Zhurnal serves it with
/// (decided here from the extension and the content, never taken from the uploader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HomeworkFile {
    pub name: String,
    pub content_type: &'static str,
}

/// Allowed extensions, their content type and the signature the content must start with.
const ALLOWED: &[(&str, &str, &[u8])] = &[
    ("pdf", "application/pdf", b"%PDF-"),
    ("png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ("jpg", "image/jpeg", b"\xff\xd8\xff"),
    ("jpeg", "image/jpeg", b"\xff\xd8\xff"),
    ("txt", "text/plain; charset=utf-8", b""),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"PK\x03\x04",
    ),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK\x03\x04"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        b"PK\x03\x04",
    ),
    ("odt", "application/vnd.oasis.opendocument.text", b"PK\x03\x04"),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet", b"PK\x03\x04"),
    ("odp", "application/vnd.oasis.opendocument.presentation", b"PK\x03\x04"),
];

/// Checks a homework file's name, size and type. Types that a browser could execute or
/// render as a page (HTML, SVG, scripts) are refused whatever their name says.
pub fn check_homework_file(name: &str, content: &[u8]) -> Result<HomeworkFile, FileError> {
    let name = name.trim();
    let clean = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if clean.is_empty() || clean.chars().count() > 200 || clean.chars().any(char::is_control) {
        return Err(FileError::BadName);
    }
    if content.is_empty() {
        return Err(FileError::Empty);
    }
    if content.len() > MAX_ATTACHMENT_BYTES {
        return Err(FileError::TooLarge {
            name: clean.to_string(),
            size: content.len(),
            max: MAX_ATTACHMENT_BYTES,
        });
    }
    let ext = clean.rsplit_once('.').map(|(_, e)| e.to_lowercase()).unwrap_or_default();
    let Some((_, content_type, magic)) = ALLOWED.iter().find(|(e, _, _)| *e == ext) else {
        return Err(FileError::Forbidden { name: clean.to_string() });
    };
    let matches = if ext == "txt" {
        std::str::from_utf8(content).is_ok()
    } else {
        content.starts_with(magic)
    };
    if !matches {
        return Err(FileError::Mismatch { name: clean.to_string() });
    }
    Ok(HomeworkFile { name: clean.to_string(), content_type })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PeriodId, PeriodScheme};

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).expect("date")
    }

    fn periods() -> Vec<Period> {
        vec![
            Period {
                id: PeriodId(1),
                scheme: PeriodScheme::Quarters,
                number: 1,
                starts_on: d(9, 1),
                ends_on: d(10, 24),
                closed_on: Some(d(10, 26)),
            },
            Period {
                id: PeriodId(2),
                scheme: PeriodScheme::Quarters,
                number: 2,
                starts_on: d(11, 5),
                ends_on: d(12, 27),
                closed_on: None,
            },
        ]
    }

    const MARK: EntryKind = EntryKind::MarkOrAttendance;
    const TOPIC: EntryKind = EntryKind::TopicOrHomework;

    #[test]
    fn a_closed_period_refuses_every_entry_with_its_name() {
        let err = ensure_editable(&periods(), d(10, 1), d(11, 23), MARK, false).expect_err("x");
        assert!(err.to_string().contains("1 четверть"), "{err}");
        assert!(ensure_editable(&periods(), d(10, 1), d(11, 23), TOPIC, false).is_err());
    }

    #[test]
    fn an_open_period_accepts_past_and_today_but_marks_not_the_future() {
        assert_eq!(ensure_editable(&periods(), d(11, 16), d(11, 23), MARK, false), Ok(()));
        assert_eq!(ensure_editable(&periods(), d(11, 23), d(11, 23), MARK, false), Ok(()));
        assert_eq!(
            ensure_editable(&periods(), d(11, 30), d(11, 23), MARK, false),
            Err(JournalError::FutureLesson(d(11, 30)))
        );
        assert_eq!(ensure_editable(&periods(), d(11, 30), d(11, 23), TOPIC, false), Ok(()));
    }

    #[test]
    fn dates_between_periods_are_refused() {
        assert!(matches!(
            ensure_editable(&periods(), d(11, 2), d(11, 23), TOPIC, false),
            Err(JournalError::Period(PeriodError::OutsidePeriods(_)))
        ));
    }

    #[test]
    fn a_substitute_writes_only_on_the_day_of_the_substitution() {
        assert_eq!(ensure_editable(&periods(), d(11, 23), d(11, 23), MARK, true), Ok(()));
        assert_eq!(
            ensure_editable(&periods(), d(11, 16), d(11, 23), MARK, true),
            Err(JournalError::SubstituteOutsideDay(d(11, 23)))
        );
    }

    #[test]
    fn a_correction_needs_a_reason() {
        assert_eq!(correction_reason(None), Err(JournalError::ReasonRequired));
        assert_eq!(correction_reason(Some("   ")), Err(JournalError::ReasonRequired));
        assert_eq!(correction_reason(Some(" пересдача ")), Ok("пересдача".to_string()));
        let long = "а".repeat(MAX_REASON_CHARS + 1);
        assert!(matches!(correction_reason(Some(&long)), Err(JournalError::ReasonTooLong { .. })));
    }

    #[test]
    fn homework_files_are_checked_by_extension_and_content() {
        let pdf = check_homework_file("C:\\Users\\t\\Задание 1.PDF", b"%PDF-1.7 ...").expect("pdf");
        assert_eq!(
            pdf,
            HomeworkFile { name: "Задание 1.PDF".into(), content_type: "application/pdf" }
        );
        assert_eq!(
            check_homework_file("notes.txt", "домашнее задание".as_bytes()).map(|f| f.content_type),
            Ok("text/plain; charset=utf-8")
        );
        assert!(matches!(
            check_homework_file("page.html", b"<script>alert(1)</script>"),
            Err(FileError::Forbidden { .. })
        ));
        assert!(matches!(check_homework_file("run.exe", b"MZ"), Err(FileError::Forbidden { .. })));
        assert!(matches!(
            check_homework_file("fake.pdf", b"<html>"),
            Err(FileError::Mismatch { .. })
        ));
        assert_eq!(check_homework_file("empty.pdf", b""), Err(FileError::Empty));
        assert_eq!(check_homework_file("  ", b"x"), Err(FileError::BadName));
        let big = vec![b'a'; MAX_ATTACHMENT_BYTES + 1];
        assert!(matches!(check_homework_file("big.txt", &big), Err(FileError::TooLarge { .. })));
        assert!(check_homework_file("ok.txt", &big[1..]).is_ok());
    }
}
