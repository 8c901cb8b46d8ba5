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
}
