//! «Школьное портфолио» on Госуслуги: period, annual and final marks per student, identified
//! by ЕСИА oid or СНИЛС. A batch of records per delivery; each record has a stable key
//! (student, assignment, kind, period) so a correction replaces the earlier value and a
//! removed mark (`value: null`) withdraws it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::{Deserialize, Serialize};

use crate::sim::{Ledger, Service, Sim, SimMode, SimReply, SimStats, reply};
use crate::{IntegrationError, http_client, join, send_json};

/// Section `[integrations.portfolio]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortfolioConfig {
    pub base_url: String,
    pub results_path: String,
    pub token: String,
    pub timeout_seconds: u64,
    /// External ids of the schools sending results; empty = all schools.
    pub schools: Vec<String>,
}

impl Default for PortfolioConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            results_path: "/portfolio/v1/results".into(),
            token: String::new(),
            timeout_seconds: 10,
            schools: Vec::new(),
        }
    }
}

impl PortfolioConfig {
    pub fn covers_school(&self, external_id: &str) -> bool {
        self.schools.is_empty() || self.schools.iter().any(|s| s == external_id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentRef {
    pub esia_oid: Option<String>,
    /// СНИЛС digits, only when the student has no ЕСИА oid yet.
    pub snils: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub record_key: String,
    pub student: StudentRef,
    pub subject: String,
    /// `period`, `annual`, `final`.
    pub kind: String,
    /// Number of the quarter/trimester/half-year for `period`.
    pub period: Option<u8>,
    pub period_scheme: Option<String>,
    pub academic_year: String,
    /// The mark's code ("5", "pass", "exempt"…); `null` withdraws the record.
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultsBatch {
    pub school: String,
    pub school_name: String,
    pub records: Vec<ResultRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResult {
    pub accepted: u32,
}

#[async_trait]
pub trait PortfolioApi: Send + Sync {
    async fn send_results(
        &self,
        key: &str,
        batch: &ResultsBatch,
    ) -> Result<BatchResult, IntegrationError>;
}

/// The HTTP client of the contract in `docs/integrations/portfolio.md`.
pub struct PortfolioClient {
    http: reqwest::Client,
    cfg: PortfolioConfig,
}

impl PortfolioClient {
    pub fn new(cfg: PortfolioConfig) -> Self {
        Self { http: http_client(cfg.timeout_seconds), cfg }
    }
}

#[async_trait]
impl PortfolioApi for PortfolioClient {
    async fn send_results(
        &self,
        key: &str,
        batch: &ResultsBatch,
    ) -> Result<BatchResult, IntegrationError> {
        let req = self.http.post(join(&self.cfg.base_url, &self.cfg.results_path));
        send_json(req, key, Some(&self.cfg.token), batch).await
    }
}

// --- Simulator ---------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRecord {
    pub record: ResultRecord,
    pub school: String,
    /// How many times a value was written for this key (a correction makes 2).
    pub versions: u32,
}

/// What the local portfolio keeps: the records in memory.
#[derive(Debug, Default)]
pub struct PortfolioState {
    ledger: Ledger,
    records: BTreeMap<String, SimRecord>,
}

/// The local portfolio (`zhurnal portfolio-sim`).
pub type PortfolioSim = Sim<PortfolioState>;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PortfolioSimState {
    pub mode: SimMode,
    pub stats: SimStats,
    pub applied_keys: Vec<String>,
    pub records: Vec<SimRecord>,
}

impl Service for PortfolioState {
    type Snapshot = PortfolioSimState;
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }
    fn snapshot(&self) -> PortfolioSimState {
        PortfolioSimState {
            mode: self.ledger.mode,
            stats: self.ledger.stats.clone(),
            applied_keys: self.ledger.applied_keys.clone(),
            records: self.records.values().cloned().collect(),
        }
    }
}

impl PortfolioSim {
    pub fn router(&self) -> Router {
        self.router_at(&PortfolioConfig::default().results_path)
    }
    pub fn router_at(&self, results_path: &str) -> Router {
        self.router_with(Router::new().route(results_path, post(results)))
    }
}

async fn results(
    State(sim): State<PortfolioSim>,
    headers: HeaderMap,
    body: Result<axum::Json<ResultsBatch>, axum::extract::rejection::JsonRejection>,
) -> SimReply {
    let (key, batch) = match sim.admit(&headers, body).await {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    if let Some(bad) =
        batch.records.iter().find(|r| r.student.esia_oid.is_none() && r.student.snils.is_none())
    {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({"error": "student has neither esia_oid nor snils", "record_key": bad.record_key}),
        );
    }
    let mut s = sim.lock();
    if let Some(answer) = s.ledger.replay(&key) {
        return reply(StatusCode::OK, answer);
    }
    for r in &batch.records {
        match &r.value {
            Some(_) => {
                let e = s.records.entry(r.record_key.clone()).or_insert_with(|| SimRecord {
                    record: r.clone(),
                    school: batch.school.clone(),
                    versions: 0,
                });
                e.record = r.clone();
                e.versions += 1;
            }
            None => {
                s.records.remove(&r.record_key);
            }
        }
    }
    let answer = serde_json::json!(BatchResult { accepted: batch.records.len() as u32 });
    s.ledger.applied(key, answer.clone());
    reply(StatusCode::OK, answer)
}

/// Serves the simulator until the listener closes.
pub async fn serve(listener: tokio::net::TcpListener, sim: PortfolioSim) -> std::io::Result<()> {
    axum::serve(listener, sim.router()).await
}
