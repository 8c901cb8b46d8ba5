//! Integrations (issue 8): the outbox worker that delivers events to Сферум and «Школьное
//! портфолио», the school's delivery status, the regional monitoring figures and the school's
//! published communication services.
//!
//! Delivery is at-least-once from the journal's side (an event stays pending until the
//! receiver acknowledged it; a worker killed mid-delivery leaves it due again when its lease
//! passes) and exactly-once in effect: every attempt carries the event's idempotency key and
//! the receivers apply a key once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};
use zhurnal_domain::policy::{Action, Resource, authorize};
use zhurnal_domain::{
    Actor, AssignmentId, ClassId, MunicipalityId, PeriodId, PersonId, RegionId, SchoolId,
};
use zhurnal_integrations::IntegrationError;
use zhurnal_integrations::portfolio::{
    PortfolioApi, PortfolioConfig, ResultRecord, ResultsBatch, StudentRef,
};
use zhurnal_integrations::sferum::{ChatSync, MemberWire, SferumApi, SferumConfig};
use zhurnal_store::integration::{
    ChatRow, OutboxEvent, OutboxOutcome, OutboxStatus, PortfolioRecordRow, SchoolAdoption,
    SchoolCommunication, topics,
};
use zhurnal_store::journal::FinalMarkRow;
use zhurnal_store::{ClassRow, MunicipalityRow, NewAudit, PersonRow, SchoolRow, StoreError};

use crate::{App, AppError};

/// Section `[integrations]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationsConfig {
    /// Сферум; absent = no school is integrated (class teachers get the manual instructions).
    pub sferum: Option<SferumConfig>,
    /// «Школьное портфолио»; absent = marks are not sent.
    pub portfolio: Option<PortfolioConfig>,
    pub worker: WorkerConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// How often the worker looks for due events.
    pub poll_ms: u64,
    /// Events claimed per round.
    pub batch: i64,
    /// How long a claimed event stays invisible to other workers (longer than a request's
    /// timeout); after a crash it is delivered again once this passes.
    pub lease_seconds: u64,
    /// Attempts before an event goes to the dead letters.
    pub max_attempts: i64,
    /// First retry delay; doubles per attempt, with jitter, up to `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            poll_ms: 1000,
            batch: 20,
            lease_seconds: 60,
            max_attempts: 10,
            backoff_base_ms: 2_000,
            backoff_max_ms: 30 * 60_000,
        }
    }
}

impl WorkerConfig {
    /// Delay before attempt `attempts + 1`: exponential, capped, with "equal jitter" (half
    /// fixed, half random) so a recovering service is not hit by every worker at once.
    pub fn backoff_micros(&self, attempts: i64, rng: &mut impl Rng) -> i64 {
        let exp = attempts.clamp(1, 30) as u32 - 1;
        let full = self.backoff_base_ms.saturating_mul(1u64 << exp).min(self.backoff_max_ms);
        let half = full / 2;
        let jitter = if half > 0 { rng.gen_range(0..=half) } else { 0 };
        ((half + jitter) as i64).saturating_mul(1000)
    }
}

/// Wall-clock microseconds: outbox scheduling is operational time, not the school's clock
/// (which tests freeze).
pub fn wall_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The clients the worker delivers through (real HTTP clients or test doubles).
#[derive(Clone, Default)]
pub struct Connectors {
    pub sferum: Option<Arc<dyn SferumApi>>,
    pub portfolio: Option<Arc<dyn PortfolioApi>>,
}

impl Connectors {
    /// HTTP clients for the configured systems.
    pub fn from_config(cfg: &IntegrationsConfig) -> Self {
        Self {
            sferum: cfg.sferum.clone().map(|c| {
                Arc::new(zhurnal_integrations::sferum::SferumClient::new(c)) as Arc<dyn SferumApi>
            }),
            portfolio: cfg.portfolio.clone().map(|c| {
                Arc::new(zhurnal_integrations::portfolio::PortfolioClient::new(c))
                    as Arc<dyn PortfolioApi>
            }),
        }
    }
}

/// What a delivery round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundStats {
    pub claimed: usize,
    pub delivered: usize,
    pub skipped: usize,
    pub retried: usize,
    pub dead: usize,
}

/// Why a delivery did not happen: the receiver's answer, or our own storage.
enum Failure {
    Remote(IntegrationError),
    Local(AppError),
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        Self::Local(e)
    }
}
impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Local(AppError::Store(e))
    }
}
impl From<IntegrationError> for Failure {
    fn from(e: IntegrationError) -> Self {
        Self::Remote(e)
    }
}

/// Records per portfolio request: large periods go in parts, each with its own key.
const PORTFOLIO_CHUNK: usize = 500;

impl App {
    /// Claims due events and delivers them; called in a loop by the server.
    pub async fn deliver_outbox(&self, conn: &Connectors) -> Result<RoundStats, AppError> {
        let w = &self.integrations.worker;
        let now = wall_micros();
        let lease = now + (w.lease_seconds as i64).saturating_mul(1_000_000);
        let events = self.store.claim_outbox(now, lease, w.batch.max(1)).await?;
        let mut stats = RoundStats { claimed: events.len(), ..RoundStats::default() };
        for ev in events {
            let outcome = match self.deliver_one(conn, &ev).await {
                Ok(None) => OutboxOutcome::Delivered,
                Ok(Some(why)) => OutboxOutcome::Skipped(why),
                Err(f) => {
                    let (retry, error) = match f {
                        Failure::Remote(e) => (e.retryable(), e.to_string()),
                        // Our own database hiccup: try again later; a missing subject (a
                        // class deleted since) cannot improve.
                        Failure::Local(AppError::Store(StoreError::NotFound(what))) => {
                            (false, format!("не найдено: {what}"))
                        }
                        Failure::Local(e) => (true, e.to_string()),
                    };
                    if retry && ev.attempts < w.max_attempts {
                        let at =
                            wall_micros() + w.backoff_micros(ev.attempts, &mut rand::thread_rng());
                        OutboxOutcome::Retry { at, error }
                    } else {
                        OutboxOutcome::Dead(error)
                    }
                }
            };
            match &outcome {
                OutboxOutcome::Delivered => stats.delivered += 1,
                OutboxOutcome::Skipped(_) => stats.skipped += 1,
                OutboxOutcome::Retry { .. } => stats.retried += 1,
                OutboxOutcome::Dead(e) => {
                    stats.dead += 1;
                    tracing::warn!(event = ev.id, topic = %ev.topic, error = %e, "outbox event dead-lettered");
                }
            }
            self.store.finish_outbox(ev.id, &outcome, wall_micros()).await?;
        }
        Ok(stats)
    }

    /// `Ok(None)`: delivered; `Ok(Some(reason))`: nothing to deliver.
    async fn deliver_one(
        &self,
        conn: &Connectors,
        ev: &OutboxEvent,
    ) -> Result<Option<String>, Failure> {
        match ev.topic.as_str() {
            topics::SFERUM_CLASS => self.deliver_chat(conn, ev).await,
            topics::PORTFOLIO_MARK => self.deliver_mark(conn, ev).await,
            topics::PORTFOLIO_PERIOD => self.deliver_period(conn, ev).await,
            other => Ok(Some(format!("неизвестная тема «{other}»"))),
        }
    }

    async fn deliver_chat(
        &self,
        conn: &Connectors,
        ev: &OutboxEvent,
    ) -> Result<Option<String>, Failure> {
        let (Some(cfg), Some(api)) = (&self.integrations.sferum, &conn.sferum) else {
            return Ok(Some("Сферум не подключён".into()));
        };
        let class_id = ClassId(ev.subject_id("class").ok_or_else(|| bad_subject(ev))?);
        let class = self.store.get_class(class_id).await?;
        let school = self.store.get_school(class.school_id).await?;
        if !cfg.covers_school(&school.external_id) {
            return Ok(Some("школа не подключена к Сферуму".into()));
        }
        let had_chat =
            self.store.list_chats(Some(school.id)).await?.iter().any(|c| c.class_id == class_id);
        if !had_chat && !cfg.needs_chat(class.grade, class.newly_formed) {
            return Ok(Some("классу чат не требуется".into()));
        }
        let members = self.store.list_chat_members(class_id, self.today()).await?;
        let sync = ChatSync {
            school_name: school.name.clone(),
            title: format!("{} класс", class.name()),
            members: members
                .iter()
                .map(|m| MemberWire {
                    uid: m.uid.clone(),
                    esia_oid: m.esia_oid.clone(),
                    name: m.name.clone(),
                    role: m.role.clone(),
                })
                .collect(),
        };
        let res = api
            .sync_chat(&ev.idempotency_key(), &school.external_id, &class.external_id, &sync)
            .await?;
        self.store
            .upsert_chat(&ChatRow {
                class_id,
                school_id: school.id,
                chat_id: res.chat_id,
                members_required: members.len() as i64,
                members_joined: i64::from(res.joined),
                synced_at: wall_micros(),
            })
            .await?;
        Ok(None)
    }

    async fn deliver_mark(
        &self,
        conn: &Connectors,
        ev: &OutboxEvent,
    ) -> Result<Option<String>, Failure> {
        let (Some(cfg), Some(api)) = (&self.integrations.portfolio, &conn.portfolio) else {
            return Ok(Some("портфолио не подключено".into()));
        };
        let student = PersonId(ev.subject_id("student").ok_or_else(|| bad_subject(ev))?);
        let assignment =
            AssignmentId(ev.payload["assignment"].as_i64().ok_or_else(|| bad_subject(ev))?);
        let kind = ev.payload["kind"].as_str().unwrap_or_default().to_string();
        let period = ev.payload["period"].as_i64().map(PeriodId);
        let mut ctx = RecordContext::default();
        let school = self.record_school(&mut ctx, assignment).await?;
        if !cfg.covers_school(&school.external_id) {
            return Ok(Some("школа не передаёт результаты в портфолио".into()));
        }
        if let Some(p) = period {
            let closed = self.period_closed(&mut ctx, assignment, p).await?;
            if !closed {
                return Ok(Some("период ещё не закрыт: отметка уйдёт при закрытии".into()));
            }
        }
        let current =
            self.store.list_assignment_final_marks(assignment).await?.into_iter().find(|m| {
                m.student_id == student && m.kind.code() == kind && m.kind.period() == period
            });
        let row = current.clone().unwrap_or(FinalMarkRow {
            student_id: student,
            assignment_id: assignment,
            kind: match (kind.as_str(), period) {
                ("period", Some(p)) => zhurnal_store::journal::FinalMarkKind::Period(p),
                ("final", _) => zhurnal_store::journal::FinalMarkKind::Final,
                _ => zhurnal_store::journal::FinalMarkKind::Annual,
            },
            value: String::new(),
            author_id: student,
            set_at: 0,
        });
        let value = current.map(|m| m.value);
        self.send_records(api, ev, &mut ctx, &school, &[(row, value)]).await?;
        Ok(None)
    }

    async fn deliver_period(
        &self,
        conn: &Connectors,
        ev: &OutboxEvent,
    ) -> Result<Option<String>, Failure> {
        let (Some(cfg), Some(api)) = (&self.integrations.portfolio, &conn.portfolio) else {
            return Ok(Some("портфолио не подключено".into()));
        };
        let period = PeriodId(ev.subject_id("period").ok_or_else(|| bad_subject(ev))?);
        let marks = self.store.list_period_final_marks(period).await?;
        let Some(first) = marks.first() else {
            return Ok(Some("в периоде нет итоговых отметок".into()));
        };
        let mut ctx = RecordContext::default();
        let school = self.record_school(&mut ctx, first.assignment_id).await?;
        if !cfg.covers_school(&school.external_id) {
            return Ok(Some("школа не передаёт результаты в портфолио".into()));
        }
        if !self.period_closed(&mut ctx, first.assignment_id, period).await? {
            return Ok(Some("период снова открыт".into()));
        }
        let rows: Vec<(FinalMarkRow, Option<String>)> =
            marks.into_iter().map(|m| (m.clone(), Some(m.value))).collect();
        self.send_records(api, ev, &mut ctx, &school, &rows).await?;
        Ok(None)
    }

    async fn record_school(
        &self,
        ctx: &mut RecordContext,
        assignment: AssignmentId,
    ) -> Result<SchoolRow, Failure> {
        let ja = self.store.get_journal_assignment(assignment).await?;
        let school = self.store.get_school(ja.school_id).await?;
        ctx.assignments.insert(assignment, ja);
        Ok(school)
    }

    async fn period_closed(
        &self,
        ctx: &mut RecordContext,
        assignment: AssignmentId,
        period: PeriodId,
    ) -> Result<bool, Failure> {
        let ja = self.assignment_in(ctx, assignment).await?;
        let periods = self.store.list_periods(ja.academic_year_id).await?;
        Ok(periods.iter().any(|p| p.period.id == period && p.period.closed_on.is_some()))
    }

    async fn assignment_in(
        &self,
        ctx: &mut RecordContext,
        assignment: AssignmentId,
    ) -> Result<zhurnal_store::journal::JournalAssignment, Failure> {
        if let Some(ja) = ctx.assignments.get(&assignment) {
            return Ok(ja.clone());
        }
        let ja = self.store.get_journal_assignment(assignment).await?;
        ctx.assignments.insert(assignment, ja.clone());
        Ok(ja)
    }

    /// Sends the marks (value `None` withdraws one) and records what was acknowledged.
    async fn send_records(
        &self,
        api: &Arc<dyn PortfolioApi>,
        ev: &OutboxEvent,
        ctx: &mut RecordContext,
        school: &SchoolRow,
        rows: &[(FinalMarkRow, Option<String>)],
    ) -> Result<(), Failure> {
        let mut ready: Vec<(ResultRecord, PersonId)> = Vec::new();
        let now = wall_micros();
        for (m, value) in rows {
            let ja = self.assignment_in(ctx, m.assignment_id).await?;
            let student = match ctx.persons.get(&m.student_id) {
                Some(p) => p.clone(),
                None => {
                    let p = self.store.get_person(m.student_id).await?;
                    ctx.persons.insert(m.student_id, p.clone());
                    p
                }
            };
            let year = match ctx.years.get(&ja.academic_year_id) {
                Some(y) => y.clone(),
                None => {
                    let y = self.store.get_year(ja.academic_year_id).await?;
                    ctx.years.insert(ja.academic_year_id, y.name.clone());
                    y.name
                }
            };
            let period_number = match m.kind.period() {
                Some(p) => {
                    let periods = self.store.list_periods(ja.academic_year_id).await?;
                    periods.iter().find(|x| x.period.id == p).map(|x| x.period.number)
                }
                None => None,
            };
            let record_key = format!(
                "{}/{}/{}/{}",
                student.uid,
                m.assignment_id.0,
                m.kind.code(),
                m.kind.period().map_or(year.clone(), |p| p.0.to_string())
            );
            let snils = match (&student.esia_oid, &student.snils_cipher) {
                (None, Some(c)) => {
                    self.vault.decrypt(c, &student.uid).ok().map(|s| s.digits().to_string())
                }
                _ => None,
            };
            if student.esia_oid.is_none() && snils.is_none() {
                // Cannot be matched on Госуслуги: recorded so the admin sees why.
                self.store
                    .upsert_portfolio_record(&PortfolioRecordRow {
                        record_key,
                        student_id: student.id,
                        school_id: school.id,
                        value: value.clone(),
                        status: "no_identifier".into(),
                        event_id: ev.id,
                        delivered_at: now,
                    })
                    .await?;
                continue;
            }
            ready.push((
                ResultRecord {
                    record_key,
                    student: StudentRef { esia_oid: student.esia_oid.clone(), snils },
                    subject: ja.assignment.subject_name.clone(),
                    kind: m.kind.code().to_string(),
                    period: period_number,
                    period_scheme: m.kind.period().map(|_| ja.period_scheme.code().to_string()),
                    academic_year: year,
                    value: value.clone(),
                },
                student.id,
            ));
        }
        for (i, chunk) in ready.chunks(PORTFOLIO_CHUNK).enumerate() {
            let key = if i == 0 {
                ev.idempotency_key()
            } else {
                format!("{}-part-{}", ev.idempotency_key(), i + 1)
            };
            let batch = ResultsBatch {
                school: school.external_id.clone(),
                school_name: school.name.clone(),
                records: chunk.iter().map(|(r, _)| r.clone()).collect(),
            };
            api.send_results(&key, &batch).await?;
            for (r, student) in chunk {
                self.store
                    .upsert_portfolio_record(&PortfolioRecordRow {
                        record_key: r.record_key.clone(),
                        student_id: *student,
                        school_id: school.id,
                        value: r.value.clone(),
                        status: "delivered".into(),
                        event_id: ev.id,
                        delivered_at: wall_micros(),
                    })
                    .await?;
            }
        }
        Ok(())
    }

    // --- Administration -----------------------------------------------------------------------

    /// Makes dead events pending again (all, or one) — `zhurnal outbox replay`, the admin page.
    pub async fn replay_outbox(&self, id: Option<i64>, by: &str) -> Result<u64, AppError> {
        let audit = NewAudit::new(self.now_micros(), "outbox.replay", "ok")
            .actor(0, by)
            .details(serde_json::json!({ "id": id }));
        Ok(self.store.replay_outbox(id, audit).await?)
    }

    /// Enqueues a chat sync for every class of the current year that needs a chat and has
    /// none yet (a school joining Сферум; the demo at start). Returns how many.
    pub async fn enqueue_missing_chats(&self) -> Result<u64, AppError> {
        let Some(cfg) = &self.integrations.sferum else { return Ok(0) };
        // A class with a sync still queued needs no second one (a restarted demo).
        let queued: std::collections::HashSet<String> = self
            .store
            .list_outbox(Some(OutboxStatus::Pending), None, 100_000)
            .await?
            .into_iter()
            .map(|e| e.subject)
            .collect();
        let mut classes = Vec::new();
        for school in self.store.list_schools().await? {
            if !cfg.covers_school(&school.external_id) {
                continue;
            }
            let chats = self.store.list_chats(Some(school.id)).await?;
            for c in self.current_classes(school.id).await? {
                if cfg.needs_chat(c.grade, c.newly_formed)
                    && !chats.iter().any(|x| x.class_id == c.id)
                    && !queued.contains(&format!("class:{}", c.id.0))
                {
                    classes.push(c.id);
                }
            }
        }
        Ok(self.store.enqueue_class_syncs(&classes, self.now_micros()).await?)
    }

    async fn current_classes(&self, school: SchoolId) -> Result<Vec<ClassRow>, AppError> {
        let today = self.today();
        let years = self.store.list_academic_years(school).await?;
        let Some(year) = years
            .iter()
            .find(|y| y.starts_on <= today && today <= y.ends_on)
            .or_else(|| years.iter().max_by_key(|y| y.starts_on))
        else {
            return Ok(Vec::new());
        };
        Ok(self.store.list_classes(school, year.id).await?)
    }

    /// Whether the school's classes get Сферум chats automatically.
    pub fn sferum_covers(&self, school: &SchoolRow) -> bool {
        self.integrations.sferum.as_ref().is_some_and(|c| c.covers_school(&school.external_id))
    }

    /// The school admin's view: dead letters, pending counts, per-student portfolio status.
    pub async fn integration_status(
        &self,
        actor: &Actor,
        school: SchoolId,
    ) -> Result<SchoolIntegrationStatus, AppError> {
        let school = self.store.get_school(school).await?;
        authorize(actor, Action::ManageIntegrations, &Resource::School(school.place()))?;
        let pending =
            self.store.list_outbox(Some(OutboxStatus::Pending), Some(school.id), 10_000).await?;
        let dead = self.store.list_outbox(Some(OutboxStatus::Dead), Some(school.id), 500).await?;
        let records = self.store.list_portfolio_records(school.id).await?;
        let chats = self.store.list_chats(Some(school.id)).await?;
        let mut by_student: BTreeMap<(String, String, i64), StudentPortfolio> = BTreeMap::new();
        let today = self.today();
        let classes = self.current_classes(school.id).await?;
        let mut class_rows = Vec::new();
        for c in &classes {
            let needs = self
                .integrations
                .sferum
                .as_ref()
                .is_some_and(|cfg| cfg.needs_chat(c.grade, c.newly_formed));
            let chat = chats.iter().find(|x| x.class_id == c.id).cloned();
            if needs || chat.is_some() {
                class_rows.push(ClassChatStatus { class: c.name(), required: needs, chat });
            }
            for r in self.store.list_roster(c.id, today).await? {
                by_student.insert(
                    (c.name(), r.person.last_name.clone(), r.person.id.0),
                    StudentPortfolio {
                        name: r.person.short_name(),
                        class: c.name(),
                        ..StudentPortfolio::default()
                    },
                );
            }
        }
        let index: HashMap<i64, (String, String, i64)> =
            by_student.keys().map(|k| (k.2, k.clone())).collect();
        for r in &records {
            if let Some(k) = index.get(&r.student_id.0)
                && let Some(s) = by_student.get_mut(k)
            {
                if r.status == "delivered" {
                    s.delivered += 1;
                    s.last_delivered_at = s.last_delivered_at.max(Some(r.delivered_at));
                } else {
                    s.no_identifier += 1;
                }
            }
        }
        for (list, dead_list) in [(&pending, false), (&dead, true)] {
            for ev in list.iter().filter(|e| e.topic == topics::PORTFOLIO_MARK) {
                if let Some(id) = ev.subject_id("student")
                    && let Some(k) = index.get(&id)
                    && let Some(s) = by_student.get_mut(k)
                {
                    if dead_list {
                        s.failed += 1;
                    } else {
                        s.pending += 1;
                    }
                }
            }
        }
        Ok(SchoolIntegrationStatus {
            school,
            sferum: self.integrations.sferum.as_ref().map(|c| c.profile.title().to_string()),
            portfolio: self.integrations.portfolio.is_some(),
            pending: pending.len(),
            dead,
            chats: class_rows,
            students: by_student.into_values().collect(),
        })
    }

    /// Replays one dead event of the school (the admin's button).
    pub async fn replay_school_event(
        &self,
        actor: &Actor,
        school: SchoolId,
        event: i64,
    ) -> Result<u64, AppError> {
        let school = self.store.get_school(school).await?;
        authorize(actor, Action::ManageIntegrations, &Resource::School(school.place()))?;
        let ev = self.store.get_outbox(event).await?;
        if ev.school_id != Some(school.id) {
            return Err(AppError::Invalid(
                "это событие относится к другой школе: откройте страницу интеграций своей школы"
                    .into(),
            ));
        }
        let audit = NewAudit::new(self.now_micros(), "outbox.replay", "ok")
            .actor(actor.person.0, "school-admin")
            .details(serde_json::json!({ "id": event }));
        Ok(self.store.replay_outbox(Some(event), audit).await?)
    }

    // --- Regional monitoring ------------------------------------------------------------------

    /// The municipalities the actor may monitor, with per-school figures.
    pub async fn monitoring(&self, actor: &Actor) -> Result<Monitoring, AppError> {
        let mut municipalities: Vec<MunicipalityRow> = Vec::new();
        for region in self.store.list_regions().await? {
            for m in self.store.list_municipalities(region.id).await? {
                let res = Resource::Municipality { region: region.id, municipality: m.id };
                if authorize(actor, Action::ViewMonitoring, &res).is_ok() {
                    municipalities.push(m);
                }
            }
        }
        if municipalities.is_empty() {
            // Let the policy phrase the refusal.
            authorize(
                actor,
                Action::ViewMonitoring,
                &Resource::Municipality { region: RegionId(-1), municipality: MunicipalityId(-1) },
            )?;
        }
        let today = self.today();
        let adoption: HashMap<SchoolId, SchoolAdoption> = self
            .store
            .list_school_adoption(today, 0)
            .await?
            .into_iter()
            .map(|a| (a.school_id, a))
            .collect();
        let schools = self.store.list_schools().await?;
        let all_chats = self.store.list_chats(None).await?;
        let rules = self.integrations.sferum.clone().unwrap_or_default();
        let mut out = Monitoring { generated_on: today, ..Monitoring::default() };
        for m in municipalities {
            let mut mm = MunicipalityFigures { name: m.name.clone(), ..Default::default() };
            for s in schools.iter().filter(|s| s.municipality_id == m.id) {
                let mut f = Figures::from_adoption(adoption.get(&s.id));
                for c in self.current_classes(s.id).await? {
                    let chat = all_chats.iter().find(|x| x.class_id == c.id);
                    if rules.needs_chat(c.grade, c.newly_formed) {
                        f.chats_required += 1;
                        if let Some(chat) = chat {
                            f.chats_created += 1;
                            f.chat_members_required += chat.members_required;
                            f.chat_members_joined += chat.members_joined;
                        }
                    }
                }
                mm.total.add(&f);
                mm.schools.push(SchoolFigures { name: s.short_name.clone(), figures: f });
            }
            out.total.add(&mm.total);
            out.municipalities.push(mm);
        }
        Ok(out)
    }

    // --- School communication services --------------------------------------------------------

    /// The school's published services and responsible people (public, no login).
    pub async fn school_communication(
        &self,
        school: SchoolId,
    ) -> Result<(SchoolRow, Option<SchoolCommunication>), AppError> {
        let row = self.store.get_school(school).await?;
        let comm = self.store.get_school_communication(school).await?;
        Ok((row, comm))
    }

    /// Saves the school's communication settings (school admin, audited).
    pub async fn set_school_communication(
        &self,
        actor: &Actor,
        school: SchoolId,
        mut comm: SchoolCommunication,
    ) -> Result<(), AppError> {
        let row = self.store.get_school(school).await?;
        authorize(actor, Action::ManageSchool, &Resource::School(row.place()))?;
        comm.services.retain(|s| !s.name.trim().is_empty());
        comm.responsible.retain(|r| !r.name.trim().is_empty());
        for s in &comm.services {
            let web = s.url.starts_with("https://") || s.url.starts_with("http://");
            if !s.url.is_empty() && !web {
                return Err(AppError::Invalid(format!(
                    "адрес сервиса «{}» должен начинаться с https:// (сейчас «{}»); исправьте его и сохраните снова",
                    s.name, s.url
                )));
            }
        }
        comm.updated_at = self.now_micros();
        let audit = NewAudit::new(self.now_micros(), "school.communication", "ok")
            .actor(actor.person.0, "school-admin")
            .target("school", school.0.to_string())
            .details(serde_json::json!({
                "services": comm.services.len(),
                "responsible": comm.responsible.len(),
            }));
        self.store.set_school_communication(school, &comm, audit).await?;
        Ok(())
    }

    /// The class list and the manual steps for a class teacher whose school has no
    /// integration (letter of 2024: the instruction at sferum.ru/?p=instructions).
    pub async fn chat_instructions(
        &self,
        actor: &Actor,
        class: ClassId,
    ) -> Result<ChatInstructions, AppError> {
        let class = self.store.get_class(class).await?;
        let school = self.store.get_school(class.school_id).await?;
        authorize(
            actor,
            Action::ViewRoster,
            &Resource::Class { place: school.place(), class: class.id },
        )?;
        let members = self.store.list_chat_members(class.id, self.today()).await?;
        let chat = self
            .store
            .list_chats(Some(school.id))
            .await?
            .into_iter()
            .find(|c| c.class_id == class.id);
        Ok(ChatInstructions {
            integrated: self.sferum_covers(&school),
            class_name: class.name(),
            school,
            chat,
            members,
        })
    }
}

fn bad_subject(ev: &OutboxEvent) -> Failure {
    Failure::Local(AppError::Invalid(format!(
        "событие {}: неверный предмет «{}» или данные",
        ev.id, ev.subject
    )))
}

#[derive(Default)]
struct RecordContext {
    assignments: HashMap<AssignmentId, zhurnal_store::journal::JournalAssignment>,
    persons: HashMap<PersonId, PersonRow>,
    years: HashMap<zhurnal_domain::AcademicYearId, String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct StudentPortfolio {
    pub name: String,
    pub class: String,
    pub delivered: i64,
    pub no_identifier: i64,
    pub pending: i64,
    pub failed: i64,
    pub last_delivered_at: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClassChatStatus {
    pub class: String,
    pub required: bool,
    pub chat: Option<ChatRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SchoolIntegrationStatus {
    pub school: SchoolRow,
    /// The Сферум profile's title, when configured.
    pub sferum: Option<String>,
    pub portfolio: bool,
    pub pending: usize,
    pub dead: Vec<OutboxEvent>,
    pub chats: Vec<ClassChatStatus>,
    pub students: Vec<StudentPortfolio>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatInstructions {
    pub integrated: bool,
    pub class_name: String,
    pub school: SchoolRow,
    pub chat: Option<ChatRow>,
    pub members: Vec<zhurnal_store::integration::ChatMember>,
}

/// Figures of a school or a sum of schools.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub staff: i64,
    pub staff_logged_in: i64,
    pub students_14: i64,
    pub students_14_logged_in: i64,
    pub parents: i64,
    pub parents_logged_in: i64,
    pub children: i64,
    pub children_linked: i64,
    pub dormant_blocked: i64,
    pub chats_required: i64,
    pub chats_created: i64,
    pub chat_members_required: i64,
    pub chat_members_joined: i64,
    pub portfolio_delivered: i64,
    pub portfolio_failed: i64,
}

impl Figures {
    fn from_adoption(a: Option<&SchoolAdoption>) -> Self {
        let Some(a) = a else { return Self::default() };
        Self {
            staff: a.staff,
            staff_logged_in: a.staff_logged_in,
            students_14: a.students_14,
            students_14_logged_in: a.students_14_logged_in,
            parents: a.parents,
            parents_logged_in: a.parents_logged_in,
            children: a.children,
            children_linked: a.children_linked,
            dormant_blocked: a.dormant_blocked,
            portfolio_delivered: a.portfolio_delivered,
            portfolio_failed: a.portfolio_failed,
            ..Self::default()
        }
    }
    fn add(&mut self, o: &Figures) {
        self.staff += o.staff;
        self.staff_logged_in += o.staff_logged_in;
        self.students_14 += o.students_14;
        self.students_14_logged_in += o.students_14_logged_in;
        self.parents += o.parents;
        self.parents_logged_in += o.parents_logged_in;
        self.children += o.children;
        self.children_linked += o.children_linked;
        self.dormant_blocked += o.dormant_blocked;
        self.chats_required += o.chats_required;
        self.chats_created += o.chats_created;
        self.chat_members_required += o.chat_members_required;
        self.chat_members_joined += o.chat_members_joined;
        self.portfolio_delivered += o.portfolio_delivered;
        self.portfolio_failed += o.portfolio_failed;
    }
    /// Percent (0–100) of `part` in `whole`; 0 for an empty whole.
    pub fn pct(part: i64, whole: i64) -> u32 {
        if whole <= 0 { 0 } else { ((part * 100 + whole / 2) / whole).clamp(0, 100) as u32 }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SchoolFigures {
    pub name: String,
    pub figures: Figures,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MunicipalityFigures {
    pub name: String,
    pub total: Figures,
    pub schools: Vec<SchoolFigures>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Monitoring {
    pub generated_on: chrono::NaiveDate,
    pub total: Figures,
    pub municipalities: Vec<MunicipalityFigures>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let w = WorkerConfig {
            backoff_base_ms: 1000,
            backoff_max_ms: 10_000,
            ..WorkerConfig::default()
        };
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let first = w.backoff_micros(1, &mut rng);
            assert!((500_000..=1_000_000).contains(&first), "{first}");
            let third = w.backoff_micros(3, &mut rng);
            assert!((2_000_000..=4_000_000).contains(&third), "{third}");
            let late = w.backoff_micros(25, &mut rng);
            assert!((5_000_000..=10_000_000).contains(&late), "{late}");
        }
        let spread: std::collections::HashSet<i64> =
            (0..50).map(|_| w.backoff_micros(2, &mut rng)).collect();
        assert!(spread.len() > 10, "jitter spreads the retries");
    }

    #[test]
    fn shares_round_and_survive_an_empty_whole() {
        assert_eq!(Figures::pct(1, 3), 33);
        assert_eq!(Figures::pct(2, 3), 67);
        assert_eq!(Figures::pct(5, 0), 0);
        assert_eq!(Figures::pct(7, 7), 100);
    }
}
