//! Destruction of personal data: the retention job, the purge of import sources, the purge
//! ledger and the act of destruction (акт об уничтожении персональных данных).
//!
//! Deleting rows is not destruction: the store compacts after every purge (SQLite
//! `secure_delete` + `VACUUM` + `wal_checkpoint(TRUNCATE)`, PostgreSQL `VACUUM FULL` +
//! `CHECKPOINT` + retiring the WAL). Backups and WAL archives still hold the data until they age out,
//! so every purge is also written to the ledger — an append-only, hash-chained file outside
//! the database — which start-up re-applies: a restore of an older backup cannot bring the
//! purged people back into service.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zhurnal_domain::PersonId;
use zhurnal_domain::policy::{Action, Resource, authorize};
use zhurnal_store::import::{DestructionAct, NewDestructionAct, PurgeCounts, PurgeScope};
use zhurnal_store::{AuditRecord, NewAudit};

use crate::export::{ReportDoc, Table};
use crate::import::source::file_sha256;
use crate::{App, AppError};

/// Section `[retention]` of the configuration. The periods follow domain.md (journal 5 years,
/// summary 25 years, after the Ministry's recommendations — unconfirmed, hence configurable).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Years after a student's departure before the journal (marks, attendance) is destroyed.
    pub journal_years: u32,
    /// Years after departure before the summary (period and final marks) and the name go.
    pub archive_years: u32,
    /// Sessions not seen for this many days are deleted by the retention run.
    pub session_days: i64,
    /// Staged upload files (imports from the web) older than this are deleted.
    pub staging_days: i64,
    /// How long backups and WAL archives are kept (stated in the act: the window in which
    /// copies of destroyed data remain and the ledger is needed).
    pub backup_days: i64,
    /// The operator named in acts of destruction.
    pub operator: String,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            journal_years: 5,
            archive_years: 25,
            session_days: 30,
            staging_days: 7,
            backup_days: 30,
            operator: "Оператор информационной системы «Zhurnal»".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("журнал уничтожения {path}: {problem}")]
    Io { path: String, problem: String },
    #[error(
        "журнал уничтожения {path} повреждён в записи {seq}: {problem}; восстановите его из копии — без него нельзя доказать уничтожение"
    )]
    Broken { path: String, seq: u64, problem: String },
}

/// One destroyed source file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerWhat {
    /// Persons by public id, with how much of each was destroyed.
    Persons { persons: Vec<(String, PurgeScope)> },
    /// Import source files overwritten and removed.
    SourceFiles { files: Vec<FileRecord> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub at: i64,
    pub act: String,
    pub what: LedgerWhat,
    /// Hex SHA-256 of the previous entry (zeros for the first).
    pub prev: String,
    /// Hex SHA-256 of `prev` and this entry without `hash`.
    pub hash: String,
}

impl LedgerEntry {
    fn compute(&self) -> String {
        let body = serde_json::json!({
            "seq": self.seq, "at": self.at, "act": self.act, "what": self.what, "prev": self.prev,
        });
        let mut h = Sha256::new();
        h.update(self.prev.as_bytes());
        h.update(body.to_string().as_bytes());
        hex::encode(h.finalize())
    }
}

/// The purge ledger: JSON lines, each chained to the previous by SHA-256, synced on append.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub path: PathBuf,
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Ledger {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn io(&self, e: impl std::fmt::Display) -> LedgerError {
        LedgerError::Io { path: self.path.display().to_string(), problem: e.to_string() }
    }

    /// Every entry, with the chain checked.
    pub fn read(&self) -> Result<Vec<LedgerEntry>, LedgerError> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let mut out: Vec<LedgerEntry> = Vec::new();
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| self.io(e))?;
            if line.trim().is_empty() {
                continue;
            }
            let seq = i as u64 + 1;
            let broken = |problem: String| LedgerError::Broken {
                path: self.path.display().to_string(),
                seq,
                problem,
            };
            let e: LedgerEntry =
                serde_json::from_str(&line).map_err(|e| broken(format!("не JSON: {e}")))?;
            let prev = out.last().map_or(GENESIS.to_string(), |p| p.hash.clone());
            if e.seq != seq || e.prev != prev {
                return Err(broken("запись пропущена или переставлена".into()));
            }
            if e.compute() != e.hash {
                return Err(broken("хеш не сходится: запись изменена".into()));
            }
            out.push(e);
        }
        Ok(out)
    }

    pub fn append(&self, at: i64, act: &str, what: LedgerWhat) -> Result<LedgerEntry, LedgerError> {
        let existing = self.read()?;
        let mut e = LedgerEntry {
            seq: existing.len() as u64 + 1,
            at,
            act: act.to_string(),
            what,
            prev: existing.last().map_or(GENESIS.to_string(), |p| p.hash.clone()),
            hash: String::new(),
        };
        e.hash = e.compute();
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|err| self.io(err))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|err| self.io(err))?;
        let line = serde_json::to_string(&e).map_err(|err| self.io(err))?;
        f.write_all(format!("{line}\n").as_bytes()).map_err(|err| self.io(err))?;
        f.sync_all().map_err(|err| self.io(err))?;
        Ok(e)
    }
}

impl From<LedgerError> for AppError {
    fn from(e: LedgerError) -> Self {
        AppError::Invalid(e.to_string())
    }
}

/// Who ordered a destruction: a signed-in user (policy-checked) or the system.
#[derive(Clone, Debug)]
pub struct DestroyedBy {
    pub person: Option<PersonId>,
    /// «Иванова М. П., администратор ОО» or «плановое задание», «командная строка».
    pub label: String,
}

impl DestroyedBy {
    pub fn system(label: &str) -> Self {
        Self { person: None, label: label.to_string() }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RetentionRun {
    pub students: u64,
    pub parents: u64,
    pub counts: PurgeCounts,
    pub sessions: u64,
    pub staged_files: u64,
    pub act: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SourcePurge {
    pub files: Vec<FileRecord>,
    pub runs_marked: u64,
    pub act: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Reapplied {
    pub entries: u64,
    pub persons: u64,
}

fn years_before(d: NaiveDate, years: u32) -> NaiveDate {
    d.checked_sub_months(Months::new(years.saturating_mul(12))).unwrap_or(NaiveDate::MIN)
}

/// Overwrites a file with zeros (synced), then removes it. On SSDs and journaling file
/// systems an overwrite is not a guarantee (docs/import-format.md); the act says so.
fn overwrite_and_remove(path: &Path) -> std::io::Result<()> {
    let len = std::fs::metadata(path)?.len();
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        let zeros = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        f.sync_all()?;
    }
    std::fs::remove_file(path)
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            collect_files(&e, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

impl App {
    /// The retention job: destroys what is past its period, compacts, writes the act and the
    /// ledger entry. Run by `zhurnal retention run` and daily by the server.
    pub async fn run_retention(
        &self,
        cfg: &RetentionConfig,
        ledger: &Ledger,
        staging: Option<&Path>,
        by: &DestroyedBy,
    ) -> Result<RetentionRun, AppError> {
        let now = self.now_micros();
        let today = self.today();
        let mut run = RetentionRun {
            sessions: self
                .store
                .delete_sessions_before(now - cfg.session_days * 86_400_000_000)
                .await?,
            ..RetentionRun::default()
        };
        if let Some(dir) = staging
            && dir.is_dir()
        {
            let cutoff = std::time::SystemTime::now().checked_sub(std::time::Duration::from_secs(
                (cfg.staging_days.max(0) as u64) * 86_400,
            ));
            for e in std::fs::read_dir(dir).map_err(|e| AppError::Invalid(e.to_string()))?.flatten()
            {
                let old = e
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .zip(cutoff)
                    .is_some_and(|(m, c)| m < c);
                if old && e.path().is_file() && overwrite_and_remove(&e.path()).is_ok() {
                    run.staged_files += 1;
                }
            }
        }
        let candidates = self
            .store
            .list_retention_candidates(
                years_before(today, cfg.journal_years),
                years_before(today, cfg.archive_years),
            )
            .await?;
        if candidates.is_empty() {
            return Ok(run);
        }
        run.students = candidates.iter().filter(|c| c.kind == "student").count() as u64;
        run.parents = candidates.iter().filter(|c| c.kind == "parent").count() as u64;
        let persons: Vec<(PersonId, PurgeScope)> =
            candidates.iter().map(|c| (c.person_id, c.scope)).collect();
        let audit = NewAudit::new(now, "purge.retention", "ok")
            .actor(
                by.person.map_or(0, |p| p.0),
                if by.person.is_some() { "user" } else { "system" },
            )
            .details(serde_json::json!({ "students": run.students, "parents": run.parents }));
        run.counts = self.store.purge_persons(&persons, audit).await?;
        let method = self.store.compact_after_purge().await?;
        let act = self
            .record_act(
                cfg,
                "retention",
                by,
                serde_json::json!({
                    "students": run.students,
                    "parents": run.parents,
                    "archived": candidates.iter().filter(|c| c.scope == PurgeScope::KeepArchive).count(),
                    "counts": run.counts,
                    "method": method,
                    "basis": format!(
                        "истёк срок хранения: журнал — {} лет после выбытия, сводная ведомость — {} лет (152-ФЗ ст. 5 ч. 7, ст. 21 ч. 4–5)",
                        cfg.journal_years, cfg.archive_years
                    ),
                }),
            )
            .await?;
        ledger.append(
            now,
            &act.number,
            LedgerWhat::Persons {
                persons: candidates.iter().map(|c| (c.uid.clone(), c.scope)).collect(),
            },
        )?;
        run.act = Some(act.number);
        Ok(run)
    }

    /// Overwrites and removes import source files (or directories), records names, sizes and
    /// hashes in an act and the ledger, and marks the import runs from them as purged.
    pub async fn purge_import_sources(
        &self,
        cfg: &RetentionConfig,
        ledger: &Ledger,
        paths: &[PathBuf],
        by: &DestroyedBy,
    ) -> Result<SourcePurge, AppError> {
        let err = |p: &Path, e: std::io::Error| AppError::Invalid(format!("{}: {e}", p.display()));
        let mut files = Vec::new();
        let mut source_hashes = Vec::new();
        let mut all = Vec::new();
        for p in paths {
            if !p.exists() {
                return Err(AppError::Invalid(format!(
                    "{} не существует: ничего не удалено",
                    p.display()
                )));
            }
            let source =
                crate::import::Source::at(p).map_err(|e| AppError::Invalid(e.to_string()))?;
            source_hashes.push(source.sha256().map_err(|e| AppError::Invalid(e.to_string()))?);
            let mut list = Vec::new();
            collect_files(p, &mut list).map_err(|e| err(p, e))?;
            for f in list {
                let (sha256, size) = file_sha256(&f).map_err(|e| err(&f, e))?;
                files.push(FileRecord { name: f.display().to_string(), size, sha256 });
                all.push(f);
            }
        }
        for f in &all {
            overwrite_and_remove(f).map_err(|e| err(f, e))?;
        }
        for p in paths {
            if p.is_dir() {
                std::fs::remove_dir_all(p).map_err(|e| err(p, e))?;
            }
        }
        let now = self.now_micros();
        let act = self
            .record_act(
                cfg,
                "import_source",
                by,
                serde_json::json!({
                    "files": files,
                    "sources": source_hashes,
                    "method": "перезапись файлов нулями с синхронизацией на диск, затем удаление; на SSD и журналируемых файловых системах перезапись не гарантирует стирания копий блоков",
                    "basis": "цель обработки достигнута: данные перенесены в Zhurnal",
                }),
            )
            .await?;
        let mut runs_marked = 0;
        for sha in &source_hashes {
            runs_marked += self.store.mark_source_purged(sha, now, &act.number).await?;
        }
        ledger.append(now, &act.number, LedgerWhat::SourceFiles { files: files.clone() })?;
        Ok(SourcePurge { files, runs_marked, act: act.number })
    }

    async fn record_act(
        &self,
        cfg: &RetentionConfig,
        reason: &str,
        by: &DestroyedBy,
        mut details: serde_json::Value,
    ) -> Result<DestructionAct, AppError> {
        if let Some(obj) = details.as_object_mut() {
            obj.insert("operator".into(), cfg.operator.clone().into());
            obj.insert("backup_days".into(), cfg.backup_days.into());
        }
        let at = self.now_micros();
        let audit = NewAudit::new(at, "purge.act", "ok")
            .actor(
                by.person.map_or(0, |p| p.0),
                if by.person.is_some() { "user" } else { "system" },
            )
            .details(serde_json::json!({ "reason": reason }));
        Ok(self
            .store
            .insert_destruction_act(
                &NewDestructionAct {
                    at,
                    reason: reason.into(),
                    actor_id: by.person,
                    actor_label: by.label.clone(),
                    details,
                },
                audit,
            )
            .await?)
    }

    /// Re-applies every ledger entry: persons restored by an older backup are purged again
    /// (and the files compacted). Called at start-up before serving requests.
    pub async fn reapply_ledger(&self, ledger: &Ledger) -> Result<Reapplied, AppError> {
        let entries = ledger.read()?;
        let mut out = Reapplied { entries: entries.len() as u64, persons: 0 };
        let mut again = Vec::new();
        for e in &entries {
            if let LedgerWhat::Persons { persons } = &e.what {
                for (uid, scope) in persons {
                    if let Some(p) = self.store.find_person_by_uid(uid).await? {
                        // An archived person stays; only their journal is purged again.
                        let restored = *scope == PurgeScope::Full
                            || p.phone.is_some()
                            || p.email.is_some()
                            || p.snils_cipher.is_some()
                            || p.esia_oid.is_some();
                        if restored || *scope == PurgeScope::KeepArchive {
                            again.push((p.id, *scope));
                        }
                    }
                }
            }
        }
        if again.is_empty() {
            return Ok(out);
        }
        let audit = NewAudit::new(self.now_micros(), "purge.reapply", "ok")
            .actor(0, "system")
            .details(serde_json::json!({ "entries": out.entries, "persons": again.len() }));
        let counts = self.store.purge_persons(&again, audit).await?;
        if counts.total() > counts.persons_archived {
            self.store.compact_after_purge().await?;
            out.persons = again.len() as u64;
        }
        Ok(out)
    }

    /// The act as a document: every field of Roskomnadzor Order 179 and the extract from the
    /// event journal (the audit records of the destruction).
    pub async fn destruction_act_doc(&self, number: &str) -> Result<ReportDoc, AppError> {
        let act = self
            .store
            .find_destruction_act(number)
            .await?
            .ok_or_else(|| AppError::Invalid(format!("акт «{number}» не найден")))?;
        let extract = self.act_extract(&act).await?;
        Ok(act_doc(&act, &extract))
    }

    /// Checks that the actor may see the acts and the migration register of `resource`.
    pub fn may_view_migration(
        &self,
        actor: &zhurnal_domain::Actor,
        resource: &Resource,
    ) -> Result<(), AppError> {
        authorize(actor, Action::ViewMigration, resource)?;
        Ok(())
    }

    async fn act_extract(&self, act: &DestructionAct) -> Result<Vec<AuditRecord>, AppError> {
        // The purge, the act itself and anything in the same minute: the journal's own record.
        let from = act.at - 60_000_000;
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.list_audit(after, 500).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            out.extend(page.into_iter().filter(|r| {
                r.event.at >= from
                    && r.event.at <= act.at
                    && (r.event.action.starts_with("purge.")
                        || r.event.action.starts_with("import."))
            }));
        }
        Ok(out)
    }
}

fn when(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|d| d.format("%d.%m.%Y %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// Lays the act out: the nine fields, the counts, the files, the journal extract.
pub fn act_doc(act: &DestructionAct, extract: &[AuditRecord]) -> ReportDoc {
    let d = &act.details;
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let n = |k: &str| d.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let counts = d.get("counts");
    let c = |k: &str| counts.and_then(|x| x.get(k)).and_then(|v| v.as_u64()).unwrap_or(0);
    let files: Vec<FileRecord> =
        d.get("files").and_then(|f| serde_json::from_value(f.clone()).ok()).unwrap_or_default();
    let (categories, subjects, media) = match act.reason.as_str() {
        "retention" => (
            "фамилия, имя, отчество; дата рождения; СНИЛС; контакты; отметки, посещаемость, история изменений; связи ученик — родитель",
            format!(
                "учащиеся, выбывшие из школы: {}; их родители (законные представители): {}",
                n("students"),
                n("parents")
            ),
            "база данных информационной системы «Zhurnal» (живые файлы базы)".to_string(),
        ),
        _ => (
            "все категории, содержавшиеся в файлах выгрузки прежней системы (ФИО, СНИЛС, контакты, отметки, посещаемость)",
            format!("субъекты из файлов выгрузки; файлов: {}", files.len()),
            "файлы выгрузки из прежней системы (исходные файлы импорта)".to_string(),
        ),
    };
    let mut fields =
        Table::new("Сведения об уничтожении", &["Поле", "Значение"]).widths(&[1.0, 3.0]);
    let residual = format!(
        "резервные копии и архивы журнала упреждающей записи хранятся до {} дн.; уничтоженные данные в них остаются до истечения этого срока, при восстановлении из копии записи повторно уничтожаются по журналу уничтожения",
        n("backup_days")
    );
    for (k, v) in [
        ("1. Номер акта", act.number.clone()),
        ("2. Оператор", s("operator")),
        ("3. Дата и время уничтожения", when(act.at)),
        ("4. Кто уничтожил", act.actor_label.clone()),
        ("5. Категории персональных данных", categories.to_string()),
        ("6. Субъекты (количество)", subjects),
        ("7. Носитель / информационная система", media),
        ("8. Способ уничтожения", s("method")),
        ("9. Причина (основание)", s("basis")),
        ("Остаточные копии", residual),
    ] {
        fields.push(vec![k.to_string(), v]);
    }
    let mut tables = vec![fields];
    if counts.is_some() {
        let mut t = Table::new("Уничтожено записей", &["Вид", "Количество"]).widths(&[3.0, 1.0]);
        for (k, title) in [
            ("persons", "люди (полностью)"),
            ("persons_archived", "люди (журнал уничтожен, сводная ведомость в архиве)"),
            ("marks", "отметки"),
            ("attendance", "записи посещаемости"),
            ("enrolments", "зачисления"),
            ("links", "связи (родители, группы)"),
            ("sessions", "сеансы"),
            ("other", "прочие записи"),
        ] {
            t.push(vec![title.to_string(), c(k).to_string()]);
        }
        tables.push(t);
    }
    if !files.is_empty() {
        let mut t = Table::new("Уничтоженные файлы", &["Файл", "Размер, байт", "SHA-256"])
            .widths(&[2.0, 0.8, 3.2]);
        for f in &files {
            t.push(vec![f.name.clone(), f.size.to_string(), f.sha256.clone()]);
        }
        tables.push(t);
    }
    let mut t = Table::new(
        "Выписка из журнала событий",
        &["№ записи", "Время", "Действие", "Результат", "Хеш записи"],
    )
    .widths(&[0.6, 1.4, 1.2, 0.6, 3.2]);
    for r in extract {
        t.push(vec![
            r.seq.to_string(),
            when(r.event.at),
            r.event.action.clone(),
            r.event.result.clone(),
            hex::encode(&r.hash),
        ]);
    }
    tables.push(t);
    ReportDoc {
        title: format!("Акт об уничтожении персональных данных № {}", act.number),
        subtitle: format!("{} · {}", s("operator"), when(act.at)),
        tables,
    }
}
