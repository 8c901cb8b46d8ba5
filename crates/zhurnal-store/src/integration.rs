//! Integrations (Сферум, «Школьное портфолио»): the transactional outbox and what the external
//! systems acknowledged.
//!
//! The backends write an outbox event inside the transaction of every change an external system
//! must hear about (class creation, admission, transfer, departure, parent links, period and
//! annual marks, period closing): the event exists if and only if the change committed. Events
//! name their subject (`class:12`, `student:5`, `period:3`); the worker reads the subject's
//! current state when it delivers, so a late retry never sends stale data.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use zhurnal_domain::{ClassId, PeriodId, PersonId, SchoolId};

use crate::journal::FinalMarkRow;
use crate::{NewAudit, StoreResult};

/// Topics of the outbox.
pub mod topics {
    /// The class's chat and its members must match the journal (subject `class:<id>`).
    pub const SFERUM_CLASS: &str = "sferum.class";
    /// One period, annual or final mark changed (subject `student:<id>`, payload
    /// `{assignment, kind, period}`).
    pub const PORTFOLIO_MARK: &str = "portfolio.mark";
    /// A period was closed: all its marks go to the portfolio (subject `period:<id>`).
    pub const PORTFOLIO_PERIOD: &str = "portfolio.period";
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Delivered,
    /// Nothing to deliver (the school has no integration, the class needs no chat…).
    Skipped,
    /// Gave up after the configured number of attempts; `zhurnal outbox replay` retries it.
    Dead,
}

impl OutboxStatus {
    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Skipped => "skipped",
            Self::Dead => "dead",
        }
    }
    pub fn from_code(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            "skipped" => Self::Skipped,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
    pub fn title(self) -> &'static str {
        match self {
            Self::Pending => "ожидает доставки",
            Self::Delivered => "доставлено",
            Self::Skipped => "не требуется",
            Self::Dead => "не доставлено",
        }
    }
}

/// Исходящее событие.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub id: i64,
    pub topic: String,
    pub subject: String,
    pub school_id: Option<SchoolId>,
    pub payload: serde_json::Value,
    pub status: OutboxStatus,
    pub attempts: i64,
    /// Wall-clock microseconds.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// Microseconds (application clock) of the change.
    pub created_at: i64,
    pub done_at: Option<i64>,
}

impl OutboxEvent {
    /// The idempotency key sent with every attempt: the same for retries and replays, so the
    /// receiver applies the event at most once.
    pub fn idempotency_key(&self) -> String {
        format!("zhurnal-outbox-{}", self.id)
    }

    /// The numeric id after `prefix:` in the subject (`class:12` → 12).
    pub fn subject_id(&self, prefix: &str) -> Option<i64> {
        self.subject.strip_prefix(prefix)?.strip_prefix(':')?.parse().ok()
    }
}

/// How one delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxOutcome {
    Delivered,
    Skipped(String),
    /// Try again at `at` (wall-clock microseconds).
    Retry {
        at: i64,
        error: String,
    },
    Dead(String),
}

/// A member a class chat must have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMember {
    pub person_id: PersonId,
    pub uid: String,
    pub esia_oid: Option<String>,
    /// Фамилия И. О.
    pub name: String,
    /// `class_teacher`, `teacher`, `student` or `parent`.
    pub role: String,
}

/// A class chat as Сферум last confirmed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRow {
    pub class_id: ClassId,
    pub school_id: SchoolId,
    pub chat_id: String,
    pub members_required: i64,
    pub members_joined: i64,
    pub synced_at: i64,
}

/// A mark as the portfolio last acknowledged it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortfolioRecordRow {
    pub record_key: String,
    pub student_id: PersonId,
    pub school_id: SchoolId,
    pub value: Option<String>,
    /// `delivered` or `no_identifier`.
    pub status: String,
    pub event_id: i64,
    pub delivered_at: i64,
}

/// One line of a school's published communication settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommService {
    pub name: String,
    pub purpose: String,
    pub url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsiblePerson {
    pub name: String,
    pub position: String,
    pub contact: String,
}

/// Сервисы коммуникации школы и ответственные (published on the school's public page).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolCommunication {
    pub services: Vec<CommService>,
    pub responsible: Vec<ResponsiblePerson>,
    pub updated_at: i64,
}

/// Per-school figures of the regional monitoring, all counted from rows that cannot be padded:
/// people, their ESIA logins and links, and chats as Сферум confirmed them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolAdoption {
    pub school_id: SchoolId,
    pub staff: i64,
    pub staff_logged_in: i64,
    /// Enrolled students aged 14 or more on the given day.
    pub students_14: i64,
    pub students_14_logged_in: i64,
    pub parents: i64,
    pub parents_logged_in: i64,
    /// Enrolled students under 14 (their accounts are reached through a parent).
    pub children: i64,
    /// … of which at least one parent has a confirmed link.
    pub children_linked: i64,
    /// Accounts of this school's people blocked for inactivity (or dormant).
    pub dormant_blocked: i64,
    pub portfolio_delivered: i64,
    pub portfolio_failed: i64,
}

/// Outbox, delivery state and the integrations' read models. A supertrait of [`crate::Store`].
#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// Takes up to `limit` due pending events (oldest first), counts an attempt on each and
    /// pushes their due time to `lease_until`, all in one transaction: a worker that dies
    /// mid-delivery leaves them due again once the lease passes.
    async fn claim_outbox(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxEvent>>;
    /// Records how an attempt ended (`now`: wall-clock microseconds).
    async fn finish_outbox(&self, id: i64, outcome: &OutboxOutcome, now: i64) -> StoreResult<()>;
    async fn get_outbox(&self, id: i64) -> StoreResult<OutboxEvent>;
    /// Newest first; `school: None` = every school.
    async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        school: Option<SchoolId>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxEvent>>;
    /// Counts per status (for the admin page and the tests).
    async fn count_outbox(&self) -> StoreResult<Vec<(OutboxStatus, i64)>>;
    /// Makes dead events (all, or the one `id`) pending again with a fresh attempt count;
    /// returns how many. The idempotency key stays, so nothing is applied twice.
    async fn replay_outbox(&self, id: Option<i64>, audit: NewAudit) -> StoreResult<u64>;
    /// Enqueues a chat sync for each class of the school year (used once when a school joins
    /// Сферум and by the demo); returns how many.
    async fn enqueue_class_syncs(&self, classes: &[ClassId], at: i64) -> StoreResult<u64>;

    /// Who the class chat must hold on `on`: the class teacher, the class's teachers, the
    /// enrolled students and their parents (a person once, in the first role found).
    async fn list_chat_members(
        &self,
        class: ClassId,
        on: NaiveDate,
    ) -> StoreResult<Vec<ChatMember>>;
    async fn upsert_chat(&self, chat: &ChatRow) -> StoreResult<()>;
    /// Chats of one school or of all.
    async fn list_chats(&self, school: Option<SchoolId>) -> StoreResult<Vec<ChatRow>>;

    /// The marks of a period (all assignments, all students).
    async fn list_period_final_marks(&self, period: PeriodId) -> StoreResult<Vec<FinalMarkRow>>;
    async fn upsert_portfolio_record(&self, r: &PortfolioRecordRow) -> StoreResult<()>;
    async fn list_portfolio_records(
        &self,
        school: SchoolId,
    ) -> StoreResult<Vec<PortfolioRecordRow>>;

    async fn get_school_communication(
        &self,
        school: SchoolId,
    ) -> StoreResult<Option<SchoolCommunication>>;
    async fn set_school_communication(
        &self,
        school: SchoolId,
        c: &SchoolCommunication,
        audit: NewAudit,
    ) -> StoreResult<()>;

    /// Monitoring figures for every school; `on` decides ages and enrolments, `logged_in_since`
    /// (microseconds) which logins count.
    async fn list_school_adoption(
        &self,
        on: NaiveDate,
        logged_in_since: i64,
    ) -> StoreResult<Vec<SchoolAdoption>>;
}
