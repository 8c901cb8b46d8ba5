//! Account lifecycle, incident detection, audit anchors and the ministry report
//! (issue 5; ../shared/docs/security.md §5, §6).
//!
//! - Dormancy (неактивные учётные записи): no sign of life for `dormant_after_days` ⇒ blocked
//!   by the job, at login and on every request, whichever comes first; a notice a week before.
//! - Re-activation: in bulk by the school admin (class or school), or at login for students
//!   and parents with a confirmed ESIA account and an active enrolment (never staff).
//! - Detection rules read the audit log after a cursor and open incidents (D-01, D-02, D-05,
//!   D-06, D-07, D-10).

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};
use zhurnal_domain::policy::{Action, Resource};
use zhurnal_domain::{Actor, ClassId, PersonId, Role, SchoolId};
use zhurnal_store::security::{
    AccountActivity, Anchor, AuditFilter, IncidentNoticeRow, IncidentRow, IncidentStatus,
    MeasureRow, NewIncident, NoticeKind, Severity,
};
use zhurnal_store::{AccountState, ActorRelations, AuditRecord, NewAudit, PersonRow};

use crate::login::{AuditContext, Refusal};
use crate::{App, AppError};

const DAY: i64 = 86_400 * 1_000_000;
const HOUR: i64 = 3_600 * 1_000_000;
const MINUTE: i64 = 60 * 1_000_000;

/// Section `[security]` of the configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// An account without a login this long is blocked as dormant (Минпросвещения: 3 months).
    pub dormant_after_days: i64,
    /// The user is warned this many days before the block.
    pub dormancy_notice_days: i64,
    /// A dormant student with a confirmed ESIA account and an active enrolment is re-activated
    /// at login (the summer break must not drown the schools on 1 September).
    pub reactivate_students_at_login: bool,
    /// The same for parents of an enrolled child.
    pub reactivate_parents_at_login: bool,
    /// D-10: more distinct diary views by one account per hour is an incident.
    pub diary_views_per_hour: i64,
    /// D-05: more exports by one account per day is an incident.
    pub exports_per_day: i64,
    /// D-05: an export of more persons is an incident by itself.
    pub export_persons_threshold: i64,
    /// D-06: this many failed ESIA callbacks from one address in 5 minutes is an incident.
    pub failed_callbacks_per_5_minutes: i64,
    /// How often the server writes the audit chain head to the anchors file.
    pub anchor_interval_minutes: i64,
    /// Rate limit per account: requests per minute (strict).
    pub requests_per_minute_per_account: u32,
    /// Rate limit per client address: requests per minute (generous: a school behind one NAT).
    pub requests_per_minute_per_address: u32,
    /// An export of personal data needs a login at most this old (a stolen session left open on
    /// a school PC must not be enough to carry the class away).
    pub export_fresh_login_minutes: i64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            dormant_after_days: 90,
            dormancy_notice_days: 7,
            reactivate_students_at_login: true,
            reactivate_parents_at_login: true,
            diary_views_per_hour: 60,
            exports_per_day: 3,
            export_persons_threshold: 500,
            failed_callbacks_per_5_minutes: 20,
            anchor_interval_minutes: 60,
            requests_per_minute_per_account: 120,
            requests_per_minute_per_address: 3000,
            export_fresh_login_minutes: 15,
        }
    }
}

/// Reason codes stored with an account state (also the audit `reason`).
pub mod reasons {
    pub const DORMANT: &str = "dormant";
    pub const ADMIN_BLOCK: &str = "admin_block";
    pub const ADMIN_UNBLOCK: &str = "admin_unblock";
    pub const BULK_REACTIVATION: &str = "bulk_reactivation";
    pub const REACTIVATED_AT_LOGIN: &str = "reactivated_at_login";
}

/// Who performs a lifecycle change: a person in a role, or the system (job, CLI).
#[derive(Clone, Debug)]
pub struct ChangedBy {
    pub person: Option<PersonId>,
    pub role: String,
    pub ctx: AuditContext,
}

impl ChangedBy {
    pub fn system(role: &str) -> Self {
        Self { person: None, role: role.to_string(), ctx: AuditContext::default() }
    }
}

/// What one run of the dormancy job did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DormancyRun {
    pub blocked: usize,
    pub notices: usize,
}

/// What one run of the detection rules did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DetectionRun {
    pub records: usize,
    pub incidents: usize,
    pub updated: usize,
}

/// Whom a bulk re-activation covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReactivationScope {
    Class(ClassId),
    School(SchoolId),
}

pub fn format_instant(at: i64, offset_hours: i32) -> String {
    let off = chrono::FixedOffset::east_opt(offset_hours * 3600)
        .unwrap_or(chrono::FixedOffset::east_opt(0).expect("zero offset"));
    DateTime::from_timestamp_micros(at)
        .map(|t| t.with_timezone(&off).format("%d.%m.%Y %H:%M").to_string())
        .unwrap_or_default()
}

/// Rules of detection and their Russian names (security.md §5.1).
pub fn rule_title(rule: &str) -> &'static str {
    match rule {
        "D-01" => "вход в заблокированную или неактивную учётную запись",
        "D-02" => "вход выбывшего обучающегося",
        "D-05" => "массовая выгрузка персональных данных",
        "D-06" => "повторные ошибки входа через ЕСИА с одного адреса",
        "D-07" => "привилегированная роль из новой сети",
        "D-10" => "массовый просмотр дневников",
        _ => "прочее",
    }
}

/// Refusal reasons that are not failures of the ESIA callback itself.
const PERSON_REFUSALS: &[&str] =
    &["unconfirmed_account", "no_match", "departed_student", "dormant_account", "blocked_account"];

/// The /24 (IPv4) or /48 (IPv6) network of an address, for D-07.
fn network_of(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) => ip.to_string(),
    }
}

impl App {
    fn dormancy_window(&self) -> i64 {
        self.security.dormant_after_days * DAY
    }

    /// Whether the account has been inactive past the threshold (computed, job or not).
    pub fn is_dormant_now(&self, a: &AccountActivity) -> bool {
        self.now_micros() - a.last_activity() > self.dormancy_window()
    }

    /// Why a logged-in person may not continue (checked on every request), if so.
    pub fn session_refusal(&self, person: &PersonRow) -> Option<&'static str> {
        match person.account_state {
            AccountState::Blocked => Some("blocked"),
            AccountState::Dormant => Some("dormant"),
            AccountState::Active => {
                // A session implies a recent login; this only bites when the clock jumped past
                // the threshold while a session survived (e.g. a very long absolute timeout).
                let last = person.last_login_at?;
                (self.now_micros() - last > self.dormancy_window()).then_some("dormant")
            }
        }
    }

    /// Sets an account's state with a reason, audited (`account.state`); false if unchanged.
    pub async fn set_account_state(
        &self,
        person: PersonId,
        state: AccountState,
        reason: &str,
        note: Option<&str>,
        by: &ChangedBy,
    ) -> Result<bool, AppError> {
        let target = self.store.get_person(person).await?;
        let mut audit = by
            .ctx
            .event(self.now_micros(), "account.state", "ok")
            .target("person", &target.uid)
            .reason(reason)
            .details(serde_json::json!({
                "from": target.account_state.code(),
                "to": state.code(),
                "note": note,
            }));
        audit.actor_id = by.person.map(|p| p.0);
        audit.actor_role = Some(by.role.clone());
        Ok(self.store.set_account_state(person, state, Some(reason), audit).await?)
    }

    /// Blocks an account by decision of an administrator (`zhurnal accounts block`).
    pub async fn block_account(
        &self,
        uid: &str,
        note: &str,
        by: &ChangedBy,
    ) -> Result<bool, AppError> {
        let note = note.trim();
        if note.is_empty() {
            return Err(AppError::Invalid(
                "укажите причину блокировки (--reason): она попадёт в журнал аудита".into(),
            ));
        }
        let p = self.store.find_person_by_uid(uid).await?.ok_or_else(|| {
            AppError::Invalid(format!("учётная запись «{uid}» не найдена: проверьте идентификатор"))
        })?;
        self.set_account_state(p.id, AccountState::Blocked, reasons::ADMIN_BLOCK, Some(note), by)
            .await
    }

    /// `zhurnal keys rotate`: every stored СНИЛС decrypted with the current keys, encrypted and
    /// hashed with `new`, written in one transaction. Any value the current key cannot open
    /// stops the rotation before anything is written, naming the person's uid.
    pub async fn rotate_snils_keys(
        &self,
        new: &crate::keys::SnilsVault,
        by: &ChangedBy,
    ) -> Result<u64, AppError> {
        let stored = self.store.list_snils_ciphers().await?;
        let mut rows = Vec::with_capacity(stored.len());
        for s in stored {
            let snils = self.vault.decrypt(&s.cipher, &s.uid).map_err(|e| {
                AppError::Invalid(format!(
                    "СНИЛС учётной записи {} не расшифровывается текущим ключом ({e}): ротация не выполнена, данные не изменены",
                    s.uid
                ))
            })?;
            rows.push(zhurnal_store::security::StoredSnils {
                cipher: new.encrypt(&snils, &s.uid),
                hmac: new.match_key(&snils),
                ..s
            });
        }
        let mut audit = by
            .ctx
            .event(self.now_micros(), "keys.rotate", "ok")
            .details(serde_json::json!({ "snils": rows.len() }));
        audit.actor_id = by.person.map(|p| p.0);
        audit.actor_role = Some(by.role.clone());
        match self.store.replace_snils_ciphers(&rows, audit).await {
            Err(zhurnal_store::StoreError::Conflict { .. }) => Err(AppError::Invalid(
                "пока шла ротация, в базе появились новые СНИЛС: остановите сервер и повторите — данные не изменены".into(),
            )),
            other => Ok(other?),
        }
    }

    /// The conditions of an export of personal data: a stated purpose and a recent login.
    /// Returns the trimmed purpose for the audit record.
    pub fn check_pd_export(&self, login_at: i64, reason: Option<&str>) -> Result<String, AppError> {
        let reason = reason.map(str::trim).unwrap_or_default();
        if reason.chars().count() < 5 {
            return Err(AppError::Invalid(
                "Укажите цель выгрузки (не короче 5 символов, например «педсовет 25.11»): выгрузка персональных данных записывается в журнал аудита.".into(),
            ));
        }
        if reason.chars().count() > 500 {
            return Err(AppError::Invalid("Цель выгрузки — не длиннее 500 символов.".into()));
        }
        let minutes = self.security.export_fresh_login_minutes;
        if self.now_micros() - login_at > minutes * 60_000_000 {
            return Err(AppError::Denied(zhurnal_domain::Denied {
                action: zhurnal_domain::Action::ViewReports,
                action_title: "выгрузка персональных данных",
                reason: "нужен недавний вход: выйдите и войдите через Госуслуги снова, затем повторите выгрузку",
            }));
        }
        Ok(reason.to_string())
    }

    /// Lifts any block (administrator or dormancy); a new 90-day period starts now.
    pub async fn unblock_account(
        &self,
        uid: &str,
        note: &str,
        by: &ChangedBy,
    ) -> Result<bool, AppError> {
        let note = note.trim();
        if note.is_empty() {
            return Err(AppError::Invalid(
                "укажите причину разблокировки (--reason): она попадёт в журнал аудита".into(),
            ));
        }
        let p = self.store.find_person_by_uid(uid).await?.ok_or_else(|| {
            AppError::Invalid(format!("учётная запись «{uid}» не найдена: проверьте идентификатор"))
        })?;
        self.set_account_state(p.id, AccountState::Active, reasons::ADMIN_UNBLOCK, Some(note), by)
            .await
    }

    /// The dormancy job: blocks accounts past the threshold and warns those a week before.
    /// Idempotent: a second run changes nothing.
    pub async fn run_dormancy(&self) -> Result<DormancyRun, AppError> {
        let now = self.now_micros();
        let mut run = DormancyRun::default();
        let by = ChangedBy::system("system");
        let block_before = now - self.dormancy_window();
        for a in self.store.list_inactive_accounts(AccountState::Active, block_before).await? {
            if self
                .set_account_state(a.person_id, AccountState::Dormant, reasons::DORMANT, None, &by)
                .await?
            {
                run.blocked += 1;
            }
        }
        let notice_days = self.security.dormant_after_days - self.security.dormancy_notice_days;
        let warn_before = now - notice_days * DAY;
        for a in self.store.list_inactive_accounts(AccountState::Active, warn_before).await? {
            let last = a.last_activity();
            let deadline = last + self.dormancy_window();
            let body = format!(
                "Вы давно не входили в электронный журнал (последний раз — {}). Если не войти до {}, \
                 учётная запись будет заблокирована по требованию Минпросвещения России; \
                 разблокирует её администратор школы.",
                format_instant(last, self.rules.utc_offset_hours),
                format_instant(deadline, self.rules.utc_offset_hours),
            );
            if self
                .store
                .insert_notice(a.person_id, "dormancy.warning", &last.to_string(), &body, now)
                .await?
            {
                run.notices += 1;
            }
        }
        Ok(run)
    }

    /// Lifecycle at login, after ESIA vouched for the person: blocked and dormant accounts
    /// are refused, except a dormant student or parent who may be re-activated here.
    pub async fn check_lifecycle_at_login(
        &self,
        person: &PersonRow,
        rel: &ActorRelations,
        trusted: bool,
        ctx: &AuditContext,
    ) -> Result<Option<Refusal>, AppError> {
        let act = self.store.get_account_activity(person.id).await?;
        let mut state = act.state;
        let by = ChangedBy { person: None, role: "system".into(), ctx: ctx.clone() };
        if state == AccountState::Active && self.is_dormant_now(&act) {
            // The job has not run yet: the login itself enforces the rule.
            self.set_account_state(person.id, AccountState::Dormant, reasons::DORMANT, None, &by)
                .await?;
            state = AccountState::Dormant;
        }
        match state {
            AccountState::Active => Ok(None),
            AccountState::Blocked => Ok(Some(Refusal::Blocked)),
            AccountState::Dormant => {
                let schools = self.reactivation_schools(rel, trusted).await?;
                if schools.is_empty() {
                    return Ok(Some(Refusal::Dormant));
                }
                self.set_account_state(
                    person.id,
                    AccountState::Active,
                    reasons::REACTIVATED_AT_LOGIN,
                    None,
                    &by,
                )
                .await?;
                let now = self.now_micros();
                let key = now.to_string();
                self.store
                    .insert_notice(
                        person.id,
                        "account.reactivated",
                        &key,
                        "Ваша учётная запись была заблокирована из-за долгого отсутствия входа и \
                         разблокирована автоматически при входе через Госуслуги. Если это были не вы, \
                         сообщите администратору школы.",
                        now,
                    )
                    .await?;
                for school in schools {
                    for admin in self.store.list_school_admins(school).await? {
                        self.store
                            .insert_notice(
                                admin,
                                "account.reactivated.admin",
                                &format!("{}:{key}", person.uid),
                                &format!(
                                    "Учётная запись {} разблокирована при входе через Госуслуги \
                                     (была неактивна более {} дней).",
                                    person.short_name(),
                                    self.security.dormant_after_days
                                ),
                                now,
                            )
                            .await?;
                    }
                }
                Ok(None)
            }
        }
    }

    /// Schools whose students/parents rule allows re-activation at login; empty = not allowed.
    async fn reactivation_schools(
        &self,
        rel: &ActorRelations,
        trusted: bool,
    ) -> Result<Vec<SchoolId>, AppError> {
        // Staff and privileged roles always need an administrator.
        if !trusted || !rel.grants.is_empty() || !rel.teaching.is_empty() {
            return Ok(Vec::new());
        }
        let mut schools = Vec::new();
        if self.security.reactivate_students_at_login {
            schools.extend(rel.enrolled_in.iter().map(|(s, _)| *s));
        }
        if self.security.reactivate_parents_at_login {
            let today = self.today();
            for c in rel.children.iter().filter(|c| c.visible_until.is_none()) {
                for e in self.store.list_enrolments(c.child).await? {
                    if e.admitted_on <= today && e.departed_on.is_none_or(|d| d > today) {
                        schools.push(e.school_id);
                    }
                }
            }
        }
        schools.sort();
        schools.dedup();
        Ok(schools)
    }

    /// A school admin re-activates the dormant accounts of a class or of the whole school
    /// (1 September after the summer break). Accounts blocked by an administrator stay blocked.
    pub async fn reactivate_in_bulk(
        &self,
        actor: &Actor,
        scope: ReactivationScope,
        note: &str,
        ctx: &AuditContext,
    ) -> Result<usize, AppError> {
        let note = note.trim();
        if note.chars().count() < 3 {
            return Err(AppError::Invalid(
                "Укажите причину разблокировки (например: «начало учебного года»): она попадёт в журнал аудита.".into(),
            ));
        }
        let today = self.today();
        let (school_id, accounts, target) = match scope {
            ReactivationScope::Class(c) => {
                let class = self.store.get_class(c).await?;
                (class.school_id, self.store.list_class_accounts(c, today).await?, ("class", c.0))
            }
            ReactivationScope::School(s) => {
                (s, self.store.list_school_accounts(s, today).await?, ("school", s.0))
            }
        };
        let school = self.store.get_school(school_id).await?;
        zhurnal_domain::authorize(actor, Action::ManageSchool, &Resource::School(school.place()))?;
        let by =
            ChangedBy { person: Some(actor.person), role: "school-admin".into(), ctx: ctx.clone() };
        let mut changed = 0;
        for a in accounts.iter().filter(|a| {
            a.state == AccountState::Dormant
                || (a.state == AccountState::Active && self.is_dormant_now(a))
        }) {
            if self
                .set_account_state(
                    a.person_id,
                    AccountState::Active,
                    reasons::BULK_REACTIVATION,
                    Some(note),
                    &by,
                )
                .await?
            {
                changed += 1;
            }
        }
        let audit = ctx
            .event(self.now_micros(), "account.bulk_reactivation", "ok")
            .actor(actor.person.0, "school-admin")
            .target(target.0, target.1)
            .school(school_id.0)
            .details(serde_json::json!({ "reactivated": changed, "note": note }));
        self.store.append_audit(audit).await?;
        Ok(changed)
    }

    /// Notices to show the person (the last two weeks).
    pub async fn recent_notices(&self, person: PersonId) -> Result<Vec<String>, AppError> {
        let since = self.notices_since();
        Ok(self.store.list_notices(person, since).await?.into_iter().map(|n| n.body).collect())
    }

    /// Notices created since this moment are shown (the last 14 days).
    pub fn notices_since(&self) -> i64 {
        self.now_micros() - 14 * DAY
    }

    // ----- Detection rules -------------------------------------------------------------

    /// Runs the detection rules over audit records written since the last run.
    pub async fn run_detection(&self) -> Result<DetectionRun, AppError> {
        let mut run = DetectionRun::default();
        let mut cursor = self.store.get_cursor("detection").await?;
        loop {
            let page = self.store.list_audit(cursor, 500).await?;
            let Some(last) = page.last() else { break };
            let last_seq = last.seq;
            for r in &page {
                run.records += 1;
                if let Some(hit) = self.evaluate(r).await? {
                    if self.record_incident(hit, r.seq).await? {
                        run.incidents += 1;
                    } else {
                        run.updated += 1;
                    }
                }
            }
            cursor = last_seq;
            self.store.set_cursor("detection", cursor).await?;
        }
        Ok(run)
    }

    /// Opens an incident or adds evidence to the open one of the same rule and subject.
    /// Returns true when a new incident was created.
    async fn record_incident(&self, hit: (NewIncident, i64), seq: i64) -> Result<bool, AppError> {
        let (mut inc, window) = hit;
        if let Some(open) = self
            .store
            .find_open_incident(&inc.rule, &inc.subject_key, inc.detected_at - window)
            .await?
        {
            self.store.add_incident_evidence(open.id, &[seq], inc.detected_at).await?;
            // D-01: three attempts on a blocked account within a day is someone trying hard.
            let attempts = open.evidence.len() + usize::from(!open.evidence.contains(&seq));
            if inc.rule == "D-01" && attempts >= 3 && open.severity < Severity::High {
                let audit = NewAudit::new(self.now_micros(), "incident.escalated", "ok")
                    .actor(0, "system")
                    .target("incident", open.id)
                    .reason(inc.rule.clone())
                    .details(serde_json::json!({
                        "from": open.severity.code(), "to": Severity::High.code(),
                        "attempts": attempts,
                    }));
                let audit = NewAudit { actor_id: None, ..audit };
                self.store.escalate_incident(open.id, Severity::High, audit).await?;
            }
            return Ok(false);
        }
        if !inc.evidence.contains(&seq) {
            inc.evidence.push(seq);
        }
        let audit = NewAudit::new(self.now_micros(), "incident.created", "ok")
            .actor(0, "system")
            .reason(inc.rule.clone())
            .details(
                serde_json::json!({ "severity": inc.severity.code(), "evidence": inc.evidence }),
            );
        let audit = NewAudit { actor_id: None, ..audit };
        self.store.create_incident(&inc, audit).await?;
        Ok(true)
    }

    /// One record against every rule: the incident it raises and the window that joins hits.
    async fn evaluate(&self, r: &AuditRecord) -> Result<Option<(NewIncident, i64)>, AppError> {
        let e = &r.event;
        let cfg = &self.security;
        let incident = |rule: &str, severity, subject_key: String, summary: String| NewIncident {
            rule: rule.into(),
            severity,
            detected_at: e.at,
            subject_key,
            subject_person_id: e.actor_id.filter(|a| *a > 0).map(PersonId),
            subject_ip: e.source_ip.clone(),
            summary,
            evidence: vec![r.seq],
        };
        let person_key = || e.actor_id.map(|a| format!("person:{a}"));
        match (e.action.as_str(), e.reason.as_deref()) {
            ("login.refused", Some(reason @ ("blocked_account" | "dormant_account"))) => {
                let Some(key) = person_key() else { return Ok(None) };
                let what = if reason == "dormant_account" {
                    "неактивную (более 3 месяцев без входа)"
                } else {
                    "заблокированную"
                };
                Ok(Some((
                    incident(
                        "D-01",
                        Severity::Medium,
                        key,
                        format!("Попытка входа через ЕСИА в {what} учётную запись."),
                    ),
                    DAY,
                )))
            }
            ("login.refused", Some("departed_student")) => {
                let Some(key) = person_key() else { return Ok(None) };
                Ok(Some((
                    incident(
                        "D-02",
                        Severity::Medium,
                        key,
                        "Попытка входа выбывшего обучающегося.".into(),
                    ),
                    DAY,
                )))
            }
            ("login.refused", reason) if !reason.is_some_and(|r| PERSON_REFUSALS.contains(&r)) => {
                let Some(ip) = e.source_ip.clone() else { return Ok(None) };
                let f = AuditFilter {
                    action_prefix: Some("login.refused".into()),
                    source_ip: Some(ip.clone()),
                    from_at: Some(e.at - 5 * MINUTE),
                    to_at: Some(e.at + 1),
                    ..AuditFilter::default()
                };
                let failed = self
                    .store
                    .search_audit(&f, 1000)
                    .await?
                    .iter()
                    .filter(|x| {
                        !x.event.reason.as_deref().is_some_and(|r| PERSON_REFUSALS.contains(&r))
                    })
                    .count() as i64;
                if failed < cfg.failed_callbacks_per_5_minutes {
                    return Ok(None);
                }
                Ok(Some((
                    incident(
                        "D-06",
                        Severity::Medium,
                        format!("ip:{ip}"),
                        format!("{failed} неудачных возвратов из ЕСИА с адреса {ip} за 5 минут."),
                    ),
                    HOUR,
                )))
            }
            ("diary.view", _) => {
                let (Some(actor), Some(key)) = (e.actor_id, person_key()) else { return Ok(None) };
                let f = AuditFilter {
                    action_prefix: Some("diary.view".into()),
                    actor_id: Some(actor),
                    from_at: Some(e.at - HOUR),
                    to_at: Some(e.at + 1),
                    ..AuditFilter::default()
                };
                let views = self.store.search_audit(&f, 10_000).await?;
                let mut students: Vec<&str> =
                    views.iter().filter_map(|v| v.event.target_id.as_deref()).collect();
                students.sort_unstable();
                students.dedup();
                let n = students.len() as i64;
                if n <= cfg.diary_views_per_hour {
                    return Ok(None);
                }
                Ok(Some((
                    incident(
                        "D-10",
                        Severity::Medium,
                        key,
                        format!(
                            "Одна учётная запись открыла дневники {n} разных обучающихся за час."
                        ),
                    ),
                    HOUR,
                )))
            }
            (action, _) if action.starts_with("report.export") || action.starts_with("export") => {
                let (Some(actor), Some(key)) = (e.actor_id, person_key()) else { return Ok(None) };
                let persons = e.details.get("persons").and_then(|v| v.as_i64()).unwrap_or(0);
                let mut exports = 0;
                for prefix in ["report.export", "export"] {
                    let f = AuditFilter {
                        action_prefix: Some(prefix.into()),
                        actor_id: Some(actor),
                        from_at: Some(e.at - DAY),
                        to_at: Some(e.at + 1),
                        ..AuditFilter::default()
                    };
                    exports += self.store.count_audit(&f).await?;
                }
                if exports <= cfg.exports_per_day && persons <= cfg.export_persons_threshold {
                    return Ok(None);
                }
                Ok(Some((
                    incident(
                        "D-05",
                        Severity::High,
                        key,
                        format!(
                            "Массовая выгрузка: {exports} выгрузок за сутки, в последней {persons} чел."
                        ),
                    ),
                    DAY,
                )))
            }
            ("login.success", _) => {
                let (Some(actor), Some(ip)) = (e.actor_id, e.source_ip.as_deref()) else {
                    return Ok(None);
                };
                let grants = self.store.list_role_grants(PersonId(actor)).await?;
                let privileged = grants.iter().any(|g| {
                    matches!(
                        g.role,
                        Role::SchoolAdmin
                            | Role::MunicipalOfficer
                            | Role::RegionalAdmin
                            | Role::SecurityOfficer
                    )
                });
                if !privileged {
                    return Ok(None);
                }
                let f = AuditFilter {
                    action_prefix: Some("login.success".into()),
                    actor_id: Some(actor),
                    from_at: Some(e.at - 90 * DAY),
                    before_seq: Some(r.seq),
                    ..AuditFilter::default()
                };
                let earlier = self.store.search_audit(&f, 500).await?;
                let net = network_of(ip);
                let known = earlier.is_empty()
                    || earlier
                        .iter()
                        .any(|x| x.event.source_ip.as_deref().map(network_of) == Some(net.clone()));
                if known {
                    return Ok(None);
                }
                Ok(Some((
                    incident(
                        "D-07",
                        Severity::Medium,
                        format!("person:{actor}:{net}"),
                        format!("Вход с привилегированной ролью из новой сети {net}."),
                    ),
                    DAY,
                )))
            }
            _ => Ok(None),
        }
    }

    /// The security officer changes an incident's status and records the measure taken.
    pub async fn add_incident_measure(
        &self,
        actor: &Actor,
        region: zhurnal_domain::RegionId,
        id: i64,
        status: IncidentStatus,
        text: &str,
        ctx: &AuditContext,
    ) -> Result<i64, AppError> {
        zhurnal_domain::authorize(actor, Action::ManageIncidents, &Resource::Region(region))?;
        let text = text.trim();
        if text.chars().count() < 3 {
            return Err(AppError::Invalid(
                "Опишите принятую меру (не короче 3 символов): она попадёт в реестр и в отчёт."
                    .into(),
            ));
        }
        if text.chars().count() > 2000 {
            return Err(AppError::Invalid(
                "Описание меры длиннее 2000 символов: сократите его.".into(),
            ));
        }
        let audit = ctx
            .event(self.now_micros(), "incident.measure", "ok")
            .actor(actor.person.0, "security-officer")
            .target("incident", id)
            .details(serde_json::json!({ "status": status.code() }));
        Ok(self.store.add_incident_measure(id, status, text, Some(actor.person), audit).await?)
    }

    /// Records that a notification about the incident was sent (Роскомнадзор 24 h / 72 h,
    /// НКЦКИ, parents), at the regional local time the officer states.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_incident_notice(
        &self,
        actor: &Actor,
        region: zhurnal_domain::RegionId,
        id: i64,
        kind: NoticeKind,
        sent_local: chrono::NaiveDateTime,
        reference: &str,
        ctx: &AuditContext,
    ) -> Result<(), AppError> {
        zhurnal_domain::authorize(actor, Action::ManageIncidents, &Resource::Region(region))?;
        let incident = self.store.get_incident(id).await?;
        let sent_at =
            sent_local.and_utc().timestamp_micros() - i64::from(self.rules.utc_offset_hours) * HOUR;
        let now = self.now_micros();
        if sent_at > now + 5 * MINUTE {
            return Err(AppError::Invalid(
                "Время отправки уведомления в будущем: укажите, когда оно было отправлено.".into(),
            ));
        }
        if sent_at < incident.detected_at - HOUR {
            return Err(AppError::Invalid(format!(
                "Уведомление не могло быть отправлено раньше, чем выявлен инцидент ({}).",
                format_instant(incident.detected_at, self.rules.utc_offset_hours)
            )));
        }
        let reference = reference.trim();
        if reference.chars().count() > 100 {
            return Err(AppError::Invalid(
                "Регистрационный номер — не длиннее 100 символов.".into(),
            ));
        }
        let notice = IncidentNoticeRow {
            incident_id: id,
            kind,
            sent_at,
            reference: Some(reference.to_string()).filter(|r| !r.is_empty()),
            author_id: Some(actor.person),
            recorded_at: now,
        };
        let audit = ctx
            .event(now, "incident.notice", "ok")
            .actor(actor.person.0, "security-officer")
            .target("incident", id)
            .details(serde_json::json!({ "kind": kind.code() }));
        match self.store.record_incident_notice(&notice, audit).await {
            Err(zhurnal_store::StoreError::Conflict { .. }) => Err(AppError::Invalid(format!(
                "«{}» по этому инциденту уже отмечено.",
                kind.title()
            ))),
            other => Ok(other?),
        }
    }

    // ----- Audit anchors ---------------------------------------------------------------

    /// Appends the current chain head to the anchors file unless it is already the last line.
    pub async fn anchor_audit_head(&self, path: &Path) -> Result<Option<Anchor>, AppError> {
        let Some(head) = self.store.audit_head().await? else { return Ok(None) };
        let anchors = read_anchors(path)?;
        if anchors.last().is_some_and(|a| a.seq == head.seq && a.hash == head.hash) {
            return Ok(None);
        }
        let a = Anchor { at: self.now_micros(), seq: head.seq, hash: head.hash };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| AppError::Invalid(format!("файл якорей {}: {e}", path.display())))?;
        writeln!(f, "{}", a.to_line())
            .and_then(|()| f.sync_all())
            .map_err(|e| AppError::Invalid(format!("запись якоря в {}: {e}", path.display())))?;
        Ok(Some(a))
    }

    // ----- Ministry report -------------------------------------------------------------

    /// The report for the ministry over `[from, to]` (dates in the region's time zone).
    pub async fn ministry_report(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<MinistryReport, AppError> {
        if to < from {
            return Err(AppError::Invalid(
                "Конец периода раньше начала: проверьте даты «с» и «по».".into(),
            ));
        }
        let off = self.rules.utc_offset_hours as i64 * HOUR;
        let start = from.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros() - off);
        let end = to
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_micros() - off);
        let (Some(start), Some(end)) = (start, end) else {
            return Err(AppError::Invalid("Период вне допустимого диапазона дат.".into()));
        };
        let period = |action: &str, reason: Option<&str>| AuditFilter {
            action_prefix: Some(action.into()),
            reason: reason.map(str::to_string),
            from_at: Some(start),
            to_at: Some(end),
            ..AuditFilter::default()
        };
        let s = &self.store;
        let mut summary = vec![
            (
                "Учётные записи, заблокированные за неактивность более 3 месяцев (за период)"
                    .to_string(),
                s.count_audit(&period("account.state", Some(reasons::DORMANT))).await?,
            ),
            (
                "Учётные записи, заблокированные за неактивность (всего сейчас)".to_string(),
                s.count_accounts(AccountState::Dormant, Some(reasons::DORMANT)).await?,
            ),
            (
                "Учётные записи, заблокированные администратором (всего сейчас)".to_string(),
                s.count_accounts(AccountState::Blocked, None).await?,
            ),
            (
                "Выбывшие обучающиеся, доступ закрыт (за период)".to_string(),
                s.count_departed_students(Some(from), to).await?,
            ),
            (
                "Выбывшие обучающиеся, доступ закрыт (всего)".to_string(),
                s.count_departed_students(None, to).await?,
            ),
            (
                "Отказы во входе в заблокированные и неактивные учётные записи".to_string(),
                s.count_audit(&period("login.refused", Some("blocked_account"))).await?
                    + s.count_audit(&period("login.refused", Some("dormant_account"))).await?,
            ),
            (
                "Отказы во входе выбывшим обучающимся".to_string(),
                s.count_audit(&period("login.refused", Some("departed_student"))).await?,
            ),
            (
                "Успешные входы (все — через ЕСИА)".to_string(),
                s.count_audit(&period("login.success", None)).await?,
            ),
            ("Учётные записи с входом по логину и паролю".to_string(), 0),
        ];
        let mut incidents = Vec::new();
        let mut notices = std::collections::BTreeMap::new();
        for i in s.list_incidents(start, end).await? {
            let measures = s.list_incident_measures(i.id).await?;
            notices.insert(i.id, s.list_incident_notices(i.id).await?);
            incidents.push((i, measures));
        }
        for sev in Severity::ALL.iter().rev() {
            let open = incidents
                .iter()
                .filter(|(i, _)| i.severity == *sev && i.status != IncidentStatus::Resolved)
                .count() as i64;
            summary.push((format!("Открытые инциденты, важность «{}»", sev.title()), open));
        }
        let head = s.audit_head().await?.map(|h| (h.seq, hex::encode(&h.hash)));
        Ok(MinistryReport {
            from,
            to,
            generated_at: format_instant(self.now_micros(), self.rules.utc_offset_hours),
            chain_head: head,
            summary,
            incidents,
            notices,
            offset_hours: self.rules.utc_offset_hours,
        })
    }
}

/// Reads the anchors file; a missing file is no anchors yet, a damaged line is an error.
pub fn read_anchors(path: &Path) -> Result<Vec<Anchor>, AppError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AppError::Invalid(format!("файл якорей {}: {e}", path.display()))),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            Anchor::parse_line(l).ok_or_else(|| {
                AppError::Invalid(format!(
                    "файл якорей {}: строка {} повреждена",
                    path.display(),
                    n + 1
                ))
            })
        })
        .collect()
}

/// Отчёт для Минпросвещения за период (security.md §5.3 A).
#[derive(Clone, Debug)]
pub struct MinistryReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub generated_at: String,
    /// (seq, hash hex) of the audit chain head when the report was made.
    pub chain_head: Option<(i64, String)>,
    pub summary: Vec<(String, i64)>,
    pub incidents: Vec<(IncidentRow, Vec<MeasureRow>)>,
    /// Notifications sent, per incident id.
    pub notices: std::collections::BTreeMap<i64, Vec<IncidentNoticeRow>>,
    pub offset_hours: i32,
}

impl MinistryReport {
    /// The report as rows of cells: the one source for the screen, CSV, and later PDF/XLSX.
    /// Sections are separated by a row whose only cell is the section title.
    pub fn table(&self) -> Vec<Vec<String>> {
        let mut t = vec![
            vec!["Отчёт об инцидентах информационной безопасности в электронном журнале".into()],
            vec![
                "Период".into(),
                format!("{} — {}", self.from.format("%d.%m.%Y"), self.to.format("%d.%m.%Y")),
            ],
            vec!["Сформирован".into(), self.generated_at.clone()],
            vec![
                "Голова цепочки журнала аудита".into(),
                match &self.chain_head {
                    Some((seq, hash)) => format!("запись #{seq}, хеш {hash}"),
                    None => "журнал пуст".into(),
                },
            ],
            vec!["Сводные показатели".into()],
        ];
        for (k, v) in &self.summary {
            t.push(vec![k.clone(), v.to_string()]);
        }
        t.push(vec!["Инциденты".into()]);
        t.push(
            [
                "№",
                "Выявлен",
                "Правило",
                "Важность",
                "Описание",
                "Доказательства (записи аудита)",
                "Статус",
                "Принятые меры",
                "Уведомления",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        );
        for (i, measures) in &self.incidents {
            let m = measures
                .iter()
                .map(|m| format!("{}: {}", format_instant(m.at, self.offset_hours), m.text))
                .collect::<Vec<_>>()
                .join("; ");
            t.push(vec![
                i.id.to_string(),
                format_instant(i.detected_at, self.offset_hours),
                format!("{} {}", i.rule, rule_title(&i.rule)),
                i.severity.title().into(),
                i.summary.clone(),
                i.evidence.iter().map(|s| format!("#{s}")).collect::<Vec<_>>().join(" "),
                i.status.title().into(),
                m,
                self.notices_text(i.id),
            ]);
        }
        t
    }

    /// The report as a document for PDF and XLSX: the same figures as [`Self::table`], one table
    /// per section so that the spreadsheet keeps numbers in their own columns.
    pub fn to_doc(&self) -> crate::export::ReportDoc {
        use crate::export::{ReportDoc, Table};
        let mut about =
            Table::new("Общие сведения", &["Показатель", "Значение"]).widths(&[1.0, 3.0]);
        let head = match &self.chain_head {
            Some((seq, hash)) => format!("запись #{seq}, хеш {hash}"),
            None => "журнал пуст".into(),
        };
        about.push(vec!["Сформирован".into(), self.generated_at.clone()]);
        about.push(vec!["Голова цепочки журнала аудита".into(), head]);
        let mut summary =
            Table::new("Сводные показатели", &["Показатель", "Значение"]).widths(&[3.0, 1.0]);
        for (k, v) in &self.summary {
            summary.push(vec![k.clone(), v.to_string()]);
        }
        let mut incidents = Table::new(
            "Инциденты и принятые меры",
            &[
                "№",
                "Выявлен",
                "Правило",
                "Важность",
                "Описание",
                "Доказательства",
                "Статус",
                "Принятые меры",
                "Уведомления",
            ],
        )
        .widths(&[0.4, 1.0, 1.4, 0.7, 1.8, 0.9, 0.8, 2.0, 1.6]);
        // The rows of the table the screen and CSV show, after its header row.
        let table = self.table();
        let start = table
            .iter()
            .position(|r| r.first().is_some_and(|c| c == "№"))
            .map_or(table.len(), |i| i + 1);
        for row in &table[start..] {
            incidents.push(row.clone());
        }
        ReportDoc {
            title: "Отчёт об инцидентах информационной безопасности в электронном журнале".into(),
            subtitle: format!(
                "Период: {} — {}",
                self.from.format("%d.%m.%Y"),
                self.to.format("%d.%m.%Y")
            ),
            tables: vec![about, summary, incidents],
        }
    }

    /// «Роскомнадзор: уведомление (24 ч): 23.11.2026 15:00, № …; …», or that none was sent.
    fn notices_text(&self, id: i64) -> String {
        let sent = self.notices.get(&id).map(Vec::as_slice).unwrap_or_default();
        if sent.is_empty() {
            return "не отправлялись".into();
        }
        sent.iter()
            .map(|n| {
                let mut s =
                    format!("{}: {}", n.kind.title(), format_instant(n.sent_at, self.offset_hours));
                if let Some(r) = &n.reference {
                    s.push_str(&format!(", № {r}"));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// CSV (RFC 4180, `;` as Excel in Russian locale expects), formulas neutralised.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("\u{feff}");
        for row in self.table() {
            let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&cells.join(";"));
            out.push_str("\r\n");
        }
        out
    }
}

/// One CSV cell: quoted, and a leading `= + - @` tab or CR prefixed with `'` (ASVS 1.2.10).
pub fn csv_cell(c: &str) -> String {
    let mut v = c.to_string();
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        v.insert(0, '\'');
    }
    format!("\"{}\"", v.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_group_by_24_and_48() {
        assert_eq!(network_of("10.1.2.3"), "10.1.2.0/24");
        assert_eq!(network_of("10.1.2.200"), network_of("10.1.2.3"));
        assert_ne!(network_of("10.1.3.3"), network_of("10.1.2.3"));
        assert_eq!(network_of("2001:db8:1::5"), "2001:db8:1::/48");
    }

    #[test]
    fn csv_cells_neutralise_formulas() {
        assert_eq!(csv_cell("=1+1"), "\"'=1+1\"");
        assert_eq!(csv_cell("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_cell("-3"), "\"'-3\"");
    }
}
