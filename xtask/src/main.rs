//! `cargo xtask` — the project's automation, written in Rust.
//!
//! Why this exists: CI and developers need the same sequence of checks (formatting, clippy,
//! dependency bans, a throwaway PostgreSQL, Chromium for browser tests, the test suite). Shell
//! scripts for that rot quietly: they depend on whatever `bash`, `sed` and `grep` the machine has,
//! nobody lints them and every CI vendor wants its own dialect. Here the whole CI contract lives in
//! one place, is type-checked and clippy-clean like the rest of the workspace, and runs the same way
//! on a laptop and on a fresh Debian machine that has nothing but the Rust toolchain:
//!
//! ```text
//! cargo xtask ci          # everything CI runs; `.ci/run` calls exactly this
//! cargo xtask ci clippy   # just some steps
//! cargo xtask pg-shell    # a throwaway PostgreSQL for running tests by hand
//! cargo xtask help
//! ```
//!
//! The alias lives in `.cargo/config.toml`. The crate depends on `std` and `anyhow` only, so that
//! building it costs seconds, not minutes.

mod bench;
mod ci;
mod pg;
mod sys;

use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask <command>

commands:
  ci [STEP...]  run every CI gate and print a summary; exit non-zero if any step failed.
                Steps: fmt, clippy, dependency-bans, no-password-field, system-packages,
                postgres-start, tests, doctests, bench-smoke, postgres-stop. With STEPs, run only those
                (`tests` brings the PostgreSQL steps along).
  bench [...]   the region-scale benchmark: generate a region, start the real server and the
                ESIA simulator on loopback, drive it with wrk (`cargo xtask bench --help`)
  pg-shell      start a throwaway PostgreSQL, print `export ZHURNAL_TEST_POSTGRES_URL=...` and
                keep it running until Ctrl-C; the cluster and its temp dir go away on exit
  help          show this message";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("pg-shell") if args.len() == 1 => pg::shell(),
        Some("bench") if args.get(1).is_some_and(|a| a == "--help" || a == "-h") => {
            println!("{}", bench::HELP);
            Ok(())
        }
        Some("bench") => bench::run(&args[1..]),
        Some(pg::REAPER_COMMAND) => pg::reaper(&args[1..]),
        None | Some("help" | "-h" | "--help") => {
            println!("{HELP}");
            Ok(())
        }
        Some(_) => {
            eprintln!("xtask: unknown arguments: {}\n\n{HELP}", args.join(" "));
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
