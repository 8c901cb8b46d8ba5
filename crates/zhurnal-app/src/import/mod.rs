//! Import from the old journal (Zhurnal CSV set, OneRoster 1.1 CSV), export in the Zhurnal
//! format, and the register of runs. Validation reads the whole input first and reports every
//! problem; nothing is written unless everything is valid; the apply pass writes everything
//! (the batch, final marks, corrections and the register entry) in one transaction, upserting
//! by external id, so a second run changes nothing.

mod keys;
pub mod rows;
pub mod source;
pub mod xlsx;
pub mod zcsv;

pub use rows::{Issue, Issues};
pub use source::Source;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zhurnal_domain::policy::{Action, Resource, authorize};
use zhurnal_domain::{Actor, PersonId, Snils};
use zhurnal_store::import::{ImportApplied, NewImportRun};
use zhurnal_store::{Batch, BatchStats, NewAudit, StoreError};

use crate::{App, AppError};

/// The input formats `zhurnal import --format` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// The documented Zhurnal set: CSV files (a directory or a ZIP) or one XLSX workbook
    /// with a sheet per file (chosen by the file's `.xlsx` name).
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
            Self::ZhurnalCsv => "набор Zhurnal (CSV или XLSX)",
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

/// What an import reports while it runs: the CLI draws a progress bar from it, the web page
/// (which shows the upload's own progress in the browser) passes [`NoProgress`].
pub trait Progress: Send + Sync {
    /// A new phase begins: its name and, when known, how many steps it has.
    fn phase(&self, _name: &str, _total: Option<u64>) {}
    /// Steps of the phase done so far (rows read, schools written).
    fn done(&self, _steps: u64) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

/// Rows are reported in steps of this many (a bar redraws far less often anyway).
const PROGRESS_STEP: u64 = 512;

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
    parse_with(format, source, keep, &NoProgress)
}

/// [`parse`], reporting the rows read.
pub fn parse_with(
    format: Format,
    source: &Source,
    keep: bool,
    progress: &dyn Progress,
) -> Result<(zcsv::Parsed, Issues), source::SourceError> {
    let read = match format {
        Format::ZhurnalCsv => zcsv::read(source, keep, progress),
        Format::OneRoster => oneroster::read(source, keep, progress),
    }?;
    progress.done(read.0.rows);
    Ok(read)
}

pub mod oneroster;

/// Rows per part of the load (see [`App::import_with_progress`]): small enough that a part
/// is a few MB at most, large enough that the per-part lookups do not matter.
pub const PART_ROWS: u64 = 2_000;

/// The input of the load, part by part, in either format.
enum Parts<'s> {
    Zhurnal(Box<zcsv::Stream<'s>>),
    Roster(Box<oneroster::Stream<'s>>),
}

impl Parts<'_> {
    fn next(
        &mut self,
        progress: &dyn Progress,
    ) -> Result<Option<zcsv::Parsed>, source::SourceError> {
        match self {
            Self::Zhurnal(s) => s.next_part(PART_ROWS, progress),
            Self::Roster(s) => s.next_part(PART_ROWS, progress),
        }
    }

    /// No problem found while reading so far (the set was checked whole already; a problem
    /// here means the source changed between the two passes).
    fn clean(&self) -> bool {
        match self {
            Self::Zhurnal(s) => s.issues().is_empty(),
            Self::Roster(s) => s.issues().is_empty(),
        }
    }

    fn finish(self) -> Issues {
        match self {
            Self::Zhurnal(s) => s.finish(),
            Self::Roster(s) => s.finish(),
        }
    }
}

/// A write the database refused for a data reason (a reference or constraint the check could
/// not see) is the import's problem, reported like the others; the transaction is gone, so
/// nothing was written.
fn refused_by_store(source: &Source, e: StoreError) -> Result<ImportOutcome, AppError> {
    match e {
        StoreError::UnknownReference { .. } | StoreError::Conflict { .. } => Ok(one_issue(
            &source.display_name(),
            format!("данные не согласуются с базой, ничего не записано: {e}"),
        )),
        e => Err(e.into()),
    }
}

impl App {
    /// Validates the whole input, then (only if it is entirely valid) applies it in one
    /// transaction and records the run. Idempotent by external ids.
    pub async fn import(
        &self,
        format: Format,
        source: &Source,
        by: ImportedBy<'_>,
    ) -> Result<ImportOutcome, AppError> {
        self.import_with_progress(format, source, by, &NoProgress).await
    }

    /// [`App::import`], reporting its phases: the check (rows), then the load (rows read and
    /// written).
    ///
    /// The load reads the set again part by part ([`PART_ROWS`] rows, in file order) and
    /// writes each part into one open transaction before reading the next, so the rows of
    /// the set are never all in memory (only the ids the check keeps). Each part is
    /// authorized and its СНИЛС sealed; a problem found there stops the writing, the rest is
    /// still checked so every problem is listed, and nothing is committed.
    pub async fn import_with_progress(
        &self,
        format: Format,
        source: &Source,
        by: ImportedBy<'_>,
        progress: &dyn Progress,
    ) -> Result<ImportOutcome, AppError> {
        let fail = |e: source::SourceError| AppError::Invalid(e.to_string());
        // Pass 1: every row checked, only ids kept.
        progress.phase("проверка", None);
        let (_, issues) = parse_with(format, source, false, progress).map_err(fail)?;
        if !issues.is_empty() {
            return Ok(invalid(issues));
        }
        let sha = source.sha256().map_err(fail)?;
        // Pass 2: part by part into one transaction.
        progress.phase("загрузка", None);
        let now = self.now_micros();
        let mut parts = match format {
            Format::ZhurnalCsv => Parts::Zhurnal(Box::new(zcsv::Stream::new(source, true))),
            Format::OneRoster => {
                Parts::Roster(Box::new(oneroster::Stream::new(source, true).map_err(fail)?))
            }
        };
        let mut session = self.store.begin_import(now).await?;
        let mut problems = Issues::default();
        let (mut rows, mut persons) = (0u64, 0u64);
        let mut schools: Vec<String> = Vec::new();
        while let Some(mut part) = parts.next(progress).map_err(fail)? {
            rows += part.rows;
            persons += part.batch.persons.len() as u64;
            schools.extend(part.batch.schools.iter().map(|s| s.external_id.clone()));
            if let ImportedBy::User(actor) = &by {
                problems.append(self.authorize_batch(actor, &part).await?);
            }
            problems.append(self.seal_persons(&mut part.batch, &part.snils).await?);
            if !problems.is_empty() || !parts.clean() {
                continue;
            }
            for f in &mut part.final_marks {
                if f.set_at == 0 {
                    f.set_at = now;
                }
            }
            let written = session.apply(&part.batch, &part.final_marks, &part.mark_history).await;
            if let Err(e) = written {
                return refused_by_store(source, e);
            }
        }
        progress.done(rows);
        problems.append(parts.finish());
        if !problems.is_empty() {
            return Ok(invalid(problems));
        }
        let (actor_id, role) = match &by {
            ImportedBy::User(a) => (Some(a.person), "user"),
            ImportedBy::Cli => (None, "cli"),
        };
        let audit = NewAudit::new(now, "import.apply", "ok")
            .actor(actor_id.map_or(0, |p| p.0), role)
            .target("import", &sha)
            .details(serde_json::json!({
                "format": format.code(), "rows": rows, "schools": schools, "persons": persons,
            }));
        let run = NewImportRun {
            at: now,
            format: format.code().into(),
            source_name: source.display_name(),
            source_sha256: sha.clone(),
            schools: schools.clone(),
            inserted: 0,
            updated: 0,
            unchanged: 0,
            actor_id,
        };
        let ImportApplied { stats, run_id } = match session.commit(run, audit).await {
            Ok(applied) => applied,
            Err(e) => return refused_by_store(source, e),
        };
        Ok(ImportOutcome::Applied(ImportSummary {
            run_id,
            rows,
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
                    let same = existing.snils_cipher.as_ref().is_some_and(|c| {
                        self.vault.decrypt(c, &existing.uid).ok().as_ref() == Some(s)
                    });
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
    /// A territory role the user may not grant is a problem of that row (the set is often a
    /// raw export of the old system that lists the region's staff too): it is reported with
    /// the others, by file and row, rather than refusing the whole upload.
    async fn authorize_batch(
        &self,
        actor: &Actor,
        parsed: &zcsv::Parsed,
    ) -> Result<Issues, AppError> {
        let b = &parsed.batch;
        let mut issues = Issues::default();
        let deny_new = || {
            AppError::Denied(zhurnal_domain::Denied {
                action: Action::ImportData,
                action_title: Action::ImportData.title(),
                reason: "новые регионы и муниципалитеты вносит оператор системы (команда zhurnal import)",
            })
        };
        for r in &b.regions {
            let existing = self
                .store
                .find_region_by_external_id(&r.external_id)
                .await?
                .ok_or_else(deny_new)?;
            if existing.name != r.name {
                authorize(actor, Action::ImportData, &Resource::Region(existing.id))?;
            }
        }
        for m in &b.municipalities {
            let existing = self
                .store
                .find_municipality_by_external_id(&m.external_id)
                .await?
                .ok_or_else(deny_new)?;
            if existing.name != m.name {
                authorize(actor, Action::ImportData, &Resource::Region(existing.region_id))?;
            }
        }
        for s in &b.schools {
            match self.store.find_school_by_external_id(&s.external_id).await? {
                Some(school) => {
                    authorize(actor, Action::ImportData, &Resource::School(school.place()))?
                }
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
        for (i, r) in b.staff_roles.iter().enumerate() {
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
                if authorize(actor, Action::ImportData, &Resource::Region(region)).is_err() {
                    let (file, line) = parsed
                        .staff_role_rows
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| ("staff_roles.csv".into(), 0));
                    issues.push(
                        &file,
                        line,
                        "role",
                        format!(
                            "роль {} может назначить только региональный администратор; уберите строку или загрузите файл через региональную страницу",
                            r.role
                        ),
                    );
                }
            }
        }
        Ok(issues)
    }

    /// The Zhurnal CSV set of one school, СНИЛС decrypted (an export of personal data: the
    /// caller audits it and keeps the files as such).
    pub async fn export_school_csv(
        &self,
        school_external_id: &str,
        dir: &std::path::Path,
    ) -> Result<u64, AppError> {
        let school =
            self.store.find_school_by_external_id(school_external_id).await?.ok_or_else(|| {
                AppError::Invalid(format!("школа «{school_external_id}» не найдена"))
            })?;
        let batch = self.store.export_school(school.id).await?;
        let final_marks = self.store.export_final_marks(school.id).await?;
        let history = self.store.export_mark_history(school.id).await?;
        let vault = self.vault.clone();
        let rows = zcsv::write(dir, &batch, &final_marks, &history, &|p| {
            p.snils_cipher
                .as_ref()
                .and_then(|c| vault.decrypt(c, &p.uid).ok())
                .map(|s| s.formatted())
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

#[cfg(test)]
mod fuzz {
    //! Property tests of the parsers (the CI-safe twin of fuzzing): arbitrary bytes in any
    //! file of either format, and arbitrary rows under valid headers, never panic; every
    //! refusal names its file.

    use proptest::prelude::*;

    use super::*;

    fn run(format: Format, files: &[(&str, Vec<u8>)]) {
        let dir = tempfile::tempdir().expect("dir");
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).expect("write");
        }
        let source = Source::at(dir.path()).expect("source");
        for keep in [false, true] {
            let (_, issues) = parse(format, &source, keep).expect("a directory always reads");
            assert!(issues.list.iter().all(|i| !i.file.is_empty()));
        }
    }

    fn zhurnal_names() -> Vec<&'static str> {
        zcsv::FILES.iter().map(|(f, _)| *f).collect()
    }

    fn roster_names() -> Vec<&'static str> {
        oneroster::FILES.iter().map(|(f, _, _)| *f).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(
            which in 0usize..28,
            bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let z = zhurnal_names();
            let r = roster_names();
            if which < z.len() {
                run(Format::ZhurnalCsv, &[(z[which], bytes)]);
            } else {
                run(Format::OneRoster, &[(r[(which - z.len()) % r.len()], bytes)]);
            }
        }

        #[test]
        fn arbitrary_rows_under_valid_headers_never_panic(
            rows in proptest::collection::vec(proptest::collection::vec("[a-zа-я0-9 .,;\"\\-]{0,12}", 0..12), 0..20),
            seed in 0usize..1000,
        ) {
            let body: String = rows.iter().map(|r| r.join(",") + "\n").collect();
            let mut z: Vec<(&str, Vec<u8>)> = zcsv::FILES
                .iter()
                .map(|(f, c)| (*f, format!("{}\n", c.join(",")).into_bytes()))
                .collect();
            let i = seed % z.len();
            z[i].1.extend_from_slice(body.as_bytes());
            run(Format::ZhurnalCsv, &z);
            let mut o: Vec<(&str, Vec<u8>)> = oneroster::FILES
                .iter()
                .map(|(f, c, _)| (*f, format!("{}\n", c.join(",")).into_bytes()))
                .collect();
            let j = seed % o.len();
            o[j].1.extend_from_slice(body.as_bytes());
            run(Format::OneRoster, &o);
        }
    }

    /// A workbook of the given CSV files (name, text), cells typed where they look typed.
    fn workbook(files: &[(&str, &str)]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        xlsx::workbook_from_csv_dir(dir.path(), true).expect("workbook")
    }

    fn parse_xlsx(bytes: &[u8], keep: bool) -> Result<(zcsv::Parsed, Issues), source::SourceError> {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("book.xlsx");
        std::fs::write(&p, bytes).expect("write");
        let source = Source::at(&p).expect("source");
        assert!(matches!(source, Source::Xlsx(_)));
        parse(Format::ZhurnalCsv, &source, keep)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_as_xlsx_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4000)) {
            for keep in [false, true] {
                if let Ok((_, issues)) = parse_xlsx(&bytes, keep) {
                    assert!(issues.list.iter().all(|i| !i.file.is_empty()));
                }
            }
        }

        #[test]
        fn a_damaged_workbook_never_panics(at in any::<prop::sample::Index>(), byte in any::<u8>(), len in 0usize..64) {
            let mut bytes = workbook(&[
                ("regions.csv", "external_id,name\nr1,Регион\n"),
                ("years.csv", "external_id,school,name,starts_on,ends_on\ny1,s1,2026/27,2026-09-01,2027-05-31\n"),
            ]);
            let i = at.index(bytes.len());
            let end = (i + len).min(bytes.len());
            bytes[i..end].iter_mut().for_each(|b| *b ^= byte | 1);
            for keep in [false, true] {
                if let Ok((_, issues)) = parse_xlsx(&bytes, keep) {
                    assert!(issues.list.iter().all(|i| !i.file.is_empty()));
                }
            }
        }
    }

    #[test]
    fn a_workbook_reads_like_the_csv_files_and_names_sheet_row_and_column() {
        let regions = "external_id,name\nr1,Регион\n";
        let municipalities = "external_id,region,name\nm1,r1,Город\n";
        let schools = "external_id,municipality,name,short_name\ns1,m1,Школа № 1,Школа 1\n";
        let years =
            "external_id,school,name,starts_on,ends_on\ny1,s1,2026/27,2026-09-01,2027-05-31\n";
        let persons = "external_id,last_name,first_name,birth_date,snils\n\
                       p1,Иванов,Иван,2011-03-04,11223344595\n\
                       p2,Петров,Пётр,2011-13-04,112-233-446 97\n";
        let files = [
            ("regions.csv", regions),
            ("municipalities.csv", municipalities),
            ("schools.csv", schools),
            ("years.csv", years),
            ("persons.csv", persons),
        ];
        let (_, issues) = parse_xlsx(&workbook(&files), false).expect("a workbook");
        let got: Vec<String> = issues.list.iter().map(|i| i.to_string()).collect();
        assert_eq!(issues.list.len(), 2, "{got:?}");
        assert_eq!(
            (issues.list[0].file.as_str(), issues.list[0].row, issues.list[0].column.as_str()),
            ("book.xlsx, лист persons", 3, "birth_date"),
            "{got:?}"
        );
        assert_eq!(
            (issues.list[1].file.as_str(), issues.list[1].row, issues.list[1].column.as_str()),
            ("book.xlsx, лист persons", 3, "snils"),
            "{got:?}"
        );
        assert!(got[0].starts_with("book.xlsx, лист persons, строка 3, столбец «birth_date»"));

        // Fixed, the workbook gives the same batch as the CSV files (typed date and number
        // cells read back as the CSV text).
        let fixed = persons.replace("2011-13-04,112-233-446 97", "2011-12-04,112-233-446 96");
        let files = [
            ("regions.csv", regions),
            ("municipalities.csv", municipalities),
            ("schools.csv", schools),
            ("years.csv", years),
            ("persons.csv", fixed.as_str()),
        ];
        let (from_book, issues) = parse_xlsx(&workbook(&files), true).expect("a workbook");
        assert!(issues.is_empty(), "{:?}", issues.list);
        let dir = tempfile::tempdir().expect("dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let (from_csv, issues) =
            parse(Format::ZhurnalCsv, &Source::at(dir.path()).expect("src"), true).expect("read");
        assert!(issues.is_empty(), "{:?}", issues.list);
        assert_eq!(format!("{:?}", from_book.batch), format!("{:?}", from_csv.batch));
        assert_eq!(from_book.snils, from_csv.snils);
        assert_eq!(from_book.batch.years[0].starts_on.to_string(), "2026-09-01");
    }

    #[test]
    fn a_formula_error_and_a_missing_column_are_named_in_the_workbook() {
        use rust_xlsxwriter::Workbook;
        let mut book = Workbook::new();
        let s = book.add_worksheet();
        s.set_name("regions").expect("name");
        s.write_string(0, 0, "external_id").expect("w");
        s.write_string(0, 1, "name").expect("w");
        s.write_string(1, 0, "r1").expect("w");
        s.write_formula(1, 1, "=1/0").expect("w");
        s.set_formula_result(1, 1, "#DIV/0!");
        let s = book.add_worksheet();
        s.set_name("Municipalities").expect("name");
        s.write_string(2, 1, "external_id").expect("w");
        let bytes = book.save_to_buffer().expect("save");
        let (_, issues) = parse_xlsx(&bytes, false).expect("a workbook");
        let got: Vec<String> = issues.list.iter().map(|i| i.to_string()).collect();
        assert!(
            got.iter().any(|g| g.starts_with("book.xlsx, лист regions, строка 2, столбец «name»")
                && g.contains("ошибка формулы")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|g| g.starts_with("book.xlsx, лист Municipalities, строка 3")
                && g.contains("нет обязательных столбцов")),
            "{got:?}"
        );
    }

    #[test]
    fn final_marks_are_checked_by_row_and_column() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("final_marks.csv"),
            "student,assignment,kind,period,value,author,set_at\n\
             s,a,period,q1,7,t,\n\
             s,a,annual,q1,5,t,\n\
             s,a,period,,5,t,вчера\n",
        )
        .expect("write");
        let (_, issues) =
            parse(Format::ZhurnalCsv, &Source::at(dir.path()).expect("src"), false).expect("read");
        let at: Vec<(u64, &str)> = issues.list.iter().map(|i| (i.row, i.column.as_str())).collect();
        for want in [(2, "value"), (2, "period"), (3, "period"), (4, "period"), (4, "set_at")] {
            assert!(at.contains(&want), "{want:?} in {:?}", issues.list);
        }
        assert!(at.contains(&(2, "student")) && at.contains(&(2, "assignment")), "{at:?}");
    }

    #[test]
    fn a_non_workbook_named_xlsx_is_refused_clearly() {
        let err = parse_xlsx(b"hello", false).expect_err("not a workbook");
        assert!(err.to_string().contains("не книга Excel"), "{err}");
    }

    #[test]
    fn the_template_workbook_has_a_sheet_per_file() {
        use calamine::Reader;
        let bytes = xlsx::template_workbook().expect("book");
        let book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).expect("xlsx");
        let names = book.sheet_names();
        assert_eq!(names.len(), zcsv::FILES.len());
        assert_eq!(names[0], "regions");
    }

    #[test]
    fn a_zip_set_reads_like_a_directory_and_a_non_zip_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("dir");
        let zip_path = dir.path().join("set.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("zip"));
        zip.start_file("export/regions.csv", zip::write::SimpleFileOptions::default())
            .expect("entry");
        std::io::Write::write_all(&mut zip, "external_id,name\nr1,Регион\nr1,Дубль\n".as_bytes())
            .expect("write");
        zip.finish().expect("finish");
        let (_, issues) =
            parse(Format::ZhurnalCsv, &Source::at(&zip_path).expect("src"), false).expect("read");
        assert_eq!(issues.list.len(), 1);
        assert_eq!((issues.list[0].file.as_str(), issues.list[0].row), ("regions.csv", 3));
        let not_zip = dir.path().join("x.csv");
        std::fs::write(&not_zip, "hello").expect("write");
        let err = parse(Format::ZhurnalCsv, &Source::at(&not_zip).expect("src"), false)
            .expect_err("not a zip");
        assert!(err.to_string().contains("не ZIP-архив"));
    }

    #[test]
    fn a_zip_entry_of_many_chunks_streams_whole_and_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let zip_path = dir.path().join("set.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("zip"));
        zip.start_file("regions.csv", zip::write::SimpleFileOptions::default()).expect("entry");
        // About 30 chunks of the reader; the duplicate is the very last row.
        let mut csv = String::from("external_id,name\n");
        for i in 0..60_000 {
            csv.push_str(&format!("r{i},Регион {i}\n"));
        }
        csv.push_str("r7,Дубль\n");
        std::io::Write::write_all(&mut zip, csv.as_bytes()).expect("write");
        zip.finish().expect("finish");
        let (p, issues) =
            parse(Format::ZhurnalCsv, &Source::at(&zip_path).expect("src"), true).expect("read");
        assert_eq!(issues.list.len(), 1, "{:?}", issues.list);
        assert_eq!((issues.list[0].file.as_str(), issues.list[0].row), ("regions.csv", 60_002));
        assert_eq!(p.batch.regions.len(), 60_000);
        assert_eq!(p.batch.regions[59_999].name, "Регион 59999");
    }

    #[test]
    fn semicolons_and_a_bom_are_accepted() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("regions.csv"), "\u{feff}external_id;name\nr1;Регион\n")
            .expect("write");
        let (p, issues) =
            parse(Format::ZhurnalCsv, &Source::at(dir.path()).expect("src"), true).expect("read");
        assert!(issues.is_empty(), "{:?}", issues.list);
        assert_eq!(p.batch.regions[0].name, "Регион");
    }

    #[test]
    fn templates_have_every_file() {
        let zip = zcsv::templates_zip().expect("zip");
        let archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a zip");
        assert_eq!(archive.len(), zcsv::FILES.len());
        assert_eq!(
            zcsv::template("marks.csv").as_deref(),
            Some("external_id,lesson,student,value,work_type,comment,author,created_at\n")
        );
    }
}

/// One school on the region's migration register: imported, verified, source destroyed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SchoolMigration {
    pub external_id: String,
    pub name: String,
    /// When the first run that wrote rows for the school happened.
    pub imported_at: Option<i64>,
    /// A later run of the same data changed nothing (сверка).
    pub verified_at: Option<i64>,
    /// The source of every run for the school has been destroyed; the last act's number.
    pub source_purged_act: Option<String>,
}

impl App {
    /// The migration status of every school (the regional register of issue 7).
    pub async fn migration_status(&self) -> Result<Vec<SchoolMigration>, AppError> {
        let runs = self.store.list_import_runs().await?;
        let mut out = Vec::new();
        for s in self.store.list_schools().await? {
            let mine: Vec<_> = runs.iter().filter(|r| r.schools.contains(&s.external_id)).collect();
            let imported_at = mine.iter().find(|r| !r.is_verification()).map(|r| r.at);
            let verified_at = imported_at.and_then(|first| {
                mine.iter()
                    .filter(|r| r.is_verification() && r.at >= first)
                    .map(|r| r.at)
                    .next_back()
            });
            let source_purged_act =
                if !mine.is_empty() && mine.iter().all(|r| r.act_number.is_some()) {
                    mine.iter().filter_map(|r| r.act_number.clone()).next_back()
                } else {
                    None
                };
            out.push(SchoolMigration {
                external_id: s.external_id.clone(),
                name: s.name.clone(),
                imported_at,
                verified_at,
                source_purged_act,
            });
        }
        Ok(out)
    }
}
