//! `cargo xtask ci`: every gate CI runs, in order, as one list of named steps.
//!
//! All steps run even after a failure (a formatting slip should not hide a failing test); the
//! exit status is non-zero if any step failed. To add a gate, append a [`Step`] in [`steps`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::pg::{self, PgCluster};
use crate::sys::{self, Outcome, capture, cargo, display, flush, repo_root};

/// One named CI step.
pub struct Step {
    pub name: &'static str,
    pub run: fn(&mut Ctx) -> Result<Outcome>,
}

/// State shared between steps.
#[derive(Default)]
pub struct Ctx {
    /// Environment for the test runs, filled in by earlier steps.
    pub test_env: BTreeMap<String, String>,
    /// The throwaway cluster, alive from `postgres-start` until `postgres-stop` (or until `Ctx`
    /// is dropped, whatever happened in between).
    pub postgres: Option<PgCluster>,
}

/// The CI contract, in order. Later gates (docs, benchmarks, snapshots) are appended here.
pub fn steps() -> Vec<Step> {
    vec![
        step("fmt", fmt),
        step("clippy", clippy),
        step("dependency-bans", dependency_bans),
        step("no-password-field", no_password_field),
        step("system-packages", system_packages),
        step("postgres-start", postgres_start),
        step("tests", run_tests),
        step("doctests", doctests),
        step("bench-smoke", bench_smoke),
        step("postgres-stop", postgres_stop),
    ]
}

const fn step(name: &'static str, run: fn(&mut Ctx) -> Result<Outcome>) -> Step {
    Step { name, run }
}

/// Runs all steps, or only the named ones (in contract order). Naming `tests` or `doctests`
/// brings the PostgreSQL steps along, since the tests require a server.
pub fn run(only: &[String]) -> Result<()> {
    let all = steps();
    if let Some(unknown) = only.iter().find(|name| !all.iter().any(|s| s.name == *name)) {
        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
        bail!("unknown step `{unknown}`; steps are: {}", names.join(", "));
    }
    let wanted = |name: &str| {
        only.is_empty()
            || only.iter().any(|o| o == name)
            || (name.starts_with("postgres-") && only.iter().any(|o| o.ends_with("tests")))
    };
    sys::one_shot_builds();
    let started = Instant::now();
    let mut ctx = Ctx::default();
    let mut results = Vec::new();
    for step in all.into_iter().filter(|step| wanted(step.name)) {
        println!("\n== {} ==", step.name);
        flush();
        let t0 = Instant::now();
        let outcome = (step.run)(&mut ctx);
        let secs = t0.elapsed().as_secs_f64();
        let status = match &outcome {
            Ok(Outcome::Ok) => "ok".to_owned(),
            Ok(Outcome::Skipped(why)) => {
                println!("skipped: {why}");
                "skipped".to_owned()
            }
            Err(err) => {
                println!("error: {err:#}");
                "FAILED".to_owned()
            }
        };
        println!("-- {}: {status} in {secs:.1}s", step.name);
        results.push((step.name, status, secs));
    }
    drop(ctx); // stops PostgreSQL if a step left it running

    println!("\n== summary ==");
    println!("{:<20} {:<8} {:>9}", "step", "result", "seconds");
    for (name, status, secs) in &results {
        println!("{name:<20} {status:<8} {secs:>9.1}");
    }
    println!("{:<20} {:<8} {:>9.1}", "total", "", started.elapsed().as_secs_f64());
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, status, _)| status == "FAILED")
        .map(|(name, _, _)| *name)
        .collect();
    if !failed.is_empty() {
        bail!("{} step(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

fn fmt(_: &mut Ctx) -> Result<Outcome> {
    sys::run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    Ok(Outcome::Ok)
}

fn lockfile_args() -> &'static [&'static str] {
    if repo_root().join("Cargo.lock").exists() { &["--locked"] } else { &[] }
}

fn clippy(_: &mut Ctx) -> Result<Outcome> {
    sys::run(
        cargo()
            .args(["clippy", "--workspace", "--all-targets"])
            .args(lockfile_args())
            .args(["--", "-D", "warnings"]),
    )?;
    Ok(Outcome::Ok)
}

/// House rule 1: dependencies point inward. The domain crate stays pure, the web crate never
/// touches a database driver.
const DOMAIN: &str = "zhurnal-domain";
const DOMAIN_BANNED: &[&str] = &["sqlx", "axum", "tokio", "reqwest"];
const WEB_BANNED_DIRECT: &[&str] = &["sqlx", "rusqlite", "tokio-postgres", "postgres", "diesel"];

fn dependency_bans(_: &mut Ctx) -> Result<Outcome> {
    let mut violations = Vec::new();

    // The domain's whole normal-dependency tree, on every target. (Equivalent to
    // `cargo tree -p zhurnal-domain -e normal -i <crate>` printing nothing, but it cannot pass by
    // accident when `-i` fails for another reason, e.g. two versions of a crate in the lockfile.)
    let domain = tree(&["-p", DOMAIN, "-e", "normal", "--prefix", "none"])?;
    let banned: BTreeSet<&(String, String)> =
        domain.iter().filter(|(name, _)| DOMAIN_BANNED.contains(&name.as_str())).collect();
    for (name, version) in banned {
        let spec = format!("{name}@{version}");
        let why = tree_text(&["-p", DOMAIN, "-e", "normal", "-i", &spec]);
        violations.push(format!("{DOMAIN} must not depend on {name}:\n{why}"));
    }
    if violations.is_empty() {
        let count = domain.iter().collect::<BTreeSet<_>>().len();
        println!("{DOMAIN}: none of {DOMAIN_BANNED:?} among its {count} packages");
    }

    let web = tree(&["-p", "zhurnal-web", "-e", "normal", "--depth", "1", "--prefix", "depth"])?;
    for (name, _) in web.iter().filter(|(name, _)| name.starts_with('1')) {
        let name = &name[1..];
        if WEB_BANNED_DIRECT.contains(&name) || name.starts_with("sqlx-") {
            violations.push(format!(
                "zhurnal-web must not depend directly on {name} (go through zhurnal-store)"
            ));
        }
    }

    if !violations.is_empty() {
        bail!("{}", violations.join("\n"));
    }
    println!("zhurnal-web: no direct dependency on a database driver");
    Ok(Outcome::Ok)
}

fn tree_command(args: &[&str]) -> Command {
    let mut cmd = cargo();
    cmd.args(["tree", "--target", "all", "--format", "{p}"]).args(lockfile_args()).args(args);
    cmd
}

/// `(name, version)` per line of `cargo tree` (name keeps a `--prefix depth` digit).
fn tree(args: &[&str]) -> Result<Vec<(String, String)>> {
    let mut cmd = tree_command(args);
    let line = display(&cmd);
    println!("$ {line}");
    let out = capture(&mut cmd)?;
    if !out.status.success() {
        bail!("`{line}` failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(parse_tree(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_tree(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.trim_start_matches('v');
            Some((name.to_owned(), version.to_owned()))
        })
        .collect()
}

fn tree_text(args: &[&str]) -> String {
    match capture(&mut tree_command(args)) {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(err) => format!("{err:#}"),
    }
}

/// Zhurnal has no passwords (sign-in is through ESIA), so no page may ask for one.
fn no_password_field(_: &mut Ctx) -> Result<Outcome> {
    let root = repo_root();
    let files = project_files(&root)?;
    let mut offenders = Vec::new();
    for file in &files {
        if file.starts_with("xtask/") {
            continue; // this check's own source
        }
        // Deleted-but-tracked files and directories (submodules) are not our concern.
        let Ok(bytes) = std::fs::read(root.join(file)) else {
            continue;
        };
        if let Some(line) = password_field_line(&bytes) {
            offenders.push(format!("{file}:{line}"));
        }
    }
    if !offenders.is_empty() {
        bail!(
            "password input fields are not allowed (sign-in goes through ESIA):\n  {}",
            offenders.join("\n  ")
        );
    }
    println!("checked {} files: no password input field", files.len());
    Ok(Outcome::Ok)
}

/// Files git knows about: tracked ones plus new, not ignored ones (so the check also works
/// before the first commit). Without git, every file outside `target/` and `.git/`.
fn project_files(root: &Path) -> Result<Vec<String>> {
    let mut cmd = Command::new("git");
    cmd.current_dir(root).args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"]);
    match capture(&mut cmd) {
        Ok(out) if out.status.success() => {
            let mut files: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split('\0')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
            files.sort();
            files.dedup();
            Ok(files)
        }
        _ => {
            println!("git ls-files is not available; walking the directory instead");
            let mut files = Vec::new();
            walk(root, root, &mut files)?;
            Ok(files)
        }
    }
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let name = entry.file_name();
            if name != "target" && name != ".git" {
                walk(root, &path, files)?;
            }
        } else if kind.is_file()
            && let Ok(rel) = path.strip_prefix(root)
        {
            files.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// The 1-based line of the first `type="password"` / `type='password'` / `type=password`
/// (any case, spaces around `=`, also inside Rust strings as `type=\"password\"`).
fn password_field_line(bytes: &[u8]) -> Option<usize> {
    let text = bytes.to_ascii_lowercase();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut from = 0;
    while let Some(found) = find(&text[from..], b"type") {
        let start = from + found;
        from = start + 4;
        let mut i = from;
        let skip_spaces = |mut i: usize| {
            while text.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            i
        };
        i = skip_spaces(i);
        if text.get(i) != Some(&b'=') {
            continue;
        }
        i = skip_spaces(i + 1);
        if text.get(i) == Some(&b'\\') {
            i += 1;
        }
        let quote = text.get(i).copied().filter(|&b| b == b'"' || b == b'\'');
        if quote.is_some() {
            i += 1;
        }
        if !text[i..].starts_with(b"password") {
            continue;
        }
        i += "password".len();
        let closed = match quote {
            Some(q) => {
                if text.get(i) == Some(&b'\\') {
                    i += 1;
                }
                text.get(i) == Some(&q)
            }
            None => !text.get(i).is_some_and(|&b| word(b)),
        };
        if closed {
            return Some(1 + text[..start].iter().filter(|&&b| b == b'\n').count());
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PDFTOPPM: &str = "/usr/bin/pdftoppm";

/// The GOST engine for OpenSSL 3, used as a signature oracle by a test.
fn gost_engine() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("engines-3").join("gost.so"))
        .find(|path| path.is_file())
}

fn postgres_url_from_env() -> Option<String> {
    std::env::var("ZHURNAL_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty())
}

/// One `apt-get update` and one `apt-get install -y` for everything missing.
fn system_packages(_: &mut Ctx) -> Result<Outcome> {
    let mut missing = Vec::new();
    if postgres_url_from_env().is_none() && !pg::can_start_cluster() {
        missing.push("postgresql");
    }
    if !Path::new(CHROMIUM).exists() {
        missing.push("chromium");
    }
    if !Path::new(CHROMEDRIVER).exists() {
        missing.push("chromium-driver");
    }
    if gost_engine().is_none() {
        missing.push("libengine-gost-openssl");
    }
    // bench-smoke: the load generator and the login client of `cargo xtask bench`.
    for tool in ["wrk", "curl"] {
        if sys::which(tool).is_none() {
            missing.push(tool);
        }
    }
    // Renders the act of destruction to PNG in the import tests.
    if !Path::new(PDFTOPPM).exists() {
        missing.push("poppler-utils");
    }
    let outcome = sys::apt_install(&missing)?;
    if matches!(outcome, Outcome::Ok) && missing.contains(&"postgresql") {
        pg::stop_system_service();
    }
    Ok(outcome)
}

fn postgres_start(ctx: &mut Ctx) -> Result<Outcome> {
    let url = if let Some(url) = postgres_url_from_env() {
        println!("using ZHURNAL_TEST_POSTGRES_URL from the environment");
        url
    } else {
        let bins = pg::ensure_bins()?;
        let cluster = PgCluster::start(&bins)?;
        let url = cluster.url();
        ctx.test_env
            .insert("ZHURNAL_TEST_POSTGRES_DATADIR".into(), cluster.data().display().to_string());
        ctx.postgres = Some(cluster);
        url
    };
    ctx.test_env.insert("ZHURNAL_TEST_POSTGRES_URL".into(), url);
    Ok(Outcome::Ok)
}

/// What the tests get: the server from `postgres-start`, browsers when installed.
fn test_env(ctx: &Ctx) -> BTreeMap<String, String> {
    let mut env = ctx.test_env.clone();
    // Without a server, PostgreSQL tests must fail rather than skip.
    env.insert("ZHURNAL_REQUIRE_POSTGRES".into(), "1".into());
    env.insert("RUST_BACKTRACE".into(), "1".into());
    for (var, path) in [("ZHURNAL_CHROMIUM", CHROMIUM), ("ZHURNAL_CHROMEDRIVER", CHROMEDRIVER)] {
        if Path::new(path).exists() {
            env.insert(var.into(), path.into());
        } else {
            println!("{path} is missing: browser tests get no {var}");
        }
    }
    if Path::new(PDFTOPPM).exists() {
        env.insert("ZHURNAL_PDFTOPPM".into(), PDFTOPPM.into());
    }
    // The system-packages step installed both, so a browser test that cannot start fails
    // instead of skipping quietly.
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        env.insert("ZHURNAL_REQUIRE_BROWSER".into(), "1".into());
    }
    env
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn run_tests(ctx: &mut Ctx) -> Result<Outcome> {
    let env = test_env(ctx);
    println!("test environment:");
    for (var, value) in &env {
        println!("  {var}={value}");
    }
    let mut cmd = cargo();
    if has_nextest() {
        // NEXTEST_NO_TESTS rather than --no-tests: older nextest versions ignore it.
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"])
            .env("NEXTEST_NO_TESTS", "warn");
    } else {
        println!("cargo-nextest is not installed: using cargo test");
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
    }
    sys::run(cmd.envs(&env))?;
    Ok(Outcome::Ok)
}

/// nextest does not run doctests; `cargo test` (the fallback) already did.
fn doctests(ctx: &mut Ctx) -> Result<Outcome> {
    if !has_nextest() {
        return Ok(Outcome::Skipped("`cargo test` in the tests step ran them".into()));
    }
    let env = test_env(ctx);
    sys::run(cargo().args(["test", "--workspace", "--doc", "--no-fail-fast"]).envs(&env))?;
    Ok(Outcome::Ok)
}

/// The benchmark end to end, small (a rot check, no timing asserted): a few thousand students
/// on SQLite, a few seconds per scenario, the dev build the tests already made. Fails when a
/// scenario has errors, non-2xx answers or no throughput.
fn bench_smoke(_: &mut Ctx) -> Result<Outcome> {
    let args: Vec<String> = [
        "--students",
        "3000",
        "--duration",
        "2",
        "--profile",
        "dev",
        "--connections",
        "8",
        "--sessions",
        "40",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    crate::bench::run(&args)?;
    Ok(Outcome::Ok)
}

fn postgres_stop(ctx: &mut Ctx) -> Result<Outcome> {
    match ctx.postgres.take() {
        Some(mut cluster) => cluster.stop()?,
        None => println!("no throwaway cluster to stop"),
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::{parse_tree, password_field_line};

    #[test]
    fn finds_password_fields_in_any_spelling() {
        for text in [
            r#"<input type="password">"#,
            "<input TYPE='Password' name=x>",
            "<input type=password>",
            r#"<input type = "password" />"#,
            r#"let html = "<input type=\"password\">";"#,
        ] {
            assert_eq!(password_field_line(text.as_bytes()), Some(1), "{text}");
        }
        assert_eq!(password_field_line(b"a\nb\n<input type=password>"), Some(3));
    }

    #[test]
    fn ignores_other_inputs() {
        for text in [
            r#"<input type="text" name="password">"#,
            "type=passwordless",
            r#"type="password-hint""#,
            "no inputs here",
        ] {
            assert_eq!(password_field_line(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn parses_cargo_tree_lines() {
        let parsed =
            parse_tree("zhurnal-domain v0.1.0 (/w/crates/zhurnal-domain)\nserde v1.0.1 (*)\n");
        assert_eq!(
            parsed,
            vec![
                ("zhurnal-domain".to_owned(), "0.1.0".to_owned()),
                ("serde".to_owned(), "1.0.1".to_owned()),
            ]
        );
    }
}
