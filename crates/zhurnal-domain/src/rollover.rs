//! Переход на новый учебный год: the plan that promotes classes (grade + 1, same letter),
//! graduates the 11th grade, lets the 9th-graders who leave go, and shifts the calendar by one
//! year. Pure: the caller loads classes and students, shows the plan, and applies it in one
//! transaction.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::{ClassId, PeriodScheme, PersonId};

/// A class of the year being closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RolloverClass {
    pub id: ClassId,
    pub grade: u8,
    pub letter: String,
    pub class_teacher: Option<PersonId>,
    pub scheme: PeriodScheme,
}

/// A student currently enrolled in one of those classes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RolloverStudent {
    pub enrolment_id: i64,
    pub student: PersonId,
    pub class: ClassId,
}

/// A period of the year being closed (its dates are shifted by one year).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RolloverPeriod {
    pub scheme: PeriodScheme,
    pub number: u8,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

/// Everything the rollover takes as input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RolloverInput {
    pub year_name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub periods: Vec<RolloverPeriod>,
    pub classes: Vec<RolloverClass>,
    pub students: Vec<RolloverStudent>,
    /// 9th-graders whose families told the school they leave after grade 9.
    pub leaving_after_nine: BTreeSet<PersonId>,
}

/// What happens to one class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ClassFate {
    /// Becomes `new_grade` + the same letter in the new year, with the same class teacher.
    Promoted { new_grade: u8 },
    /// Grade 11: everyone graduates, the class is not carried over.
    Graduates,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClassPlan {
    pub class: RolloverClass,
    pub fate: ClassFate,
    /// Students who move with the class.
    pub moving: Vec<RolloverStudent>,
    /// Students who leave on the last day of the year (graduates or 9th-graders leaving).
    pub leaving: Vec<RolloverStudent>,
}

impl ClassPlan {
    /// «9А → 10А» or «11Б: выпуск».
    pub fn title(&self) -> String {
        let from = format!("{}{}", self.class.grade, self.class.letter);
        match self.fate {
            ClassFate::Promoted { new_grade } => {
                format!("{from} → {new_grade}{}", self.class.letter)
            }
            ClassFate::Graduates => format!("{from}: выпуск"),
        }
    }
}

/// The whole plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RolloverPlan {
    pub new_year_name: String,
    pub new_starts_on: NaiveDate,
    pub new_ends_on: NaiveDate,
    pub new_periods: Vec<RolloverPeriod>,
    /// The date written as the departure date of graduates and leavers: the old year's last day.
    pub leave_on: NaiveDate,
    pub classes: Vec<ClassPlan>,
}

impl RolloverPlan {
    pub fn graduates(&self) -> usize {
        self.classes
            .iter()
            .filter(|c| c.fate == ClassFate::Graduates)
            .map(|c| c.leaving.len())
            .sum()
    }
    pub fn leavers_after_nine(&self) -> usize {
        self.classes.iter().filter(|c| c.class.grade == 9).map(|c| c.leaving.len()).sum()
    }
    pub fn promoted_students(&self) -> usize {
        self.classes.iter().map(|c| c.moving.len()).sum()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RolloverError {
    #[error("в учебном году нет классов: переводить некого")]
    NoClasses,
    #[error(
        "класс {0} нельзя перевести: в новом году уже будет класс с таким номером и буквой (объедините или переименуйте классы до перехода)"
    )]
    Collision(String),
    #[error("дата окончания учебного года {0} раньше его начала")]
    BadYear(NaiveDate),
}

/// The same day a year later; 29 February becomes 28 February.
pub fn next_year_date(d: NaiveDate) -> NaiveDate {
    d.with_year(d.year() + 1)
        .or_else(|| NaiveDate::from_ymd_opt(d.year() + 1, d.month(), 28))
        .unwrap_or(d)
}

/// «2026/2027» → «2027/2028»; anything else gets the new calendar years.
fn next_year_name(name: &str, starts_on: NaiveDate) -> String {
    let next = next_year_date(starts_on).year();
    let _ = name;
    format!("{next}/{}", next + 1)
}

/// Plans the rollover. Classes keep their letter and class teacher; a grade-11 class graduates
/// as a whole; in grade 9 only the students listed in `leaving_after_nine` leave.
pub fn plan_rollover(input: &RolloverInput) -> Result<RolloverPlan, RolloverError> {
    if input.ends_on < input.starts_on {
        return Err(RolloverError::BadYear(input.ends_on));
    }
    if input.classes.is_empty() {
        return Err(RolloverError::NoClasses);
    }
    let mut classes: Vec<RolloverClass> = input.classes.clone();
    classes.sort_by(|a, b| (a.grade, &a.letter).cmp(&(b.grade, &b.letter)));
    let mut taken = BTreeSet::new();
    let mut plans = Vec::new();
    for class in classes {
        let students: Vec<RolloverStudent> =
            input.students.iter().filter(|s| s.class == class.id).cloned().collect();
        let plan = if class.grade >= 11 {
            ClassPlan { class, fate: ClassFate::Graduates, moving: Vec::new(), leaving: students }
        } else {
            let new_grade = class.grade + 1;
            if !taken.insert((new_grade, class.letter.clone())) {
                return Err(RolloverError::Collision(format!("{}{}", class.grade, class.letter)));
            }
            let (leaving, moving) = if class.grade == 9 {
                students.into_iter().partition(|s| input.leaving_after_nine.contains(&s.student))
            } else {
                (Vec::new(), students)
            };
            ClassPlan { class, fate: ClassFate::Promoted { new_grade }, moving, leaving }
        };
        plans.push(plan);
    }
    Ok(RolloverPlan {
        new_year_name: next_year_name(&input.year_name, input.starts_on),
        new_starts_on: next_year_date(input.starts_on),
        new_ends_on: next_year_date(input.ends_on),
        new_periods: input
            .periods
            .iter()
            .map(|p| RolloverPeriod {
                starts_on: next_year_date(p.starts_on),
                ends_on: next_year_date(p.ends_on),
                ..*p
            })
            .collect(),
        leave_on: input.ends_on,
        classes: plans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid")
    }

    fn class(id: i64, grade: u8, letter: &str) -> RolloverClass {
        RolloverClass {
            id: ClassId(id),
            grade,
            letter: letter.into(),
            class_teacher: Some(PersonId(100 + id)),
            scheme: PeriodScheme::default_for_grade(grade),
        }
    }

    fn student(n: i64, class: i64) -> RolloverStudent {
        RolloverStudent { enrolment_id: n, student: PersonId(n), class: ClassId(class) }
    }

    fn input() -> RolloverInput {
        RolloverInput {
            year_name: "2026/2027".into(),
            starts_on: d(2026, 9, 1),
            ends_on: d(2027, 8, 31),
            periods: vec![RolloverPeriod {
                scheme: PeriodScheme::Quarters,
                number: 1,
                starts_on: d(2026, 9, 1),
                ends_on: d(2026, 10, 24),
            }],
            classes: vec![class(3, 11, "А"), class(1, 5, "А"), class(2, 9, "Б")],
            students: vec![student(1, 1), student(2, 2), student(3, 2), student(4, 3)],
            leaving_after_nine: [PersonId(3)].into_iter().collect(),
        }
    }

    #[test]
    fn classes_are_promoted_with_their_letter_and_teacher() {
        let plan = plan_rollover(&input()).expect("plan");
        assert_eq!(plan.new_year_name, "2027/2028");
        assert_eq!(plan.new_starts_on, d(2027, 9, 1));
        assert_eq!(plan.new_periods[0].ends_on, d(2027, 10, 24));
        let titles: Vec<String> = plan.classes.iter().map(ClassPlan::title).collect();
        assert_eq!(titles, ["5А → 6А", "9Б → 10Б", "11А: выпуск"]);
        assert_eq!(plan.classes[0].class.class_teacher, Some(PersonId(101)));
        assert_eq!(plan.promoted_students(), 2);
    }

    #[test]
    fn the_eleventh_grade_graduates_on_the_last_day() {
        let plan = plan_rollover(&input()).expect("plan");
        assert_eq!(plan.graduates(), 1);
        assert_eq!(plan.leave_on, d(2027, 8, 31));
        let eleventh = &plan.classes[2];
        assert_eq!(eleventh.fate, ClassFate::Graduates);
        assert!(eleventh.moving.is_empty());
    }

    #[test]
    fn only_the_ninth_graders_marked_as_leaving_leave() {
        let plan = plan_rollover(&input()).expect("plan");
        let ninth = &plan.classes[1];
        assert_eq!(ninth.leaving.iter().map(|s| s.student).collect::<Vec<_>>(), [PersonId(3)]);
        assert_eq!(ninth.moving.iter().map(|s| s.student).collect::<Vec<_>>(), [PersonId(2)]);
        assert_eq!(plan.leavers_after_nine(), 1);
        // A "leaving" mark on a 5th-grader means nothing: only grade 9 may leave.
        let mut i = input();
        i.leaving_after_nine.insert(PersonId(1));
        assert_eq!(plan_rollover(&i).expect("plan").classes[0].moving.len(), 1);
    }

    #[test]
    fn a_collision_and_an_empty_year_are_refused() {
        let mut i = input();
        i.classes.push(class(9, 5, "А"));
        assert_eq!(plan_rollover(&i), Err(RolloverError::Collision("5А".into())));
        let mut i = input();
        i.classes.clear();
        assert_eq!(plan_rollover(&i), Err(RolloverError::NoClasses));
    }

    #[test]
    fn leap_days_move_to_the_28th() {
        assert_eq!(next_year_date(d(2028, 2, 29)), d(2029, 2, 28));
    }
}
