//! A throwaway PostgreSQL cluster for tests: `initdb` into a temp dir, start on a free loopback
//! port, remove everything afterwards.
//!
//! Cleanup has two lines of defence. [`PgCluster`] stops the server and removes the directory on
//! `Drop` (normal exit, failed tests, `?`). A *reaper* — this binary again, started in its own
//! process group — holds the read end of a pipe from us and does the same cleanup when the pipe
//! closes, which also happens when we are killed by Ctrl-C or SIGTERM and no destructor runs.
//! `pg_ctl` detaches the postmaster from our session, so without the reaper it would outlive us.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};

use crate::sys::{self, capture, display, flush, is_executable, is_root, user_exists, which};

/// Hidden subcommand for the reaper process.
pub const REAPER_COMMAND: &str = "__pg-reaper";

/// Temp dirs are `/tmp/zhurnal-pg-…`. Fixed `/tmp` rather than `$TMPDIR`: the `postgres` user
/// must be able to reach the directory, and the socket path must stay short.
const TMP_PARENT: &str = "/tmp";
const TMP_PREFIX: &str = "zhurnal-pg-";

/// The superuser `initdb -U` creates; also the maintenance database tests connect to.
const SUPERUSER: &str = "postgres";

/// `initdb` and `pg_ctl` (which finds `postgres` next to itself).
pub struct PgBins {
    pub initdb: PathBuf,
    pub pg_ctl: PathBuf,
}

impl PgBins {
    /// Debian's versioned directories first (newest version wins), then `PATH`.
    pub fn find() -> Option<Self> {
        let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        debian.sort();
        for (_, bin) in debian.into_iter().rev() {
            if ["initdb", "pg_ctl", "postgres"].iter().all(|name| is_executable(&bin.join(name))) {
                return Some(Self { initdb: bin.join("initdb"), pg_ctl: bin.join("pg_ctl") });
            }
        }
        which("postgres")?;
        Some(Self { initdb: which("initdb")?, pg_ctl: which("pg_ctl")? })
    }
}

/// Whether a fresh cluster can be started here: binaries, and as root a `postgres` user.
pub fn can_start_cluster() -> bool {
    PgBins::find().is_some() && (!is_root() || user_exists(SUPERUSER))
}

/// PostgreSQL refuses to run as root: as root, run its programs as the `postgres` system user
/// Debian's package creates; otherwise as ourselves.
#[derive(Clone, Copy)]
enum RunAs {
    Me,
    Postgres,
}

impl RunAs {
    fn detect() -> Result<Self> {
        if !is_root() {
            return Ok(Self::Me);
        }
        if !user_exists(SUPERUSER) {
            bail!(
                "running as root, but there is no `{SUPERUSER}` system user to run PostgreSQL \
                 as (apt-get install -y postgresql creates it)"
            );
        }
        Ok(Self::Postgres)
    }

    fn command(self, program: &Path, dir: &Path) -> Command {
        let mut cmd = match self {
            Self::Me => Command::new(program),
            Self::Postgres => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", SUPERUSER, "--"]).arg(program);
                cmd
            }
        };
        // The postgres user may not be able to enter our working directory.
        cmd.current_dir(dir).stdin(Stdio::null());
        cmd
    }

    fn arg(self) -> &'static str {
        match self {
            Self::Me => "me",
            Self::Postgres => "postgres",
        }
    }
}

/// A running throwaway cluster. Dropping it stops the server and deletes its directory.
pub struct PgCluster {
    dir: PathBuf,
    pg_ctl: PathBuf,
    /// Extra `-c name=value` options of the server (`cargo xtask bench --statements`).
    settings: String,
    run_as: RunAs,
    port: u16,
    reaper: Option<Child>,
    cleaned_up: bool,
}

impl PgCluster {
    pub fn start(bins: &PgBins) -> Result<Self> {
        Self::start_with(bins, "")
    }

    /// [`PgCluster::start`] with extra server options (`-c name=value …`).
    pub fn start_with(bins: &PgBins, settings: &str) -> Result<Self> {
        let run_as = RunAs::detect()?;
        let dir = make_temp_dir()?;
        // From here on, `Drop` cleans up whatever happens.
        let mut cluster = Self {
            dir,
            pg_ctl: bins.pg_ctl.clone(),
            settings: settings.to_string(),
            run_as,
            port: 0,
            reaper: None,
            cleaned_up: false,
        };
        if let RunAs::Postgres = run_as {
            let mut chown = Command::new("chown");
            chown.arg(format!("{SUPERUSER}:")).arg(&cluster.dir);
            sys::run(&mut chown)?;
        }
        cluster.reaper = Some(cluster.spawn_reaper()?);
        println!("PostgreSQL binaries: {}", bins.pg_ctl.display());
        cluster.initdb(&bins.initdb)?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// Runs `sql` with `psql` (next to `pg_ctl`) in the `postgres` database and returns what
    /// it printed: unaligned, tab-separated, no headers.
    pub fn psql(&self, sql: &str) -> Result<String> {
        let psql = self.pg_ctl.with_file_name("psql");
        let out = sys::capture(
            Command::new(&psql)
                .args(["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d"])
                .arg(self.url())
                .args(["-c", sql]),
        )?;
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster's data directory (tests grep its raw files for purged canaries: T-16).
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn spawn_reaper(&self) -> Result<Child> {
        let exe = std::env::current_exe().context("cannot find the xtask binary")?;
        Command::new(exe)
            .arg(REAPER_COMMAND)
            .arg(&self.dir)
            .arg(&self.pg_ctl)
            .arg(self.run_as.arg())
            .stdin(Stdio::piped())
            // Its own process group: Ctrl-C in the terminal must not reach it.
            .process_group(0)
            .spawn()
            .context("cannot start the cleanup process")
    }

    fn initdb(&self, initdb: &Path) -> Result<()> {
        let mut last_output = String::new();
        for locale in ["C.UTF-8", "C"] {
            let data = self.data();
            if data.exists() {
                std::fs::remove_dir_all(&data)
                    .with_context(|| format!("cannot remove {}", data.display()))?;
            }
            let mut cmd = self.run_as.command(initdb, &self.dir);
            cmd.arg("-D")
                .arg(&data)
                .args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"])
                .arg(format!("--locale={locale}"))
                // A throwaway cluster need not be fsynced.
                .args(["--data-checksums", "--no-sync"]);
            println!("$ {}", display(&cmd));
            let out = capture(&mut cmd)?;
            if out.status.success() {
                return Ok(());
            }
            last_output = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            println!("initdb with --locale={locale} failed:\n{last_output}");
        }
        bail!("initdb failed:\n{last_output}")
    }

    fn start_server(&mut self) -> Result<()> {
        const ATTEMPTS: u32 = 5;
        for attempt in 1..=ATTEMPTS {
            let port = free_port()?;
            // A fresh log per attempt, so the port check below sees only this attempt.
            let _ = std::fs::remove_file(self.log());
            // wal_recycle=off, as the README asks of production: the WAL segments a purge
            // retires leave pg_wal instead of waiting, with their content, to be reused.
            let options = format!(
                "-k {dir} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
                 -c wal_recycle=off {settings}",
                dir = self.dir.display(),
                settings = self.settings
            );
            let mut cmd = self.run_as.command(&self.pg_ctl, &self.dir);
            cmd.arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.log())
                .args(["-w", "-t", "60", "-o", &options, "start"]);
            println!("$ {}", display(&cmd));
            flush();
            let status = cmd.status().context("cannot run pg_ctl")?;
            if status.success() {
                self.port = port;
                return self.wait_ready();
            }
            let log = self.log_tail();
            let port_taken = log.contains("could not bind") || log.contains("already in use");
            if !port_taken || attempt == ATTEMPTS {
                bail!("pg_ctl start failed ({status}); server log:\n{log}");
            }
            println!("port {port} was taken meanwhile; trying another");
        }
        bail!("could not start PostgreSQL")
    }

    /// `pg_ctl -w` already waits; this additionally proves a TCP client gets through the
    /// startup handshake (not just that something listens).
    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match handshake(self.port) {
                Ok(()) => {
                    println!("PostgreSQL accepts connections at {}", self.url());
                    return Ok(());
                }
                Err(err) if Instant::now() >= deadline => {
                    bail!(
                        "PostgreSQL does not accept connections on 127.0.0.1:{}: {err:#}\n{}",
                        self.port,
                        self.log_tail()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The last lines of the server log, for error messages (the log dies with the temp dir).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn is_running(&self) -> bool {
        postmaster_pid(&self.dir).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }

    /// Stops the server and removes the directory; idempotent.
    pub fn stop(&mut self) -> Result<()> {
        if self.cleaned_up {
            return Ok(());
        }
        self.cleaned_up = true;
        let result = shutdown(&self.dir, &self.pg_ctl, self.run_as);
        if let Some(mut reaper) = self.reaper.take() {
            // Closing its stdin tells the reaper we are done; it finds nothing left to do.
            drop(reaper.stdin.take());
            let _ = reaper.wait();
        }
        if result.is_ok() {
            println!("PostgreSQL stopped; removed {}", self.dir.display());
        }
        result
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("xtask: cleaning up PostgreSQL failed: {err:#}");
        }
    }
}

fn make_temp_dir() -> Result<PathBuf> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    for n in 0..100u32 {
        let dir = Path::new(TMP_PARENT).join(format!(
            "{TMP_PREFIX}{}-{:x}",
            std::process::id(),
            nanos.wrapping_add(n)
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                return Ok(dir);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => {
                return Err(err).with_context(|| format!("cannot create {}", dir.display()));
            }
        }
    }
    bail!("cannot create a temp dir under {TMP_PARENT}")
}

fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Sends a protocol-3.0 StartupMessage and expects `AuthenticationOk` (the cluster uses trust).
fn handshake(port: u16) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for part in ["user", SUPERUSER, "database", "postgres", ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    let len = u32::try_from(body.len() + 4)?;
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(&body)?;
    let mut reply = [0u8; 9];
    stream.read_exact(&mut reply)?;
    if reply[0] != b'R' || reply[5..9] != [0, 0, 0, 0] {
        bail!("unexpected reply to the startup message: {reply:?}");
    }
    // Terminate, politely.
    stream.write_all(&[b'X', 0, 0, 0, 4])?;
    Ok(())
}

fn postmaster_pid(dir: &Path) -> Option<u32> {
    let pidfile = std::fs::read_to_string(dir.join("data").join("postmaster.pid")).ok()?;
    pidfile.lines().next()?.trim().parse().ok()
}

/// Stops the server in `dir` (if any) and removes `dir`. Shared by `Drop` and the reaper.
fn shutdown(dir: &Path, pg_ctl: &Path, run_as: RunAs) -> Result<()> {
    let is_ours = dir.starts_with(TMP_PARENT)
        && dir
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with(TMP_PREFIX));
    if !is_ours {
        bail!("refusing to clean up {}: not a throwaway cluster", dir.display());
    }
    if let Some(pid) = postmaster_pid(dir) {
        let mut cmd = run_as.command(pg_ctl, Path::new("/"));
        cmd.arg("-D").arg(dir.join("data")).args(["stop", "-m", "fast", "-w", "-t", "30"]);
        let stopped = capture(&mut cmd).is_ok_and(|out| out.status.success());
        if !stopped {
            kill_postmaster(pid, dir)?;
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    Ok(())
}

/// Fallback when `pg_ctl stop` fails: signal the postmaster ourselves — but only if that pid
/// really is a postgres serving `dir` (a stale pid file may name an unrelated process).
fn kill_postmaster(pid: u32, dir: &Path) -> Result<()> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    if !cmdline.contains(&*dir.to_string_lossy()) {
        return Ok(()); // not running any more (or not ours)
    }
    // SIGINT is PostgreSQL's "fast shutdown"; SIGKILL if it does not listen.
    for (signal, wait) in [("-INT", 30), ("-KILL", 5)] {
        let _ = Command::new("kill").arg(signal).arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(wait);
        while proc_dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if !proc_dir.exists() {
            return Ok(());
        }
    }
    bail!("postgres (pid {pid}) does not stop")
}

/// `xtask __pg-reaper <dir> <pg_ctl> <me|postgres>`: wait until our parent closes our stdin
/// (on purpose or by dying), then make sure the cluster is gone.
pub fn reaper(args: &[String]) -> Result<()> {
    let [dir, pg_ctl, run_as] = args else {
        bail!("usage: xtask {REAPER_COMMAND} <dir> <pg_ctl> <me|postgres>");
    };
    let run_as = match run_as.as_str() {
        "postgres" => RunAs::Postgres,
        _ => RunAs::Me,
    };
    // Returns at EOF, i.e. when the parent is done or dead.
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    let dir = Path::new(dir);
    if dir.exists() {
        eprintln!("xtask: stopping the throwaway PostgreSQL in {} (xtask exited)", dir.display());
        shutdown(dir, Path::new(pg_ctl), run_as)?;
        eprintln!("xtask: PostgreSQL stopped, {} removed", dir.display());
    }
    Ok(())
}

/// Finds PostgreSQL binaries, installing Debian's `postgresql` if there are none (as root).
pub fn ensure_bins() -> Result<PgBins> {
    if !can_start_cluster() {
        match sys::apt_install(&["postgresql"])? {
            sys::Outcome::Ok => stop_system_service(),
            sys::Outcome::Skipped(why) => bail!("no PostgreSQL binaries: {why}"),
        }
    }
    PgBins::find().context("no initdb/pg_ctl/postgres found, even after installing postgresql")
}

/// Installing Debian's `postgresql` may start its `main` cluster (unless a `policy-rc.d` forbids
/// it, as in Debian's Docker images). We only want the binaries; call this right after we
/// installed the package ourselves, so it never stops a server someone else set up.
pub fn stop_system_service() {
    if which("service").is_none() {
        return;
    }
    let mut cmd = Command::new("service");
    cmd.args(["postgresql", "stop"]).stdin(Stdio::null());
    if let Err(err) = sys::run(&mut cmd) {
        println!("(ignored) {err:#}");
    }
}

/// `cargo xtask pg-shell`.
pub fn shell() -> Result<()> {
    let bins = ensure_bins()?;
    let cluster = PgCluster::start(&bins)?;
    println!();
    println!("export ZHURNAL_TEST_POSTGRES_URL={}", cluster.url());
    println!("export ZHURNAL_TEST_POSTGRES_DATADIR={}", cluster.data().display());
    println!("export ZHURNAL_REQUIRE_POSTGRES=1");
    println!();
    println!(
        "PostgreSQL is running (data and log in {}). Press Ctrl-C to stop it.",
        cluster.dir().display()
    );
    flush();
    loop {
        std::thread::sleep(Duration::from_secs(2));
        if !cluster.is_running() {
            bail!("PostgreSQL exited unexpectedly; server log:\n{}", cluster.log_tail());
        }
    }
}
