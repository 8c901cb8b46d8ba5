//! The simulator's server-rendered pages (no JavaScript).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::SimPerson;

/// Escapes text for HTML element content and double-quoted attributes. Persona names and
/// titles come from a fixture file, so they are data, never markup.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A complete page; `body_html` must already be escaped.
pub(crate) fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} — симулятор ЕСИА</title>\
         <style>body{{font-family:sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}\
         label{{display:block;margin:.5rem 0;padding:.5rem;border:1px solid #ccc;border-radius:4px}}\
         .note{{color:#555}} button{{font-size:1rem;margin:1rem .5rem 0 0;padding:.5rem 1.2rem}}\
         </style></head><body>\
         <p class=\"note\">Симулятор ЕСИА для разработки и тестов. Это не Госуслуги.</p>\
         <h1>{t}</h1>\n{body_html}\n</body></html>\n",
        t = escape(title)
    );
    let mut r = (status, Html(html)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        // No form-action: browsers apply it to the redirect back to the relying party.
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

/// An error page; nothing is redirected.
pub(crate) fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<p>{}</p><p class=\"note\">Вход не выполнен; браузер не возвращён в систему.</p>",
            escape(detail)
        ),
    )
}

fn scope_ru(scope: &str) -> &str {
    match scope {
        "openid" => "идентификатор учётной записи",
        "fullname" => "ФИО",
        "birthdate" => "дата рождения",
        "gender" => "пол",
        "snils" => "СНИЛС",
        "inn" => "ИНН",
        "email" => "адрес электронной почты",
        "mobile" => "номер мобильного телефона",
        "contacts" => "контакты",
        "kid_fullname" => "ФИО детей",
        "kid_birthdate" => "даты рождения детей",
        "kid_gender" => "пол детей",
        "kid_snils" => "СНИЛС детей",
        "kid_inn" => "ИНН детей",
        other => other,
    }
}

/// The person picker: one radio button per persona, «Разрешить» / «Отказаться».
pub(crate) fn picker(
    request_id: &str,
    client_id: &str,
    scopes: &[String],
    persons: &[SimPerson],
) -> Response {
    let mut body = format!(
        "<p>Система <b>{}</b> запрашивает доступ к данным: {}.</p>\n\
         <form method=\"post\" action=\"/sim/consent\">\n\
         <input type=\"hidden\" name=\"request_id\" value=\"{}\">\n\
         <fieldset><legend>Выберите, кем войти</legend>\n",
        escape(client_id),
        escape(&scopes.iter().map(|s| scope_ru(s)).collect::<Vec<_>>().join(", ")),
        escape(request_id),
    );
    for (i, p) in persons.iter().enumerate() {
        let name =
            [Some(p.last_name.as_str()), Some(p.first_name.as_str()), p.middle_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
        let status = if p.trusted {
            "подтверждённая учётная запись"
        } else {
            "неподтверждённая учётная запись"
        };
        body.push_str(&format!(
            "<label><input type=\"radio\" name=\"person\" value=\"{id}\"{checked}> \
             <b>{name}</b> <code>{id}</code><br><span class=\"note\">{title}; {status}</span>\
             </label>\n",
            id = escape(&p.id),
            checked = if i == 0 { " checked" } else { "" },
            name = escape(&name),
            title = escape(&p.title),
        ));
    }
    body.push_str(
        "</fieldset>\n\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Разрешить</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Отказаться</button>\n\
         </form>",
    );
    page(StatusCode::OK, "Вход через ЕСИА", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("Кузнецов"), "Кузнецов");
    }
}
