//! The external systems of issue 8 behind small traits, each with a real HTTP client and a local
//! simulator: [`sferum`] (class chats in Сферум, in VK Messenger or in MAX — one adapter, two
//! profiles) and [`portfolio`] («Школьное портфолио» on Госуслуги).
//!
//! One crate for both because they share everything except their payloads: the error model
//! (retryable or not), the idempotency-key contract and the simulator machinery (fault modes,
//! deduplication that counts duplicates). Neither vendor publishes an API for journals; the
//! contracts implemented here are documented in `docs/integrations/` and every path is
//! configurable.

pub mod portfolio;
pub mod sferum;
pub mod sim;

use std::time::Duration;

/// The header carrying the outbox event's idempotency key on every attempt.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// Worth retrying: no connection, a timeout, 5xx, 429.
    #[error("сервис временно недоступен: {0}")]
    Unavailable(String),
    /// Retrying will not help (4xx): the event goes to the dead letters at once.
    #[error("сервис отклонил запрос: {0}")]
    Rejected(String),
}

impl IntegrationError {
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

pub(crate) fn http_client(timeout_seconds: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_seconds.max(1)))
        .build()
        .unwrap_or_default()
}

/// Sends `body` with the idempotency key and maps the outcome.
pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
    key: &str,
    token: Option<&str>,
    body: &impl serde::Serialize,
) -> Result<T, IntegrationError> {
    let mut req = req.header(IDEMPOTENCY_HEADER, key).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| IntegrationError::Unavailable(e.to_string()))?;
    let status = resp.status();
    if status.is_success() {
        return resp
            .json::<T>()
            .await
            .map_err(|e| IntegrationError::Rejected(format!("ответ не разобран: {e}")));
    }
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.chars().take(300).collect();
    let msg = format!("HTTP {}: {text}", status.as_u16());
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(IntegrationError::Unavailable(msg))
    } else {
        Err(IntegrationError::Rejected(msg))
    }
}

/// `{base}{path}` without doubled slashes.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}
