//! Typed identifiers: a `ClassId` can never be passed where a `StudentId` is expected.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    )*};
}

id_type!(
    /// Регион (субъект РФ), the operator of the regional system.
    RegionId,
    /// Муниципальный орган управления образованием (МОУО).
    MunicipalityId,
    /// Образовательная организация (ОО).
    SchoolId,
    /// Учебный год.
    AcademicYearId,
    /// Учебный период: четверть, триместр или полугодие.
    PeriodId,
    /// Класс ("5А").
    ClassId,
    /// Группа (часть класса для предмета).
    GroupId,
    /// Any person: staff, student, parent (законный представитель).
    PersonId,
    /// Учебный предмет.
    SubjectId,
    /// Форма контроля (вид работы) with its weight.
    WorkTypeId,
    /// Педагогическая нагрузка: teacher × class/group × subject × year.
    AssignmentId,
    /// A slot of the timetable (расписание).
    TimetableSlotId,
    /// Урок: a held lesson with a date, topic and homework.
    LessonId,
    /// Отметка.
    MarkId,
    /// Зачисление: one enrolment of a student in a school.
    EnrolmentId,
    /// An attached file (homework).
    AttachmentId,
);
