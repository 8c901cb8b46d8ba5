//! `cargo xtask bench`: the region-scale benchmark (issue 6).
//!
//! Builds the binary, generates a synthetic region into a temp directory (SQLite) or a
//! throwaway PostgreSQL cluster (`zhurnal generate`), starts the ESIA simulator and the real
//! server (`zhurnal serve`, `[bench] enabled`) on loopback, logs people in through the
//! simulator with `curl` (the real ESIA flow: redirects, GOST-signed tokens, cookies), then
//! drives each scenario with `wrk` (Debian package; a Lua script rotates the sessions and CSRF
//! tokens and counts non-2xx answers). Prints a table and writes `target/bench/latest.json`.
//!
//! Fails when a scenario has errors, non-2xx answers or no throughput: `cargo xtask ci
//! bench-smoke` runs it small so the benchmark cannot rot. The figures are not asserted.

use std::fmt::Write as _;
use std::io::Read as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::pg::{self, PgCluster};
use crate::sys;

pub const HELP: &str = "\
usage: cargo xtask bench [--backend sqlite|postgres] [--students N] [--duration S]
                         [--profile release|dev] [--connections C] [--sessions P] [--keep]
                         [--statements] [--durable]

  --backend      database of the run (default sqlite; postgres starts a throwaway cluster)
  --students     size of the generated region (default 20000)
  --duration     seconds of load per scenario (default 10)
  --profile      build profile of the server (default release; dev reuses the test build)
  --connections  concurrent connections of the load generator (default 32; the school
                 report at most 32)
  --sessions     parents logged in (default 200; teachers a quarter of that, admins ≤ 10)
  --keep         keep the temp directory (database, logs) and print its path
  --statements   PostgreSQL only: load pg_stat_statements into the throwaway cluster and write,
                 per scenario, the statements that took the database's time to
                 target/bench/statements-<scenario>.tsv (calls, total ms, µs per call, rows, SQL)
  --durable      PostgreSQL only: run the throwaway cluster as production runs (fsync,
                 synchronous_commit and full_page_writes on) instead of without them, so that
                 write figures include the flush of every commit";

#[derive(Debug)]
pub struct Options {
    pub backend: String,
    pub students: usize,
    pub duration: u64,
    pub profile: String,
    pub connections: usize,
    pub sessions: usize,
    pub keep: bool,
    pub statements: bool,
    pub durable: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: "sqlite".into(),
            students: 20_000,
            duration: 10,
            profile: "release".into(),
            connections: 32,
            sessions: 200,
            keep: false,
            statements: false,
            durable: false,
        }
    }
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next().cloned().with_context(|| format!("{name} needs a value\n\n{HELP}"))
            };
            match a.as_str() {
                "--backend" => o.backend = value("--backend")?,
                "--students" => o.students = value("--students")?.parse().context("--students")?,
                "--duration" => o.duration = value("--duration")?.parse().context("--duration")?,
                "--profile" => o.profile = value("--profile")?,
                "--connections" => {
                    o.connections = value("--connections")?.parse().context("--connections")?;
                }
                "--sessions" => o.sessions = value("--sessions")?.parse().context("--sessions")?,
                "--keep" => o.keep = true,
                "--statements" => o.statements = true,
                "--durable" => o.durable = true,
                other => bail!("unknown argument `{other}`\n\n{HELP}"),
            }
        }
        if !matches!(o.backend.as_str(), "sqlite" | "postgres") {
            bail!("--backend must be sqlite or postgres");
        }
        if o.statements && o.backend != "postgres" {
            bail!("--statements needs --backend postgres (it reads pg_stat_statements)");
        }
        if o.durable && o.backend != "postgres" {
            bail!(
                "--durable needs --backend postgres (SQLite always runs durable: WAL, synchronous=FULL)"
            );
        }
        if !matches!(o.profile.as_str(), "release" | "dev") {
            bail!("--profile must be release or dev");
        }
        if o.students == 0 || o.duration == 0 || o.connections == 0 || o.sessions == 0 {
            bail!("--students, --duration, --connections and --sessions must be positive");
        }
        Ok(o)
    }
}

/// A request per week (every `step`-th) and parent kept by `keep`, week by week, each as the
/// parent's session (`p0` + the parent's index).
fn first_views(
    weeks: &[String],
    parents: &[&(String, String, String)],
    step: usize,
    p0: usize,
    keep: impl Fn(&(String, String, String)) -> bool,
) -> Vec<Request> {
    let mut out = Vec::new();
    for w in weeks.iter().step_by(step) {
        for (i, p) in parents.iter().enumerate().filter(|(_, p)| keep(p)) {
            let url = format!("/api/v1/diary/{}/week?date={w}", p.1);
            out.push(("GET".to_string(), url, Some(p0 + i), None));
        }
    }
    out
}

/// `bench-plan.tsv` as written by `zhurnal generate`.
#[derive(Default)]
struct Plan {
    load: Vec<String>,
    regional: String,
    /// Persona, the child's public id, the child's class.
    parents: Vec<(String, String, String)>,
    teachers: Vec<Teacher>,
    admins: Vec<(String, String)>,
    uids: Vec<String>,
    /// The Mondays of the school year's quarters (`YYYY-MM-DD`).
    weeks: Vec<String>,
}

struct Teacher {
    persona: String,
    assignment: String,
    work_type: String,
    lessons: Vec<(String, String)>,
    students: Vec<String>,
}

impl Plan {
    fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let mut plan = Plan::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["load", rest @ ..] => plan.load = rest.iter().map(|s| s.to_string()).collect(),
                ["regional", p] => plan.regional = p.to_string(),
                ["parent", p, uid, class] => {
                    plan.parents.push((p.to_string(), uid.to_string(), class.to_string()))
                }
                ["teacher", p, a, w, lessons, students] => plan.teachers.push(Teacher {
                    persona: p.to_string(),
                    assignment: a.to_string(),
                    work_type: w.to_string(),
                    lessons: lessons
                        .split(',')
                        .filter_map(|l| l.split_once(':'))
                        .map(|(d, n)| (d.to_string(), n.to_string()))
                        .collect(),
                    students: students.split(',').map(str::to_string).collect(),
                }),
                ["admin", p, school] => plan.admins.push((p.to_string(), school.to_string())),
                ["uids", list] => plan.uids = list.split(',').map(str::to_string).collect(),
                ["weeks", list] => plan.weeks = list.split(',').map(str::to_string).collect(),
                _ => bail!("{}: unexpected line `{line}`", path.display()),
            }
        }
        if plan.parents.is_empty()
            || plan.teachers.is_empty()
            || plan.admins.is_empty()
            || plan.weeks.is_empty()
        {
            bail!("{}: the plan has no parents, teachers, admins or weeks", path.display());
        }
        Ok(plan)
    }
}

/// A logged-in session: the cookie header value and its CSRF token.
#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

/// Child processes we started; killed (by their own pid) when dropped.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// (method, path, session index or none, JSON body).
type Request = (String, String, Option<usize>, Option<String>);

struct Scenario {
    name: &'static str,
    requests: Vec<Request>,
    /// Connections of the load generator when fewer than `--connections`.
    max_connections: Option<usize>,
}

/// The school report is a whole school's XLSX (seconds each): a thousand of them at once models
/// no real evening, and none would finish within wrk's timeout. Its scenario keeps this many
/// connections whatever `--connections` says.
const REPORT_CONNECTIONS: usize = 32;

/// At most this many requests in the first-views scenario's script (see where it is built).
const FIRST_VIEWS_MAX: usize = 12_000;

#[derive(Default, Clone)]
struct Result1 {
    name: String,
    requests: u64,
    seconds: f64,
    errors: u64,
    non2xx: u64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    rss_peak_kb: u64,
}

impl Result1 {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds.max(0.001)
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let o = Options::parse(args)?;
    for tool in ["wrk", "curl"] {
        if sys::which(tool).is_none() {
            bail!("`{tool}` is not installed: apt-get install {tool} (Debian package)");
        }
    }
    let root = sys::repo_root();
    println!("== building zhurnal ({} profile)", o.profile);
    let mut build = sys::cargo();
    if o.profile == "release" {
        build.args(["build", "--release", "-p", "zhurnal", "--bin", "zhurnal"]);
    } else {
        // Exactly the build the tests make (nextest runs this too): building the binary alone
        // resolves other crate features and recompiles for minutes.
        build.args(["test", "--workspace", "--no-run"]);
    }
    sys::run(&mut build)?;
    let bin = root
        .join("target")
        .join(if o.profile == "release" { "release" } else { "debug" })
        .join("zhurnal");

    let dir = std::env::temp_dir().join(format!("zhurnal-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let outcome = run_in(&o, &bin, &dir);
    if o.keep {
        println!("kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free port")?;
    Ok(l.local_addr()?.port())
}

fn run_in(o: &Options, bin: &Path, dir: &Path) -> Result<()> {
    let mut settings = Vec::new();
    if o.statements {
        settings
            .push("-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all");
    }
    if o.durable {
        // Later `-c` settings win over the throwaway cluster's defaults.
        settings.push("-c fsync=on -c synchronous_commit=on -c full_page_writes=on");
    }
    let cluster = if o.backend == "postgres" {
        Some(PgCluster::start_with(&pg::ensure_bins()?, &settings.join(" "))?)
    } else {
        None
    };
    let statements = cluster.as_ref().filter(|_| o.statements);
    let db_url = cluster.as_ref().map(PgCluster::url);
    let with_db = |cmd: &mut Command| {
        cmd.env_remove("DATABASE_URL").env_remove("ZHURNAL_DATABASE_URL");
        if let Some(u) = &db_url {
            cmd.env("DATABASE_URL", u);
        }
        cmd.env("ZHURNAL_LOG", "warn");
    };

    println!("== generating {} students ({})", o.students, o.backend);
    let started = Instant::now();
    let mut gen_cmd = Command::new(bin);
    gen_cmd.args(["generate", "--students", &o.students.to_string(), "--data-dir"]).arg(dir);
    // The simulator lets in only the people the plan lists: ask for enough of them, so that
    // `--sessions 1000` logs 1,000 parents in (the generator's defaults: 300 and 60).
    gen_cmd
        .arg("--bench-parents")
        .arg(o.sessions.max(300).to_string())
        .arg("--bench-teachers")
        .arg(o.sessions.div_ceil(4).max(60).to_string());
    with_db(&mut gen_cmd);
    sys::run(&mut gen_cmd)?;
    let generate_seconds = started.elapsed().as_secs_f64();
    let plan = Plan::load(&dir.join("bench-plan.tsv"))?;

    let port = free_port()?;
    let sim_port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let esia = dir.join("esia");
    let config = dir.join("bench.toml");
    std::fs::write(&config, bench_config(dir, port, sim_port))?;

    let mut procs = Procs(Vec::new());
    let log =
        |name: &str| -> Result<Stdio> { Ok(Stdio::from(std::fs::File::create(dir.join(name))?)) };
    let mut sim = Command::new(bin);
    sim.args(["esia-sim", "--listen", &format!("127.0.0.1:{sim_port}"), "--persons"])
        .arg(esia.join("persons.json"))
        .args(["--client-id", "ZHURNAL-BENCH", "--redirect-uri", &format!("{base}/auth/callback")])
        .args(["--logout-redirect-uri", &format!("{base}/"), "--client-cert"])
        .arg(esia.join("rp-cert.pem"))
        .arg("--key")
        .arg(esia.join("sim-key.pem"))
        .stdout(log("sim.log")?)
        .stderr(log("sim.err")?);
    procs.0.push(sim.spawn().context("starting the ESIA simulator")?);
    let mut server = Command::new(bin);
    server.arg("--config").arg(&config).arg("serve");
    with_db(&mut server);
    server.stdout(log("server.log")?).stderr(log("server.err")?);
    let server_child = server.spawn().context("starting the server")?;
    let server_pid = server_child.id();
    procs.0.push(server_child);
    wait_port(sim_port, "the ESIA simulator", dir)?;
    wait_port(port, "the server", dir)?;

    println!("== logging in through the ESIA simulator");
    let t = Instant::now();
    let parents: Vec<&(String, String, String)> = plan.parents.iter().take(o.sessions).collect();
    let teachers: Vec<&Teacher> = plan.teachers.iter().take(o.sessions.div_ceil(4)).collect();
    let admins: Vec<&(String, String)> = plan.admins.iter().take(10).collect();
    if parents.len() < o.sessions {
        println!(
            "   the region offers {} parents with a child in school (of {} asked): a larger \
             --students gives more",
            parents.len(),
            o.sessions
        );
    }
    let mut who: Vec<String> = parents.iter().map(|p| p.0.clone()).collect();
    who.extend(teachers.iter().map(|t| t.persona.clone()));
    who.extend(admins.iter().map(|a| a.0.clone()));
    who.push(plan.regional.clone());
    let sessions = login_all(&base, &who, dir)?;
    println!("   {} sessions in {:.1} s", sessions.len(), t.elapsed().as_secs_f64());
    let (p0, t0, a0) = (0, parents.len(), parents.len() + teachers.len());

    let mut scenarios = Vec::new();
    scenarios.push(Scenario {
        name: "baseline",
        requests: plan
            .uids
            .iter()
            .map(|u| ("GET".into(), format!("/bench/baseline?uid={u}"), None, None))
            .collect(),
        max_connections: None,
    });
    scenarios.push(Scenario {
        name: "diary_week_page",
        requests: parents
            .iter()
            .enumerate()
            .map(|(i, p)| ("GET".into(), format!("/diary/{}", p.1), Some(p0 + i), None))
            .collect(),
        max_connections: None,
    });
    scenarios.push(Scenario {
        name: "diary_week_api",
        requests: parents
            .iter()
            .enumerate()
            .map(|(i, p)| ("GET".into(), format!("/api/v1/diary/{}/week", p.1), Some(p0 + i), None))
            .collect(),
        max_connections: None,
    });
    // Every week of the quarters for every parent, week by week: more weeks than the server
    // keeps (`[web] diary_weeks_in_memory`: 2,048 students' weeks and 512 classes' parts by
    // default), so nearly every week is built from the database once, as on the evening a
    // class's families first look at it. The plan lists the families of a class one after
    // another, so the first request of a class's week reads the class's part (lessons, groups,
    // files) and the class's other families read only their child's marks and absences. The
    // scenarios above ask for the current week again and again, which the server serves from
    // memory. wrk's LuaJIT takes at most 65,536 constants in a script: with 1,000 parents,
    // fewer weeks (spread over the year), still more requests than the server keeps weeks.
    let week_step = (parents.len() * plan.weeks.len()).div_ceil(FIRST_VIEWS_MAX).max(1);
    scenarios.push(Scenario {
        name: "diary_week_first",
        requests: first_views(&plan.weeks, &parents, week_step, p0, |_| true),
        max_connections: None,
    });
    // The same with one family per class: every request reads a class's week that no one has
    // asked for (while the server keeps fewer weeks than the classes have: `--sessions 1000`
    // asks for 7,000), the cost of the first look at a week.
    let mut classes = std::collections::HashSet::new();
    let firsts: Vec<&(String, String, String)> =
        parents.iter().copied().filter(|p| classes.insert(p.2.clone())).collect();
    let class_step = (firsts.len() * plan.weeks.len()).div_ceil(FIRST_VIEWS_MAX).max(1);
    scenarios.push(Scenario {
        name: "diary_week_first_in_class",
        requests: first_views(&plan.weeks, &parents, class_step, p0, |p| {
            firsts.iter().any(|f| std::ptr::eq(*f, p))
        }),
        max_connections: None,
    });
    // The journal before mark entry: the marks that scenario writes land in these journals,
    // so a journal read after it costs more the faster marks were written: with mark entry
    // first, the journal looked slower whenever mark entry got faster.
    scenarios.push(Scenario {
        name: "journal_page",
        requests: teachers
            .iter()
            .enumerate()
            .map(|(i, t)| ("GET".into(), format!("/journal/{}", t.assignment), Some(t0 + i), None))
            .collect(),
        max_connections: None,
    });
    let mut marks = Vec::new();
    for k in 0..40 {
        for (i, t) in teachers.iter().enumerate() {
            let (date, number) = &t.lessons[k % t.lessons.len()];
            let student = &t.students[(k * 7 + i) % t.students.len()];
            let value = ["5", "4", "4", "3", "5", "2"][(k + i) % 6];
            let body = format!(
                r#"{{"date":"{date}","lesson_number":{number},"student":"{student}","value":"{value}","work_type_id":{},"comment":null}}"#,
                t.work_type
            );
            marks.push((
                "POST".into(),
                format!("/api/v1/journal/{}/marks", t.assignment),
                Some(t0 + i),
                Some(body),
            ));
        }
    }
    scenarios.push(Scenario { name: "mark_entry_api", requests: marks, max_connections: None });
    scenarios.push(Scenario {
        name: "school_report_xlsx",
        requests: admins
            .iter()
            .enumerate()
            .map(|(i, a)| {
                ("GET".into(), format!("/reports/{}/progress/xlsx", a.1), Some(a0 + i), None)
            })
            .collect(),
        max_connections: Some(REPORT_CONNECTIONS),
    });

    if let Some(c) = statements {
        c.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")?;
    }
    let mut results = Vec::new();
    for s in &scenarios {
        if let Some(c) = statements {
            c.psql("SELECT pg_stat_statements_reset()")?;
        }
        let r = drive(o, &base, s, &sessions, dir, server_pid)?;
        if let Some(c) = statements {
            write_statements(c, s.name)?;
        }
        println!(
            "   {:<25} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}  non-2xx {}",
            r.name,
            r.rps(),
            r.p50_ms,
            r.p99_ms,
            r.errors,
            r.non2xx
        );
        results.push(r);
    }
    drop(procs);
    drop(cluster);

    let baseline = results.first().map(Result1::rps).unwrap_or(0.0);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "\n{:<25} {:>10} {:>9} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9}",
        "scenario",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "non-2xx",
        "RSS MB",
        "×baseline"
    );
    for r in &results {
        let _ = writeln!(
            table,
            "{:<25} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>8} {:>9.1} {:>9.2}",
            r.name,
            r.rps(),
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.errors,
            r.non2xx,
            r.rss_peak_kb as f64 / 1024.0,
            if baseline > 0.0 { r.rps() / baseline } else { 0.0 }
        );
    }
    let load = plan.load.join(" ");
    let _ = writeln!(
        table,
        "\nbackend {}{}, {} students, profile {}, {} connections (school report ≤ {REPORT_CONNECTIONS}), {} s per scenario, {} sessions; generate {:.1} s (students schools rows seconds rows/s: {load})",
        o.backend,
        match (o.backend.as_str(), o.durable) {
            ("postgres", false) => " (fsync off)",
            ("postgres", true) => " (durable: fsync on)",
            _ => "",
        },
        o.students,
        o.profile,
        o.connections,
        o.duration,
        sessions.len(),
        generate_seconds
    );
    print!("{table}");
    write_json(o, &results, baseline, &plan, generate_seconds)?;

    let bad: Vec<String> = results
        .iter()
        .filter(|r| r.errors > 0 || r.non2xx > 0 || r.requests == 0)
        .map(|r| r.name.clone())
        .collect();
    if !bad.is_empty() {
        // What the server said about the refused requests, so a failure in CI can be read
        // without re-running it with --keep.
        for name in ["server.log", "server.err"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("refused") || l.contains("failed") || l.contains("ERROR"))
                .collect();
            for l in &lines[lines.len().saturating_sub(15)..] {
                eprintln!("{name}: {l}");
            }
        }
        bail!(
            "scenarios with errors, non-2xx answers or no throughput: {} (logs: --keep)",
            bad.join(", ")
        );
    }
    Ok(())
}

fn bench_config(dir: &Path, port: u16, sim_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"listen = "127.0.0.1:{port}"
data_dir = "{d}"

[web]
secure_cookies = false
allow_login_hint = true

[security]
# The load comes from one address and a few hundred accounts: limits and detection thresholds
# that would stop it are lifted (they are measured by their own tests).
requests_per_minute_per_account = 1000000000
requests_per_minute_per_address = 1000000000
diary_views_per_hour = 1000000000
exports_per_day = 1000000000
export_persons_threshold = 1000000000
failed_callbacks_per_5_minutes = 1000000000

[bench]
enabled = true

[esia]
base_url = "http://127.0.0.1:{sim_port}/"
client_id = "ZHURNAL-BENCH"
redirect_uri = "http://127.0.0.1:{port}/auth/callback"
logout_redirect_uri = "http://127.0.0.1:{port}/"
issuer = "http://esia-sim.local/"
esia_certificate_path = "{d}/esia/sim-cert.pem"
signer = {{ kind = "key_file", key_path = "{d}/esia/rp-key.pem", certificate_path = "{d}/esia/rp-cert.pem" }}
"#
    )
}

fn wait_port(port: u16, what: &str, dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = std::fs::read_to_string(dir.join("server.err")).unwrap_or_default();
    bail!("{what} did not start listening on port {port} within 60 s\n{err}")
}

/// Logs everyone in with `curl` (4 at a time); returns sessions in the order of `who`.
fn login_all(base: &str, who: &[String], dir: &Path) -> Result<Vec<Session>> {
    let jars = dir.join("jars");
    std::fs::create_dir_all(&jars)?;
    let mut out: Vec<Option<Session>> = vec![None; who.len()];
    let chunks: Vec<Vec<(usize, String)>> = (0..4)
        .map(|k| who.iter().enumerate().skip(k).step_by(4).map(|(i, w)| (i, w.clone())).collect())
        .collect();
    let results: Vec<Result<Vec<(usize, Session)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let jars = jars.clone();
                s.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(i, w)| {
                            login(base, &w, &jars.join(format!("{i}.jar"))).map(|s| (i, s))
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("login thread panicked")))
            .collect()
    });
    for r in results {
        for (i, s) in r? {
            out[i] = Some(s);
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, s)| s.with_context(|| format!("no session for {}", who[i])))
        .collect()
}

fn login(base: &str, persona: &str, jar: &PathBuf) -> Result<Session> {
    let out = sys::capture(
        Command::new("curl")
            .args(["-s", "-L", "--max-redirs", "10", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg("-c")
            .arg(jar)
            .arg("-b")
            .arg(jar)
            .arg(format!("{base}/login?login_hint={persona}")),
    )?;
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    if code.trim() != "200" {
        bail!("login of {persona} ended with HTTP {code}");
    }
    let jar_text = std::fs::read_to_string(jar)?;
    let cookie = jar_text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 7 && f[5] == "zh_session").then(|| format!("zh_session={}", f[6]))
        })
        .next()
        .with_context(|| format!("login of {persona}: no session cookie"))?;
    let me = sys::capture(
        Command::new("curl")
            .args(["-s", "-H", &format!("Cookie: {cookie}")])
            .arg(format!("{base}/api/v1/me")),
    )?;
    let body = String::from_utf8_lossy(&me.stdout).to_string();
    let csrf = body
        .split("\"csrf_token\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .with_context(|| format!("login of {persona}: no CSRF token in /api/v1/me: {body}"))?
        .to_string();
    Ok(Session { cookie, csrf })
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The wrk script: rotates the scenario's requests from a per-connection random start, counts
/// answers outside 2xx (wrk itself counts only ≥ 400) and prints one summary line.
fn lua_script(s: &Scenario, sessions: &[Session]) -> String {
    let mut lua = String::from("local reqs = {\n");
    for (method, path, session, body) in &s.requests {
        let mut headers = String::from("{");
        if let Some(i) = session {
            let sess = &sessions[*i];
            let _ = write!(headers, "[\"Cookie\"]={},", lua_string(&sess.cookie));
            if method != "GET" {
                let _ = write!(headers, "[\"X-CSRF-Token\"]={},", lua_string(&sess.csrf));
            }
        }
        if body.is_some() {
            headers.push_str("[\"Content-Type\"]=\"application/json\",");
        }
        headers.push('}');
        let body = body.as_deref().map_or("nil".to_string(), lua_string);
        let _ =
            writeln!(lua, "  {{{}, {}, {headers}, {body}}},", lua_string(method), lua_string(path));
    }
    lua.push_str(
        r#"}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  i = math.random(#reqs)
  non2xx = 0
end
function request()
  i = i % #reqs + 1
  local r = reqs[i]
  return wrk.format(r[1], r[2], r[3], r[4])
end
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + t:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d errors=%d non2xx=%d p50=%d p95=%d p99=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, n,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"#,
    );
    lua
}

fn drive(
    o: &Options,
    base: &str,
    s: &Scenario,
    sessions: &[Session],
    dir: &Path,
    server_pid: u32,
) -> Result<Result1> {
    if s.requests.is_empty() {
        bail!("scenario {} has no requests (the generated region is too small?)", s.name);
    }
    let connections = s.max_connections.map_or(o.connections, |m| m.min(o.connections));
    let script = dir.join(format!("{}.lua", s.name));
    std::fs::write(&script, lua_script(s, sessions))?;
    // One wrk thread: the machine has 2 cores and the server needs them more.
    let out = sys::capture(
        Command::new("wrk")
            .args(["-t1", "-c", &connections.to_string(), "-d", &format!("{}s", o.duration)])
            .args(["--timeout", "10s", "-s"])
            .arg(&script)
            .arg(base),
    )?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    std::fs::write(dir.join(format!("{}.wrk.txt", s.name)), &text)?;
    let line = text.lines().find(|l| l.starts_with("BENCH ")).with_context(|| {
        format!(
            "wrk printed no summary for {}:\n{text}\n{}",
            s.name,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let field = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Result1 {
        name: s.name.to_string(),
        requests: field("requests"),
        seconds: field("duration_us") as f64 / 1e6,
        errors: field("errors"),
        non2xx: field("non2xx"),
        p50_ms: field("p50") as f64 / 1000.0,
        p95_ms: field("p95") as f64 / 1000.0,
        p99_ms: field("p99") as f64 / 1000.0,
        rss_peak_kb: vm_hwm(server_pid),
    })
}

/// The server's peak resident set so far (`VmHWM`), in KiB.
fn vm_hwm(pid: u32) -> u64 {
    let mut s = String::new();
    let _ = std::fs::File::open(format!("/proc/{pid}/status"))
        .and_then(|mut f| f.read_to_string(&mut s));
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The 25 statements that took the most execution time since the last reset (the scenario
/// just run), as `target/bench/statements-<scenario>.tsv`. Execution time only: planning is not
/// tracked, and the time a statement spends in the protocol (parse, bind, transaction start
/// and end) is not in it either.
fn write_statements(cluster: &PgCluster, scenario: &str) -> Result<()> {
    let rows = cluster.psql(
        "SELECT calls, round(total_exec_time::numeric, 1), \
         round((total_exec_time / calls * 1000)::numeric, 1), rows, \
         regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements \
         WHERE calls > 0 ORDER BY total_exec_time DESC LIMIT 25",
    )?;
    let dir = sys::repo_root().join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("statements-{scenario}.tsv"));
    std::fs::write(&path, format!("calls\ttotal_ms\tus_per_call\trows\tquery\n{rows}"))?;
    println!("   {:<25} statements: {}", scenario, path.display());
    Ok(())
}

fn write_json(
    o: &Options,
    results: &[Result1],
    baseline: f64,
    plan: &Plan,
    generate_seconds: f64,
) -> Result<()> {
    let dir = sys::repo_root().join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let mut j = String::from("{\n");
    let _ = writeln!(
        j,
        "  \"backend\": \"{}\",\n  \"durable\": {},\n  \"students\": {},\n  \"profile\": \"{}\",\n  \"connections\": {},\n  \"duration_seconds\": {},\n  \"generate_seconds\": {generate_seconds:.3},",
        o.backend,
        o.backend == "sqlite" || o.durable,
        o.students,
        o.profile,
        o.connections,
        o.duration
    );
    if let [_, schools, rows, secs, rps] = plan.load.as_slice() {
        let _ = writeln!(
            j,
            "  \"generate\": {{ \"schools\": {schools}, \"rows\": {rows}, \"seconds\": {secs}, \"rows_per_second\": {rps} }},"
        );
    }
    j.push_str("  \"scenarios\": [\n");
    for (k, r) in results.iter().enumerate() {
        let _ = write!(
            j,
            "    {{ \"name\": \"{}\", \"requests\": {}, \"seconds\": {:.3}, \"requests_per_second\": {:.1}, \"p50_ms\": {:.3}, \"p95_ms\": {:.3}, \"p99_ms\": {:.3}, \"errors\": {}, \"non_2xx\": {}, \"server_peak_rss_kb\": {}, \"ratio_to_baseline\": {:.3} }}",
            r.name,
            r.requests,
            r.seconds,
            r.rps(),
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.errors,
            r.non2xx,
            r.rss_peak_kb,
            if baseline > 0.0 { r.rps() / baseline } else { 0.0 }
        );
        j.push_str(if k + 1 < results.len() { ",\n" } else { "\n" });
    }
    j.push_str("  ]\n}\n");
    let path = dir.join("latest.json");
    std::fs::write(&path, j)?;
    println!("written: {}", path.display());
    Ok(())
}
