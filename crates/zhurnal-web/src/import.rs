//! Area `import` (issue 7), the web part: the upload page of a school admin (their school)
//! and a regional admin (the region) for a Zhurnal CSV set or a OneRoster 1.1 ZIP, the
//! template files, and the region's migration register with the acts of destruction as PDF.
//! Access goes through the domain policy (`ImportData`, `ViewMigration`); the import itself
//! checks every row of the batch against the uploader's territory.

use askama::Template;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use zhurnal_app::export::to_pdf;
use zhurnal_app::import::xlsx as zcsv_xlsx;
use zhurnal_app::import::{Format, ImportOutcome, ImportedBy, Issue, Source, zcsv};
use zhurnal_domain::policy::Resource;
use zhurnal_domain::{Action, Role, RoleScope, authorize};

use crate::pages::Nav;
use crate::session::CurrentUser;
use crate::{AppState, WebError, html_headers};

/// The largest upload accepted (the whole multipart request). Imports of one school are well
/// below this; a region's full set is loaded with `zhurnal import` on the server.
pub const UPLOAD_BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Template)]
#[template(path = "import_upload.html")]
struct UploadPage {
    nav: Option<Nav>,
    scope: String,
    formats: Vec<(&'static str, &'static str, bool)>,
    is_regional: bool,
    result: Option<UploadResult>,
}

enum UploadResult {
    Invalid { file: String, issues: Vec<Issue>, total: u64 },
    Applied { file: String, rows: u64, inserted: u64, updated: u64, unchanged: u64 },
}

#[derive(Template)]
#[template(path = "import_region.html")]
struct RegionPage {
    nav: Option<Nav>,
    schools: Vec<SchoolLine>,
    acts: Vec<ActLine>,
}

struct SchoolLine {
    name: String,
    external_id: String,
    imported: String,
    verified: String,
    purged: Option<(String, String)>,
}

struct ActLine {
    href: String,
    number: String,
    at: String,
    reason: String,
    by: String,
}

/// What the user may load: a text for the page, and whether it is the whole region.
async fn import_scope(state: &AppState, user: &CurrentUser) -> Result<(String, bool), WebError> {
    let mut schools = Vec::new();
    for (role, scope) in &user.actor.grants {
        match (role, scope) {
            (Role::RegionalAdmin, RoleScope::Region(r))
                if authorize(&user.actor, Action::ImportData, &Resource::Region(*r)).is_ok() =>
            {
                return Ok(("все школы региона".into(), true));
            }
            (Role::SchoolAdmin, RoleScope::School(s)) => {
                let school = state.app.store.get_school(*s).await?;
                if authorize(&user.actor, Action::ImportData, &Resource::School(school.place()))
                    .is_ok()
                {
                    schools.push(school.name);
                }
            }
            _ => {}
        }
    }
    if schools.is_empty() {
        return Err(WebError::Denied(
            "Загрузка данных из прежней системы доступна администратору школы и региональному администратору.".into(),
            false,
        ));
    }
    Ok((schools.join(", "), false))
}

/// The region whose register and acts the user sees (regional admin only).
fn region_of(user: &CurrentUser) -> Result<zhurnal_domain::RegionId, WebError> {
    user.actor
        .grants
        .iter()
        .find_map(|(role, scope)| match (role, scope) {
            (Role::RegionalAdmin, RoleScope::Region(r))
                if authorize(&user.actor, Action::ViewMigration, &Resource::Region(*r)).is_ok() =>
            {
                Some(*r)
            }
            _ => None,
        })
        .ok_or_else(|| {
            WebError::Denied(
                "Ход перехода школ региона и акты об уничтожении видит региональный администратор."
                    .into(),
                false,
            )
        })
}

fn formats(selected: Format) -> Vec<(&'static str, &'static str, bool)> {
    Format::ALL.iter().map(|f| (f.code(), f.title(), *f == selected)).collect()
}

fn page(
    user: &CurrentUser,
    scope: (String, bool),
    format: Format,
    result: Option<UploadResult>,
) -> UploadPage {
    UploadPage {
        nav: Some(Nav::for_user(user)),
        scope: scope.0,
        is_regional: scope.1,
        formats: formats(format),
        result,
    }
}

/// GET /import — the upload form.
pub async fn upload_page(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    let scope = import_scope(&state, &user).await?;
    crate::pages::render(page(&user, scope, Format::ZhurnalCsv, None))
}

/// A file name safe to keep on disk and to show (letters, digits, `.-_`).
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(100)
        .collect();
    if cleaned.is_empty() || cleaned.starts_with('.') { "upload.zip".into() } else { cleaned }
}

/// POST /import — multipart: `csrf` (checked by the guard), `format`, `file` (a ZIP of CSV
/// files or an XLSX workbook).
/// Validation over everything first; 422 with every problem and nothing written, or the
/// counts of what was written.
pub async fn upload(
    State(state): State<AppState>,
    user: CurrentUser,
    req: Request,
) -> Result<Response, WebError> {
    // The policy first: a refused user learns nothing from how their body is parsed.
    let scope = import_scope(&state, &user).await?;
    let bad = |m: &str| WebError::BadRequest(m.to_string(), false);
    let mut multipart = Multipart::from_request(req, &state)
        .await
        .map_err(|_| bad("Ожидалась форма загрузки файла (multipart/form-data)."))?;
    let mut format = None;
    let mut file: Option<(String, axum::body::Bytes)> = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| WebError::BadRequest(format!("Не удалось прочитать форму: {e}"), false))?
    {
        match field.name() {
            Some("format") => {
                let v = field.text().await.map_err(|_| bad("Поле «формат» не читается."))?;
                format = Some(Format::from_code(v.trim()).ok_or_else(|| {
                    bad("Неизвестный формат: выберите «набор Zhurnal (CSV или XLSX)» или «OneRoster 1.1 CSV».")
                })?);
            }
            Some("file") => {
                let name = safe_name(field.file_name().unwrap_or(""));
                let bytes = field.bytes().await.map_err(|e| {
                    WebError::BadRequest(format!("Файл не получен полностью: {e}"), false)
                })?;
                file = Some((name, bytes));
            }
            _ => {}
        }
    }
    let format = format.unwrap_or(Format::ZhurnalCsv);
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Err(bad("Выберите ZIP-архив с файлами CSV или книгу Excel (.xlsx) для загрузки."));
    };
    // The upload is personal data: it lives in a private temporary directory only for the
    // duration of the request and is removed with it.
    let dir = tempfile::tempdir().map_err(WebError::internal)?;
    let path = dir.path().join(&name);
    tokio::fs::write(&path, &bytes).await.map_err(WebError::internal)?;
    let len = bytes.len();
    drop(bytes);
    // A workbook by its name (`*.xlsx`), anything else as a ZIP of CSV files.
    let source = if zcsv_xlsx::is_xlsx(&path) {
        Source::Xlsx(path.clone())
    } else {
        Source::Zip(path.clone())
    };
    let outcome = state.app.import(format, &source, ImportedBy::User(&user.actor)).await;
    // Overwrite before removal, like `zhurnal purge-import` does with sources on disk.
    overwrite(&path, len).map_err(WebError::internal)?;
    drop(dir);
    let outcome = outcome?;
    let (status, result) = match outcome {
        ImportOutcome::Invalid { issues, total } => {
            (StatusCode::UNPROCESSABLE_ENTITY, UploadResult::Invalid { file: name, issues, total })
        }
        ImportOutcome::Applied(s) => (
            StatusCode::OK,
            UploadResult::Applied {
                file: name,
                rows: s.rows,
                inserted: s.stats.inserted,
                updated: s.stats.updated,
                unchanged: s.stats.unchanged,
            },
        ),
    };
    let html = page(&user, scope, format, Some(result)).render()?;
    Ok((status, html_headers(), html).into_response())
}

fn overwrite(path: &std::path::Path, len: usize) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(&vec![0u8; len])?;
    f.sync_all()
}

/// GET /import/templates.zip — the empty files of the Zhurnal CSV set.
pub async fn templates(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    import_scope(&state, &user).await?;
    let zip = zcsv::templates_zip().map_err(WebError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"zhurnal-csv-templates.zip\""),
            (header::CACHE_CONTROL, "no-store"),
        ],
        zip,
    )
        .into_response())
}

/// GET /import/templates.xlsx — the same set as one workbook, a sheet per file.
pub async fn templates_xlsx(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    import_scope(&state, &user).await?;
    let book = zcsv_xlsx::template_workbook().map_err(WebError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"zhurnal-templates.xlsx\""),
            (header::CACHE_CONTROL, "no-store"),
        ],
        book,
    )
        .into_response())
}

fn when(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%d.%m.%Y %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn act_href(number: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(number.as_bytes()).collect();
    format!("/import/acts/{encoded}")
}

/// GET /import/region — every school's migration status and the acts of destruction.
pub async fn region_page(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    let region = region_of(&user)?;
    let app = &state.app;
    let rows = app.store.list_schools().await?;
    let mut schools = Vec::new();
    for m in app.migration_status().await? {
        let Some(row) = rows.iter().find(|s| s.external_id == m.external_id) else { continue };
        if row.region_id != region
            || authorize(&user.actor, Action::ViewMigration, &Resource::School(row.place()))
                .is_err()
        {
            continue;
        }
        let dash = || "—".to_string();
        schools.push(SchoolLine {
            name: m.name,
            external_id: m.external_id,
            imported: m.imported_at.map_or_else(dash, when),
            verified: m.verified_at.map_or_else(dash, when),
            purged: m.source_purged_act.map(|n| (act_href(&n), n)),
        });
    }
    let acts = app
        .store
        .list_destruction_acts()
        .await?
        .into_iter()
        .map(|a| ActLine {
            href: act_href(&a.number),
            at: when(a.at),
            reason: match a.reason.as_str() {
                "retention" => "истёк срок хранения".into(),
                "import_source" => "исходные файлы импорта".into(),
                "manual" => "по решению оператора".into(),
                other => other.to_string(),
            },
            by: a.actor_label,
            number: a.number,
        })
        .collect();
    crate::pages::render(RegionPage { nav: Some(Nav::for_user(&user)), schools, acts })
}

/// GET /import/acts/{act} — the act of destruction as PDF.
pub async fn act_pdf(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(number): Path<String>,
) -> Result<Response, WebError> {
    region_of(&user)?;
    if state.app.store.find_destruction_act(&number).await?.is_none() {
        return Err(WebError::NotFound(format!("акт «{number}»"), false));
    }
    let doc = state.app.destruction_act_doc(&number).await?;
    let pdf = to_pdf(&doc).map_err(WebError::internal)?;
    let file: String = number
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"akt-{file}.pdf\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        pdf,
    )
        .into_response())
}

/// The `csrf` part of a buffered `multipart/form-data` body (for the CSRF guard: a plain
/// HTML form uploading a file cannot set a header).
pub(crate) async fn multipart_csrf(content_type: &str, body: axum::body::Bytes) -> Option<String> {
    let req = axum::http::Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .ok()?;
    let mut multipart = Multipart::from_request(req, &()).await.ok()?;
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some("csrf") {
            return field.text().await.ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(token: &str) -> Vec<u8> {
        format!(
            "--X\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\nzhurnal-csv\r\n\
             --X\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n\
             --X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\n\
             Content-Type: application/zip\r\n\r\nPK\r\n--X--\r\n"
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn the_csrf_part_is_found_after_other_parts() {
        let got = multipart_csrf("multipart/form-data; boundary=X", body("tok").into()).await;
        assert_eq!(got.as_deref(), Some("tok"));
        let none = multipart_csrf("multipart/form-data; boundary=Y", body("tok").into()).await;
        assert_eq!(none, None);
    }

    #[test]
    fn upload_names_are_cleaned() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\данные\\школа 1.zip"), "школа1.zip");
        assert_eq!(safe_name(".."), "upload.zip");
    }
}
