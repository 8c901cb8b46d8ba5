//! Area `integrations`: the regional monitoring (`/monitoring`, charts as server-rendered SVG,
//! weekly XLSX), a school's integration status and dead letters, the class teacher's chat page
//! (manual instructions where the school has no integration), and the school's public page of
//! communication services with its editor.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zhurnal_app::integrations::{
    ChatInstructions, Figures, Monitoring, SchoolIntegrationStatus, wall_micros,
};
use zhurnal_app::security::format_instant;
use zhurnal_domain::{ClassId, SchoolId};
use zhurnal_store::integration::{CommService, ResponsiblePerson, SchoolCommunication};

use crate::pages::Nav;
use crate::session::CurrentUser;
use crate::{AppState, WebError, html_headers, see_other};

fn render(t: impl Template) -> Result<Response, WebError> {
    Ok((StatusCode::OK, html_headers(), t.render()?).into_response())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One row of the monitoring table: a municipality, a school, or the total.
struct Line {
    name: String,
    school: bool,
    f: Figures,
}

impl Line {
    fn share(part: i64, whole: i64) -> String {
        if whole == 0 {
            "—".into()
        } else {
            format!("{} из {} ({}%)", part, whole, Figures::pct(part, whole))
        }
    }
    fn staff(&self) -> String {
        Self::share(self.f.staff_logged_in, self.f.staff)
    }
    fn students(&self) -> String {
        Self::share(self.f.students_14_logged_in, self.f.students_14)
    }
    fn parents(&self) -> String {
        Self::share(self.f.parents_logged_in, self.f.parents)
    }
    fn children(&self) -> String {
        Self::share(self.f.children_linked, self.f.children)
    }
    fn chats(&self) -> String {
        Self::share(self.f.chats_created, self.f.chats_required)
    }
    fn members(&self) -> String {
        Self::share(self.f.chat_members_joined, self.f.chat_members_required)
    }
}

/// (part, whole) of one chart series.
type Share = fn(&Figures) -> (i64, i64);

/// Horizontal bars, one group per municipality: the shares the letters ask about. Readable
/// without JS and without colour (every bar carries its number).
fn chart_svg(m: &Monitoring) -> String {
    let series: [(&str, &str, Share); 5] = [
        ("Сотрудники вошли через ЕСИА", "#2b6cb0", |f| {
            (f.staff_logged_in, f.staff)
        }),
        ("Ученики 14+ вошли через ЕСИА", "#2f855a", |f| {
            (f.students_14_logged_in, f.students_14)
        }),
        ("Родители вошли через ЕСИА", "#b7791f", |f| {
            (f.parents_logged_in, f.parents)
        }),
        ("Дети привязаны к родителям", "#6b46c1", |f| {
            (f.children_linked, f.children)
        }),
        ("Чаты классов созданы", "#c53030", |f| {
            (f.chats_created, f.chats_required)
        }),
    ];
    let groups: Vec<(&str, &Figures)> = m
        .municipalities
        .iter()
        .map(|x| (x.name.as_str(), &x.total))
        .chain(std::iter::once(("Всего", &m.total)))
        .collect();
    let bar = 14;
    let group_h = 24 + series.len() as i32 * (bar + 4) + 8;
    let height = groups.len() as i32 * group_h + 10;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"integrations-chart\" viewBox=\"0 0 600 {height}\" \
         role=\"img\" aria-labelledby=\"chart-title\"><title id=\"chart-title\">Доли по муниципалитетам, %</title>"
    );
    let mut y = 4;
    for (name, f) in groups {
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            y + 16,
            esc(name)
        ));
        y += 24;
        for (label, colour, get) in &series {
            let (part, whole) = get(f);
            let pct = Figures::pct(part, whole);
            let w = pct as i32 * 3;
            svg.push_str(&format!(
                "<text x=\"0\" y=\"{}\" font-size=\"11\">{}</text>\
                 <rect x=\"230\" y=\"{y}\" width=\"300\" height=\"{bar}\" fill=\"#edf2f7\"/>\
                 <rect x=\"230\" y=\"{y}\" width=\"{w}\" height=\"{bar}\" fill=\"{colour}\"/>\
                 <text x=\"535\" y=\"{}\" font-size=\"11\">{}</text>",
                y + 11,
                esc(label),
                y + 11,
                if whole == 0 { "—".to_string() } else { format!("{pct}%") }
            ));
            y += bar + 4;
        }
        y += 8;
    }
    svg.push_str("</svg>");
    svg
}

#[derive(Template)]
#[template(path = "integrations_monitoring.html")]
struct MonitoringPage {
    nav: Option<Nav>,
    generated_on: String,
    chart: String,
    lines: Vec<Line>,
    dormant: i64,
    portfolio_delivered: i64,
    portfolio_failed: i64,
}

/// GET /monitoring: the regional (or municipal) monitoring.
pub async fn monitoring(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    let m = state.app.monitoring(&user.actor).await?;
    let mut lines = Vec::new();
    for mm in &m.municipalities {
        lines.push(Line { name: mm.name.clone(), school: false, f: mm.total.clone() });
        for s in &mm.schools {
            lines.push(Line { name: s.name.clone(), school: true, f: s.figures.clone() });
        }
    }
    lines.push(Line { name: "Всего".into(), school: false, f: m.total.clone() });
    render(MonitoringPage {
        nav: Some(Nav::for_user(&user)),
        generated_on: m.generated_on.format("%d.%m.%Y").to_string(),
        chart: chart_svg(&m),
        lines,
        dormant: m.total.dormant_blocked,
        portfolio_delivered: m.total.portfolio_delivered,
        portfolio_failed: m.total.portfolio_failed,
    })
}

/// GET /monitoring/weekly.xlsx: the weekly form the letters ask for.
pub async fn monitoring_xlsx(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    use zhurnal_app::export::{ReportDoc, Table, to_xlsx};
    let m = state.app.monitoring(&user.actor).await?;
    let mut t = Table::new(
        "Мониторинг по школам",
        &[
            "Муниципалитет",
            "Школа",
            "Сотрудников",
            "Вошли через ЕСИА",
            "Учеников 14+",
            "Вошли через ЕСИА",
            "Родителей",
            "Вошли через ЕСИА",
            "Детей до 14",
            "Привязаны к родителю",
            "Заблокировано за неактивность",
            "Чатов требуется",
            "Чатов создано",
            "Участников требуется",
            "Участников в чатах",
            "Отметок в портфолио",
            "Не передано (нет ОИД/СНИЛС)",
        ],
    );
    let row = |muni: &str, school: &str, f: &Figures| -> Vec<String> {
        vec![
            muni.to_string(),
            school.to_string(),
            f.staff.to_string(),
            f.staff_logged_in.to_string(),
            f.students_14.to_string(),
            f.students_14_logged_in.to_string(),
            f.parents.to_string(),
            f.parents_logged_in.to_string(),
            f.children.to_string(),
            f.children_linked.to_string(),
            f.dormant_blocked.to_string(),
            f.chats_required.to_string(),
            f.chats_created.to_string(),
            f.chat_members_required.to_string(),
            f.chat_members_joined.to_string(),
            f.portfolio_delivered.to_string(),
            f.portfolio_failed.to_string(),
        ]
    };
    for mm in &m.municipalities {
        for s in &mm.schools {
            t.rows.push(row(&mm.name, &s.name, &s.figures));
        }
        t.rows.push(row(&mm.name, "Итого по муниципалитету", &mm.total));
    }
    t.rows.push(row("Всего", "", &m.total));
    let doc = ReportDoc {
        title: "Еженедельный мониторинг: ЕСИА, Сферум, портфолио".into(),
        subtitle: format!("на {}", m.generated_on.format("%d.%m.%Y")),
        tables: vec![t],
    };
    let bytes = to_xlsx(&doc).map_err(WebError::internal)?;
    let name = format!("zhurnal-monitoring-{}.xlsx", m.generated_on);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}

struct DeadView {
    id: i64,
    topic: String,
    subject: String,
    attempts: i64,
    error: String,
    created: String,
}

struct StudentView {
    name: String,
    class: String,
    delivered: i64,
    no_identifier: i64,
    pending: i64,
    failed: i64,
    last: String,
}

struct ChatView {
    class: String,
    required: bool,
    chat_id: String,
    members: String,
}

#[derive(Template)]
#[template(path = "integrations_status.html")]
struct StatusPage {
    nav: Option<Nav>,
    csrf: String,
    school_id: i64,
    school_name: String,
    sferum: String,
    portfolio: bool,
    pending: usize,
    dead: Vec<DeadView>,
    chats: Vec<ChatView>,
    students: Vec<StudentView>,
}

/// GET /admin/schools/{school}/integrations: deliveries, dead letters, per-student status.
pub async fn status(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(school): Path<i64>,
) -> Result<Response, WebError> {
    let s: SchoolIntegrationStatus =
        state.app.integration_status(&user.actor, SchoolId(school)).await?;
    let off = state.app.rules.utc_offset_hours;
    render(StatusPage {
        nav: Some(Nav::for_user(&user)),
        csrf: user.session.csrf_token.clone(),
        school_id: school,
        school_name: s.school.name.clone(),
        sferum: s.sferum.unwrap_or_else(|| "не подключён".into()),
        portfolio: s.portfolio,
        pending: s.pending,
        dead: s
            .dead
            .iter()
            .map(|e| DeadView {
                id: e.id,
                topic: e.topic.clone(),
                subject: e.subject.clone(),
                attempts: e.attempts,
                error: e.last_error.clone().unwrap_or_default(),
                created: format_instant(e.created_at, off),
            })
            .collect(),
        chats: s
            .chats
            .iter()
            .map(|c| ChatView {
                class: c.class.clone(),
                required: c.required,
                chat_id: c.chat.as_ref().map(|x| x.chat_id.clone()).unwrap_or_default(),
                members: c
                    .chat
                    .as_ref()
                    .map(|x| format!("{} из {}", x.members_joined, x.members_required))
                    .unwrap_or_else(|| "—".into()),
            })
            .collect(),
        students: s
            .students
            .iter()
            .map(|x| StudentView {
                name: x.name.clone(),
                class: x.class.clone(),
                delivered: x.delivered,
                no_identifier: x.no_identifier,
                pending: x.pending,
                failed: x.failed,
                last: x.last_delivered_at.map(|t| format_instant(t, off)).unwrap_or_default(),
            })
            .collect(),
    })
}

/// POST /admin/schools/{school}/integrations/replay/{event}: a dead letter back to the queue.
pub async fn replay(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((school, event)): Path<(i64, i64)>,
) -> Result<Response, WebError> {
    state.app.replay_school_event(&user.actor, SchoolId(school), event).await?;
    Ok(see_other(&format!("/admin/schools/{school}/integrations"), vec![]))
}

#[derive(Template)]
#[template(path = "integrations_chat.html")]
struct ChatPage {
    nav: Option<Nav>,
    c: ChatInstructions,
    synced: String,
}

impl ChatPage {
    fn role_title(role: &str) -> &'static str {
        match role {
            "class_teacher" => "классный руководитель",
            "teacher" => "учитель",
            "student" => "ученик",
            "parent" => "родитель",
            _ => "участник",
        }
    }
}

/// GET /classes/{class}/chat: the class chat in Сферум, or how to set it up by hand.
pub async fn chat(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(class): Path<i64>,
) -> Result<Response, WebError> {
    let c = state.app.chat_instructions(&user.actor, ClassId(class)).await?;
    let synced = c
        .chat
        .as_ref()
        .map(|x| format_instant(x.synced_at, state.app.rules.utc_offset_hours))
        .unwrap_or_default();
    render(ChatPage { nav: Some(Nav::for_user(&user)), c, synced })
}

#[derive(Template)]
#[template(path = "integrations_public.html")]
struct PublicPage {
    nav: Option<Nav>,
    school_name: String,
    comm: Option<SchoolCommunication>,
    updated: String,
}

/// GET /schools/{school}/communication: public, no login (the 2024 letter: schools publish
/// their communication services and who is responsible).
pub async fn public_page(
    State(state): State<AppState>,
    Path(school): Path<i64>,
) -> Result<Response, WebError> {
    let (row, comm) = state
        .app
        .school_communication(SchoolId(school))
        .await
        .map_err(|_| WebError::NotFound("школа не найдена".into(), false))?;
    let updated = comm
        .as_ref()
        .map(|c| format_instant(c.updated_at, state.app.rules.utc_offset_hours))
        .unwrap_or_default();
    render(PublicPage { nav: None, school_name: row.name, comm, updated })
}

#[derive(Template)]
#[template(path = "integrations_comm_edit.html")]
struct EditPage {
    nav: Option<Nav>,
    csrf: String,
    school_id: i64,
    school_name: String,
    services: Vec<CommService>,
    responsible: Vec<ResponsiblePerson>,
    error: Option<String>,
    saved: bool,
}

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    saved: Option<u8>,
}

/// Rows in the editor: the saved ones plus empty ones to fill.
const EDIT_ROWS: usize = 4;

/// GET /admin/schools/{school}/communication.
pub async fn edit_page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(school): Path<i64>,
    Query(q): Query<SavedQuery>,
) -> Result<Response, WebError> {
    let row = state.app.store.get_school(SchoolId(school)).await?;
    zhurnal_domain::authorize(
        &user.actor,
        zhurnal_domain::Action::ManageSchool,
        &zhurnal_domain::policy::Resource::School(row.place()),
    )?;
    let comm =
        state.app.store.get_school_communication(SchoolId(school)).await?.unwrap_or_else(|| {
            SchoolCommunication {
                services: vec![CommService {
                    name: "Сферум".into(),
                    purpose: "чаты классов, видеозвонки, объявления".into(),
                    url: "https://sferum.ru".into(),
                }],
                ..SchoolCommunication::default()
            }
        });
    render(edit(&user, school, row.name, comm, None, q.saved.is_some()))
}

fn edit(
    user: &CurrentUser,
    school: i64,
    name: String,
    comm: SchoolCommunication,
    error: Option<String>,
    saved: bool,
) -> EditPage {
    let mut services = comm.services;
    let mut responsible = comm.responsible;
    while services.len() < EDIT_ROWS {
        services.push(CommService::default());
    }
    while responsible.len() < EDIT_ROWS {
        responsible.push(ResponsiblePerson::default());
    }
    EditPage {
        nav: Some(Nav::for_user(user)),
        csrf: user.session.csrf_token.clone(),
        school_id: school,
        school_name: name,
        services,
        responsible,
        error,
        saved,
    }
}

/// POST /admin/schools/{school}/communication: fields `service_name`, `service_purpose`,
/// `service_url`, `person_name`, `person_position`, `person_contact`, repeated per row.
pub async fn save(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(school): Path<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let pick = |k: &str| -> Vec<String> {
        form.iter().filter(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).collect()
    };
    let (sn, sp, su) = (pick("service_name"), pick("service_purpose"), pick("service_url"));
    let (pn, pp, pc) = (pick("person_name"), pick("person_position"), pick("person_contact"));
    let at = |v: &Vec<String>, i: usize| v.get(i).cloned().unwrap_or_default();
    let comm = SchoolCommunication {
        services: (0..sn.len())
            .map(|i| CommService { name: at(&sn, i), purpose: at(&sp, i), url: at(&su, i) })
            .collect(),
        responsible: (0..pn.len())
            .map(|i| ResponsiblePerson {
                name: at(&pn, i),
                position: at(&pp, i),
                contact: at(&pc, i),
            })
            .collect(),
        updated_at: wall_micros(),
    };
    match state.app.set_school_communication(&user.actor, SchoolId(school), comm.clone()).await {
        Ok(()) => Ok(see_other(&format!("/admin/schools/{school}/communication?saved=1"), vec![])),
        Err(zhurnal_app::AppError::Invalid(msg)) => {
            let row = state.app.store.get_school(SchoolId(school)).await?;
            let page = edit(&user, school, row.name, comm, Some(msg), false);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html_headers(), page.render()?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
