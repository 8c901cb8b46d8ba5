//! What both simulators share: a fault mode tests can switch (down, 500, slow) and the
//! idempotency ledger that applies a key once and counts every duplicate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
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

/// Counts the request and applies the fault mode; `Err` is the refusal to send.
pub(crate) async fn fault<S>(
    state: &Arc<Mutex<S>>,
    ledger: fn(&mut S) -> &mut Ledger,
) -> Result<(), SimReply> {
    let (mode, slow_ms) = {
        let mut g = lock(state);
        let l = ledger(&mut g);
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

/// The idempotency key and bearer token of a request, or the refusal.
pub(crate) fn key_and_auth(headers: &HeaderMap) -> Result<String, SimReply> {
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
