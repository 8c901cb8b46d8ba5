//! Учебные периоды: quarters, trimesters or half-years, chosen per school and grade, and the
//! lock that closes them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::PeriodId;

/// How a class's year is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodScheme {
    /// Четверти (4).
    Quarters,
    /// Триместры (3).
    Trimesters,
    /// Полугодия (2), usual for grades 10–11.
    HalfYears,
}

impl PeriodScheme {
    pub fn code(self) -> &'static str {
        match self {
            Self::Quarters => "quarters",
            Self::Trimesters => "trimesters",
            Self::HalfYears => "half_years",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Quarters, Self::Trimesters, Self::HalfYears].into_iter().find(|s| s.code() == code)
    }
    pub fn count(self) -> u8 {
        match self {
            Self::Quarters => 4,
            Self::Trimesters => 3,
            Self::HalfYears => 2,
        }
    }
    /// «1 четверть», «2 полугодие».
    pub fn period_name(self, number: u8) -> String {
        let noun = match self {
            Self::Quarters => "четверть",
            Self::Trimesters => "триместр",
            Self::HalfYears => "полугодие",
        };
        format!("{number} {noun}")
    }
    /// The common default: quarters for grades 1–9, half-years for 10–11.
    pub fn default_for_grade(grade: u8) -> Self {
        if grade >= 10 { Self::HalfYears } else { Self::Quarters }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PeriodError {
    #[error(
        "период «{name}» закрыт {closed_on}: изменения возможны только после его открытия администратором"
    )]
    Closed { name: String, closed_on: NaiveDate },
    #[error("дата {0} не входит ни в один учебный период")]
    OutsidePeriods(NaiveDate),
    #[error("период должен начинаться раньше, чем заканчивается ({starts_on} — {ends_on})")]
    Inverted { starts_on: NaiveDate, ends_on: NaiveDate },
    #[error("периоды «{a}» и «{b}» пересекаются")]
    Overlap { a: String, b: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub id: PeriodId,
    pub scheme: PeriodScheme,
    pub number: u8,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// Set when the period was closed (locked); `None` while open.
    pub closed_on: Option<NaiveDate>,
}

impl Period {
    pub fn name(&self) -> String {
        self.scheme.period_name(self.number)
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        self.starts_on <= date && date <= self.ends_on
    }

    /// Marks, attendance and period marks of a closed period are locked.
    pub fn ensure_open(&self) -> Result<(), PeriodError> {
        match self.closed_on {
            Some(closed_on) => Err(PeriodError::Closed { name: self.name(), closed_on }),
            None => Ok(()),
        }
    }

    /// The period of `date` among `periods` (of one scheme).
    pub fn for_date(periods: &[Period], date: NaiveDate) -> Result<&Period, PeriodError> {
        periods.iter().find(|p| p.contains(date)).ok_or(PeriodError::OutsidePeriods(date))
    }

    /// Checks a set of periods of one scheme before it is saved.
    pub fn validate_set(periods: &[Period]) -> Result<(), PeriodError> {
        for p in periods {
            if p.starts_on > p.ends_on {
                return Err(PeriodError::Inverted { starts_on: p.starts_on, ends_on: p.ends_on });
            }
        }
        for (i, a) in periods.iter().enumerate() {
            for b in &periods[i + 1..] {
                if a.scheme == b.scheme && a.starts_on <= b.ends_on && b.starts_on <= a.ends_on {
                    return Err(PeriodError::Overlap { a: a.name(), b: b.name() });
                }
            }
        }
        Ok(())
    }
}

/// Годовая отметка suggested from period marks: their mean, mathematically rounded.
pub fn suggest_annual(period_points: &[u8]) -> Option<u8> {
    if period_points.is_empty() {
        return None;
    }
    let sum: u32 = period_points.iter().map(|p| u32::from(*p)).sum();
    let mean = f64::from(sum) / period_points.len() as f64;
    Some((mean + 0.5).floor().clamp(1.0, 5.0) as u8)
}

/// Итоговая отметка for grades 9 and 11: the mean of the annual and exam marks, mathematically
/// rounded (Order № 115 as amended); without an exam the annual mark stands.
pub fn suggest_final(annual: u8, exam: Option<u8>) -> u8 {
    match exam {
        Some(e) => ((f64::from(annual) + f64::from(e)) / 2.0 + 0.5).floor() as u8,
        None => annual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    fn quarter(n: u8, from: NaiveDate, to: NaiveDate, closed: Option<NaiveDate>) -> Period {
        Period {
            id: PeriodId(i64::from(n)),
            scheme: PeriodScheme::Quarters,
            number: n,
            starts_on: from,
            ends_on: to,
            closed_on: closed,
        }
    }

    #[test]
    fn a_closed_period_is_locked_and_says_since_when() {
        let q1 = quarter(1, d(2026, 9, 1), d(2026, 10, 24), Some(d(2026, 10, 30)));
        assert_eq!(
            q1.ensure_open(),
            Err(PeriodError::Closed {
                name: "1 четверть".into(), closed_on: d(2026, 10, 30)
            })
        );
        let q2 = quarter(2, d(2026, 11, 5), d(2026, 12, 28), None);
        assert_eq!(q2.ensure_open(), Ok(()));
    }

    #[test]
    fn dates_map_to_their_period_and_holidays_to_none() {
        let ps = vec![
            quarter(1, d(2026, 9, 1), d(2026, 10, 24), None),
            quarter(2, d(2026, 11, 5), d(2026, 12, 28), None),
        ];
        assert_eq!(Period::for_date(&ps, d(2026, 11, 23)).map(|p| p.number), Ok(2));
        assert_eq!(
            Period::for_date(&ps, d(2026, 11, 1)),
            Err(PeriodError::OutsidePeriods(d(2026, 11, 1)))
        );
    }

    #[test]
    fn overlapping_or_inverted_periods_are_rejected() {
        let ok = vec![
            quarter(1, d(2026, 9, 1), d(2026, 10, 24), None),
            quarter(2, d(2026, 11, 5), d(2026, 12, 28), None),
        ];
        assert_eq!(Period::validate_set(&ok), Ok(()));
        let overlap = vec![
            quarter(1, d(2026, 9, 1), d(2026, 11, 10), None),
            quarter(2, d(2026, 11, 5), d(2026, 12, 28), None),
        ];
        assert!(matches!(Period::validate_set(&overlap), Err(PeriodError::Overlap { .. })));
        let inverted = vec![quarter(1, d(2026, 10, 1), d(2026, 9, 1), None)];
        assert!(matches!(Period::validate_set(&inverted), Err(PeriodError::Inverted { .. })));
    }

    #[test]
    fn annual_and_final_marks_round_mathematically() {
        assert_eq!(suggest_annual(&[4, 5, 4, 5]), Some(5)); // 4.5 → 5
        assert_eq!(suggest_annual(&[4, 4, 5, 4]), Some(4)); // 4.25 → 4
        assert_eq!(suggest_annual(&[]), None);
        assert_eq!(suggest_final(4, Some(5)), 5);
        assert_eq!(suggest_final(4, Some(3)), 4); // 3.5 → 4
        assert_eq!(suggest_final(3, None), 3);
    }

    #[test]
    fn senior_grades_default_to_half_years() {
        assert_eq!(PeriodScheme::default_for_grade(9), PeriodScheme::Quarters);
        assert_eq!(PeriodScheme::default_for_grade(10), PeriodScheme::HalfYears);
        assert_eq!(PeriodScheme::from_code("trimesters"), Some(PeriodScheme::Trimesters));
    }
}
