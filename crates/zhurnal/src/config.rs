//! Configuration: compiled defaults < `zhurnal.toml` (or `--config FILE`) < `ZHURNAL_*`
//! environment (`__` separates sections, e.g. `ZHURNAL_WEB__SESSION_IDLE_MINUTES=15`) <
//! command-line flags. Unknown keys are errors, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use zhurnal_app::{Keys, RulesConfig, SecurityConfig};
use zhurnal_web::WebConfig;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the embedded SQLite database, keys and uploaded files.
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite (also read from `DATABASE_URL`).
    pub database_url: Option<String>,
    /// File with the keys (`[keys]` section format); default `<data_dir>/keys.toml`.
    pub keys_file: Option<PathBuf>,
    /// Keys given inline (e.g. from the environment); wins over `keys_file`.
    pub keys: Option<Keys>,
    pub web: WebConfig,
    pub rules: RulesConfig,
    /// Dormancy, detection thresholds, rate limits, audit anchoring.
    pub security: SecurityConfig,
    /// ESIA connection; required by `serve`.
    pub esia: Option<zhurnal_esia::EsiaConfig>,
    /// Сферум, «Школьное портфолио» and the outbox worker (area `integrations`).
    pub integrations: zhurnal_app::integrations::IntegrationsConfig,
    /// Retention periods and acts of destruction (area `import`).
    pub retention: zhurnal_app::purge::RetentionConfig,
    /// The purge ledger; default `<data_dir>/purge-ledger.jsonl`. Keep it (and its copies)
    /// apart from database backups: it is what re-applies purges after a restore.
    pub purge_ledger: Option<PathBuf>,
    /// The benchmark's extras (area `bench`); off unless a benchmark configuration asks.
    pub bench: BenchConfig,
}

/// Section `[bench]`: only `cargo xtask bench` turns it on.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenchConfig {
    /// Mount `GET /bench/baseline` (one indexed read without a session) for the benchmark.
    pub enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("zhurnal-data"),
            database_url: None,
            keys_file: None,
            keys: None,
            web: WebConfig::default(),
            rules: RulesConfig::default(),
            security: SecurityConfig::default(),
            esia: None,
            integrations: Default::default(),
            bench: BenchConfig::default(),
            retention: zhurnal_app::purge::RetentionConfig::default(),
            purge_ledger: None,
        }
    }
}

/// Values from command-line flags; only those given override the configuration.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                if !f.exists() {
                    bail!("файл конфигурации {} не найден", f.display());
                }
                fig = fig.merge(Toml::file(f));
            }
            None => fig = fig.merge(Toml::file("zhurnal.toml")),
        }
        // Only variables naming a configuration section count: ZHURNAL_LOG (the log filter) and
        // the test harness's ZHURNAL_TEST_* share the prefix but are not configuration.
        let sections: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        fig = fig.merge(
            Env::prefixed("ZHURNAL_")
                .filter(move |key| {
                    let top = key.as_str().split("__").next().unwrap_or_default();
                    sections.iter().any(|s| s.eq_ignore_ascii_case(top))
                })
                .split("__"),
        );
        if let Ok(url) = std::env::var("DATABASE_URL")
            && std::env::var("ZHURNAL_DATABASE_URL").is_err()
        {
            fig = fig.merge(Serialized::default("database_url", url));
        }
        fig = fig.merge(Serialized::defaults(overrides));
        fig.extract().map_err(|e| anyhow::anyhow!("ошибка в конфигурации: {e}"))
    }

    /// The audit chain anchors (heads written outside the database; see `zhurnal audit anchor`).
    pub fn anchors_path(&self) -> PathBuf {
        self.data_dir.join("audit-anchors.log")
    }

    /// The purge ledger (area `import`).
    pub fn ledger_path(&self) -> PathBuf {
        self.purge_ledger.clone().unwrap_or_else(|| self.data_dir.join("purge-ledger.jsonl"))
    }

    /// Where uploads from the import pages wait for their background job.
    pub fn staging_dir(&self) -> PathBuf {
        self.data_dir.join("import-staging")
    }

    pub fn keys_path(&self) -> PathBuf {
        self.keys_file.clone().unwrap_or_else(|| self.data_dir.join("keys.toml"))
    }

    /// Keys from the configuration or the keys file; `create` writes fresh ones when absent.
    pub fn load_keys(&self, create: bool) -> anyhow::Result<Keys> {
        if let Some(k) = &self.keys {
            return Ok(k.clone());
        }
        let path = self.keys_path();
        if !path.exists() {
            if !create {
                bail!(
                    "нет файла ключей {}: создайте его командой `zhurnal keys generate --out {}` и храните вне базы данных",
                    path.display(),
                    path.display()
                );
            }
            write_private(&path, &toml_keys(&Keys::generate())?)?;
        }
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("чтение {}", path.display()))?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            keys: Keys,
        }
        let f: File =
            toml_from_str(&text).with_context(|| format!("файл ключей {}", path.display()))?;
        Ok(f.keys)
    }

    /// Refuses settings that must never reach production (T-02: no hidden doors).
    pub fn validate_for_serve(&self) -> anyhow::Result<()> {
        let loopback = self.listen.ip().is_loopback();
        if !self.web.secure_cookies && !loopback {
            bail!("web.secure_cookies = false допустимо только на адресе 127.0.0.1 (демо)");
        }
        if let Some(esia) = &self.esia {
            let host = esia.base_url.host_str().unwrap_or_default();
            let esia_local = host == "127.0.0.1" || host == "localhost" || host == "::1";
            if self.web.allow_login_hint && !esia_local {
                bail!(
                    "web.allow_login_hint включает вход без выбора пользователя и допустим только с симулятором ЕСИА на 127.0.0.1"
                );
            }
            if esia_local && !loopback {
                bail!(
                    "симулятор ЕСИА нельзя использовать на внешнем адресе: укажите настоящую ЕСИА в [esia]"
                );
            }
        }
        Ok(())
    }
}

pub fn toml_keys(keys: &Keys) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct File<'a> {
        keys: &'a Keys,
    }
    toml_to_string(&File { keys })
}

fn toml_to_string<T: Serialize>(v: &T) -> anyhow::Result<String> {
    // figment re-exports no serializer; keep the keys file trivially simple instead.
    let json = serde_json::to_value(v)?;
    let mut out = String::from(
        "# Zhurnal keys: keep outside the database, readable only by the service (0600).\n",
    );
    if let Some(obj) = json.as_object() {
        for (section, fields) in obj {
            out.push_str(&format!("[{section}]\n"));
            if let Some(fields) = fields.as_object() {
                for (k, v) in fields {
                    out.push_str(&format!("{k} = {v}\n"));
                }
            }
        }
    }
    Ok(out)
}

fn toml_from_str<T: for<'de> Deserialize<'de>>(text: &str) -> anyhow::Result<T> {
    Figment::from(Toml::string(text)).extract().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("создание {}", dir.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("запись {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// An annotated example configuration (`zhurnal config example`).
pub const EXAMPLE: &str = r#"# zhurnal.toml — every key is optional; environment variables ZHURNAL_<KEY> (sections joined
# with "__", e.g. ZHURNAL_WEB__SESSION_IDLE_MINUTES) override this file; flags override both.
listen = "127.0.0.1:8080"
data_dir = "zhurnal-data"                 # SQLite database, keys, uploads
# database_url = "postgres://zhurnal@db.example/zhurnal"   # or DATABASE_URL
# keys_file = "/etc/zhurnal/keys.toml"    # default: <data_dir>/keys.toml

[web]
secure_cookies = true                     # false only for the loopback demo
session_idle_minutes = 30
session_absolute_hours = 12
login_attempt_minutes = 10
trusted_proxies = []                      # e.g. ["10.0.0.5"]; X-Forwarded-For is ignored otherwise
# public_origin = "https://zhurnal.example.ru"
allow_login_hint = false                  # simulator shortcut; refused with a real ESIA
diary_weeks_in_memory = 2048              # ~16 KB each, + a quarter as many classes' parts; 0 = off
reports_at_once = 4                       # reports built at once (1 or more; about twice the cores)
report_wait_seconds = 60                  # others wait this long for a place, then get 503

[rules]
utc_offset_hours = 3                      # the region's time zone
rounding = { round_up_from = 0.5, min_marks = 3 }   # 4.50 → 5; fewer than 3 marks → no suggestion

[rules.announcements]                     # abuse controls of announcements to classes
max_per_hour = 10                         # per sender, rolling hour
bulk_recipients = 100                     # more recipients (or more than one class) = a bulk send
quiet_from_hour = 22                      # bulk sends from 22:00 to 07:00 local time wait for the
quiet_until_hour = 7                      # school admin's review
allowed_domains = ["gosuslugi.ru", "sferum.ru"]   # links only here (and subdomains); add the school's site
max_length = 2000

[security]
dormant_after_days = 90                   # no login this long → blocked as dormant (letter of 24.10.2024)
dormancy_notice_days = 7                  # the user is warned this many days before
reactivate_students_at_login = true       # a dormant student with an active enrolment is let back in at ESIA login
reactivate_parents_at_login = true        # the same for parents of an enrolled child; staff always need an admin
diary_views_per_hour = 60                 # D-10: more distinct diaries per hour by one account → incident
exports_per_day = 3                       # D-05: more exports per day by one account → incident
export_persons_threshold = 500            # D-05: an export of more persons → incident
failed_callbacks_per_5_minutes = 20       # D-06: failed ESIA callbacks from one address
anchor_interval_minutes = 60              # audit chain head → <data_dir>/audit-anchors.log
requests_per_minute_per_account = 120     # rate limit per account (strict)
requests_per_minute_per_address = 3000    # per address (generous: a school behind one NAT)
export_fresh_login_minutes = 15           # exports of personal data need a login this recent and a stated purpose

[bench]
enabled = false                           # true only on a benchmark server: mounts GET /bench/baseline

[retention]                               # destruction of personal data (area import)
journal_years = 5                         # journal of a departed student kept this long
archive_years = 25                        # summary of period/final marks kept this long
session_days = 30
staging_days = 7                          # uploaded import files waiting for a job
backup_days = 30                          # how long backups/WAL archives live (stated in acts)
operator = "Оператор информационной системы «Zhurnal»"
# purge_ledger = "/var/lib/zhurnal/purge-ledger.jsonl"   # top-level key; default <data_dir>/purge-ledger.jsonl

# [esia]
# base_url = "https://esia.gosuslugi.ru/"
# client_id = "YOUR_MNEMONIC"
# redirect_uri = "https://zhurnal.example.ru/auth/callback"
# logout_redirect_uri = "https://zhurnal.example.ru/"
# issuer = "http://esia.gosuslugi.ru/"
# esia_certificate_path = "/etc/zhurnal/esia-prod.pem"
# signer = { kind = "key_file", key_path = "/etc/zhurnal/rp-key.pem", certificate_path = "/etc/zhurnal/rp-cert.pem" }

[integrations.worker]                     # the outbox worker (Сферум, портфолио)
poll_ms = 1000
lease_seconds = 60                        # a claimed event is retried after this if the worker died
max_attempts = 10                         # then the event goes to the dead letters
backoff_base_ms = 2000                    # first retry delay; doubles with jitter…
backoff_max_ms = 1800000                  # …up to this

# [integrations.sferum]                   # absent: class teachers get manual instructions
# profile = "max"                         # "vk" or "max"
# base_url = "https://…"                  # no published API: see docs/integrations/sferum.md
# token = "…"
# chat_grades = [1, 5, 10]
# newly_formed_classes = true
# schools = []                            # external ids of connected schools; empty = all

# [integrations.portfolio]                # see docs/integrations/portfolio.md
# base_url = "https://…"
# results_path = "/portfolio/v1/results"
# token = "…"
"#;

#[cfg(test)]
mod example_tests {
    use super::*;

    /// `zhurnal config example` prints a file that loads (keys and sections spelled right).
    #[test]
    fn the_example_configuration_loads() {
        let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(EXAMPLE))
            .extract()
            .expect("the example parses");
        assert_eq!(cfg.integrations.worker.max_attempts, 10);
        assert!(cfg.integrations.sferum.is_none(), "Сферум stays off until configured");
    }
}
