//! Import from the old journal (Zhurnal CSV set, OneRoster 1.1 CSV), export in the Zhurnal
//! format, and the register of runs. Validation reads the whole input first and reports every
//! problem; nothing is written unless everything is valid; the apply pass writes one batch in
//! one transaction, upserting by external id, so a second run changes nothing.

pub mod rows;
pub mod source;
pub mod zcsv;

pub use rows::{Issue, Issues};
pub use source::Source;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zhurnal_domain::policy::{Action, Resource, authorize};
use zhurnal_domain::{Actor, PersonId, Snils};
use zhurnal_store::import::NewImportRun;
use zhurnal_store::{Batch, BatchStats, NewAudit, StoreError};

use crate::{App, AppError};

/// The input formats `zhurnal import --format` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// The documented Zhurnal CSV set (a directory or a ZIP).
    ZhurnalCsv,
    /// OneRoster 1.1 CSV (a directory or a ZIP).
    OneRoster,
}

impl Format {
    pub const ALL: [Format; 2] = [Self::ZhurnalCsv, Self::OneRoster];
    pub fn code(self) -> &'static str {
        match self {
            Self::ZhurnalCsv => "zhurnal-csv",
            Self::OneRoster => "oneroster",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Self::ZhurnalCsv => "набор CSV Zhurnal",
            Self::OneRoster => "OneRoster 1.1 CSV",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }
}

/// What an import did: everything it found wrong (and wrote nothing), or what it wrote.
#[derive(Clone, Debug, Serialize)]
pub enum ImportOutcome {
    Invalid { issues: Vec<Issue>, total: u64 },
    Applied(ImportSummary),
}

#[derive(Clone, Debug, Serialize)]
pub struct ImportSummary {
    pub run_id: i64,
    pub rows: u64,
    pub stats: BatchStats,
    pub schools: Vec<String>,
    pub source_sha256: String,
}

/// Who runs an import: a signed-in user (checked by the policy) or the operator's CLI.
#[derive(Clone, Debug)]
pub enum ImportedBy<'a> {
    User(&'a Actor),
    Cli,
}

/// The public id of an imported person without one: derived from the external id, so a
/// re-import gives the same id (and links keep working).
pub fn uid_for_import(external_id: &str) -> String {
    let digest = Sha256::digest(format!("zhurnal-import/{external_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn invalid(issues: Issues) -> ImportOutcome {
    ImportOutcome::Invalid { total: issues.total, issues: issues.list }
}

fn one_issue(file: &str, message: String) -> ImportOutcome {
    let mut i = Issues::default();
    i.push(file, 0, "", message);
    invalid(i)
}

/// Reads the source in the format: validation only (`keep = false`) or the full batch.
pub fn parse(
    format: Format,
    source: &Source,
    keep: bool,
) -> Result<(zcsv::Parsed, Issues), source::SourceError> {
    match format {
        Format::ZhurnalCsv => zcsv::read(source, keep),
        Format::OneRoster => oneroster::read(source, keep),
    }
}

pub mod oneroster;

impl App {
    /// Validates the whole input, then (only if it is entirely valid) applies it in one
    /// transaction and records the run. Idempotent by external ids.
    pub async fn import(
        &self,
        format: Format,
        source: &Source,
        by: ImportedBy<'_>,
    ) -> Result<ImportOutcome, AppError> {
        let fail = |e: source::SourceError| AppError::Invalid(e.to_string());
        // Pass 1: every row checked, only ids kept.
        let (_, issues) = parse(format, source, false).map_err(fail)?;
        if !issues.is_empty() {
            return Ok(invalid(issues));
        }
        // Pass 2: the rows themselves.
        let (mut parsed, issues) = parse(format, source, true).map_err(fail)?;
        if !issues.is_empty() {
            return Ok(invalid(issues));
        }
        if let ImportedBy::User(actor) = &by {
            self.authorize_batch(actor, &parsed.batch).await?;
        }
        let issues = self.seal_persons(&mut parsed.batch, &parsed.snils).await?;
        if !issues.is_empty() {
            return Ok(invalid(issues));
        }
        let sha = source.sha256().map_err(fail)?;
        let schools: Vec<String> =
            parsed.batch.schools.iter().map(|s| s.external_id.clone()).collect();
        let (actor_id, role) = match &by {
            ImportedBy::User(a) => (Some(a.person), "user"),
            ImportedBy::Cli => (None, "cli"),
        };
        let audit = NewAudit::new(self.now_micros(), "import.apply", "ok")
            .actor(actor_id.map_or(0, |p| p.0), role)
            .target("import", &sha)
            .details(serde_json::json!({
                "format": format.code(), "rows": parsed.rows, "schools": schools,
                "persons": parsed.batch.persons.len(),
            }));
        let stats = match self.store.apply_batch(&parsed.batch, audit).await {
            Ok(s) => s,
            Err(e @ (StoreError::UnknownReference { .. } | StoreError::Conflict { .. })) => {
                return Ok(one_issue(
                    &source.display_name(),
                    format!("данные не согласуются с базой, ничего не записано: {e}"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let run_id = self
            .store
            .record_import_run(&NewImportRun {
                at: self.now_micros(),
                format: format.code().into(),
                source_name: source.display_name(),
                source_sha256: sha.clone(),
                schools: schools.clone(),
                inserted: stats.inserted,
                updated: stats.updated,
                unchanged: stats.unchanged,
                actor_id,
            })
            .await?;
        Ok(ImportOutcome::Applied(ImportSummary {
            run_id,
            rows: parsed.rows,
            stats,
            schools,
            source_sha256: sha,
        }))
    }

    /// Encrypts СНИЛС for storage. A person already registered keeps their public id and
    /// ciphertext (AEAD nonces are random: re-encrypting would "change" every row).
    async fn seal_persons(
        &self,
        batch: &mut Batch,
        snils: &HashMap<String, Snils>,
    ) -> Result<Issues, AppError> {
        let mut issues = Issues::default();
        for p in &mut batch.persons {
            if p.uid.is_empty() {
                p.uid = uid_for_import(&p.external_id);
            }
            let Some(s) = snils.get(&p.external_id) else { continue };
            let hmac = self.vault.match_key(s);
            match self.store.find_person_by_snils_hmac(&hmac).await? {
                Some(existing) if existing.external_id != p.external_id => {
                    issues.push(
                        "persons.csv",
                        0,
                        "snils",
                        format!(
                            "СНИЛС человека «{}» уже принадлежит другому человеку в базе (код «{}»): проверьте номер или код",
                            p.external_id, existing.external_id
                        ),
                    );
                }
                Some(existing) => {
                    p.uid = existing.uid.clone();
                    let same = existing
                        .snils_cipher
                        .as_ref()
                        .is_some_and(|c| self.vault.decrypt(c, &existing.uid).ok().as_ref() == Some(s));
                    p.snils_cipher = if same {
                        existing.snils_cipher
                    } else {
                        Some(self.vault.encrypt(s, &p.uid))
                    };
                    p.snils_hmac = Some(hmac);
                }
                None => {
                    if let Some(existing) = self.store.find_person_by_uid(&p.uid).await?
                        && existing.external_id != p.external_id
                    {
                        issues.push(
                            "persons.csv",
                            0,
                            "uid",
                            format!("идентификатор «{}» уже занят другим человеком", p.uid),
                        );
                    }
                    p.snils_cipher = Some(self.vault.encrypt(s, &p.uid));
                    p.snils_hmac = Some(hmac);
                }
            }
        }
        Ok(issues)
    }

    /// A user may load only what the policy lets them: their schools (school admin) or
    /// their region (regional admin). Territory rows and territory roles need the region.
    async fn authorize_batch(&self, actor: &Actor, b: &Batch) -> Result<(), AppError> {
        let deny_new = || {
            AppError::Denied(zhurnal_domain::Denied {
                action: Action::ImportData,
                action_title: Action::ImportData.title(),
                reason: "новые регионы и муниципалитеты вносит оператор системы (команда zhurnal import)",
            })
        };
        for r in &b.regions {
            let existing = self.store.find_region_by_external_id(&r.external_id).await?.ok_or_else(deny_new)?;
            if existing.name != r.name {
                authorize(actor, Action::ImportData, &Resource::Region(existing.id))?;
            }
        }
        for m in &b.municipalities {
            let existing =
                self.store.find_municipality_by_external_id(&m.external_id).await?.ok_or_else(deny_new)?;
            if existing.name != m.name {
                authorize(actor, Action::ImportData, &Resource::Region(existing.region_id))?;
            }
        }
        for s in &b.schools {
            match self.store.find_school_by_external_id(&s.external_id).await? {
                Some(school) => authorize(actor, Action::ImportData, &Resource::School(school.place()))?,
                None => {
                    let m = self
                        .store
                        .find_municipality_by_external_id(&s.municipality)
                        .await?
                        .ok_or_else(deny_new)?;
                    authorize(actor, Action::ImportData, &Resource::Region(m.region_id))?;
                }
            }
        }
        for r in &b.staff_roles {
            if r.role != "teacher" && r.role != "school-admin" {
                let region = match self.store.find_region_by_external_id(&r.scope).await? {
                    Some(region) => region.id,
                    None => {
                        self.store
                            .find_municipality_by_external_id(&r.scope)
                            .await?
                            .ok_or_else(deny_new)?
                            .region_id
                    }
                };
                authorize(actor, Action::ImportData, &Resource::Region(region))?;
            }
        }
        Ok(())
    }

    /// The Zhurnal CSV set of one school, СНИЛС decrypted (an export of personal data: the
    /// caller audits it and keeps the files as such).
    pub async fn export_school_csv(
        &self,
        school_external_id: &str,
        dir: &std::path::Path,
    ) -> Result<u64, AppError> {
        let school = self
            .store
            .find_school_by_external_id(school_external_id)
            .await?
            .ok_or_else(|| AppError::Invalid(format!("школа «{school_external_id}» не найдена")))?;
        let batch = self.store.export_school(school.id).await?;
        let vault = self.vault.clone();
        let rows = zcsv::write(dir, &batch, &|p| {
            p.snils_cipher.as_ref().and_then(|c| vault.decrypt(c, &p.uid).ok()).map(|s| s.formatted())
        })
        .map_err(|e| AppError::Invalid(format!("запись в {}: {e}", dir.display())))?;
        let audit = NewAudit::new(self.now_micros(), "export.zhurnal_csv", "ok")
            .actor(0, "cli")
            .school(school.id.0)
            .details(serde_json::json!({ "rows": rows, "persons": batch.persons.len() }));
        self.store.append_audit(audit).await?;
        Ok(rows)
    }
}

/// The actor's person id for the register, if any.
pub fn actor_person(by: &ImportedBy<'_>) -> Option<PersonId> {
    match by {
        ImportedBy::User(a) => Some(a.person),
        ImportedBy::Cli => None,
    }
}
