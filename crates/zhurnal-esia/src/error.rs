//! The one error type of the crate, with a stable audit reason and a Russian user message.

use crate::codes;

/// Everything that can end an ESIA login attempt.
///
/// `Display` is technical English for logs and never contains tokens, codes or keys;
/// [`EsiaError::user_message_ru`] is what the refusal page shows and
/// [`EsiaError::reason_code`] is what the audit log records.
#[derive(Debug, thiserror::Error)]
pub enum EsiaError {
    /// ESIA returned to our callback with `error` (user cancel, unconfirmed account, …).
    #[error("ESIA callback error {error}: {description}")]
    Callback {
        /// The `ESIA-0070xx` code from `error_description`, when it has one.
        code: Option<String>,
        /// The OAuth `error` value.
        error: String,
        /// ESIA's `error_description`, verbatim.
        description: String,
    },
    /// The `state` of the callback is missing or not the one this browser started with.
    #[error("state of the callback does not match the login attempt")]
    StateMismatch,
    /// The token endpoint refused the exchange (HTTP 4xx with an OAuth error body).
    #[error("ESIA token endpoint refused the request (HTTP {status}) {error}: {description}")]
    TokenEndpoint {
        /// HTTP status.
        status: u16,
        /// The OAuth `error` value.
        error: String,
        /// ESIA's `error_description`, verbatim.
        description: String,
    },
    /// ESIA could not be reached or is overloaded (network error, timeout, 5xx, ESIA-007008).
    #[error("ESIA unavailable: {0}")]
    Unavailable(String),
    /// A token failed verification; `reason` is one of the stable codes `bad_signature`,
    /// `alg_not_allowed`, `wrong_issuer`, `wrong_audience`, `expired`, `not_yet_valid`,
    /// `state_mismatch`, `subject_mismatch`, `malformed`, and `code_replayed` (the
    /// authorization code was already exchanged by this process; refused before calling ESIA).
    #[error("ESIA token rejected: {reason}")]
    InvalidToken {
        /// Stable snake_case reason.
        reason: &'static str,
    },
    /// Our configuration is unusable (missing file, bad URL, key and certificate disagree…).
    #[error("ESIA configuration error: {0}")]
    Config(String),
    /// Signing the request failed (key file, external signer command).
    #[error("ESIA request signing failed: {0}")]
    Signer(String),
    /// ESIA answered something we cannot interpret (missing fields, bad JSON, unexpected status).
    #[error("ESIA protocol error: {0}")]
    Protocol(String),
}

impl EsiaError {
    /// The `ESIA-0070xx` row this error refers to, if any.
    pub fn esia_code(&self) -> Option<&'static codes::EsiaCode> {
        match self {
            EsiaError::Callback { code, description, .. } => code
                .as_deref()
                .and_then(codes::lookup)
                .or_else(|| codes::code_in(description).as_deref().and_then(codes::lookup)),
            EsiaError::TokenEndpoint { description, .. } => {
                codes::code_in(description).as_deref().and_then(codes::lookup)
            }
            _ => None,
        }
    }

    /// Stable snake_case code for the audit log.
    ///
    /// For ESIA errors with a known `ESIA-0070xx` code this is the table's reason
    /// (e.g. `user_cancelled`, `client_secret_wrong`); otherwise one per variant.
    pub fn reason_code(&self) -> &'static str {
        if let Some(code) = self.esia_code() {
            return code.reason;
        }
        match self {
            EsiaError::Callback { .. } => "esia_callback_error",
            EsiaError::StateMismatch => "state_mismatch",
            EsiaError::TokenEndpoint { .. } => "token_endpoint_error",
            EsiaError::Unavailable(_) => "esia_unavailable",
            EsiaError::InvalidToken { reason } => reason,
            EsiaError::Config(_) => "config_error",
            EsiaError::Signer(_) => "signer_error",
            EsiaError::Protocol(_) => "protocol_error",
        }
    }

    /// A Russian sentence for the refusal page: what happened and what to do.
    pub fn user_message_ru(&self) -> String {
        if let Some(code) = self.esia_code() {
            return code.user_message_ru.to_owned();
        }
        let s = match self {
            EsiaError::Callback { .. } | EsiaError::TokenEndpoint { .. } => {
                let shown = match self {
                    EsiaError::Callback { code: Some(c), .. } => format!(" (код {c})"),
                    EsiaError::TokenEndpoint { status, .. } => format!(" (HTTP {status})"),
                    _ => String::new(),
                };
                return format!(
                    "Госуслуги отклонили вход{shown}. Начните вход заново со страницы журнала; \
                     если ошибка повторится, сообщите администратору школы."
                );
            }
            EsiaError::StateMismatch => {
                "Попытка входа устарела или была начата в другой вкладке или браузере. \
                 Начните вход заново со страницы журнала."
            }
            EsiaError::Unavailable(_) => {
                "Госуслуги (ЕСИА) сейчас недоступны. Попробуйте войти через несколько минут."
            }
            EsiaError::InvalidToken { reason: "code_replayed" } => {
                "Эта ссылка входа уже была использована. Начните вход заново со страницы журнала."
            }
            EsiaError::InvalidToken { reason: "expired" | "not_yet_valid" } => {
                "Ответ Госуслуг устарел или пришёл раньше срока (возможно, неверно идут часы \
                 сервера). Начните вход заново; если ошибка повторится, сообщите администратору \
                 школы."
            }
            EsiaError::InvalidToken { .. } => {
                "Ответ Госуслуг не прошёл проверку подлинности, поэтому вход отклонён. Начните \
                 вход заново; если ошибка повторится, сообщите администратору школы."
            }
            EsiaError::Config(_) | EsiaError::Signer(_) => {
                "Вход через Госуслуги сейчас невозможен из-за ошибки настройки журнала. \
                 Сообщите администратору школы."
            }
            EsiaError::Protocol(_) => {
                "Госуслуги прислали ответ, который журнал не смог разобрать. Попробуйте войти \
                 ещё раз позже; если ошибка повторится, сообщите администратору школы."
            }
        };
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(code: Option<&str>, description: &str) -> EsiaError {
        EsiaError::Callback {
            code: code.map(str::to_owned),
            error: "access_denied".into(),
            description: description.into(),
        }
    }

    #[test]
    fn reason_codes_come_from_the_table_when_a_code_is_known() {
        assert_eq!(callback(Some("ESIA-007004"), "ESIA-007004: x").reason_code(), "user_cancelled");
        // The code may be known only from the description.
        assert_eq!(callback(None, "ESIA-007055: x").reason_code(), "unconfirmed_account");
        assert_eq!(callback(None, "whatever").reason_code(), "esia_callback_error");
        let te = EsiaError::TokenEndpoint {
            status: 400,
            error: "invalid_grant".into(),
            description: "ESIA-007011: used".into(),
        };
        assert_eq!(te.reason_code(), "code_invalid");
        assert!(te.user_message_ru().contains("Ссылка входа"));
        let te =
            EsiaError::TokenEndpoint { status: 400, error: "x".into(), description: "y".into() };
        assert_eq!(te.reason_code(), "token_endpoint_error");
        assert!(te.user_message_ru().contains("HTTP 400"));
    }

    #[test]
    fn every_variant_has_a_reason_and_a_russian_message() {
        let all = [
            callback(Some("ESIA-007004"), ""),
            EsiaError::StateMismatch,
            EsiaError::Unavailable("x".into()),
            EsiaError::InvalidToken { reason: "bad_signature" },
            EsiaError::InvalidToken { reason: "code_replayed" },
            EsiaError::InvalidToken { reason: "expired" },
            EsiaError::Config("x".into()),
            EsiaError::Signer("x".into()),
            EsiaError::Protocol("x".into()),
        ];
        let expected = [
            "user_cancelled",
            "state_mismatch",
            "esia_unavailable",
            "bad_signature",
            "code_replayed",
            "expired",
            "config_error",
            "signer_error",
            "protocol_error",
        ];
        for (e, r) in all.iter().zip(expected) {
            assert_eq!(e.reason_code(), r);
            let m = e.user_message_ru();
            assert!(m.ends_with('.'), "{m}");
            assert!(m.chars().any(|c| ('а'..='я').contains(&c)), "{m}");
        }
        assert!(callback(Some("ESIA-007004"), "").user_message_ru().contains("Разрешить"));
    }
}
