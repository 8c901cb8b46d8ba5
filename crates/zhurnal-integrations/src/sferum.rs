//! Сферум: one class chat per class that needs one, its members kept equal to the journal.
//!
//! The contract is declarative: the journal sends the whole wanted member list of a chat
//! (`PUT …/schools/{school}/classes/{class}/chat`) and Сферум creates the chat if needed, adds
//! who is missing and removes who left. A late or repeated request therefore cannot leave a
//! departed student in the chat, and event order does not matter. Target: Сферум in VK
//! Messenger or in MAX — two profiles of one adapter differing in base URL and path.

use std::collections::BTreeMap;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use serde::{Deserialize, Serialize};

use crate::sim::{Ledger, Service, Sim, SimMode, SimReply, SimStats, reply};
use crate::{IntegrationError, http_client, join, send_json};

/// Where Сферум lives (2025: regions migrated the chats from VK Messenger to MAX).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SferumProfile {
    /// Сферум в VK Мессенджере.
    Vk,
    /// Сферум в мессенджере MAX.
    #[default]
    Max,
}

impl SferumProfile {
    pub fn code(self) -> &'static str {
        match self {
            Self::Vk => "vk",
            Self::Max => "max",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Self::Vk => "Сферум в VK Мессенджере",
            Self::Max => "Сферум в MAX",
        }
    }
    /// The default chat path of the profile (`{school}`, `{class}`: external ids).
    pub fn default_chat_path(self) -> String {
        format!("/sferum/{}/v1/schools/{{school}}/classes/{{class}}/chat", self.code())
    }
}

/// Section `[integrations.sferum]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SferumConfig {
    pub profile: SferumProfile,
    pub base_url: String,
    /// Overrides the profile's path; `{school}` and `{class}` are replaced by external ids.
    pub chat_path: Option<String>,
    /// Bearer token issued to the region's journal.
    pub token: String,
    pub timeout_seconds: u64,
    /// Grades whose classes get chats (letter of 2024: 1, 5, 10), besides newly formed classes.
    pub chat_grades: Vec<u8>,
    pub newly_formed_classes: bool,
    /// External ids of the schools connected to Сферум; empty = all schools.
    pub schools: Vec<String>,
}

impl Default for SferumConfig {
    fn default() -> Self {
        Self {
            profile: SferumProfile::default(),
            base_url: String::new(),
            chat_path: None,
            token: String::new(),
            timeout_seconds: 10,
            chat_grades: vec![1, 5, 10],
            newly_formed_classes: true,
            schools: Vec::new(),
        }
    }
}

impl SferumConfig {
    pub fn chat_url(&self, school: &str, class: &str) -> String {
        let path = self.chat_path.clone().unwrap_or_else(|| self.profile.default_chat_path());
        join(&self.base_url, &path.replace("{school}", school).replace("{class}", class))
    }
    pub fn covers_school(&self, external_id: &str) -> bool {
        self.schools.is_empty() || self.schools.iter().any(|s| s == external_id)
    }
    /// Whether a class needs a chat under this configuration.
    pub fn needs_chat(&self, grade: u8, newly_formed: bool) -> bool {
        self.chat_grades.contains(&grade) || (self.newly_formed_classes && newly_formed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberWire {
    /// The journal's stable public id of the person.
    pub uid: String,
    /// ЕСИА oid, when the person has logged in once (Сферум accounts are bound to it).
    pub esia_oid: Option<String>,
    pub name: String,
    /// `class_teacher`, `teacher`, `student`, `parent`.
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSync {
    pub school_name: String,
    /// "5А класс".
    pub title: String,
    pub members: Vec<MemberWire>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSyncResult {
    pub chat_id: String,
    /// Members in the chat now (they have a Сферум account bound to ЕСИА).
    pub joined: u32,
    /// Members invited who have not joined yet.
    pub invited: u32,
}

#[async_trait]
pub trait SferumApi: Send + Sync {
    async fn sync_chat(
        &self,
        key: &str,
        school: &str,
        class: &str,
        sync: &ChatSync,
    ) -> Result<ChatSyncResult, IntegrationError>;
}

/// The HTTP client of the contract in `docs/integrations/sferum.md`.
pub struct SferumClient {
    http: reqwest::Client,
    cfg: SferumConfig,
}

impl SferumClient {
    pub fn new(cfg: SferumConfig) -> Self {
        Self { http: http_client(cfg.timeout_seconds), cfg }
    }
}

#[async_trait]
impl SferumApi for SferumClient {
    async fn sync_chat(
        &self,
        key: &str,
        school: &str,
        class: &str,
        sync: &ChatSync,
    ) -> Result<ChatSyncResult, IntegrationError> {
        let req = self.http.put(self.cfg.chat_url(school, class));
        send_json(req, key, Some(&self.cfg.token), sync).await
    }
}

// --- Simulator ---------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimMember {
    pub name: String,
    pub role: String,
    /// `joined` (has an ESIA-bound account) or `invited`.
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimChat {
    pub chat_id: String,
    pub profile: String,
    pub school: String,
    pub class: String,
    pub title: String,
    /// uid → member.
    pub members: BTreeMap<String, SimMember>,
    /// Members removed over the chat's life (uids, in order).
    pub removed: Vec<String>,
}

/// What the local Сферум keeps: chats and members in memory.
#[derive(Debug, Default)]
pub struct SferumState {
    ledger: Ledger,
    /// (school, class) → chat.
    chats: BTreeMap<(String, String), SimChat>,
    next_chat: u64,
}

/// The local Сферум (`zhurnal sferum-sim`).
pub type SferumSim = Sim<SferumState>;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SferumSimState {
    pub mode: SimMode,
    pub stats: SimStats,
    pub applied_keys: Vec<String>,
    pub chats: Vec<SimChat>,
}

impl Service for SferumState {
    type Snapshot = SferumSimState;
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }
    fn snapshot(&self) -> SferumSimState {
        SferumSimState {
            mode: self.ledger.mode,
            stats: self.ledger.stats.clone(),
            applied_keys: self.ledger.applied_keys.clone(),
            chats: self.chats.values().cloned().collect(),
        }
    }
}

impl SferumSim {
    /// The chat of a class by external ids.
    pub fn chat(&self, school: &str, class: &str) -> Option<SimChat> {
        self.lock().chats.get(&(school.to_string(), class.to_string())).cloned()
    }

    pub fn router(&self) -> Router {
        self.router_with(
            Router::new().route(
                "/sferum/{profile}/v1/schools/{school}/classes/{class}/chat",
                put(sync_chat),
            ),
        )
    }
}

impl SferumState {
    fn apply(
        &mut self,
        profile: &str,
        school: &str,
        class: &str,
        sync: &ChatSync,
    ) -> ChatSyncResult {
        let s = self;
        let key = (school.to_string(), class.to_string());
        if !s.chats.contains_key(&key) {
            s.next_chat += 1;
            let chat = SimChat {
                chat_id: format!("{profile}-chat-{}", s.next_chat),
                profile: profile.to_string(),
                school: school.to_string(),
                class: class.to_string(),
                title: sync.title.clone(),
                members: BTreeMap::new(),
                removed: Vec::new(),
            };
            s.chats.insert(key.clone(), chat);
        }
        let Some(chat) = s.chats.get_mut(&key) else {
            return ChatSyncResult { chat_id: String::new(), joined: 0, invited: 0 };
        };
        chat.title = sync.title.clone();
        let wanted: BTreeMap<String, SimMember> = sync
            .members
            .iter()
            .map(|m| {
                let status = if m.esia_oid.is_some() { "joined" } else { "invited" };
                (
                    m.uid.clone(),
                    SimMember { name: m.name.clone(), role: m.role.clone(), status: status.into() },
                )
            })
            .collect();
        let gone: Vec<String> =
            chat.members.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
        chat.removed.extend(gone);
        chat.members = wanted;
        let joined = chat.members.values().filter(|m| m.status == "joined").count() as u32;
        let invited = chat.members.len() as u32 - joined;
        ChatSyncResult { chat_id: chat.chat_id.clone(), joined, invited }
    }
}

async fn sync_chat(
    State(sim): State<SferumSim>,
    Path((profile, school, class)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Result<axum::Json<ChatSync>, axum::extract::rejection::JsonRejection>,
) -> SimReply {
    let (key, sync) = match sim.admit(&headers, body).await {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    if profile != "vk" && profile != "max" {
        return reply(StatusCode::NOT_FOUND, serde_json::json!({"error": "unknown platform"}));
    }
    // Check, apply and remember under one lock: two racing copies of a request apply once.
    let mut s = sim.lock();
    if let Some(answer) = s.ledger.replay(&key) {
        return reply(StatusCode::OK, answer);
    }
    let result = s.apply(&profile, &school, &class, &sync);
    let answer = serde_json::to_value(&result).unwrap_or_default();
    s.ledger.applied(key, answer.clone());
    reply(StatusCode::OK, answer)
}

/// Serves the simulator until the listener closes.
pub async fn serve(listener: tokio::net::TcpListener, sim: SferumSim) -> std::io::Result<()> {
    axum::serve(listener, sim.router()).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    async fn started() -> (SferumSim, SferumClient) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let sim = SferumSim::new();
        tokio::spawn(serve(listener, sim.clone()));
        let client = SferumClient::new(SferumConfig {
            profile: SferumProfile::Vk,
            base_url: url,
            token: "t".into(),
            ..SferumConfig::default()
        });
        (sim, client)
    }

    fn sync(uids: &[&str]) -> ChatSync {
        ChatSync {
            school_name: "Школа".into(),
            title: "5А класс".into(),
            members: uids
                .iter()
                .map(|u| MemberWire {
                    uid: (*u).into(),
                    esia_oid: (*u == "a").then(|| "1".to_string()),
                    name: u.to_uppercase(),
                    role: "student".into(),
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn the_client_syncs_members_and_a_repeated_key_is_applied_once() {
        let (sim, client) = started().await;
        let r = client.sync_chat("k1", "s", "c", &sync(&["a", "b"])).await.expect("sync");
        assert_eq!((r.joined, r.invited), (1, 1));
        assert!(r.chat_id.starts_with("vk-"), "the VK profile's path: {}", r.chat_id);
        // The same key again, even with other content: the first answer, nothing applied.
        let again = client.sync_chat("k1", "s", "c", &sync(&["a"])).await.expect("again");
        assert_eq!(again, r);
        let chat = sim.chat("s", "c").expect("chat");
        assert_eq!(chat.members.len(), 2);
        let r = client.sync_chat("k2", "s", "c", &sync(&["a"])).await.expect("departure");
        assert_eq!((r.joined, r.invited), (1, 0));
        assert_eq!(sim.chat("s", "c").expect("chat").removed, vec!["b".to_string()]);
        let snap = sim.snapshot();
        assert_eq!((snap.stats.applied, snap.stats.duplicates), (2, 1));
    }

    #[tokio::test]
    async fn outages_are_retryable_and_refusals_are_not() {
        let (sim, client) = started().await;
        sim.set_mode(SimMode::Down, 0);
        let e = client.sync_chat("k", "s", "c", &sync(&["a"])).await.expect_err("down");
        assert!(e.retryable() && e.to_string().contains("503"), "{e}");
        sim.set_mode(SimMode::Error, 0);
        assert!(client.sync_chat("k", "s", "c", &sync(&[])).await.expect_err("500").retryable());
        sim.set_mode(SimMode::Ok, 0);
        let no_token =
            SferumClient::new(SferumConfig { token: String::new(), ..client.cfg.clone() });
        let e = no_token.sync_chat("k", "s", "c", &sync(&[])).await.expect_err("401");
        assert!(!e.retryable(), "{e}");
        let nowhere = SferumClient::new(SferumConfig {
            base_url: "http://127.0.0.1:9".into(),
            ..client.cfg.clone()
        });
        assert!(nowhere.sync_chat("k", "s", "c", &sync(&[])).await.expect_err("conn").retryable());
        assert_eq!(sim.snapshot().stats.applied, 0);
    }
}
