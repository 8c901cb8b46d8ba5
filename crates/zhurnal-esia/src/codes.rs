//! The ESIA error-code table: the one place that says what an `ESIA-0070xx` code means.
//!
//! ESIA reports errors as an OAuth `error` plus an `error_description` that starts with
//! `ESIA-0070xx:`. The authoritative table is an appendix of «Методические рекомендации по
//! использованию ЕСИА», which the team has **not** read yet (see `esia-protocol.md` §3, §7).
//! Most rows below are therefore *unconfirmed*: each entry says where its meaning comes from in
//! [`EsiaCode::source`]. When the MR PDF or a test stand says otherwise, change the row here —
//! the relying party ([`crate::EsiaError`]) and the simulator ([`crate::sim`]) both read only
//! this table, so nothing else needs to move.
//!
//! Known conflict: `esia-protocol.md` §3 lists a positional mapping in which 007011 is
//! "invalid grant", 007013 "wrong auth code", 007015 "wrong client_id" and 007023 "wrong
//! timestamp", while `esia.md` §7 (the spec we build to) says 007011 = code invalid/expired/
//! replayed, 007015 = bad request time, 007023 = redirect_uri not registered. We follow
//! `esia.md` §7 and leave 007013 out until the MR settles it.

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EsiaCode {
    /// The code as ESIA writes it, e.g. `ESIA-007004`.
    pub code: &'static str,
    /// The OAuth 2.0 `error` value that accompanies it (what the simulator sends).
    pub oauth_error: &'static str,
    /// Stable snake_case reason for the audit log; unique across the table.
    pub reason: &'static str,
    /// What the code means, in Russian, for operators and the simulator's `error_description`.
    pub meaning_ru: &'static str,
    /// What we tell the person at the browser: what happened and what to do.
    pub user_message_ru: &'static str,
    /// A temporary ESIA-side failure: retry later ([`crate::EsiaError::Unavailable`]).
    pub transient: bool,
    /// Where the meaning comes from; `unconfirmed` marks rows to check against the MR.
    pub source: &'static str,
}

impl EsiaCode {
    /// `ESIA-0070xx: <meaning>`, the shape of ESIA's `error_description`.
    pub fn description(&self) -> String {
        format!("{}: {}", self.code, self.meaning_ru)
    }

    /// [`Self::description`] with extra detail appended (the simulator says what exactly failed).
    pub fn description_with(&self, detail: &str) -> String {
        if detail.is_empty() {
            self.description()
        } else {
            format!("{}: {} ({detail})", self.code, self.meaning_ru)
        }
    }
}

const TRY_AGAIN: &str = "Начните вход заново со страницы журнала. Если ошибка повторится, \
    сообщите администратору школы код ошибки.";

/// The certificate does not match the system's mnemonic (or the client is unknown).
pub const CERTIFICATE_MISMATCH: EsiaCode = EsiaCode {
    code: "ESIA-007002",
    oauth_error: "invalid_client",
    reason: "certificate_mismatch",
    meaning_ru: "сертификат информационной системы не соответствует её мнемонике",
    user_message_ru: "Госуслуги не признали журнал как зарегистрированную систему (ошибка \
        настройки). Сообщите администратору школы код ошибки ESIA-007002.",
    transient: false,
    source: "python client test; esia.md §7",
};

/// A parameter of the request is malformed.
pub const BAD_PARAMETER: EsiaCode = EsiaCode {
    code: "ESIA-007003",
    oauth_error: "invalid_request",
    reason: "invalid_request",
    meaning_ru: "неверный параметр запроса",
    user_message_ru: TRY_AGAIN,
    transient: false,
    source: "go-api-epgu ErrESIA_007003; meaning unconfirmed",
};

/// The person pressed «Отказаться» (or ESIA refused on their behalf).
pub const USER_CANCELLED: EsiaCode = EsiaCode {
    code: "ESIA-007004",
    oauth_error: "access_denied",
    reason: "user_cancelled",
    meaning_ru: "владелец ресурса или сервер авторизации отклонил запрос",
    user_message_ru: "Вход отменён: на Госуслугах был выбран отказ от предоставления данных. \
        Чтобы войти в журнал, начните вход заново и нажмите «Разрешить».",
    transient: false,
    source: "unconfirmed (esia-protocol.md §3)",
};

/// The system may not use this grant/flow.
pub const UNAUTHORIZED_CLIENT: EsiaCode = EsiaCode {
    code: "ESIA-007005",
    oauth_error: "unauthorized_client",
    reason: "unauthorized_client",
    meaning_ru: "система не имеет права на запрошенный способ авторизации",
    user_message_ru: "Госуслуги не разрешили журналу этот способ входа (ошибка настройки). \
        Сообщите администратору школы код ошибки ESIA-007005.",
    transient: false,
    source: "unconfirmed positional mapping (esia-protocol.md §3)",
};

/// A requested scope is unknown or not allowed.
pub const INVALID_SCOPE: EsiaCode = EsiaCode {
    code: "ESIA-007006",
    oauth_error: "invalid_scope",
    reason: "invalid_scope",
    meaning_ru: "запрошена недопустимая область доступа (scope)",
    user_message_ru: "Журнал запросил у Госуслуг данные, на которые у него нет права (ошибка \
        настройки). Сообщите администратору школы код ошибки ESIA-007006.",
    transient: false,
    source: "unconfirmed positional mapping (esia-protocol.md §3)",
};

/// Internal ESIA error.
pub const SERVER_ERROR: EsiaCode = EsiaCode {
    code: "ESIA-007007",
    oauth_error: "server_error",
    reason: "esia_server_error",
    meaning_ru: "внутренняя ошибка сервера авторизации",
    user_message_ru: "На стороне Госуслуг произошла ошибка. Попробуйте войти через несколько \
        минут.",
    transient: true,
    source: "unconfirmed positional mapping (esia-protocol.md §3)",
};

/// ESIA is overloaded.
pub const OVERLOADED: EsiaCode = EsiaCode {
    code: "ESIA-007008",
    oauth_error: "temporarily_unavailable",
    reason: "esia_overloaded",
    meaning_ru: "сервер авторизации временно недоступен (перегружен)",
    user_message_ru: "Госуслуги сейчас перегружены. Попробуйте войти через несколько минут.",
    transient: true,
    source: "esia.md §7; unconfirmed",
};

/// `response_type` other than `code`.
pub const UNSUPPORTED_RESPONSE_TYPE: EsiaCode = EsiaCode {
    code: "ESIA-007009",
    oauth_error: "unsupported_response_type",
    reason: "unsupported_response_type",
    meaning_ru: "неподдерживаемый тип ответа (response_type)",
    user_message_ru: TRY_AGAIN,
    transient: false,
    source: "unconfirmed positional mapping (esia-protocol.md §3)",
};

/// Authorization code unknown, expired, already used or issued to someone else.
pub const CODE_INVALID: EsiaCode = EsiaCode {
    code: "ESIA-007011",
    oauth_error: "invalid_grant",
    reason: "code_invalid",
    meaning_ru: "код авторизации неверен, просрочен или уже использован",
    user_message_ru: "Ссылка входа устарела или уже была использована. Начните вход заново со \
        страницы журнала.",
    transient: false,
    source: "esia.md §7; unconfirmed",
};

/// `grant_type` other than the supported ones.
pub const UNSUPPORTED_GRANT_TYPE: EsiaCode = EsiaCode {
    code: "ESIA-007012",
    oauth_error: "unsupported_grant_type",
    reason: "unsupported_grant_type",
    meaning_ru: "неподдерживаемый тип гранта (grant_type)",
    user_message_ru: TRY_AGAIN,
    transient: false,
    source: "unconfirmed positional mapping (esia-protocol.md §3)",
};

/// A mandatory parameter is missing (e.g. `client_certificate_hash` on v3/te).
pub const MISSING_PARAMETER: EsiaCode = EsiaCode {
    code: "ESIA-007014",
    oauth_error: "invalid_request",
    reason: "missing_parameter",
    meaning_ru: "в запросе отсутствует обязательный параметр",
    user_message_ru: TRY_AGAIN,
    transient: false,
    source: "go-api-epgu test; fr05t1k UPGRADE.md",
};

/// `timestamp` malformed or too far from ESIA's clock.
pub const BAD_TIMESTAMP: EsiaCode = EsiaCode {
    code: "ESIA-007015",
    oauth_error: "invalid_request",
    reason: "bad_timestamp",
    meaning_ru: "неверное время запроса (timestamp): формат или расхождение часов",
    user_message_ru: "Госуслуги отклонили запрос из-за расхождения времени на сервере журнала. \
        Попробуйте ещё раз через минуту; если ошибка повторится, сообщите администратору школы \
        код ошибки ESIA-007015.",
    transient: false,
    source: "esia.md §7; unconfirmed",
};

/// The system has no grant for a requested scope.
pub const NO_GRANTS: EsiaCode = EsiaCode {
    code: "ESIA-007019",
    oauth_error: "invalid_scope",
    reason: "scope_not_granted",
    meaning_ru: "системе не выдано право на запрошенную область доступа",
    user_message_ru: "Журналу не выдано право получать запрошенные данные на Госуслугах \
        (ошибка настройки). Сообщите администратору школы код ошибки ESIA-007019.",
    transient: false,
    source: "Java client comment (OAuthErrorEnum.noGrants)",
};

/// `redirect_uri` is not registered for the system.
pub const REDIRECT_URI_NOT_REGISTERED: EsiaCode = EsiaCode {
    code: "ESIA-007023",
    oauth_error: "invalid_request",
    reason: "redirect_uri_not_registered",
    meaning_ru: "адрес возврата (redirect_uri) не зарегистрирован для системы",
    user_message_ru: "Адрес журнала не зарегистрирован на Госуслугах (ошибка настройки). \
        Сообщите администратору школы код ошибки ESIA-007023.",
    transient: false,
    source: "esia.md §7; unconfirmed",
};

/// PKCE `code_challenge` malformed or with an unsupported method.
pub const PKCE_CHALLENGE_INVALID: EsiaCode = EsiaCode {
    code: "ESIA-007039",
    oauth_error: "invalid_request",
    reason: "pkce_challenge_invalid",
    meaning_ru: "неверный параметр PKCE code_challenge или code_challenge_method",
    user_message_ru: TRY_AGAIN,
    transient: false,
    source: "esia.md §1 says 007039/007040 exist for PKCE; exact meaning unconfirmed",
};

/// PKCE `code_verifier` missing or not matching the challenge.
pub const PKCE_VERIFIER_MISMATCH: EsiaCode = EsiaCode {
    code: "ESIA-007040",
    oauth_error: "invalid_grant",
    reason: "pkce_verifier_mismatch",
    meaning_ru: "code_verifier не соответствует code_challenge (PKCE)",
    user_message_ru: TRY_AGAIN,
    transient: false,
    source: "esia.md §1 says 007039/007040 exist for PKCE; exact meaning unconfirmed",
};

/// `client_secret` signature wrong, certificate hash wrong or certificate inactive.
pub const CLIENT_SECRET_WRONG: EsiaCode = EsiaCode {
    code: "ESIA-007053",
    oauth_error: "invalid_client",
    reason: "client_secret_wrong",
    meaning_ru: "неверная подпись запроса (client_secret) или хеш сертификата \
        (OAuthErrorEnum.clientSecretWrong)",
    user_message_ru: "Госуслуги не приняли подпись журнала (ошибка настройки ключа или \
        сертификата). Сообщите администратору школы код ошибки ESIA-007053.",
    transient: false,
    source: "go-api-epgu doc.go",
};

/// The account is not confirmed and the system requires a confirmed one.
pub const UNCONFIRMED_ACCOUNT: EsiaCode = EsiaCode {
    code: "ESIA-007055",
    oauth_error: "access_denied",
    reason: "unconfirmed_account",
    meaning_ru: "учётная запись пользователя не подтверждена",
    user_message_ru: "Ваша учётная запись на Госуслугах не подтверждена. Подтвердите личность \
        (в МФЦ, отделении банка или онлайн через банк) и войдите снова.",
    transient: false,
    source: "esia.md §4, §7; unconfirmed",
};

/// Every known code, in numeric order.
pub const TABLE: &[EsiaCode] = &[
    CERTIFICATE_MISMATCH,
    BAD_PARAMETER,
    USER_CANCELLED,
    UNAUTHORIZED_CLIENT,
    INVALID_SCOPE,
    SERVER_ERROR,
    OVERLOADED,
    UNSUPPORTED_RESPONSE_TYPE,
    CODE_INVALID,
    UNSUPPORTED_GRANT_TYPE,
    MISSING_PARAMETER,
    BAD_TIMESTAMP,
    NO_GRANTS,
    REDIRECT_URI_NOT_REGISTERED,
    PKCE_CHALLENGE_INVALID,
    PKCE_VERIFIER_MISMATCH,
    CLIENT_SECRET_WRONG,
    UNCONFIRMED_ACCOUNT,
];

/// The row for `code` (`ESIA-007004`; case-insensitive).
pub fn lookup(code: &str) -> Option<&'static EsiaCode> {
    TABLE.iter().find(|c| c.code.eq_ignore_ascii_case(code))
}

/// The `ESIA-NNNNNN` code an `error_description` starts with (ESIA writes `ESIA-007004: …`),
/// normalised to upper case. Looks only at the start so free text cannot smuggle a code in.
pub fn code_in(description: &str) -> Option<String> {
    let d = description.trim_start();
    let prefix = d.get(..5)?;
    if !prefix.eq_ignore_ascii_case("ESIA-") {
        return None;
    }
    let digits: String = d[5..].chars().take_while(char::is_ascii_digit).collect();
    if digits.len() != 6 {
        return None;
    }
    Some(format!("ESIA-{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_well_formed_and_unique() {
        let mut codes = HashSet::new();
        let mut reasons = HashSet::new();
        for c in TABLE {
            assert_eq!(c.code.len(), 11, "{}", c.code);
            assert!(c.code.starts_with("ESIA-007"), "{}", c.code);
            assert!(c.code[5..].chars().all(|ch| ch.is_ascii_digit()), "{}", c.code);
            assert!(codes.insert(c.code), "duplicate code {}", c.code);
            assert!(reasons.insert(c.reason), "duplicate reason {}", c.reason);
            assert!(
                c.reason.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "reason not snake_case: {}",
                c.reason
            );
            assert!(!c.meaning_ru.is_empty() && !c.user_message_ru.is_empty());
            assert!(!c.oauth_error.is_empty() && !c.source.is_empty());
        }
        let mut sorted: Vec<_> = TABLE.iter().map(|c| c.code).collect();
        sorted.sort_unstable();
        assert_eq!(sorted, TABLE.iter().map(|c| c.code).collect::<Vec<_>>());
    }

    #[test]
    fn the_codes_named_by_the_spec_are_present() {
        // esia.md §7 "error codes worth handling by name".
        for code in [
            "ESIA-007002",
            "ESIA-007003",
            "ESIA-007014",
            "ESIA-007004",
            "ESIA-007008",
            "ESIA-007011",
            "ESIA-007015",
            "ESIA-007023",
            "ESIA-007053",
            "ESIA-007055",
        ] {
            assert!(lookup(code).is_some(), "{code} missing");
        }
        assert_eq!(lookup("esia-007004"), Some(&USER_CANCELLED));
        assert_eq!(USER_CANCELLED.oauth_error, "access_denied");
        assert!(lookup("ESIA-007008").is_some_and(|c| c.transient));
        assert!(lookup("ESIA-007004").is_some_and(|c| !c.transient));
        assert_eq!(lookup("ESIA-999999"), None);
    }

    #[test]
    fn code_is_read_from_the_start_of_a_description() {
        assert_eq!(code_in("ESIA-007004: отказ").as_deref(), Some("ESIA-007004"));
        assert_eq!(code_in("esia-007053").as_deref(), Some("ESIA-007053"));
        assert_eq!(code_in("  ESIA-007008:x").as_deref(), Some("ESIA-007008"));
        assert_eq!(code_in("see ESIA-007004"), None);
        assert_eq!(code_in("ESIA-0070"), None);
        assert_eq!(code_in("ESIA-0070045"), None);
        assert_eq!(code_in(""), None);
        assert_eq!(code_in("ЕСИА-007004"), None);
    }

    #[test]
    fn description_has_the_esia_shape() {
        assert_eq!(
            USER_CANCELLED.description(),
            "ESIA-007004: владелец ресурса или сервер авторизации отклонил запрос"
        );
        let d = CLIENT_SECRET_WRONG.description_with("signature");
        assert!(d.starts_with("ESIA-007053: ") && d.ends_with("(signature)"));
        assert_eq!(code_in(&d).as_deref(), Some("ESIA-007053"));
    }
}
