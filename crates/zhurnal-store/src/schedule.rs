//! Turning weekly timetable slots into dated lessons: pure logic shared by both backends.

use chrono::{Datelike, NaiveDate};

use crate::{AssignmentRow, ScheduledLesson};
use zhurnal_domain::{LessonId, PersonId};

/// A weekly slot of the timetable as loaded by a backend.
#[derive(Clone, Debug)]
pub struct SlotRow {
    pub slot_id: i64,
    pub weekday: u8,
    pub lesson_number: u8,
    pub room: Option<String>,
    pub assignment: AssignmentRow,
}

/// A held lesson (topic and homework), as loaded by a backend.
#[derive(Clone, Debug)]
pub struct HeldLesson {
    pub id: LessonId,
    pub assignment_id: i64,
    pub date: NaiveDate,
    pub lesson_number: u8,
    pub topic: Option<String>,
    pub homework: Option<String>,
}

/// Expands slots over `from..=to`, applying substitutions `(slot_id, date, substitute)` and
/// attaching held lessons. Dates outside `[year_start, year_end]` produce nothing.
pub fn expand(
    slots: &[SlotRow],
    held: &[HeldLesson],
    substitutions: &[(i64, NaiveDate, PersonId)],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<ScheduledLesson> {
    let mut out = Vec::new();
    let mut date = from;
    while date <= to {
        let weekday = date.weekday().number_from_monday() as u8;
        for s in slots.iter().filter(|s| s.weekday == weekday) {
            let sub = substitutions.iter().find(|(slot, d, _)| *slot == s.slot_id && *d == date);
            let lesson = held.iter().find(|l| {
                l.assignment_id == s.assignment.id.0
                    && l.date == date
                    && l.lesson_number == s.lesson_number
            });
            out.push(ScheduledLesson {
                date,
                lesson_number: s.lesson_number,
                assignment: s.assignment.clone(),
                room: s.room.clone(),
                teacher_id: sub.map_or(s.assignment.teacher_id, |(_, _, p)| *p),
                substitution: sub.is_some(),
                lesson_id: lesson.map(|l| l.id),
                topic: lesson.and_then(|l| l.topic.clone()),
                homework: lesson.and_then(|l| l.homework.clone()),
            });
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    out.sort_by_key(|l| (l.date, l.lesson_number));
    out
}

/// Adds held lessons that no timetable slot produced (an extra lesson, a moved one) to
/// `lessons`, keeping the order by date and number.
pub fn with_unscheduled(
    mut lessons: Vec<ScheduledLesson>,
    held: &[HeldLesson],
    assignment: &AssignmentRow,
) -> Vec<ScheduledLesson> {
    for h in held.iter().filter(|h| h.assignment_id == assignment.id.0) {
        if !lessons.iter().any(|l| l.lesson_id == Some(h.id)) {
            lessons.push(ScheduledLesson {
                date: h.date,
                lesson_number: h.lesson_number,
                assignment: assignment.clone(),
                room: None,
                teacher_id: assignment.teacher_id,
                substitution: false,
                lesson_id: Some(h.id),
                topic: h.topic.clone(),
                homework: h.homework.clone(),
            });
        }
    }
    lessons.sort_by_key(|l| (l.date, l.lesson_number));
    lessons
}
