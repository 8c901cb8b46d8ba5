//! Small helpers around processes, users and Debian packages.

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};

/// The workspace root (the parent of `xtask/`), whatever the current directory is.
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// Set by `cargo xtask ci`: every cargo it runs builds from scratch once.
static ONE_SHOT_BUILDS: AtomicBool = AtomicBool::new(false);

/// From now on, cargo runs without incremental compilation. CI builds each crate once on a
/// fresh checkout, where incremental state is only extra work; every cargo call of the run
/// must agree, or the next one would rebuild the workspace.
pub fn one_shot_builds() {
    ONE_SHOT_BUILDS.store(true, Ordering::Relaxed);
}

/// The cargo that runs us (`cargo xtask` sets `CARGO`), so that toolchain overrides carry over.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root()).stdin(Stdio::null());
    if ONE_SHOT_BUILDS.load(Ordering::Relaxed) {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

/// `program arg 'arg with spaces'`, for logs.
pub fn display(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        line.push(' ');
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            line.push_str(&format!("'{arg}'"));
        } else {
            line.push_str(&arg);
        }
    }
    line
}

/// Runs a command with inherited output; fails on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    println!("$ {line}");
    flush();
    let status = cmd.status().with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs a command and captures its output; a non-zero exit is not an error here.
pub fn capture(cmd: &mut Command) -> Result<Output> {
    let line = display(cmd);
    cmd.output().with_context(|| format!("cannot start `{line}`"))
}

pub fn flush() {
    // Interleaving with child output is all we care about; a failed flush is not actionable.
    let _ = std::io::stdout().flush();
}

/// Whether we run as root (CI does). Read from `/proc` to avoid `libc` and `unsafe`.
pub fn is_root() -> bool {
    // "Uid: real effective saved fs": the effective one decides.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
    {
        return line.split_whitespace().nth(2) == Some("0");
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Whether a system user exists (through NSS, like `runuser` will resolve it).
pub fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

pub fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// `which(1)` without the dependency.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// What a step reports when it did not fail.
pub enum Outcome {
    Ok,
    Skipped(String),
}

/// Installs Debian packages with one `apt-get update` and one `apt-get install -y`.
/// Not being root (or not being on Debian) is a skip with a message, not a failure.
pub fn apt_install(packages: &[&str]) -> Result<Outcome> {
    if packages.is_empty() {
        println!("all system packages present; nothing to install");
        return Ok(Outcome::Ok);
    }
    let list = packages.join(" ");
    if !is_root() {
        return Ok(Outcome::Skipped(format!(
            "not root: not installing {list} (run `sudo apt-get install -y {list}` yourself)"
        )));
    }
    if which("apt-get").is_none() {
        return Ok(Outcome::Skipped(format!(
            "no apt-get on this machine: install {list} yourself"
        )));
    }
    println!("installing Debian packages: {list}");
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args)
            // Wait for another apt/dpkg instead of failing at once.
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        cmd
    };
    run(&mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q"]);
    install.args(packages);
    run(&mut install)?;
    Ok(Outcome::Ok)
}
