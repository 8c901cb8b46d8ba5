//! `zhurnal generate`: a synthetic region for the benchmark (`cargo xtask bench`).
//!
//! Each school is the demo school's generator ([`crate::demo::region_school`]) at the wanted
//! size, so the shapes and distributions are the demo's: classes of 22–26, about 1.7 parents per
//! student, a teacher per ~12 students, the timetable, lessons since 1 September with topics and
//! homework, marks (about one per student per school day) with the history row mark entry
//! writes for each, and attendance. Schools are generated
//! on a thread of their own and loaded one by one through [`BulkStore`] (COPY on PostgreSQL,
//! multi-row INSERTs on SQLite), so memory holds at most two schools whatever the region's size.
//!
//! Besides the database it writes `<data_dir>/esia/`: the relying party's and the simulator's
//! GOST keys and `persons.json` — the accounts the ESIA simulator lets in — and
//! `<data_dir>/bench-plan.json`, what the load generator needs to act as those people
//! (which child a parent looks at, which journal a teacher keeps and its lessons).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use zhurnal_app::SnilsVault;
use zhurnal_domain::Snils;
use zhurnal_esia::sim::SimPerson;
use zhurnal_store::bulk::{BulkRows, BulkTable, BulkValue};
use zhurnal_store::{Batch, NewAudit};

use crate::config::{Config, Overrides};
use crate::demo::{self, REGION_MAX_SCHOOL_STUDENTS, RegionSchool};
use crate::{build_app, open_store, seed};

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Students in the whole region.
    #[arg(long)]
    pub students: usize,
    /// Schools (default: one per 800 students).
    #[arg(long)]
    pub schools: Option<usize>,
    /// School years of history: only the current one (1) is generated so far.
    #[arg(long, default_value_t = 1)]
    pub years: u32,
    /// Directory for the SQLite database (unless DATABASE_URL is set), keys and the simulator's
    /// accounts.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Parents the ESIA simulator lets in (spread over the schools).
    #[arg(long, default_value_t = 300)]
    pub bench_parents: usize,
    /// Teachers the ESIA simulator lets in (spread over the schools).
    #[arg(long, default_value_t = 60)]
    pub bench_teachers: usize,
}

/// What the load generator needs to act as the simulator's people.
#[derive(Debug, Default, Serialize)]
pub struct BenchPlan {
    pub students: usize,
    pub schools: usize,
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    /// The region's administrator (persona id).
    pub regional_admin: String,
    pub parents: Vec<BenchParent>,
    pub teachers: Vec<BenchTeacher>,
    pub admins: Vec<BenchAdmin>,
    /// A person's uid for the baseline endpoint's point reads.
    pub baseline_uids: Vec<String>,
    /// The Mondays of the school year's quarters, for diary weeks asked for the first time.
    pub weeks: Vec<NaiveDate>,
}

#[derive(Debug, Serialize)]
pub struct BenchParent {
    pub persona: String,
    /// The child whose diary the parent opens.
    pub student_uid: String,
    /// The child's class (its external id).
    pub class: String,
}

#[derive(Debug, Serialize)]
pub struct BenchTeacher {
    pub persona: String,
    pub assignment: i64,
    /// The «Ответ на уроке» work type of the school.
    pub work_type: i64,
    /// Held lessons of the open period: (date, lesson number).
    pub lessons: Vec<(NaiveDate, u8)>,
    /// Students of the class (uids).
    pub students: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct BenchAdmin {
    pub persona: String,
    pub school: i64,
}

pub async fn run(file: Option<&std::path::Path>, args: GenerateArgs) -> anyhow::Result<()> {
    if args.students == 0 {
        bail!("--students: нужен хотя бы один ученик");
    }
    if args.years != 1 {
        bail!("--years {}: пока генерируется только текущий учебный год (--years 1)", args.years);
    }
    let schools = args.schools.unwrap_or_else(|| args.students.div_ceil(800)).max(1);
    let per_school = args.students.div_ceil(schools);
    if per_school > REGION_MAX_SCHOOL_STUDENTS {
        bail!(
            "--schools {schools}: по {per_school} учеников на школу — больше {REGION_MAX_SCHOOL_STUDENTS} (20 классов в параллели); увеличьте --schools"
        );
    }
    // СНИЛС numbers grow by at most 40 per person (students, ≤ 2 parents each, staff).
    let snils_stride = u32::try_from(40 * (per_school * 3 + 400))
        .context("--students: слишком много учеников на школу")?;
    if u64::from(snils_stride) * schools as u64 >= 990_000_000 {
        bail!("--students/--schools: номера СНИЛС синтетического региона не уместятся в 9 цифр");
    }

    let cfg = Config::load(file, &Overrides { listen: None, data_dir: args.data_dir.clone() })?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("каталог {}", cfg.data_dir.display()))?;
    let keys = cfg.load_keys(true)?;
    let store = open_store(&cfg, Arc::new(keys.sealer()?), true).await?;
    if !store.bulk_is_empty().await? {
        if store.bulk_pending().await? > 0 {
            bail!(
                "в этой базе осталась прерванная генерация: индексы, внешние ключи и триггеры ещё не созданы заново, база непригодна — удалите её и запустите генерацию в новую базу"
            );
        }
        bail!(
            "база данных не пуста: `zhurnal generate` загружает регион только в новую базу (укажите другой --data-dir или DATABASE_URL)"
        );
    }
    // Indexes (PostgreSQL's foreign keys, the diary's triggers) are built once at the end.
    let set_aside = store.bulk_begin().await.context("подготовка к загрузке (индексы)")?;
    let app = build_app(&cfg, store.clone(), &keys)?;
    let today = app.today();
    let now = app.now_micros();
    let vault = keys.vault()?;

    println!(
        "генерация: {} учеников в {schools} школах ({per_school} на школу), {} ({})",
        args.students,
        store.backend().name(),
        if cfg.database_url.is_some() {
            "DATABASE_URL".to_string()
        } else {
            cfg.data_dir.display().to_string()
        }
    );
    let started = Instant::now();
    let mut ids = Ids::default();
    let mut plan = BenchPlan { students: args.students, schools, ..BenchPlan::default() };
    let mut sim: Vec<SimPerson> = Vec::new();

    // The region, its municipalities (one per 20 schools) and the regional administrator.
    let munis = schools.div_ceil(20);
    let mut region = Batch::default();
    region.regions.push(zhurnal_store::batch::BRegion {
        external_id: "bench-region".into(),
        name: "Синтетическая область".into(),
    });
    for m in 0..munis {
        region.municipalities.push(zhurnal_store::batch::BMunicipality {
            external_id: format!("bench-muni-{m}"),
            region: "bench-region".into(),
            name: format!("Муниципальный округ № {}", m + 1),
        });
    }
    let regional_snils = Snils::from_number(999_000_001);
    region.persons.push(zhurnal_store::batch::BPerson {
        external_id: "bench-regional-admin".into(),
        uid: demo::uid_for("bench-regional-admin"),
        last_name: "Богданов".into(),
        first_name: "Олег".into(),
        middle_name: Some("Сергеевич".into()),
        birth_date: NaiveDate::from_ymd_opt(1977, 11, 5),
        gender: Some("M".into()),
        snils_hmac: None,
        snils_cipher: None,
        phone: None,
        email: None,
    });
    region.staff_roles.push(zhurnal_store::batch::BStaffRole {
        person: "bench-regional-admin".into(),
        role: "regional-admin".into(),
        scope: "bench-region".into(),
    });
    let snils = vec![("bench-regional-admin".to_string(), regional_snils)];
    let (rows, _) = convert(&region, &snils, &vault, &mut ids, now, today)?;
    let mut total = store.bulk_insert(&rows).await.context("загрузка региона")?;
    plan.regional_admin = "regional-admin".into();
    if let Some(p) = region.persons.first() {
        sim.push(sim_person("regional-admin", "Региональный администратор", p, &snils[0].1));
    }

    // Schools: generated on a thread, loaded here; the channel holds one school in waiting.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RegionSchool>(1);
    let students_total = args.students;
    let generator = std::thread::spawn(move || {
        let mut left = students_total;
        for i in 0..schools {
            let n = per_school.min(left);
            left -= n;
            let muni = format!("bench-muni-{}", i / 20);
            let school =
                demo::region_school(today, i as u32, &muni, n, 1_000_000 + i as u32 * snils_stride);
            if tx.blocking_send(school).is_err() {
                return;
            }
        }
    });
    let progress = indicatif::ProgressBar::new(schools as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} школ, {msg} [{elapsed_precise}, осталось ~{eta}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let parents_per_school = args.bench_parents.div_ceil(schools);
    let teachers_per_school = args.bench_teachers.div_ceil(schools);
    let mut index = 0usize;
    while let Some(school) = rx.recv().await {
        let (rows, map) = convert(&school.batch, &school.snils, &vault, &mut ids, now, today)?;
        total += store
            .bulk_insert(&rows)
            .await
            .with_context(|| format!("загрузка школы {}", school.school_external_id))?;
        pick_bench_people(
            &school,
            &map,
            today,
            (parents_per_school, teachers_per_school),
            (&mut plan, &mut sim),
        );
        if plan.baseline_uids.len() < 1000 {
            plan.baseline_uids.extend(school.batch.persons.iter().take(50).map(|p| p.uid.clone()));
        }
        index += 1;
        let secs = started.elapsed().as_secs_f64().max(0.001);
        progress.set_message(format!("{total} строк, {:.0} строк/с", total as f64 / secs));
        progress.inc(1);
    }
    progress.finish();
    if generator.join().is_err() {
        bail!("генератор школ остановился с ошибкой");
    }
    if index != schools {
        bail!("сгенерировано {index} школ из {schools}");
    }
    let load_secs = started.elapsed().as_secs_f64();
    store
        .bulk_finish()
        .await
        .context("завершение загрузки (индексы, внешние ключи, последовательности, статистика)")?;
    let secs = started.elapsed().as_secs_f64();
    let audit = NewAudit::new(app.now_micros(), "bench.generate", "ok").actor(0, "cli").details(
        serde_json::json!({ "students": args.students, "schools": schools, "rows": total }),
    );
    store.append_audit(audit).await?;

    plan.rows = total;
    plan.seconds = secs;
    plan.rows_per_second = total as f64 / secs.max(0.001);
    write_simulator_files(&cfg, &sim, &plan)?;
    println!(
        "готово: {total} строк за {secs:.1} с ({:.0} строк/с; загрузка {load_secs:.1} с, индексы, внешние ключи и триггеры ({set_aside}) и статистика {:.1} с)",
        plan.rows_per_second,
        secs - load_secs
    );
    println!(
        "для симулятора ЕСИА: {} учётных записей в {}",
        sim.len(),
        cfg.data_dir.join("esia/persons.json").display()
    );
    Ok(())
}

fn write_simulator_files(cfg: &Config, sim: &[SimPerson], plan: &BenchPlan) -> anyhow::Result<()> {
    let esia = cfg.data_dir.join("esia");
    std::fs::create_dir_all(&esia).with_context(|| format!("каталог {}", esia.display()))?;
    seed::key_pair(&esia, "rp", "Zhurnal bench relying party")?;
    seed::key_pair(&esia, "sim", "ESIA simulator")?;
    std::fs::write(esia.join("persons.json"), serde_json::to_string(sim)?)?;
    std::fs::write(cfg.data_dir.join("bench-plan.json"), serde_json::to_string_pretty(plan)?)?;
    std::fs::write(cfg.data_dir.join("bench-plan.tsv"), plan_tsv(plan))?;
    Ok(())
}

/// The plan as tab-separated lines for `cargo xtask bench` (which depends on `std` only):
/// `kind<TAB>fields…`, lists comma-separated, lessons as `date:number`.
fn plan_tsv(plan: &BenchPlan) -> String {
    let mut out = format!(
        "load\t{}\t{}\t{}\t{:.3}\t{:.0}\nregional\t{}\n",
        plan.students,
        plan.schools,
        plan.rows,
        plan.seconds,
        plan.rows_per_second,
        plan.regional_admin
    );
    for p in &plan.parents {
        out.push_str(&format!("parent\t{}\t{}\t{}\n", p.persona, p.student_uid, p.class));
    }
    for t in &plan.teachers {
        let lessons: Vec<String> = t.lessons.iter().map(|(d, n)| format!("{d}:{n}")).collect();
        out.push_str(&format!(
            "teacher\t{}\t{}\t{}\t{}\t{}\n",
            t.persona,
            t.assignment,
            t.work_type,
            lessons.join(","),
            t.students.join(",")
        ));
    }
    for a in &plan.admins {
        out.push_str(&format!("admin\t{}\t{}\n", a.persona, a.school));
    }
    out.push_str(&format!("uids\t{}\n", plan.baseline_uids.join(",")));
    let weeks: Vec<String> = plan.weeks.iter().map(NaiveDate::to_string).collect();
    out.push_str(&format!("weeks\t{}\n", weeks.join(",")));
    out
}

fn sim_person(
    id: &str,
    title: &str,
    p: &zhurnal_store::batch::BPerson,
    snils: &Snils,
) -> SimPerson {
    SimPerson {
        id: id.into(),
        title: title.into(),
        // Digits, unique: the СНИЛС number is unique in the region.
        oid: format!(
            "7{}",
            snils.formatted().chars().filter(char::is_ascii_digit).collect::<String>()
        ),
        last_name: p.last_name.clone(),
        first_name: p.first_name.clone(),
        middle_name: p.middle_name.clone(),
        birth_date: p.birth_date.unwrap_or_default(),
        gender: p.gender.clone().unwrap_or_else(|| "F".into()),
        snils: Some(snils.formatted()),
        trusted: true,
        email: None,
        mobile: None,
        kids: Vec::new(),
    }
}

/// Families of one class among the bench's parents: enough to share a class's week (a real
/// class has ~25), few enough that the first views reach more classes' weeks than the server
/// keeps.
const FAMILIES_PER_CLASS: usize = 5;

/// Picks parents, teachers and the administrator of one school as simulator accounts.
fn pick_bench_people(
    school: &RegionSchool,
    map: &IdMap,
    today: NaiveDate,
    (parents, teachers): (usize, usize),
    (plan, sim): (&mut BenchPlan, &mut Vec<SimPerson>),
) {
    let b = &school.batch;
    // The weeks of the quarters (the summer has no lessons to read).
    let quarters = b.periods.iter().filter(|p| p.scheme == "quarters");
    let first = quarters.clone().map(|p| p.starts_on).min();
    if let (true, Some(first), Some(last)) =
        (plan.weeks.is_empty(), first, quarters.map(|p| p.ends_on).max())
    {
        let mut monday =
            first - chrono::Duration::days(i64::from(first.weekday().num_days_from_monday()));
        while monday <= last {
            plan.weeks.push(monday);
            monday += chrono::Duration::days(7);
        }
    }
    let snils: HashMap<&str, &Snils> = school.snils.iter().map(|(e, s)| (e.as_str(), s)).collect();
    let by_ext: HashMap<&str, &zhurnal_store::batch::BPerson> =
        b.persons.iter().map(|p| (p.external_id.as_str(), p)).collect();
    let person = |ext: &str| by_ext.get(ext).copied();
    // Parents: one per family, [`FAMILIES_PER_CLASS`] families of a class one after another,
    // the classes taken at a stride over the school: the families of a class read the same
    // weeks, as on a real evening, and `cargo xtask bench` measures both a class's week read
    // for the first time and the same week opened by the class's other families. The classes
    // come by grade from grade 1, and first-graders get no marks (безотметочное обучение), so
    // grade 1 is skipped. A second pass over all families tops up what the classes did not
    // hold.
    let class_of: HashMap<&str, &str> = b
        .enrolments
        .iter()
        .filter(|e| e.departed_on.is_none())
        .map(|e| (e.student.as_str(), e.class.as_str()))
        .collect();
    let marked: Vec<&str> =
        b.classes.iter().filter(|c| c.grade > 1).map(|c| c.external_id.as_str()).collect();
    let wanted = parents.div_ceil(FAMILIES_PER_CLASS).max(1);
    let chosen = marked.iter().step_by((marked.len() / wanted).max(1));
    let mut families: Vec<&zhurnal_store::batch::BGuardianship> = Vec::new();
    for class in chosen {
        let mut children = std::collections::HashSet::new();
        families.extend(
            b.guardianships
                .iter()
                .filter(|g| class_of.get(g.child.as_str()) == Some(class))
                .filter(|g| children.insert(g.child.as_str()))
                .take(FAMILIES_PER_CLASS),
        );
    }
    let mut taken = 0;
    let (mut seen, mut children) =
        (std::collections::HashSet::new(), std::collections::HashSet::new());
    for g in families.into_iter().chain(&b.guardianships) {
        if taken >= parents {
            break;
        }
        if !seen.insert(g.parent.as_str()) || !children.insert(g.child.as_str()) {
            continue;
        }
        let (Some(p), Some(c), Some(s)) =
            (person(&g.parent), person(&g.child), snils.get(g.parent.as_str()))
        else {
            continue;
        };
        let Some(pid) = map.persons.get(&g.parent) else { continue };
        let Some(class) = class_of.get(g.child.as_str()) else { continue };
        let id = format!("parent-{pid}");
        sim.push(sim_person(&id, "Родитель (нагрузочный тест)", p, s));
        plan.parents.push(BenchParent {
            persona: id,
            student_uid: c.uid.clone(),
            class: class.to_string(),
        });
        taken += 1;
    }
    // Teachers: subject journals of whole classes in grades 5–9 with lessons in the open quarter.
    let quarter_start = b
        .periods
        .iter()
        .filter(|p| p.scheme == "quarters" && p.starts_on <= today)
        .map(|p| p.starts_on)
        .max()
        .unwrap_or(today);
    let mut used_teachers: Vec<&str> = Vec::new();
    for a in &b.assignments {
        if used_teachers.len() >= teachers {
            break;
        }
        if a.group.is_some() || used_teachers.contains(&a.teacher.as_str()) {
            continue;
        }
        let Some(class) = b.classes.iter().find(|c| c.external_id == a.class) else { continue };
        if !(5..=9).contains(&class.grade) || a.subject.ends_with("-orkse") {
            continue;
        }
        let lessons: Vec<(NaiveDate, u8)> = b
            .lessons
            .iter()
            .filter(|l| l.assignment == a.external_id && l.date >= quarter_start && l.date <= today)
            .map(|l| (l.date, l.lesson_number))
            .collect();
        let (Some(t), Some(s)) = (person(&a.teacher), snils.get(a.teacher.as_str())) else {
            continue;
        };
        if lessons.is_empty() {
            continue;
        }
        let students = b
            .enrolments
            .iter()
            .filter(|e| e.class == a.class && e.departed_on.is_none())
            .filter_map(|e| person(&e.student).map(|p| p.uid.clone()))
            .collect();
        let (Some(tid), Some(aid)) =
            (map.persons.get(&a.teacher), map.assignments.get(&a.external_id))
        else {
            continue;
        };
        let id = format!("teacher-{tid}");
        sim.push(sim_person(&id, "Учитель (нагрузочный тест)", t, s));
        plan.teachers.push(BenchTeacher {
            persona: id,
            assignment: *aid,
            work_type: map.answer_work_type,
            lessons,
            students,
        });
        used_teachers.push(&a.teacher);
    }
    if plan.admins.len() < 20
        && let (Some(p), Some(s), Some(aid)) = (
            person(&school.admin),
            snils.get(school.admin.as_str()),
            map.persons.get(&school.admin),
        )
    {
        let id = format!("admin-{aid}");
        sim.push(sim_person(&id, "Администратор школы (нагрузочный тест)", p, s));
        plan.admins.push(BenchAdmin { persona: id, school: map.school });
    }
}

/// Next id per table: ids are chosen here, so a school's rows reference each other directly.
#[derive(Default)]
struct Ids {
    next: HashMap<BulkTable, i64>,
    regions: HashMap<String, i64>,
    municipalities: HashMap<String, i64>,
}

impl Ids {
    fn take(&mut self, table: BulkTable) -> i64 {
        let n = self.next.entry(table).or_insert(0);
        *n += 1;
        *n
    }
}

/// The ids one school's rows got, by external id.
#[derive(Default)]
struct IdMap {
    school: i64,
    persons: HashMap<String, i64>,
    assignments: HashMap<String, i64>,
    answer_work_type: i64,
}

fn look(map: &HashMap<String, i64>, what: &str, ext: &str) -> anyhow::Result<i64> {
    map.get(ext).copied().with_context(|| format!("генератор: нет {what} «{ext}»"))
}

/// Turns one generated batch (a school, or the region itself) into rows with final ids.
fn convert(
    b: &Batch,
    snils: &[(String, Snils)],
    vault: &SnilsVault,
    ids: &mut Ids,
    now: i64,
    today: NaiveDate,
) -> anyhow::Result<(BulkRows, IdMap)> {
    use BulkTable as T;
    let mut rows = BulkRows::default();
    let mut map = IdMap::default();
    let null = || BulkValue::Null;
    for r in &b.regions {
        let id = ids.take(T::Regions);
        ids.regions.insert(r.external_id.clone(), id);
        rows.push(
            T::Regions,
            vec![id.into(), r.external_id.as_str().into(), r.name.as_str().into()],
        );
    }
    for m in &b.municipalities {
        let id = ids.take(T::Municipalities);
        let region = look(&ids.regions, "региона", &m.region)?;
        ids.municipalities.insert(m.external_id.clone(), id);
        rows.push(
            T::Municipalities,
            vec![id.into(), m.external_id.as_str().into(), region.into(), m.name.as_str().into()],
        );
    }
    let mut schools = HashMap::new();
    for s in &b.schools {
        let id = ids.take(T::Schools);
        schools.insert(s.external_id.clone(), id);
        map.school = id;
        let muni = look(&ids.municipalities, "муниципалитета", &s.municipality)?;
        rows.push(
            T::Schools,
            vec![
                id.into(),
                s.external_id.as_str().into(),
                muni.into(),
                s.name.as_str().into(),
                s.short_name.as_str().into(),
            ],
        );
    }
    let mut years = HashMap::new();
    for y in &b.years {
        let id = ids.take(T::AcademicYears);
        years.insert(y.external_id.clone(), id);
        rows.push(
            T::AcademicYears,
            vec![
                id.into(),
                y.external_id.as_str().into(),
                look(&schools, "школы", &y.school)?.into(),
                y.name.as_str().into(),
                y.starts_on.into(),
                y.ends_on.into(),
            ],
        );
    }
    for p in &b.periods {
        let id = ids.take(T::Periods);
        rows.push(
            T::Periods,
            vec![
                id.into(),
                p.external_id.as_str().into(),
                look(&years, "учебного года", &p.year)?.into(),
                p.scheme.as_str().into(),
                i64::from(p.number).into(),
                p.starts_on.into(),
                p.ends_on.into(),
                p.closed_on.into(),
            ],
        );
    }
    let snils: HashMap<&str, &Snils> = snils.iter().map(|(e, s)| (e.as_str(), s)).collect();
    for p in &b.persons {
        let id = ids.take(T::Persons);
        map.persons.insert(p.external_id.clone(), id);
        let (hmac, cipher) = match snils.get(p.external_id.as_str()) {
            Some(s) => (Some(vault.match_key(s)), Some(vault.encrypt(s, &p.uid))),
            None => (None, None),
        };
        rows.push(
            T::Persons,
            vec![
                id.into(),
                p.uid.as_str().into(),
                p.external_id.as_str().into(),
                p.last_name.as_str().into(),
                p.first_name.as_str().into(),
                p.middle_name.clone().into(),
                p.birth_date.into(),
                p.gender.clone().into(),
                hmac.into(),
                cipher.into(),
                p.phone.clone().into(),
                p.email.clone().into(),
                now.into(),
            ],
        );
    }
    let mut classes = HashMap::new();
    for c in &b.classes {
        let id = ids.take(T::Classes);
        classes.insert(c.external_id.clone(), id);
        let teacher = match &c.class_teacher {
            Some(t) => BulkValue::Int(look(&map.persons, "классного руководителя", t)?),
            None => null(),
        };
        rows.push(
            T::Classes,
            vec![
                id.into(),
                c.external_id.as_str().into(),
                look(&schools, "школы", &c.school)?.into(),
                look(&years, "учебного года", &c.year)?.into(),
                i64::from(c.grade).into(),
                c.letter.as_str().into(),
                teacher,
                c.period_scheme.as_str().into(),
                c.newly_formed.into(),
            ],
        );
    }
    let mut groups = HashMap::new();
    for g in &b.groups {
        let id = ids.take(T::ClassGroups);
        groups.insert(g.external_id.clone(), id);
        rows.push(
            T::ClassGroups,
            vec![
                id.into(),
                g.external_id.as_str().into(),
                look(&classes, "класса", &g.class)?.into(),
                g.name.as_str().into(),
            ],
        );
        for m in &g.members {
            rows.push(T::GroupMembers, vec![id.into(), look(&map.persons, "ученика", m)?.into()]);
        }
    }
    let school_of_class: HashMap<&str, &str> =
        b.classes.iter().map(|c| (c.external_id.as_str(), c.school.as_str())).collect();
    for e in &b.enrolments {
        let id = ids.take(T::Enrolments);
        let school = school_of_class.get(e.class.as_str()).copied().unwrap_or_default();
        rows.push(
            T::Enrolments,
            vec![
                id.into(),
                e.external_id.as_str().into(),
                look(&map.persons, "ученика", &e.student)?.into(),
                look(&schools, "школы", school)?.into(),
                look(&classes, "класса", &e.class)?.into(),
                e.admitted_on.into(),
                e.departed_on.into(),
                e.departure_kind.clone().into(),
                e.departure_reason.clone().into(),
            ],
        );
    }
    for g in &b.guardianships {
        rows.push(
            T::Guardianships,
            vec![
                look(&map.persons, "родителя", &g.parent)?.into(),
                look(&map.persons, "ребёнка", &g.child)?.into(),
                null(),
            ],
        );
    }
    for r in &b.staff_roles {
        let id = ids.take(T::StaffRoles);
        let (school, muni, region) = match r.role.as_str() {
            "teacher" | "school-admin" => {
                (BulkValue::Int(look(&schools, "школы", &r.scope)?), null(), null())
            }
            "municipal-officer" => (
                null(),
                BulkValue::Int(look(&ids.municipalities, "муниципалитета", &r.scope)?),
                null(),
            ),
            _ => (null(), null(), BulkValue::Int(look(&ids.regions, "региона", &r.scope)?)),
        };
        rows.push(
            T::StaffRoles,
            vec![
                id.into(),
                look(&map.persons, "сотрудника", &r.person)?.into(),
                r.role.as_str().into(),
                school,
                muni,
                region,
                now.into(),
            ],
        );
    }
    let mut subjects = HashMap::new();
    for s in &b.subjects {
        let id = ids.take(T::Subjects);
        subjects.insert(s.external_id.clone(), id);
        rows.push(
            T::Subjects,
            vec![
                id.into(),
                s.external_id.as_str().into(),
                look(&schools, "школы", &s.school)?.into(),
                s.name.as_str().into(),
                s.grading.as_str().into(),
            ],
        );
    }
    // Work types by (school, code) → (id, weight); a batch here holds one school.
    let mut work_types: HashMap<String, (i64, i64)> = HashMap::new();
    for w in &b.work_types {
        let id = ids.take(T::WorkTypes);
        work_types.insert(w.code.clone(), (id, i64::from(w.weight)));
        if w.code == "answer" {
            map.answer_work_type = id;
        }
        rows.push(
            T::WorkTypes,
            vec![
                id.into(),
                look(&schools, "школы", &w.school)?.into(),
                w.code.as_str().into(),
                w.name.as_str().into(),
                i64::from(w.weight).into(),
            ],
        );
    }
    for a in &b.assignments {
        let id = ids.take(T::Assignments);
        map.assignments.insert(a.external_id.clone(), id);
        let group = match &a.group {
            Some(g) => BulkValue::Int(look(&groups, "группы", g)?),
            None => null(),
        };
        rows.push(
            T::Assignments,
            vec![
                id.into(),
                a.external_id.as_str().into(),
                look(&map.persons, "учителя", &a.teacher)?.into(),
                look(&classes, "класса", &a.class)?.into(),
                group,
                look(&subjects, "предмета", &a.subject)?.into(),
            ],
        );
    }
    let mut slots = HashMap::new();
    for s in &b.timetable {
        let id = ids.take(T::TimetableSlots);
        slots.insert(s.external_id.clone(), id);
        rows.push(
            T::TimetableSlots,
            vec![
                id.into(),
                s.external_id.as_str().into(),
                look(&map.assignments, "нагрузки", &s.assignment)?.into(),
                i64::from(s.weekday).into(),
                i64::from(s.lesson_number).into(),
                s.room.clone().into(),
            ],
        );
    }
    for s in &b.substitutions {
        let id = ids.take(T::Substitutions);
        rows.push(
            T::Substitutions,
            vec![
                id.into(),
                look(&slots, "слота", &s.slot)?.into(),
                s.date.into(),
                look(&map.persons, "заменяющего учителя", &s.substitute)?.into(),
                s.reason.clone().into(),
            ],
        );
    }
    // Lessons and marks keep no external id: nothing imports them again, and at a million
    // students the ids alone would be gigabytes of index.
    let mut lessons = HashMap::new();
    for l in &b.lessons {
        let id = ids.take(T::Lessons);
        lessons.insert(l.external_id.clone(), id);
        rows.push(
            T::Lessons,
            vec![
                id.into(),
                null(),
                look(&map.assignments, "нагрузки", &l.assignment)?.into(),
                l.date.into(),
                i64::from(l.lesson_number).into(),
                l.topic.clone().into(),
                l.homework.clone().into(),
            ],
        );
    }
    for m in &b.marks {
        let id = ids.take(T::Marks);
        let (work_type, weight) = work_types
            .get(&m.work_type)
            .copied()
            .with_context(|| format!("генератор: нет вида работ «{}»", m.work_type))?;
        rows.push(
            T::Marks,
            vec![
                id.into(),
                null(),
                look(&lessons, "урока", &m.lesson)?.into(),
                look(&map.persons, "ученика", &m.student)?.into(),
                m.value.as_str().into(),
                work_type.into(),
                weight.into(),
                m.comment.clone().into(),
                look(&map.persons, "автора отметки", &m.author)?.into(),
                m.created_at.into(),
                m.created_at.into(),
            ],
        );
        // Mark entry records every new mark in its history (the journal shows it); a region
        // without those rows would leave the history table empty and unlike production.
        rows.push(
            T::MarkHistory,
            vec![
                id.into(),
                m.created_at.into(),
                look(&map.persons, "автора отметки", &m.author)?.into(),
                null(),
                m.value.as_str().into(),
                null(),
                work_type.into(),
                null(),
            ],
        );
    }
    for a in &b.attendance {
        rows.push(
            T::Attendance,
            vec![
                look(&lessons, "урока", &a.lesson)?.into(),
                look(&map.persons, "ученика", &a.student)?.into(),
                a.kind.as_str().into(),
                look(&map.persons, "автора отметки", &a.author)?.into(),
                0i64.into(),
            ],
        );
    }
    announcements(b, &mut rows, ids, &map, &classes, today)?;
    Ok((rows, map))
}

/// What class teachers and schools write in a term (the bodies rotate).
const ANNOUNCEMENT_BODIES: [&str; 6] = [
    "Уважаемые родители! В пятницу родительское собрание в 18:00, кабинет класса.",
    "Напоминаю: на следующей неделе контрольные работы по математике и русскому языку.",
    "Завтра экскурсия, сбор в 8:30 у школы. Форма одежды — по погоде.",
    "Просьба сдать заявления на горячее питание классному руководителю до конца недели.",
    "Внимание: в среду уроки сокращены до 30 минут, окончание в 12:40.",
    "Проверьте, пожалуйста, подтверждённую учётную запись ЕСИА ребёнка на Госуслугах.",
];

/// Announcements of one school: its class teachers' weekly note to their class and, every
/// other week, the school administrator's note to every class, from the first day of the year
/// to `today`. Without them the diary's announcement read had nothing to do in the benchmark,
/// and a school year has dozens per class.
fn announcements(
    b: &Batch,
    rows: &mut BulkRows,
    ids: &mut Ids,
    map: &IdMap,
    classes: &HashMap<String, i64>,
    today: NaiveDate,
) -> anyhow::Result<()> {
    use BulkTable as T;
    let Some(first_day) = b.years.iter().map(|y| y.starts_on).min() else {
        return Ok(());
    };
    // Recipients: the class's students and their parents.
    let mut recipients: HashMap<&str, i64> = HashMap::new();
    let class_of: HashMap<&str, &str> =
        b.enrolments.iter().map(|e| (e.student.as_str(), e.class.as_str())).collect();
    for e in &b.enrolments {
        *recipients.entry(e.class.as_str()).or_default() += 1;
    }
    for g in &b.guardianships {
        if let Some(class) = class_of.get(g.child.as_str()) {
            *recipients.entry(class).or_default() += 1;
        }
    }
    let admin = b.staff_roles.iter().find(|r| r.role == "school-admin");
    let mut announce = |ids: &mut Ids, sender: i64, at: NaiveDate, to: &[&str]| {
        let id = ids.take(T::Announcements);
        // 15:00 UTC+3, after lessons.
        let created_at = at.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc().timestamp_micros();
        let count: i64 = to.iter().map(|c| recipients.get(c).copied().unwrap_or(0)).sum();
        rows.push(
            T::Announcements,
            vec![
                id.into(),
                format!("gen-announcement-{id}").into(),
                map.school.into(),
                sender.into(),
                ANNOUNCEMENT_BODIES[usize::try_from(id).unwrap_or(0) % ANNOUNCEMENT_BODIES.len()]
                    .into(),
                "delivered".into(),
                count.into(),
                created_at.into(),
            ],
        );
        for c in to {
            rows.push(T::AnnouncementClasses, vec![id.into(), look(classes, "класса", c)?.into()]);
        }
        Ok::<_, anyhow::Error>(())
    };
    let all: Vec<&str> = b.classes.iter().map(|c| c.external_id.as_str()).collect();
    let mut day = first_day;
    let mut week = 0;
    while day <= today {
        for c in &b.classes {
            if let Some(t) = &c.class_teacher {
                announce(
                    ids,
                    look(&map.persons, "классного руководителя", t)?,
                    day,
                    &[c.external_id.as_str()],
                )?;
            }
        }
        if let Some(a) = admin
            && week % 2 == 0
        {
            announce(ids, look(&map.persons, "администратора", &a.person)?, day, &all)?;
        }
        day += chrono::Duration::days(7);
        week += 1;
    }
    Ok(())
}
