//! Посещаемость: the four marks a teacher puts on a lesson.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttendanceKind {
    /// Н — отсутствовал (without a stated reason).
    Absent,
    /// Б — болел.
    Ill,
    /// УП — уважительная причина.
    ValidReason,
    /// ОП — опоздал.
    Late,
}

impl AttendanceKind {
    pub const ALL: [AttendanceKind; 4] = [Self::Absent, Self::Ill, Self::ValidReason, Self::Late];

    /// The code stored in the database and used by the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::Ill => "ill",
            Self::ValidReason => "valid_reason",
            Self::Late => "late",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The abbreviation printed in the journal grid.
    pub fn abbreviation(self) -> &'static str {
        match self {
            Self::Absent => "Н",
            Self::Ill => "Б",
            Self::ValidReason => "УП",
            Self::Late => "ОП",
        }
    }

    /// Parses what a teacher types into a cell: Cyrillic or Latin lookalikes, any case.
    pub fn from_abbreviation(input: &str) -> Option<Self> {
        let upper = input.trim().to_uppercase().replace('H', "Н").replace('B', "Б");
        match upper.as_str() {
            "Н" => Some(Self::Absent),
            "Б" => Some(Self::Ill),
            "УП" => Some(Self::ValidReason),
            "ОП" => Some(Self::Late),
            _ => None,
        }
    }

    /// A missed lesson: being late is not a miss.
    pub fn is_missed(self) -> bool {
        !matches!(self, Self::Late)
    }

    /// Missed for a reason the school accepts (illness, valid reason).
    pub fn is_excused(self) -> bool {
        matches!(self, Self::Ill | Self::ValidReason)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Absent => "отсутствовал",
            Self::Ill => "болел",
            Self::ValidReason => "уважительная причина",
            Self::Late => "опоздал",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviations_round_trip_and_accept_latin_lookalikes() {
        for k in AttendanceKind::ALL {
            assert_eq!(AttendanceKind::from_abbreviation(k.abbreviation()), Some(k));
            assert_eq!(AttendanceKind::from_code(k.code()), Some(k));
        }
        assert_eq!(AttendanceKind::from_abbreviation("h"), Some(AttendanceKind::Absent));
        assert_eq!(AttendanceKind::from_abbreviation("оп"), Some(AttendanceKind::Late));
        assert_eq!(AttendanceKind::from_abbreviation("X"), None);
    }

    #[test]
    fn being_late_is_not_a_missed_lesson() {
        assert!(!AttendanceKind::Late.is_missed());
        assert!(AttendanceKind::Ill.is_missed() && AttendanceKind::Ill.is_excused());
        assert!(AttendanceKind::Absent.is_missed() && !AttendanceKind::Absent.is_excused());
    }
}
