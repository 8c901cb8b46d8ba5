//! What both simulators share: a fault mode tests can switch (down, 500, slow) and the
//! idempotency ledger that applies a key once and counts every duplicate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

/// How the simulator answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimMode {
    #[default]
    Ok,
    /// 503 to everything (the service is down).
    Down,
    /// 500 to everything.
    Error,
    /// Answers after `slow_ms` (for timeouts and kill-mid-delivery tests).
    Slow,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests received (any outcome).
    pub requests: u64,
    /// Requests refused by the fault mode.
    pub refused: u64,
    /// Keys applied (each once).
    pub applied: u64,
    /// Requests whose key was already applied: answered with the first answer, not applied.
    pub duplicates: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModeRequest {
    pub mode: SimMode,
    #[serde(default)]
    pub slow_ms: u64,
}

/// The shared part of a simulator's state.
#[derive(Debug, Default)]
pub struct Ledger {
    pub mode: SimMode,
    pub slow_ms: u64,
    pub stats: SimStats,
    /// Idempotency key → the answer given when it was applied.
    pub answers: HashMap<String, serde_json::Value>,
    /// Keys in the order they were applied (tests check none appears twice).
    pub applied_keys: Vec<String>,
}

pub(crate) fn lock<T>(m: &Arc<Mutex<T>>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) type SimReply = (StatusCode, axum::Json<serde_json::Value>);

pub(crate) fn reply(status: StatusCode, body: serde_json::Value) -> SimReply {
    (status, axum::Json(body))
}

/// The idempotency key and bearer token of a request, or the refusal.
fn key_and_auth(headers: &HeaderMap) -> Result<String, SimReply> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !auth.starts_with("Bearer ") || auth.len() <= "Bearer ".len() {
        return Err(reply(StatusCode::UNAUTHORIZED, serde_json::json!({"error": "no token"})));
    }
    headers
        .get(crate::IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            reply(StatusCode::BAD_REQUEST, serde_json::json!({"error": "Idempotency-Key required"}))
        })
}

impl Ledger {
    /// The earlier answer for a key already applied (counted as a duplicate).
    pub(crate) fn replay(&mut self, key: &str) -> Option<serde_json::Value> {
        let answer = self.answers.get(key).cloned()?;
        self.stats.duplicates += 1;
        Some(answer)
    }
    pub(crate) fn applied(&mut self, key: String, answer: serde_json::Value) {
        self.stats.applied += 1;
        self.applied_keys.push(key.clone());
        self.answers.insert(key, answer);
    }
    pub(crate) fn set_mode(&mut self, m: &ModeRequest) {
        self.mode = m.mode;
        self.slow_ms = m.slow_ms;
    }
}

/// What one simulated service keeps besides the shared [`Ledger`], and what tests see of it.
pub trait Service: Default + Send + 'static {
    type Snapshot: Serialize;
    fn ledger(&mut self) -> &mut Ledger;
    fn snapshot(&self) -> Self::Snapshot;
}

/// A simulated service: its state behind one lock, shared by its handlers and by tests.
pub struct Sim<S> {
    state: Arc<Mutex<S>>,
}

impl<S> Clone for Sim<S> {
    fn clone(&self) -> Self {
        Self { state: Arc::clone(&self.state) }
    }
}

impl<S: Service> Default for Sim<S> {
    fn default() -> Self {
        Self { state: Arc::new(Mutex::new(S::default())) }
    }
}

impl<S: Service> Sim<S> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_mode(&self, mode: SimMode, slow_ms: u64) {
        self.lock().ledger().set_mode(&ModeRequest { mode, slow_ms });
    }

    pub fn snapshot(&self) -> S::Snapshot {
        self.lock().snapshot()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        lock(&self.state)
    }

    /// What every request goes through before the service sees it: counted, refused by the
    /// fault mode, then checked for a bearer token, an idempotency key and a JSON body.
    pub(crate) async fn admit<T>(
        &self,
        headers: &HeaderMap,
        body: Result<axum::Json<T>, JsonRejection>,
    ) -> Result<(String, T), SimReply> {
        self.fault().await?;
        let key = key_and_auth(headers)?;
        match body {
            Ok(axum::Json(b)) => Ok((key, b)),
            Err(e) => Err(reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({"error": e.body_text()}),
            )),
        }
    }

    /// Counts the request and applies the fault mode; `Err` is the refusal to send.
    async fn fault(&self) -> Result<(), SimReply> {
        let (mode, slow_ms) = {
            let mut g = self.lock();
            let l = g.ledger();
            l.stats.requests += 1;
            if matches!(l.mode, SimMode::Down | SimMode::Error) {
                l.stats.refused += 1;
            }
            (l.mode, l.slow_ms)
        };
        match mode {
            SimMode::Down => {
                Err(reply(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"error": "down"})))
            }
            SimMode::Error => {
                Err(reply(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": "boom"})))
            }
            SimMode::Slow => {
                tokio::time::sleep(Duration::from_millis(slow_ms)).await;
                Ok(())
            }
            SimMode::Ok => Ok(()),
        }
    }

    /// The service's own routes plus the two every simulator has: `POST /_sim/mode` (the
    /// fault mode) and `GET /_sim/state` (the snapshot).
    pub(crate) fn router_with(&self, service: Router<Self>) -> Router {
        service
            .route("/_sim/mode", post(set_mode::<S>))
            .route("/_sim/state", get(state::<S>))
            .with_state(self.clone())
    }
}

async fn set_mode<S: Service>(
    State(sim): State<Sim<S>>,
    axum::Json(m): axum::Json<ModeRequest>,
) -> StatusCode {
    sim.lock().ledger().set_mode(&m);
    StatusCode::NO_CONTENT
}

async fn state<S: Service>(State(sim): State<Sim<S>>) -> axum::Json<S::Snapshot> {
    axum::Json(sim.snapshot())
}
