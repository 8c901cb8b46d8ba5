//! Use cases: everything the web app, the CLI and the jobs do goes through here, so each
//! path calls the same authorization policy and writes the same audit records.

pub mod admin;
pub mod announce;
pub mod audit_appender;
pub mod clock;
pub mod diary;
pub mod export;
pub mod import;
pub mod integrations;
pub mod journal;
pub mod keys;
pub mod login;
pub mod mark_writer;
pub mod purge;
pub mod report_places;
pub mod reports;
pub mod security;
mod week_cache;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use chrono::{FixedOffset, NaiveDate, Offset, Utc};
use serde::Deserialize;
use zhurnal_domain::{Actor, PersonId, RoundingRule};
use zhurnal_domain::{ClassId, SchoolId};
use zhurnal_store::{ActorRelations, AnnouncementRow, NewAudit, Store, StoreError, WorkTypeRow};

pub use clock::{Clock, FixedClock, SystemClock};
pub use keys::{HmacSealer, Keys, KeysError, SnilsVault};
pub use security::SecurityConfig;

/// Errors of the use cases, mapped to HTTP once in the web crate.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Denied(#[from] zhurnal_domain::Denied),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    /// A quota of the caller's is used up for now (HTTP 429): the message says when it frees.
    #[error("{0}")]
    RateLimited(String),
    /// The server is doing as much of this as it may at once (HTTP 503): come back later.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Keys(#[from] KeysError),
}

/// Settings of the school rules that vary by region (domain.md: configuration, not code).
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// The region's time zone as a fixed UTC offset in hours (Moscow: 3).
    pub utc_offset_hours: i32,
    pub rounding: RoundingRule,
    /// Abuse controls of announcements (area `diary`).
    pub announcements: zhurnal_domain::AnnouncementRules,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            utc_offset_hours: 3,
            rounding: RoundingRule::default(),
            announcements: zhurnal_domain::AnnouncementRules::default(),
        }
    }
}

pub struct App {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub vault: SnilsVault,
    pub rules: RulesConfig,
    /// Section `[security]`: dormancy, detection thresholds, rate limits.
    pub security: SecurityConfig,
    /// Section `[integrations]`: Сферум, the portfolio, the outbox worker.
    pub integrations: integrations::IntegrationsConfig,
    /// Group commit of audit records of reads (area `bench`): see [`App::audit_read`].
    audit_appender: audit_appender::AuditAppender,
    /// Group commit of new marks (area `bench`): see [`mark_writer`].
    mark_writer: mark_writer::MarkWriter,
    /// Diary weeks built recently (area `bench`): see [`week_cache`].
    diary_weeks: week_cache::WeekCache,
    /// The classes' parts of those weeks, which the class's students share.
    class_weeks: week_cache::ClassWeekCache,
    /// The newest announcements of a class (by how many were read), which its weeks share.
    class_news: week_cache::StampedCache<(ClassId, usize), Vec<AnnouncementRow>>,
    /// A school's work types, which its weeks and marks pages share (the region's stamp).
    work_types: week_cache::StampedCache<SchoolId, Vec<WorkTypeRow>>,
    /// Reports built at once (area `bench`): see [`report_places`].
    report_places: report_places::ReportPlaces,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        vault: SnilsVault,
        rules: RulesConfig,
    ) -> Self {
        Self {
            audit_appender: audit_appender::AuditAppender::new(store.clone()),
            mark_writer: mark_writer::MarkWriter::new(store.clone()),
            diary_weeks: week_cache::WeekCache::new(week_cache::DEFAULT_CAPACITY),
            class_weeks: week_cache::ClassWeekCache::new(week_cache::class_capacity(
                week_cache::DEFAULT_CAPACITY,
            )),
            class_news: week_cache::StampedCache::new(week_cache::DEFAULT_CAPACITY),
            work_types: week_cache::StampedCache::new(week_cache::DEFAULT_CAPACITY),
            report_places: report_places::ReportPlaces::new(
                report_places::DEFAULT_AT_ONCE,
                report_places::DEFAULT_WAIT,
            ),
            store,
            clock,
            vault,
            rules,
            security: SecurityConfig::default(),
            integrations: integrations::IntegrationsConfig::default(),
        }
    }

    /// Replaces the security settings (the binary passes the `[security]` section).
    pub fn with_security(mut self, security: SecurityConfig) -> Self {
        self.security = security;
        self
    }

    /// Replaces the integrations settings (the binary passes the `[integrations]` section).
    pub fn with_integrations(mut self, integrations: integrations::IntegrationsConfig) -> Self {
        self.integrations = integrations;
        self
    }

    /// How many diary weeks to keep in memory (`[web] diary_weeks_in_memory`; 0: none), a
    /// quarter as many classes' parts of them, and as many classes' announcements and schools'
    /// work types.
    pub fn with_diary_weeks_in_memory(mut self, weeks: usize) -> Self {
        self.diary_weeks = week_cache::WeekCache::new(weeks);
        self.class_weeks = week_cache::ClassWeekCache::new(week_cache::class_capacity(weeks));
        self.class_news = week_cache::StampedCache::new(weeks);
        self.work_types = week_cache::StampedCache::new(weeks);
        self
    }

    /// How many reports are built at once (`[web] reports_at_once`) and how long a request
    /// waits for a place (`[web] report_wait_seconds`).
    pub fn with_report_places(mut self, at_once: NonZeroUsize, wait: Duration) -> Self {
        self.report_places = report_places::ReportPlaces::new(at_once, wait);
        self
    }

    /// Waits for a place to build a report (an export, a report page, the class archive);
    /// the report is built while the permit lives. [`AppError::Busy`] after the wait.
    pub async fn report_place(&self) -> Result<tokio::sync::SemaphorePermit<'_>, AppError> {
        self.report_places.enter().await
    }

    /// Microseconds since the epoch, the storage's instant.
    pub fn now_micros(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    pub(crate) fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.rules.utc_offset_hours * 3600).unwrap_or(Utc.fix())
    }

    /// Today's date in the region (a school day starts at local midnight, not UTC).
    pub fn today(&self) -> NaiveDate {
        self.clock.now().with_timezone(&self.offset()).date_naive()
    }

    /// Loads everything the policy needs about a person for today.
    pub async fn actor(&self, person: PersonId) -> Result<Actor, AppError> {
        let rel = self.store.load_relations(person, self.today()).await?;
        Ok(Self::actor_from(person, rel))
    }

    /// The policy's view of a person from relations already read (with the session, by
    /// `find_session_with_person`, for the day [`App::today`] gives).
    pub fn actor_from(person: PersonId, rel: ActorRelations) -> Actor {
        Actor {
            person,
            grants: rel.grants,
            teaching: rel.teaching,
            class_teacher_of: rel.class_teacher_of,
            children: rel.children,
            enrolled_in: rel.enrolled_in,
        }
    }

    /// Appends the audit record of a read (a view of someone's diary, a journal, a report)
    /// and returns its `seq` once it is committed. Records are group-committed with those of
    /// concurrent requests ([`audit_appender`]); the caller still waits for its own record to
    /// be durable before showing anything. Not for changes: their record belongs in the
    /// transaction of the change.
    pub async fn audit_read(&self, audit: NewAudit) -> Result<i64, StoreError> {
        self.audit_appender.append(audit).await
    }
}
