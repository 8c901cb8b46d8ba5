//! The class journal page (классный журнал): a plain server-rendered table that reads without
//! JavaScript; `static/journal.js` turns it into a keyboard-driven entry grid that saves
//! through the JSON API (`journal_api.rs`).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use zhurnal_domain::{AssignmentId, PeriodId};

use crate::journal_api::{Grid, GridCell, GridLesson, PeriodQuery, caller, grid_from};
use crate::pages::{Nav, render};
use crate::session::CurrentUser;
use crate::{AppState, WebError, see_other};

/// One correction of the period, for the list under the table.
struct Correction {
    at: String,
    student: String,
    lesson: String,
    change: String,
    by: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "journal.html")]
struct JournalPage {
    nav: Option<Nav>,
    g: Grid,
    csrf: String,
    /// Итоговая отметка exists in grades 9 and 11 only.
    show_final: bool,
    corrections: Vec<Correction>,
}

impl GridLesson {
    /// «23.11».
    pub fn short_date(&self) -> String {
        self.date.format("%d.%m").to_string()
    }
    pub fn anchor(&self) -> String {
        format!("lesson-{}-{}", self.date, self.number)
    }
}

impl GridCell {
    /// The cell's history as a tooltip: old → new, who, when, why.
    pub fn history_title(&self) -> String {
        self.history.iter().map(history_line).collect::<Vec<_>>().join("\n")
    }
}

fn utc_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%d.%m.%Y %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn history_line(h: &crate::journal_api::GridHistory) -> String {
    let change =
        format!("{} → {}", h.old.as_deref().unwrap_or("—"), h.new.as_deref().unwrap_or("удалена"));
    match &h.reason {
        Some(r) => format!("{}: {} ({}), причина: {}", utc_time(&h.at), change, h.by, r),
        None => format!("{}: {} ({})", utc_time(&h.at), change, h.by),
    }
}

pub async fn journal_page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(assignment): Path<i64>,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, WebError> {
    let view = state
        .app
        .journal_view(&caller(&user), AssignmentId(assignment), q.period.map(PeriodId))
        .await
        .map_err(|e| WebError::from_app(e, false))?;
    let g = grid_from(&view);
    let mut corrections = Vec::new();
    for s in &g.students {
        for c in &s.cells {
            for h in c.history.iter().filter(|h| h.old.is_some()) {
                corrections.push(Correction {
                    at: utc_time(&h.at),
                    student: s.name.clone(),
                    lesson: format!("{} ({} урок)", c.date.format("%d.%m"), c.number),
                    change: format!(
                        "{} → {}",
                        h.old.as_deref().unwrap_or("—"),
                        h.new.as_deref().unwrap_or("удалена")
                    ),
                    by: h.by.clone(),
                    reason: h.reason.clone().unwrap_or_default(),
                });
            }
        }
    }
    corrections.sort_by(|a, b| b.at.cmp(&a.at));
    render(JournalPage {
        nav: Some(Nav::for_user(&user)),
        show_final: matches!(g.assignment.grade, 9 | 11),
        g,
        csrf: user.session.csrf_token.clone(),
        corrections,
    })
}

#[derive(Deserialize)]
pub struct PeriodForm {
    /// "1" reopens, "0" closes.
    open: String,
    reason: Option<String>,
}

/// The school admin's form on the journal page: reopen or close the shown period.
pub async fn period_form(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((assignment, period)): Path<(i64, i64)>,
    Form(form): Form<PeriodForm>,
) -> Result<Response, WebError> {
    state
        .app
        .set_period_open(&caller(&user), PeriodId(period), form.open == "1", form.reason.as_deref())
        .await
        .map_err(|e| WebError::from_app(e, false))?;
    Ok(see_other(&format!("/journal/{assignment}?period={period}"), Vec::new()))
}
