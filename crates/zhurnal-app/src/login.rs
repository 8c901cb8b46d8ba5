//! Who may come in after ESIA has vouched for them (issue: ESIA is the only door).
//!
//! Matching: by ESIA oid once linked; on first login by СНИЛС (keyed hash) cross-checked with
//! the birth date. A parent's children from ESIA `/kids` confirm or create links to children the
//! school registered. Every refusal carries a stable reason code for the audit log and a page
//! that tells the person whom to contact.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use zhurnal_domain::Snils;
use zhurnal_store::{NewAudit, PersonRow, StoreError};

use crate::{App, AppError};

/// Verified facts from ESIA about the person logging in.
#[derive(Clone, Debug)]
pub struct IdentityClaims {
    pub oid: String,
    /// The account is confirmed (`is_tru`).
    pub trusted: bool,
    pub birth_date: Option<NaiveDate>,
    /// As ESIA sends it; parsed here.
    pub snils: Option<String>,
}

/// One child from the parent's ESIA profile.
#[derive(Clone, Debug)]
pub struct KidClaims {
    pub birth_date: Option<NaiveDate>,
    pub snils: Option<String>,
}

/// Where the attempt came from, for the audit record.
#[derive(Clone, Debug, Default)]
pub struct AuditContext {
    pub source_ip: Option<String>,
    pub session_hash: Option<String>,
}

impl AuditContext {
    pub fn event(&self, at: i64, action: &str, result: &str) -> NewAudit {
        NewAudit::new(at, action, result)
            .ip(self.source_ip.clone())
            .session(self.session_hash.clone())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The ESIA account is not confirmed (упрощённая или стандартная учётная запись).
    Unconfirmed,
    /// Nobody with this СНИЛС (and birth date) is registered in any school.
    NoMatch,
    /// A former student: every enrolment has ended.
    Departed,
    /// Blocked for inactivity.
    Dormant,
    /// Blocked by an administrator or a security measure.
    Blocked,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::Unconfirmed => "unconfirmed_account",
            Self::NoMatch => "no_match",
            Self::Departed => "departed_student",
            Self::Dormant => "dormant_account",
            Self::Blocked => "blocked_account",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Unconfirmed => "Учётная запись Госуслуг не подтверждена",
            Self::NoMatch => "Вы не найдены в электронном журнале",
            Self::Departed => "Доступ закрыт: обучение в школе завершено",
            Self::Dormant => "Учётная запись заблокирована из-за долгого отсутствия входа",
            Self::Blocked => "Учётная запись заблокирована",
        }
    }

    /// What happened and what to do, in plain Russian.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::Unconfirmed => {
                "Электронный журнал доступен только с подтверждённой учётной записью Госуслуг. \
                 Подтвердите личность в личном кабинете на Госуслугах (онлайн через банк или в МФЦ/центре обслуживания), \
                 затем войдите снова."
            }
            Self::NoMatch => {
                "Ваша учётная запись Госуслуг подтверждена, но в журнале нет человека с вашим СНИЛС и датой рождения. \
                 Обратитесь к администратору вашей школы: он должен внести в карточку ваш СНИЛС (или СНИЛС ребёнка) \
                 и проверить дату рождения. Попытка входа записана."
            }
            Self::Departed => {
                "По данным школы вы выбыли, поэтому вход в журнал закрыт. Если вы перешли в другую школу региона, \
                 обратитесь к её администратору, чтобы вас зачислили. Если это ошибка — обратитесь к администратору прежней школы."
            }
            Self::Dormant => {
                "Учётная запись не использовалась более 3 месяцев и заблокирована по требованию Минпросвещения России. \
                 Для разблокировки обратитесь к администратору вашей школы."
            }
            Self::Blocked => "Для выяснения причин обратитесь к администратору вашей школы.",
        }
    }
}

#[derive(Clone, Debug)]
pub enum LoginOutcome {
    Accepted { person: Box<PersonRow>, first_link: bool, linked_children: usize },
    Refused(Refusal),
}

/// The most children one ESIA account may link automatically (security.md D-14).
const MAX_AUTO_LINKED_CHILDREN: usize = 6;

fn age_on(birth: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

impl App {
    /// Decides whether the ESIA-verified person may enter, linking oid and children on the way.
    /// Refusals are audited here; the successful login is audited with the session.
    pub async fn resolve_login(
        &self,
        claims: &IdentityClaims,
        kids: &[KidClaims],
        ctx: &AuditContext,
    ) -> Result<LoginOutcome, AppError> {
        let now = self.now_micros();
        let today = self.today();
        let refuse = |reason: Refusal, person: Option<&PersonRow>| {
            let mut e = ctx
                .event(now, "login.refused", "refused")
                .reason(reason.code())
                .details(serde_json::json!({ "esia_oid": claims.oid, "trusted": claims.trusted }));
            if let Some(p) = person {
                e = e.actor(p.id.0, "person").target("person", &p.uid);
            }
            e
        };

        let (person, first_link) = match self.store.find_person_by_esia_oid(&claims.oid).await? {
            Some(p) => (p, false),
            None => match self.match_by_snils(claims).await? {
                Some(p) => (p, true),
                None => {
                    self.store.append_audit(refuse(Refusal::NoMatch, None)).await?;
                    return Ok(LoginOutcome::Refused(Refusal::NoMatch));
                }
            },
        };

        let rel = self.store.load_relations(person.id, today).await?;
        let is_child = person.birth_date.is_some_and(|b| age_on(b, today) < 14);
        let child_account_ok = !claims.trusted && is_child && !rel.enrolled_in.is_empty();
        let refusal = if !claims.trusted && !child_account_ok {
            Some(Refusal::Unconfirmed)
        } else if let Some(r) =
            self.check_lifecycle_at_login(&person, &rel, claims.trusted, ctx).await?
        {
            // Blocked, or dormant (the job may not have run yet) and not re-activated here.
            Some(r)
        } else if rel.enrolled_in.is_empty()
            && !rel.departed_from.is_empty()
            && rel.grants.is_empty()
            && rel.children.is_empty()
        {
            Some(Refusal::Departed)
        } else {
            None
        };
        if let Some(r) = refusal {
            self.store.append_audit(refuse(r, Some(&person))).await?;
            return Ok(LoginOutcome::Refused(r));
        }

        if first_link {
            let audit = ctx
                .event(now, "account.esia_linked", "ok")
                .actor(person.id.0, "person")
                .target("person", &person.uid)
                .details(serde_json::json!({ "esia_oid": claims.oid, "matched_by": "snils_and_birth_date" }));
            self.store.link_esia_oid(person.id, &claims.oid, audit).await?;
        }
        let linked_children = self.link_children(&person, kids, ctx).await?;
        Ok(LoginOutcome::Accepted { person: Box::new(person), first_link, linked_children })
    }

    async fn match_by_snils(&self, claims: &IdentityClaims) -> Result<Option<PersonRow>, AppError> {
        let Some(snils) = claims.snils.as_deref().and_then(|s| Snils::parse(s).ok()) else {
            return Ok(None);
        };
        let found = self.store.find_person_by_snils_hmac(&self.vault.match_key(&snils)).await?;
        // A СНИЛС match with another birth date is treated as no match: the СНИЛС may have been
        // mistyped by the school, and linking the wrong child would expose another family's data.
        Ok(found.filter(|p| {
            p.esia_oid.is_none() && p.birth_date.is_some() && p.birth_date == claims.birth_date
        }))
    }

    async fn link_children(
        &self,
        parent: &PersonRow,
        kids: &[KidClaims],
        ctx: &AuditContext,
    ) -> Result<usize, AppError> {
        let mut linked = 0;
        let already = self.store.list_children(parent.id).await?;
        for kid in kids {
            let Some(snils) = kid.snils.as_deref().and_then(|s| Snils::parse(s).ok()) else {
                continue;
            };
            let Some(child) =
                self.store.find_person_by_snils_hmac(&self.vault.match_key(&snils)).await?
            else {
                continue;
            };
            if child.id == parent.id
                || child.birth_date.is_none()
                || child.birth_date != kid.birth_date
            {
                continue;
            }
            if self.store.list_enrolments(child.id).await?.is_empty() {
                continue;
            }
            let known = already.iter().any(|c| c.person.id == child.id);
            if !known && already.len() + linked >= MAX_AUTO_LINKED_CHILDREN {
                let audit = ctx
                    .event(self.now_micros(), "guardian.link_held", "refused")
                    .actor(parent.id.0, "parent")
                    .target("person", &child.uid)
                    .reason("too_many_children");
                self.store.append_audit(audit).await?;
                continue;
            }
            let audit = ctx
                .event(self.now_micros(), "guardian.confirmed_by_esia", "ok")
                .actor(parent.id.0, "parent")
                .target("person", &child.uid);
            match self.store.link_guardian(parent.id, child.id, audit).await {
                Ok(true) => linked += 1,
                Ok(false) => {}
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(linked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_birthdays() {
        let b = NaiveDate::from_ymd_opt(2012, 11, 24).expect("date");
        assert_eq!(age_on(b, NaiveDate::from_ymd_opt(2026, 11, 23).expect("date")), 13);
        assert_eq!(age_on(b, NaiveDate::from_ymd_opt(2026, 11, 24).expect("date")), 14);
    }

    #[test]
    fn every_refusal_explains_itself() {
        for r in [
            Refusal::Unconfirmed,
            Refusal::NoMatch,
            Refusal::Departed,
            Refusal::Dormant,
            Refusal::Blocked,
        ] {
            assert!(!r.code().is_empty() && !r.title().is_empty());
            let text = r.explanation().to_lowercase();
            assert!(text.contains("обрат") || text.contains("подтвердите"), "{r:?}");
        }
    }
}
