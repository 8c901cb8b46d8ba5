//! The security officer's workspace (`/security`: incidents, audit search, ministry report)
//! and the school admin's bulk re-activation of dormant accounts (`/admin/reactivation`).
//!
//! Every page authorizes with the domain policy (ViewAudit / ManageIncidents on the region,
//! ManageSchool on the school) and its use is itself audited.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use zhurnal_app::export::{to_pdf, to_xlsx};
use zhurnal_app::security::{MinistryReport, ReactivationScope, format_instant, rule_title};
use zhurnal_domain::policy::Resource;
use zhurnal_domain::{Action, ClassId, RegionId, Role, RoleScope, SchoolId, authorize};
use zhurnal_store::security::{AuditFilter, IncidentRow, IncidentStatus, MeasureRow, NoticeKind};
use zhurnal_store::{NewAudit, SessionWithPerson};

use crate::pages::Nav;
use crate::session::{CurrentUser, SessionLookup, client_ip_from_headers, cookie, hash_token};
use crate::{AppState, WebError, html_headers, see_other};

const AUDIT_PAGE: i64 = 50;

fn render(t: impl Template) -> Result<Response, WebError> {
    Ok((StatusCode::OK, html_headers(), t.render()?).into_response())
}

/// The region the security officer is responsible for, after the policy agreed.
fn officer_region(user: &CurrentUser, action: Action) -> Result<RegionId, WebError> {
    let region = user.actor.grants.iter().find_map(|(r, s)| match (r, s) {
        (Role::SecurityOfficer, RoleScope::Region(id)) => Some(*id),
        _ => None,
    });
    let Some(region) = region else {
        return Err(WebError::Denied(
            "Страница ответственного за информационную безопасность.".into(),
            false,
        ));
    };
    authorize(&user.actor, action, &Resource::Region(region))?;
    Ok(region)
}

fn at(state: &AppState, micros: i64) -> String {
    format_instant(micros, state.app.rules.utc_offset_hours)
}

/// An incident as the list and the card show it.
struct IncidentView {
    id: i64,
    detected: String,
    rule: String,
    rule_title: &'static str,
    severity: &'static str,
    summary: String,
    subject: String,
    evidence: String,
    status: &'static str,
}

impl IncidentView {
    fn new(state: &AppState, i: &IncidentRow) -> Self {
        let evidence = i.evidence.iter().take(20).map(|s| format!("#{s}")).collect::<Vec<_>>();
        let more = i.evidence.len().saturating_sub(20);
        Self {
            id: i.id,
            detected: at(state, i.detected_at),
            rule: i.rule.clone(),
            rule_title: rule_title(&i.rule),
            severity: i.severity.title(),
            summary: i.summary.clone(),
            subject: i.subject_key.clone(),
            evidence: if more > 0 {
                format!("{} и ещё {more}", evidence.join(" "))
            } else {
                evidence.join(" ")
            },
            status: i.status.title(),
        }
    }
}

#[derive(Template)]
#[template(path = "security_home.html")]
struct HomePage {
    nav: Option<Nav>,
    incidents: Vec<IncidentView>,
    open: usize,
    chain_head: String,
}

/// `/security`: the incident register, newest first.
pub async fn home(State(state): State<AppState>, user: CurrentUser) -> Result<Response, WebError> {
    officer_region(&user, Action::ViewAudit)?;
    let app = &state.app;
    let rows = app.store.list_incidents(0, i64::MAX).await?;
    let open = rows.iter().filter(|i| i.status != IncidentStatus::Resolved).count();
    let incidents = rows.iter().take(200).map(|i| IncidentView::new(&state, i)).collect();
    let chain_head = match app.store.audit_head().await? {
        Some(h) => format!("запись #{}, хеш {}", h.seq, hex::encode(&h.hash)),
        None => "журнал пуст".into(),
    };
    render(HomePage { nav: Some(Nav::for_user(&user)), incidents, open, chain_head })
}

#[derive(Template)]
#[template(path = "security_incident.html")]
struct IncidentPage {
    nav: Option<Nav>,
    incident: IncidentView,
    measures: Vec<(String, &'static str, String)>,
    statuses: Vec<(&'static str, &'static str, bool)>,
    error: Option<String>,
    text: String,
    notices: Vec<NoticeView>,
    /// Kinds not yet recorded: (code, title).
    unsent: Vec<(&'static str, &'static str)>,
    notice_error: Option<String>,
}

/// One notification an incident may require, with its deadline and whether it was sent.
struct NoticeView {
    title: &'static str,
    deadline: String,
    state: String,
    late: bool,
}

async fn incident_page(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    error: Option<String>,
    text: String,
    notice_error: Option<String>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let row = match app.store.get_incident(id).await {
        Ok(r) => r,
        Err(zhurnal_store::StoreError::NotFound(_)) => {
            return Err(WebError::NotFound(format!("инцидент №{id} не найден"), false));
        }
        Err(e) => return Err(e.into()),
    };
    let measures: Vec<MeasureRow> = app.store.list_incident_measures(id).await?;
    let measures =
        measures.iter().map(|m| (at(state, m.at), m.status.title(), m.text.clone())).collect();
    let statuses =
        IncidentStatus::ALL.iter().map(|s| (s.code(), s.title(), *s == row.status)).collect();
    let sent = app.store.list_incident_notices(id).await?;
    let now = app.now_micros();
    let notices = NoticeKind::ALL
        .iter()
        .map(|kind| {
            let due = kind.deadline_hours().map(|h| row.detected_at + h * 3_600_000_000);
            let done = sent.iter().find(|n| n.kind == *kind);
            let state_text = match (done, due) {
                (Some(n), _) => format!(
                    "отправлено {}{}",
                    at(state, n.sent_at),
                    n.reference.as_ref().map(|r| format!(", № {r}")).unwrap_or_default()
                ),
                (None, Some(d)) if d < now => "не отмечено, срок истёк".into(),
                (None, Some(d)) => format!("не отмечено, осталось {} ч", (d - now) / 3_600_000_000),
                (None, None) => "не отмечено".into(),
            };
            NoticeView {
                title: kind.title(),
                deadline: due.map(|d| at(state, d)).unwrap_or_else(|| "—".into()),
                late: match (done, due) {
                    (Some(n), Some(d)) => n.sent_at > d,
                    (None, Some(d)) => d < now,
                    _ => false,
                },
                state: state_text,
            }
        })
        .collect();
    let unsent = NoticeKind::ALL
        .iter()
        .filter(|k| !sent.iter().any(|n| n.kind == **k))
        .map(|k| (k.code(), k.title()))
        .collect();
    let status = if error.is_some() || notice_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = IncidentPage {
        nav: Some(Nav::for_user(user)),
        incident: IncidentView::new(state, &row),
        measures,
        statuses,
        error,
        text,
        notices,
        unsent,
        notice_error,
    };
    Ok((status, html_headers(), page.render()?).into_response())
}

pub async fn incident(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    officer_region(&user, Action::ViewAudit)?;
    incident_page(&state, &user, id, None, String::new(), None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MeasureForm {
    status: String,
    text: String,
}

pub async fn add_measure(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<MeasureForm>,
) -> Result<Response, WebError> {
    let region = officer_region(&user, Action::ManageIncidents)?;
    let Some(status) = IncidentStatus::from_code(&form.status) else {
        return incident_page(
            &state,
            &user,
            id,
            Some("Выберите статус инцидента из списка.".into()),
            form.text,
            None,
        )
        .await;
    };
    match state
        .app
        .add_incident_measure(&user.actor, region, id, status, &form.text, &user.audit_context())
        .await
    {
        Ok(_) => Ok(see_other(&format!("/security/incidents/{id}"), vec![])),
        Err(zhurnal_app::AppError::Invalid(msg)) => {
            incident_page(&state, &user, id, Some(msg), form.text, None).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NoticeForm {
    kind: String,
    /// `YYYY-MM-DDTHH:MM`, regional time (an `<input type="datetime-local">`).
    sent_at: String,
    reference: String,
}

/// POST /security/incidents/{id}/notices: a notification was sent (РКН, НКЦКИ, parents).
pub async fn add_notice(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<NoticeForm>,
) -> Result<Response, WebError> {
    let region = officer_region(&user, Action::ManageIncidents)?;
    let fail = |msg: String| incident_page(&state, &user, id, None, String::new(), Some(msg));
    let Some(kind) = NoticeKind::from_code(&form.kind) else {
        return fail("Выберите вид уведомления из списка.".into()).await;
    };
    let Ok(sent) = chrono::NaiveDateTime::parse_from_str(form.sent_at.trim(), "%Y-%m-%dT%H:%M")
    else {
        return fail(format!(
            "«{}» — не дата и время отправки: укажите их как 23.11.2026 14:30.",
            form.sent_at.trim()
        ))
        .await;
    };
    match state
        .app
        .record_incident_notice(
            &user.actor,
            region,
            id,
            kind,
            sent,
            &form.reference,
            &user.audit_context(),
        )
        .await
    {
        Ok(()) => Ok(see_other(&format!("/security/incidents/{id}"), vec![])),
        Err(zhurnal_app::AppError::Invalid(msg)) => fail(msg).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    action: Option<String>,
    actor: Option<String>,
    ip: Option<String>,
    before: Option<i64>,
}

#[derive(Template)]
#[template(path = "security_audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    action: String,
    actor: String,
    ip: String,
    total: i64,
    rows: Vec<[String; 7]>,
    next: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// `/security/audit`: search the audit log, 50 records a page, newest first.
pub async fn audit(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<AuditQuery>,
) -> Result<Response, WebError> {
    officer_region(&user, Action::ViewAudit)?;
    let app = &state.app;
    let actor = match non_empty(&q.actor) {
        None => None,
        Some(a) => match a.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => match app.store.find_person_by_uid(&a).await? {
                Some(p) => Some(p.id.0),
                None => {
                    return Err(WebError::BadRequest(
                        format!(
                            "Поле «Кто»: «{a}» — не номер и не идентификатор учётной записи. \
                             Укажите внутренний номер (например, 12) или uid из карточки."
                        ),
                        false,
                    ));
                }
            },
        },
    };
    let filter = AuditFilter {
        action_prefix: non_empty(&q.action),
        actor_id: actor,
        source_ip: non_empty(&q.ip),
        before_seq: q.before,
        ..AuditFilter::default()
    };
    let total = app.store.count_audit(&AuditFilter { before_seq: None, ..filter.clone() }).await?;
    let records = app.store.search_audit(&filter, AUDIT_PAGE).await?;
    let view = user
        .audit_context()
        .event(app.now_micros(), "audit.view", "ok")
        .actor(user.person.id.0, user.audit_role())
        .details(serde_json::json!({
            "action": filter.action_prefix, "actor": filter.actor_id, "ip": filter.source_ip,
            "before": filter.before_seq, "shown": records.len(),
        }));
    app.audit_read(view).await?;
    let next = (records.len() as i64 == AUDIT_PAGE).then(|| {
        let last = records.last().map(|r| r.seq).unwrap_or_default();
        let enc = |s: &Option<String>| {
            url::form_urlencoded::byte_serialize(s.as_deref().unwrap_or("").as_bytes())
                .collect::<String>()
        };
        format!(
            "/security/audit?action={}&actor={}&ip={}&before={last}",
            enc(&q.action),
            enc(&q.actor),
            enc(&q.ip)
        )
    });
    let rows = records
        .iter()
        .map(|r| {
            let e = &r.event;
            [
                format!("#{}", r.seq),
                at(&state, e.at),
                e.action.clone(),
                format!("{} {}", e.result, e.reason.clone().unwrap_or_default()),
                match (e.actor_id, &e.actor_role) {
                    (Some(id), Some(role)) => format!("{id} ({role})"),
                    (Some(id), None) => id.to_string(),
                    (None, Some(role)) => role.clone(),
                    (None, None) => "—".into(),
                },
                match (&e.target_type, &e.target_id) {
                    (Some(t), Some(id)) => format!("{t} {id}"),
                    _ => String::new(),
                },
                e.source_ip.clone().unwrap_or_default(),
            ]
        })
        .collect();
    render(AuditPage {
        nav: Some(Nav::for_user(&user)),
        action: q.action.unwrap_or_default(),
        actor: q.actor.unwrap_or_default(),
        ip: q.ip.unwrap_or_default(),
        total,
        rows,
        next,
    })
}

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
}

fn parse_date(field: &str, v: &Option<String>, default: NaiveDate) -> Result<NaiveDate, WebError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(s, "%d.%m.%Y"))
            .map_err(|_| {
                WebError::BadRequest(
                    format!(
                        "Поле «{field}»: «{s}» — не дата. Укажите дату как 2026-11-23 или 23.11.2026."
                    ),
                    false,
                )
            }),
    }
}

async fn build_report(
    state: &AppState,
    user: &CurrentUser,
    q: &ReportQuery,
    format: &str,
) -> Result<MinistryReport, WebError> {
    officer_region(user, Action::ManageIncidents)?;
    let app = &state.app;
    let today = app.today();
    let from = parse_date("с", &q.from, today - chrono::Duration::days(30))?;
    let to = parse_date("по", &q.to, today)?;
    let report = app.ministry_report(from, to).await?;
    let audit = user
        .audit_context()
        .event(app.now_micros(), "report.security", "ok")
        .actor(user.person.id.0, user.audit_role())
        .details(serde_json::json!({
            "from": from.to_string(), "to": to.to_string(), "format": format,
            "incidents": report.incidents.len(),
        }));
    app.audit_read(audit).await?;
    Ok(report)
}

#[derive(Template)]
#[template(path = "security_report.html")]
struct ReportPage {
    nav: Option<Nav>,
    from: String,
    to: String,
    table: Vec<Vec<String>>,
}

/// `/security/report`: the ministry report over a period, on screen.
pub async fn report(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ReportQuery>,
) -> Result<Response, WebError> {
    let r = build_report(&state, &user, &q, "html").await?;
    render(ReportPage {
        nav: Some(Nav::for_user(&user)),
        from: r.from.to_string(),
        to: r.to.to_string(),
        table: r.table(),
    })
}

/// `/security/report.csv`: the same table as CSV (PDF and XLSX are rendered from
/// [`MinistryReport::table`] too).
pub async fn report_csv(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ReportQuery>,
) -> Result<Response, WebError> {
    let r = build_report(&state, &user, &q, "csv").await?;
    let name = format!("security-report-{}-{}.csv", r.from, r.to);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        r.to_csv(),
    )
        .into_response())
}

/// GET /security/report.pdf: the report as the document the ministry files.
pub async fn report_pdf(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ReportQuery>,
) -> Result<Response, WebError> {
    let r = build_report(&state, &user, &q, "pdf").await?;
    let bytes = to_pdf(&r.to_doc()).map_err(WebError::internal)?;
    Ok(report_download(&r, "pdf", "application/pdf", bytes))
}

/// GET /security/report.xlsx: the same report as a spreadsheet.
pub async fn report_xlsx(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ReportQuery>,
) -> Result<Response, WebError> {
    let r = build_report(&state, &user, &q, "xlsx").await?;
    let bytes = to_xlsx(&r.to_doc()).map_err(WebError::internal)?;
    let mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    Ok(report_download(&r, "xlsx", mime, bytes))
}

fn report_download(r: &MinistryReport, ext: &str, mime: &str, bytes: Vec<u8>) -> Response {
    let name = format!("security-report-{}-{}.{ext}", r.from, r.to);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response()
}

// ----- School admin: bulk re-activation ------------------------------------------------

/// A school the admin manages: (id, name, classes of the current year as (id, name)).
type AdminSchool = (i64, String, Vec<(i64, String)>);

#[derive(Template)]
#[template(path = "security_reactivation.html")]
struct ReactivationPage {
    nav: Option<Nav>,
    schools: Vec<AdminSchool>,
    error: Option<String>,
    done: Option<String>,
}

async fn admin_schools(state: &AppState, user: &CurrentUser) -> Result<Vec<AdminSchool>, WebError> {
    let app = &state.app;
    let mut out = Vec::new();
    for (role, scope) in &user.actor.grants {
        if let (Role::SchoolAdmin, RoleScope::School(s)) = (role, scope) {
            let school = app.store.get_school(*s).await?;
            if authorize(&user.actor, Action::ManageSchool, &Resource::School(school.place()))
                .is_err()
            {
                continue;
            }
            let mut classes = Vec::new();
            let today = app.today();
            for y in app.store.list_academic_years(school.id).await? {
                if y.starts_on <= today && today <= y.ends_on {
                    for c in app.store.list_classes(school.id, y.id).await? {
                        classes.push((c.id.0, c.name()));
                    }
                }
            }
            out.push((school.id.0, school.name.clone(), classes));
        }
    }
    if out.is_empty() {
        return Err(WebError::Denied("Страница администратора школы.".into(), false));
    }
    Ok(out)
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<usize>,
}

pub async fn reactivation(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let schools = admin_schools(&state, &user).await?;
    render(ReactivationPage {
        nav: Some(Nav::for_user(&user)),
        schools,
        error: None,
        done: q.done.map(|n| format!("Разблокировано учётных записей: {n}.")),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReactivationForm {
    /// `class:<id>` or `school:<id>`.
    scope: String,
    reason: String,
}

pub async fn reactivate(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<ReactivationForm>,
) -> Result<Response, WebError> {
    let schools = admin_schools(&state, &user).await?;
    let scope = match form.scope.split_once(':') {
        Some(("class", id)) => id.parse().ok().map(|id| ReactivationScope::Class(ClassId(id))),
        Some(("school", id)) => id.parse().ok().map(|id| ReactivationScope::School(SchoolId(id))),
        _ => None,
    };
    let fail = |msg: String| {
        let page = ReactivationPage {
            nav: Some(Nav::for_user(&user)),
            schools: schools.clone(),
            error: Some(msg),
            done: None,
        };
        page.render()
            .map(|html| (StatusCode::UNPROCESSABLE_ENTITY, html_headers(), html).into_response())
    };
    let Some(scope) = scope else {
        return Ok(fail("Выберите класс или всю школу из списка.".into())?);
    };
    match state
        .app
        .reactivate_in_bulk(&user.actor, scope, &form.reason, &user.audit_context())
        .await
    {
        Ok(n) => Ok(see_other(&format!("/admin/reactivation?done={n}"), vec![])),
        Err(zhurnal_app::AppError::Invalid(msg)) => Ok(fail(msg)?),
        Err(zhurnal_app::AppError::Store(zhurnal_store::StoreError::NotFound(_))) => {
            Err(WebError::Denied("нет доступа к этому классу".into(), false))
        }
        Err(e) => Err(e.into()),
    }
}

// ----- Rate limits (security.md T-11) --------------------------------------------------

/// Request quotas: per account (strict) and per client address (generous — a whole school
/// often leaves through one NAT address). `governor` (GCRA, keyed, lock-free) does the
/// counting; `tower_governor` was not used because the account key needs an async session
/// lookup, which its synchronous key extractors cannot do.
#[derive(Clone)]
pub struct RateLimits {
    account: Arc<DefaultKeyedRateLimiter<i64>>,
    address: Arc<DefaultKeyedRateLimiter<String>>,
    /// One audit record per limited key and minute: a flood is evidence (security.md 16.3.3),
    /// but a record per refused request would let the flood write the audit chain instead.
    audited: Arc<DefaultKeyedRateLimiter<String>>,
}

impl RateLimits {
    pub fn new(cfg: &zhurnal_app::SecurityConfig) -> Self {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            account: Arc::new(RateLimiter::keyed(quota(cfg.requests_per_minute_per_account))),
            address: Arc::new(RateLimiter::keyed(quota(cfg.requests_per_minute_per_address))),
            audited: Arc::new(RateLimiter::keyed(quota(1))),
        }
    }
}

#[derive(Template)]
#[template(path = "security_rate_limited.html")]
struct RateLimitedPage {
    nav: Option<Nav>,
    seconds: u64,
}

fn too_many(api: bool, wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let (ctype, body) = if api {
        (
            "application/problem+json",
            serde_json::json!({
                "type": "about:blank",
                "title": "Слишком много запросов",
                "status": 429,
                "detail": format!("Слишком много запросов. Повторите через {seconds} с."),
            })
            .to_string(),
        )
    } else {
        let page = RateLimitedPage { nav: None, seconds };
        (
            "text/html; charset=utf-8",
            page.render().unwrap_or_else(|_| {
                format!("Слишком много запросов. Повторите через {seconds} с.")
            }),
        )
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (header::RETRY_AFTER, seconds.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

/// Audits the first refusal of a key in each minute (with the route that tipped it). A failed
/// audit write does not turn the 429 into a 500: the refusal stands either way.
async fn record_limit_hit(
    state: &AppState,
    limits: &RateLimits,
    key: String,
    audit: NewAudit,
    path: &str,
) {
    if limits.audited.len() > 100_000 {
        limits.audited.retain_recent();
    }
    if limits.audited.check_key(&key).is_err() {
        return;
    }
    let audit = audit.details(serde_json::json!({ "route": path }));
    if let Err(e) = state.app.audit_read(audit).await {
        tracing::warn!(error = %e, "rate-limit refusal not audited");
    }
}

/// Middleware: the address quota for every request, the account quota for requests with a
/// session. `X-Forwarded-For` counts only from `web.trusted_proxies` (see [`client_ip_from_headers`]).
pub async fn rate_limit(
    State((state, limits)): State<(AppState, RateLimits)>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if path == "/healthz" || path.starts_with("/static/") {
        return next.run(req).await;
    }
    let api = path.starts_with("/api/");
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    if let Some(ip) = client_ip_from_headers(&state, req.headers(), peer) {
        if limits.address.len() > 100_000 {
            limits.address.retain_recent();
        }
        if let Err(not_until) = limits.address.check_key(&ip) {
            tracing::info!(scope = "address", "rate limit reached");
            let audit = NewAudit::new(state.app.now_micros(), "rate_limit.hit", "refused")
                .target("address", &ip)
                .ip(Some(ip.clone()));
            record_limit_hit(&state, &limits, format!("address:{ip}"), audit, path).await;
            // The limiter's own clock: a new `DefaultClock` per request ran CPUID to calibrate,
            // which traps to the hypervisor on a virtual machine (2 % of the diary's CPU).
            return too_many(api, not_until.wait_time_from(limits.address.clock().now()));
        }
    }
    if let Some(token) = cookie(req.headers(), state.session_cookie_name())
        && let Ok(lookup) = SessionLookup::read(&state, hash_token(&token)).await
    {
        if let Some(SessionWithPerson { session, .. }) = &lookup.found {
            if limits.account.len() > 100_000 {
                limits.account.retain_recent();
            }
            if let Err(not_until) = limits.account.check_key(&session.person_id.0) {
                tracing::info!(scope = "account", "rate limit reached");
                let person = session.person_id.0;
                let audit = NewAudit::new(state.app.now_micros(), "rate_limit.hit", "refused")
                    .actor(person, "user")
                    .target("person", person)
                    .ip(client_ip_from_headers(&state, req.headers(), peer))
                    .session(Some(session.id_hash.chars().take(16).collect()));
                record_limit_hit(&state, &limits, format!("account:{person}"), audit, path).await;
                return too_many(api, not_until.wait_time_from(limits.account.clock().now()));
            }
        }
        // Area `bench`: the session extractor reuses this read instead of repeating it.
        req.extensions_mut().insert(lookup);
    }
    next.run(req).await
}
