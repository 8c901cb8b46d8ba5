//! The one map from failures to HTTP responses. Browsers get a Russian HTML page, `/api/*`
//! gets `application/problem+json` with a stable code. Causes are logged once here, with a
//! request id the user can quote; internal text never reaches the client.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use zhurnal_app::AppError;
use zhurnal_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("требуется вход")]
    Unauthenticated { api: bool },
    #[error("{0}")]
    Denied(String, bool),
    #[error("{0}")]
    NotFound(String, bool),
    #[error("{0}")]
    BadRequest(String, bool),
    #[error("{0}")]
    RateLimited(String, bool),
    #[error("{0}")]
    TooLarge(String, bool),
    #[error("запрос отклонён: {0}")]
    Csrf(&'static str),
    #[error("база данных временно недоступна")]
    Unavailable(String),
    /// The server is doing as much of this as it may at once; the message says to come back.
    #[error("{0}")]
    Busy(String, bool),
    #[error("внутренняя ошибка")]
    Internal(String, bool),
}

impl WebError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string(), false)
    }

    pub fn from_app(e: AppError, api: bool) -> Self {
        match e {
            // A refusal and an absence look the same to the caller (no existence leak).
            AppError::Denied(d) => Self::Denied(d.to_string(), api),
            AppError::Store(StoreError::NotFound(what)) => Self::NotFound(what, api),
            AppError::Store(StoreError::Unavailable(why)) => Self::Unavailable(why),
            AppError::Invalid(msg) => Self::BadRequest(msg, api),
            AppError::RateLimited(msg) => Self::RateLimited(msg, api),
            AppError::Busy(msg) => Self::Busy(msg, api),
            other => Self::Internal(format!("{other:?}"), api),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::Denied(..) | Self::Csrf(_) => StatusCode::FORBIDDEN,
            Self::NotFound(..) => StatusCode::NOT_FOUND,
            Self::BadRequest(..) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::TooLarge(..) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) | Self::Busy(..) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(..) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::Denied(..) => "forbidden",
            Self::Csrf(_) => "csrf",
            Self::NotFound(..) => "not_found",
            Self::BadRequest(..) => "invalid",
            Self::RateLimited(..) => "rate_limited",
            Self::TooLarge(..) => "too_large",
            Self::Unavailable(_) => "unavailable",
            Self::Busy(..) => "busy",
            Self::Internal(..) => "internal",
        }
    }

    fn api(&self) -> bool {
        match self {
            Self::Unauthenticated { api } => *api,
            Self::Denied(_, a)
            | Self::NotFound(_, a)
            | Self::BadRequest(_, a)
            | Self::RateLimited(_, a)
            | Self::TooLarge(_, a)
            | Self::Busy(_, a)
            | Self::Internal(_, a) => *a,
            Self::Csrf(_) | Self::Unavailable(_) => false,
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Unauthenticated { .. } => "Войдите через Госуслуги, чтобы продолжить.".into(),
            Self::Denied(msg, _) => msg.clone(),
            Self::NotFound(..) => "Страница или запись не найдена.".into(),
            Self::BadRequest(msg, _)
            | Self::RateLimited(msg, _)
            | Self::TooLarge(msg, _)
            | Self::Busy(msg, _) => msg.clone(),
            Self::Csrf(why) => format!(
                "Запрос отклонён защитой от подделки ({why}). Обновите страницу и повторите."
            ),
            Self::Unavailable(_) => {
                "Сервис временно недоступен. Повторите попытку через минуту.".into()
            }
            Self::Internal(..) => {
                "Произошла внутренняя ошибка. Сообщите номер запроса администратору.".into()
            }
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
    request_id: &'a str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let request_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        match &self {
            Self::Internal(cause, _) | Self::Unavailable(cause) => {
                tracing::error!(request_id, %status, cause, "request failed");
            }
            _ => tracing::info!(request_id, %status, code = self.code(), "request refused"),
        }
        let message = self.public_message();
        if self.api() {
            let body = serde_json::json!({
                "type": format!("https://zhurnal.invalid/problems/{}", self.code()),
                "title": status.canonical_reason().unwrap_or("error"),
                "status": status.as_u16(),
                "code": self.code(),
                "detail": message,
                "request_id": request_id,
            });
            return (
                status,
                [(header::CONTENT_TYPE, "application/problem+json")],
                body.to_string(),
            )
                .into_response();
        }
        let title = match status {
            StatusCode::UNAUTHORIZED => "Требуется вход",
            StatusCode::FORBIDDEN => "Нет доступа",
            StatusCode::NOT_FOUND => "Не найдено",
            StatusCode::UNPROCESSABLE_ENTITY => "Ошибка в данных",
            StatusCode::TOO_MANY_REQUESTS => "Слишком много запросов",
            StatusCode::SERVICE_UNAVAILABLE => "Сервис недоступен",
            _ => "Ошибка",
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message: &message,
            request_id: &request_id,
        };
        match page.render() {
            Ok(html) => (status, crate::html_headers(), html).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        Self::from_app(e, false)
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        Self::from_app(AppError::Store(e), false)
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        Self::internal(e)
    }
}

impl From<zhurnal_domain::Denied> for WebError {
    fn from(d: zhurnal_domain::Denied) -> Self {
        Self::Denied(d.to_string(), false)
    }
}
