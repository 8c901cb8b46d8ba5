//! The ESIA door: `/login` starts an attempt bound to this browser, `/auth/callback` finishes
//! it, `/logout` ends the session here and then at ESIA. Every refusal shows a page that says
//! what happened and whom to contact, creates no session, and is written to the audit log.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zhurnal_app::login::{AuditContext, IdentityClaims, KidClaims, LoginOutcome};
use zhurnal_store::{LoginAttempt, NewAudit, SessionRow};

use crate::session::{ClientIp, CurrentUser, cookie, hash_token, random_token};
use crate::{AppState, WebError, html_headers, see_other};

#[derive(Deserialize)]
pub struct LoginQuery {
    login_hint: Option<String>,
    next: Option<String>,
}

/// Only local paths are accepted as the post-login destination (no open redirect).
fn safe_next(next: Option<&str>) -> Option<String> {
    next.filter(|n| {
        n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.len() < 512
    })
    .map(str::to_string)
}

pub async fn login(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let hint = q.login_hint.as_deref().filter(|_| state.config.allow_login_hint);
    let request = state
        .idp
        .authorization_request(hint, true, app.clock.now())
        .map_err(|e| WebError::internal(format!("authorization request: {e}")))?;
    let browser = random_token();
    let attempt = LoginAttempt {
        state_hash: hash_token(&request.state),
        browser_hash: hash_token(&browser),
        code_verifier: request.code_verifier.clone(),
        created_at: app.now_micros(),
        next: safe_next(q.next.as_deref()),
        login_hint: hint.map(str::to_string),
    };
    app.store.insert_login_attempt(&attempt).await?;
    let max_age = state.config.login_attempt_minutes * 60;
    Ok(see_other(
        request.url.as_str(),
        vec![state.set_cookie(state.prelogin_cookie_name(), &browser, Some(max_age))],
    ))
}

#[derive(Template)]
#[template(path = "refusal.html")]
struct RefusalPage<'a> {
    title: &'a str,
    explanation: &'a str,
    code: &'a str,
}

/// Renders a refusal, audits it and clears the pre-login cookie.
async fn refuse(
    state: &AppState,
    ctx: &AuditContext,
    reason: &str,
    title: &str,
    explanation: &str,
    audited: bool,
) -> Result<Response, WebError> {
    if !audited {
        let audit = ctx.event(state.app.now_micros(), "login.refused", "refused").reason(reason);
        state.app.store.append_audit(audit).await?;
    }
    let html = RefusalPage { title, explanation, code: reason }.render()?;
    let mut res = (StatusCode::FORBIDDEN, html_headers(), html).into_response();
    res.headers_mut().append(
        axum::http::header::SET_COOKIE,
        state.set_cookie(state.prelogin_cookie_name(), "", Some(0)),
    );
    Ok(res)
}

pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let mut ctx = AuditContext { source_ip: ip, session_hash: None };
    const RETRY: &str = "Начните вход заново с главной страницы. Если ошибка повторяется, обратитесь в поддержку вашей школы.";

    let Some(browser) = cookie(&headers, state.prelogin_cookie_name()) else {
        return refuse(
            &state,
            &ctx,
            "missing_prelogin",
            "Вход не начат в этом браузере",
            RETRY,
            false,
        )
        .await;
    };
    ctx.session_hash = Some(hash_token(&browser).chars().take(16).collect());
    let Some(returned_state) = query.get("state") else {
        return refuse(&state, &ctx, "missing_state", "Ответ Госуслуг неполон", RETRY, false).await;
    };
    // Taking the attempt deletes it: a state works once, whatever happens next.
    let Some(attempt) = app.store.take_login_attempt(&hash_token(returned_state)).await? else {
        return refuse(
            &state,
            &ctx,
            "state_unknown",
            "Ссылка входа недействительна или уже использована",
            RETRY,
            false,
        )
        .await;
    };
    if !crate::constant_time_eq(attempt.browser_hash.as_bytes(), hash_token(&browser).as_bytes()) {
        return refuse(
            &state,
            &ctx,
            "state_other_browser",
            "Вход начат в другом браузере",
            RETRY,
            false,
        )
        .await;
    }
    if app.now_micros() - attempt.created_at > state.config.login_attempt_minutes * 60 * 1_000_000 {
        return refuse(&state, &ctx, "state_expired", "Время на вход истекло", RETRY, false).await;
    }
    let code = match state.idp.parse_callback(&query, returned_state) {
        Ok(code) => code,
        Err(e) => {
            let msg = e.user_message_ru();
            return refuse(
                &state,
                &ctx,
                e.reason_code(),
                "Вход через Госуслуги не выполнен",
                &msg,
                false,
            )
            .await;
        }
    };
    let login = match state.idp.exchange_code(&code, &attempt.code_verifier, app.clock.now()).await
    {
        Ok(l) => l,
        Err(e) => {
            let msg = e.user_message_ru();
            return refuse(
                &state,
                &ctx,
                e.reason_code(),
                "Вход через Госуслуги не выполнен",
                &msg,
                false,
            )
            .await;
        }
    };
    let person = match state.idp.person(&login).await {
        Ok(p) => p,
        Err(e) => {
            let msg = e.user_message_ru();
            return refuse(
                &state,
                &ctx,
                e.reason_code(),
                "Не удалось получить данные из Госуслуг",
                &msg,
                false,
            )
            .await;
        }
    };
    // Children come only with the parent's consent to the kid scopes; their absence is normal.
    let kids = match state.idp.kids(&login).await {
        Ok(k) => k,
        Err(e) => {
            tracing::info!(reason = e.reason_code(), "no children from ESIA");
            Vec::new()
        }
    };
    let claims = IdentityClaims {
        oid: login.oid.clone(),
        trusted: login.trusted && person.trusted,
        birth_date: person.birth_date,
        snils: person.snils.clone(),
    };
    let kid_claims: Vec<KidClaims> = kids
        .iter()
        .map(|k| KidClaims { birth_date: k.birth_date, snils: k.snils.clone() })
        .collect();
    let person = match app.resolve_login(&claims, &kid_claims, &ctx).await? {
        LoginOutcome::Accepted { person, .. } => *person,
        LoginOutcome::Refused(r) => {
            return refuse(&state, &ctx, r.code(), r.title(), r.explanation(), true).await;
        }
    };

    let token = random_token();
    let now = app.now_micros();
    let session = SessionRow {
        id_hash: hash_token(&token),
        person_id: person.id,
        created_at: now,
        last_seen_at: now,
        csrf_token: random_token(),
        source_ip: ctx.source_ip.clone(),
        active_role: None,
    };
    let audit = NewAudit::new(now, "login.success", "ok")
        .actor(person.id.0, "person")
        .target("person", &person.uid)
        .ip(ctx.source_ip.clone())
        .session(Some(session.id_hash.chars().take(16).collect()))
        .details(serde_json::json!({ "esia_oid": login.oid, "trusted": claims.trusted }));
    app.store.create_session(&session, audit).await?;
    let next = attempt.next.unwrap_or_else(|| "/home".to_string());
    Ok(see_other(
        &next,
        vec![
            state.set_cookie(state.session_cookie_name(), &token, None),
            state.set_cookie(state.prelogin_cookie_name(), "", Some(0)),
        ],
    ))
}

pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    let audit = user
        .audit_context()
        .event(state.app.now_micros(), "logout", "ok")
        .actor(user.person.id.0, user.audit_role());
    state.app.store.delete_session(&user.session.id_hash, Some(audit)).await?;
    Ok(see_other(
        state.idp.logout_url().as_str(),
        vec![state.set_cookie(state.session_cookie_name(), "", Some(0))],
    ))
}
