//! Report pages and downloads (Action::ViewReports): a school's reports on screen, as XLSX and
//! as PDF; territory aggregates for officials; the class journal archive. Lists that name
//! students need the school's own administration. Every download is audited (`report.export`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zhurnal_app::export::{ReportDoc, to_pdf, to_xlsx};
use zhurnal_app::reports::{ReportKind, ReportRange};
use zhurnal_domain::policy::Resource;
use zhurnal_domain::{Action, ClassId, Role, RoleScope, SchoolId, authorize};

use crate::pages::Nav;
use crate::session::CurrentUser;
use crate::{AppState, WebError, html_headers};

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    school: Option<i64>,
    period: Option<i64>,
    kind: Option<String>,
    /// Цель выгрузки: required for downloads that name students.
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ExportQuery {
    reason: Option<String>,
}

/// Persons a document names: distinct values of its «Ученик» columns (tables without one, such
/// as lesson topics, name nobody).
fn persons_named(doc: &ReportDoc) -> usize {
    let mut names = std::collections::BTreeSet::new();
    for t in &doc.tables {
        let Some(col) = t.headers.iter().position(|h| h == "Ученик") else { continue };
        names.extend(t.rows.iter().filter_map(|r| r.get(col).map(String::as_str)));
    }
    names.len()
}

#[derive(Template)]
#[template(path = "report_page.html")]
struct ReportPage {
    nav: Option<Nav>,
    doc: ReportDoc,
    school_id: i64,
    kind: String,
    period: i64,
    kinds: Vec<(String, String, bool)>,
    periods: Vec<(i64, String, bool)>,
    schools: Vec<(i64, String)>,
    is_school_admin: bool,
    /// The report names students: downloads ask for a purpose.
    names_students: bool,
}

fn default_school(user: &CurrentUser) -> Option<SchoolId> {
    user.actor.grants.iter().find_map(|(r, s)| match (r, s) {
        (Role::SchoolAdmin, RoleScope::School(id)) => Some(*id),
        _ => None,
    })
}

async fn prepare(
    state: &AppState,
    user: &CurrentUser,
    school: SchoolId,
    kind: ReportKind,
    period: Option<i64>,
) -> Result<(ReportRange, ReportDoc, bool), WebError> {
    let app = &state.app;
    let school = app.report_school(&user.actor, school).await?;
    let is_admin =
        authorize(&user.actor, Action::ManageSchool, &Resource::School(school.place())).is_ok();
    if kind.names_students() && !is_admin {
        return Err(WebError::Denied(
            "Список учеников с «2» содержит персональные данные и доступен только администрации школы; органам управления доступны сводные отчёты.".into(),
            false,
        ));
    }
    let range = app.report_range(school, period).await?;
    let doc = app.school_report(kind, &range).await?;
    Ok((range, doc, is_admin))
}

/// GET /reports?school=&kind=&period=: a report on screen; officials without a school get
/// the territory summary.
pub async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    q: Query<ReportQuery>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = q.school.map(SchoolId).or_else(|| default_school(&user));
    let _place = app.report_place().await?;
    let Some(school) = school else {
        let doc = app.territory_report(&user.actor).await?;
        let mut schools = Vec::new();
        for s in app.store.list_schools().await? {
            if authorize(&user.actor, Action::ViewReports, &Resource::School(s.place())).is_ok() {
                schools.push((s.id.0, s.short_name.clone()));
            }
        }
        return render(ReportPage {
            nav: Some(Nav::for_user(&user)),
            doc,
            school_id: 0,
            kind: "territory".into(),
            period: 0,
            kinds: Vec::new(),
            periods: Vec::new(),
            schools,
            is_school_admin: false,
            names_students: false,
        });
    };
    let kind = match q.kind.as_deref() {
        None | Some("") => ReportKind::Progress,
        Some(k) => ReportKind::from_code(k).ok_or_else(|| {
            WebError::BadRequest(
                format!("Неизвестный отчёт «{k}»: выберите отчёт из списка."),
                false,
            )
        })?,
    };
    let (range, doc, is_admin) = prepare(&state, &user, school, kind, q.period).await?;
    let chosen = range.period.as_ref().map_or(0, |p| p.period.id.0);
    let mut periods = vec![(0, "Учебный год".to_string(), chosen == 0)];
    periods.extend(
        range.periods.iter().map(|p| (p.period.id.0, p.period.name(), p.period.id.0 == chosen)),
    );
    render(ReportPage {
        nav: Some(Nav::for_user(&user)),
        doc,
        school_id: school.0,
        kind: kind.code().into(),
        period: chosen,
        kinds: ReportKind::ALL
            .iter()
            .filter(|k| is_admin || !k.names_students())
            .map(|k| (k.code().to_string(), k.title().to_string(), *k == kind))
            .collect(),
        periods,
        schools: Vec::new(),
        is_school_admin: is_admin,
        names_students: kind.names_students(),
    })
}

fn render(t: impl Template) -> Result<Response, WebError> {
    Ok((axum::http::StatusCode::OK, html_headers(), t.render()?).into_response())
}

fn download(bytes: Vec<u8>, format: &str, name: &str) -> Response {
    let mime = if format == "pdf" {
        "application/pdf"
    } else {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    };
    let disposition = format!("attachment; filename=\"{name}.{format}\"");
    (
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response()
}

/// Builds the file on a blocking thread: a class archive's PDF takes long enough to hold up
/// the other requests of an async worker.
async fn encode(doc: ReportDoc, format: &str) -> Result<Vec<u8>, WebError> {
    let format = format.to_owned();
    tokio::task::spawn_blocking(move || match format.as_str() {
        "xlsx" => to_xlsx(&doc).map_err(WebError::internal),
        "pdf" => to_pdf(&doc).map_err(WebError::internal),
        other => Err(WebError::NotFound(format!("формат {other}"), false)),
    })
    .await
    .map_err(WebError::internal)?
}

/// Personal data leaves the system: the purpose and the number of persons go to the audit
/// log (and feed detection rule D-05).
struct PdExport {
    reason: String,
    persons: usize,
}

async fn audit_export(
    state: &AppState,
    user: &CurrentUser,
    school: i64,
    report: &str,
    format: &str,
    pd: Option<PdExport>,
) -> Result<(), WebError> {
    let details = match pd {
        Some(pd) => serde_json::json!({
            "format": format, "reason": pd.reason, "persons": pd.persons,
        }),
        None => serde_json::json!({ "format": format }),
    };
    let audit = user
        .audit_context()
        .event(state.app.now_micros(), "report.export", "ok")
        .actor(user.person.id.0, user.audit_role())
        .target("report", report)
        .school(school)
        .details(details);
    state.app.audit_read(audit).await?;
    Ok(())
}

/// GET /reports/{school}/{report}/{format}?period=: XLSX or PDF of a school report.
pub async fn export(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((school, report, format)): Path<(i64, String, String)>,
    q: Query<ReportQuery>,
) -> Result<Response, WebError> {
    if format != "xlsx" && format != "pdf" {
        return Err(WebError::NotFound(format!("формат {format}"), false));
    }
    let kind = ReportKind::from_code(&report)
        .ok_or_else(|| WebError::NotFound(format!("отчёт {report}"), false))?;
    let place = state.app.report_place().await?;
    let (_, doc, _) = prepare(&state, &user, SchoolId(school), kind, q.period).await?;
    let pd = if kind.names_students() {
        let reason = state.app.check_pd_export(user.session.created_at, q.reason.as_deref())?;
        Some(PdExport { reason, persons: persons_named(&doc) })
    } else {
        None
    };
    let bytes = encode(doc, &format).await?;
    drop(place);
    audit_export(&state, &user, school, kind.code(), &format, pd).await?;
    Ok(download(bytes, &format, &format!("zhurnal-{}-{school}", kind.code())))
}

/// GET /reports/territory/{format}: the territory summary as XLSX or PDF.
pub async fn territory_export(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(format): Path<String>,
) -> Result<Response, WebError> {
    if format != "xlsx" && format != "pdf" {
        return Err(WebError::NotFound(format!("формат {format}"), false));
    }
    let place = state.app.report_place().await?;
    let doc = state.app.territory_report(&user.actor).await?;
    let bytes = encode(doc, &format).await?;
    drop(place);
    let audit = user
        .audit_context()
        .event(state.app.now_micros(), "report.export", "ok")
        .actor(user.person.id.0, user.audit_role())
        .target("report", "territory")
        .details(serde_json::json!({ "format": format }));
    state.app.audit_read(audit).await?;
    Ok(download(bytes, &format, "zhurnal-territory"))
}

/// GET /reports/classes/{class}/archive.pdf: the year's archive of a class journal.
pub async fn class_archive(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(class): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, WebError> {
    let place = state.app.report_place().await?;
    let (school, doc) = state.app.class_archive(&user.actor, ClassId(class)).await?;
    let reason = state.app.check_pd_export(user.session.created_at, q.reason.as_deref())?;
    let pd = PdExport { reason, persons: persons_named(&doc) };
    let bytes = encode(doc, "pdf").await?;
    drop(place);
    audit_export(&state, &user, school.id.0, "class_archive", "pdf", Some(pd)).await?;
    Ok(download(bytes, "pdf", &format!("zhurnal-class-{class}-archive")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zhurnal_app::export::Table;

    #[test]
    fn persons_are_counted_in_the_student_column_only() {
        let mut marks = Table::new("Математика", &["Ученик", "1 четверть"]);
        marks.push(vec!["Иванов Иван".into(), "5".into()]);
        marks.push(vec!["Петрова Анна".into(), "4".into()]);
        let mut failing = Table::new("С «2»", &["Класс", "Ученик", "Предмет"]);
        failing.push(vec!["9А".into(), "Иванов Иван".into(), "Физика".into()]);
        let mut lessons = Table::new("Темы", &["Дата", "Тема"]);
        lessons.push(vec!["23.11.2026".into(), "Дроби".into()]);
        let doc = ReportDoc {
            title: "t".into(),
            subtitle: "s".into(),
            tables: vec![marks, failing, lessons],
        };
        assert_eq!(persons_named(&doc), 2);
    }
}
