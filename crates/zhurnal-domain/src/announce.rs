//! Объявления: the journal's own channel from teachers to the students and parents of their
//! classes, and the abuse controls around it.
//!
//! In October 2024 threat messages reached pupils at night through hijacked e-journal
//! accounts. So an announcement is refused when its sender exceeds a rate limit or it links
//! outside an allow-list of domains, and a bulk send in the quiet hours is held for the school
//! admin's review instead of being delivered. The numbers are settings, never constants.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The school's or region's settings for announcements (section `[rules.announcements]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnnouncementRules {
    /// At most this many announcements per sender in any rolling hour.
    pub max_per_hour: u32,
    /// A send to more recipients than this (students and parents together) is a bulk send;
    /// so is any send to more than one class.
    pub bulk_recipients: usize,
    /// Local hour from which bulk sends are held for review (22 = 22:00).
    pub quiet_from_hour: u32,
    /// Local hour until which bulk sends are held (7 = 07:00).
    pub quiet_until_hour: u32,
    /// Domains links may point to (subdomains included), e.g. the school's own site.
    pub allowed_domains: Vec<String>,
    /// The longest text accepted, in characters.
    pub max_length: usize,
}

impl Default for AnnouncementRules {
    fn default() -> Self {
        Self {
            max_per_hour: 10,
            bulk_recipients: 100,
            quiet_from_hour: 22,
            quiet_until_hour: 7,
            allowed_domains: vec!["gosuslugi.ru".into(), "sferum.ru".into()],
            max_length: 2000,
        }
    }
}

/// Why an announcement is refused (nothing is sent, nothing is stored).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AnnouncementError {
    #[error("текст объявления пуст: напишите, что нужно сообщить")]
    Empty,
    #[error("текст объявления длиннее {max} символов ({len}): сократите его")]
    TooLong { len: usize, max: usize },
    #[error("не выбран ни один класс: отметьте хотя бы один класс-получатель")]
    NoClasses,
    #[error(
        "ссылка на «{host}» не разрешена: в объявлениях допустимы ссылки только на {allowed}. Уберите ссылку или обратитесь к администратору школы"
    )]
    LinkNotAllowed { host: String, allowed: String },
    #[error(
        "превышен лимит: не более {limit} объявлений в час от одного отправителя. Повторите позже"
    )]
    RateLimited { limit: u32 },
}

/// What happens to an accepted announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnouncementStatus {
    /// Visible to the recipients.
    Delivered,
    /// A bulk send in the quiet hours, waiting for the school admin.
    Held,
    /// Withdrawn by the school admin: hidden from the recipients.
    Recalled,
}

impl AnnouncementStatus {
    pub fn code(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Held => "held",
            Self::Recalled => "recalled",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Delivered, Self::Held, Self::Recalled].into_iter().find(|s| s.code() == code)
    }
    pub fn title(self) -> &'static str {
        match self {
            Self::Delivered => "доставлено",
            Self::Held => "задержано до проверки администратором",
            Self::Recalled => "отозвано администратором",
        }
    }
}

/// Whether `time` (local) falls in the quiet window `[from, until)`, which may wrap midnight.
pub fn in_quiet_hours(time: NaiveTime, from_hour: u32, until_hour: u32) -> bool {
    use chrono::Timelike;
    let h = time.hour();
    if from_hour == until_hour {
        false
    } else if from_hour < until_hour {
        from_hour <= h && h < until_hour
    } else {
        h >= from_hour || h < until_hour
    }
}

/// Hosts of every link in `text`: `http(s)://…`, `www.…` and bare domains such as
/// `example.com` or `школа.рф` (which messengers turn into links too). Lower-cased, without
/// user info or port, so `https://gosuslugi.ru@evil.example` yields `evil.example`.
pub fn link_hosts(text: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '«' | '»'))
    {
        let token = raw.trim_matches(|c: char| {
            matches!(c, '(' | ')' | '[' | ']' | ',' | ';' | '!' | '?' | '\'' | '.' | ':')
        });
        let lower = token.to_lowercase();
        let rest = if let Some(i) = lower.find("://") {
            &lower[i + 3..]
        } else if lower.starts_with("www.") || looks_like_domain(&lower) {
            lower.as_str()
        } else {
            continue;
        };
        let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let host = host_port.split(':').next().unwrap_or("").trim_end_matches('.');
        if !host.is_empty() {
            hosts.push(host.to_string());
        }
    }
    hosts
}

/// `name.tld[/…]` with an alphabetic top-level label of two letters or more.
fn looks_like_domain(token: &str) -> bool {
    let host = token.split(['/', '?', '#']).next().unwrap_or("");
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return false;
    }
    let tld = labels[labels.len() - 1];
    tld.chars().count() >= 2
        && tld.chars().all(char::is_alphabetic)
        && labels.iter().all(|l| l.chars().all(|c| c.is_alphanumeric() || c == '-'))
}

/// Whether `host` is one of `allowed` or a subdomain of one.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|d| {
        let d = d.trim().trim_start_matches('.').to_lowercase();
        !d.is_empty() && (host == d || host.ends_with(&format!(".{d}")))
    })
}

impl AnnouncementRules {
    /// Checks the text: not empty, not too long, links only to allowed domains.
    pub fn check_text(&self, text: &str) -> Result<(), AnnouncementError> {
        let len = text.chars().count();
        if text.trim().is_empty() {
            return Err(AnnouncementError::Empty);
        }
        if len > self.max_length {
            return Err(AnnouncementError::TooLong { len, max: self.max_length });
        }
        if let Some(host) =
            link_hosts(text).into_iter().find(|h| !host_allowed(h, &self.allowed_domains))
        {
            return Err(AnnouncementError::LinkNotAllowed {
                host,
                allowed: self.allowed_domains.join(", "),
            });
        }
        Ok(())
    }

    /// A send to more than one class or more than `bulk_recipients` people.
    pub fn is_bulk(&self, classes: usize, recipients: usize) -> bool {
        classes > 1 || recipients > self.bulk_recipients
    }

    /// The whole decision for one send: refused, delivered now, or held for review.
    /// `sent_last_hour` counts the sender's announcements in the hour before now.
    pub fn decide(
        &self,
        text: &str,
        classes: usize,
        recipients: usize,
        sent_last_hour: u32,
        local_time: NaiveTime,
    ) -> Result<AnnouncementStatus, AnnouncementError> {
        if classes == 0 {
            return Err(AnnouncementError::NoClasses);
        }
        self.check_text(text)?;
        if sent_last_hour >= self.max_per_hour {
            return Err(AnnouncementError::RateLimited { limit: self.max_per_hour });
        }
        let quiet = in_quiet_hours(local_time, self.quiet_from_hour, self.quiet_until_hour);
        Ok(if quiet && self.is_bulk(classes, recipients) {
            AnnouncementStatus::Held
        } else {
            AnnouncementStatus::Delivered
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
    }

    #[test]
    fn the_quiet_window_wraps_midnight() {
        assert!(in_quiet_hours(t(22, 0), 22, 7));
        assert!(in_quiet_hours(t(23, 59), 22, 7));
        assert!(in_quiet_hours(t(3, 0), 22, 7));
        assert!(in_quiet_hours(t(6, 59), 22, 7));
        assert!(!in_quiet_hours(t(7, 0), 22, 7));
        assert!(!in_quiet_hours(t(21, 59), 22, 7));
        assert!(in_quiet_hours(t(13, 30), 13, 14));
        assert!(!in_quiet_hours(t(14, 0), 13, 14));
        assert!(!in_quiet_hours(t(3, 0), 5, 5), "an empty window holds nothing");
    }

    #[test]
    fn link_hosts_are_found_in_every_form() {
        assert_eq!(
            link_hosts("Запись: https://www.gosuslugi.ru/600/form?x=1."),
            ["www.gosuslugi.ru"]
        );
        assert_eq!(link_hosts("см. www.Sferum.ru/chat"), ["www.sferum.ru"]);
        assert_eq!(link_hosts("сайт (school1.example.org)"), ["school1.example.org"]);
        assert_eq!(link_hosts("сайт школа.рф!"), ["школа.рф"]);
        assert_eq!(link_hosts("https://gosuslugi.ru@evil.example:8080/x"), ["evil.example"]);
        assert!(link_hosts("средний балл 4.50, т.е. хорошо; в 8.30 у каб. 12").is_empty());
    }

    #[test]
    fn only_allow_listed_domains_and_their_subdomains_pass() {
        let rules = AnnouncementRules::default();
        assert!(rules.check_text("Запишитесь на https://www.gosuslugi.ru/10000").is_ok());
        assert!(rules.check_text("Чат класса: sferum.ru/?call=1").is_ok());
        assert_eq!(
            rules.check_text("Срочно: http://gosuslugi.ru.evil.example/login"),
            Err(AnnouncementError::LinkNotAllowed {
                host: "gosuslugi.ru.evil.example".into(),
                allowed: "gosuslugi.ru, sferum.ru".into()
            })
        );
        assert!(matches!(
            rules.check_text("notgosuslugi.ru"),
            Err(AnnouncementError::LinkNotAllowed { .. })
        ));
        let own = AnnouncementRules {
            allowed_domains: vec!["gosuslugi.ru".into(), "school1.example.org".into()],
            ..AnnouncementRules::default()
        };
        assert!(own.check_text("Расписание на school1.example.org/timetable").is_ok());
    }

    #[test]
    fn empty_and_overlong_texts_are_refused() {
        let rules = AnnouncementRules { max_length: 10, ..AnnouncementRules::default() };
        assert_eq!(rules.check_text("   "), Err(AnnouncementError::Empty));
        assert_eq!(
            rules.check_text("ёёёёёёёёёёё"),
            Err(AnnouncementError::TooLong { len: 11, max: 10 })
        );
        assert!(rules.check_text("ёёёёёёёёёё").is_ok(), "characters, not bytes");
    }

    #[test]
    fn bulk_sends_at_night_are_held_and_small_ones_delivered() {
        let rules = AnnouncementRules::default();
        let night = t(23, 15);
        let day = t(12, 0);
        assert_eq!(rules.decide("Собрание", 2, 50, 0, night), Ok(AnnouncementStatus::Held));
        assert_eq!(rules.decide("Собрание", 1, 101, 0, night), Ok(AnnouncementStatus::Held));
        assert_eq!(rules.decide("Собрание", 1, 100, 0, night), Ok(AnnouncementStatus::Delivered));
        assert_eq!(rules.decide("Собрание", 3, 300, 0, day), Ok(AnnouncementStatus::Delivered));
        assert_eq!(rules.decide("Собрание", 0, 0, 0, day), Err(AnnouncementError::NoClasses));
    }

    #[test]
    fn the_rate_limit_counts_the_last_hour() {
        let rules = AnnouncementRules { max_per_hour: 3, ..AnnouncementRules::default() };
        assert!(rules.decide("Текст", 1, 10, 2, t(12, 0)).is_ok());
        assert_eq!(
            rules.decide("Текст", 1, 10, 3, t(12, 0)),
            Err(AnnouncementError::RateLimited { limit: 3 })
        );
    }
}
