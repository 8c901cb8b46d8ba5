//! The `zhurnal` command itself: help, bad input refused with a clear message and nothing
//! changed, the first regional admin bound from the command line.

use std::process::{Command, Output};

use crate::support::Env;

fn zhurnal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zhurnal"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("ZHURNAL_LOG", "error")
        .output()
        .expect("run zhurnal")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_has_a_line_for_every_command() {
    let out = zhurnal(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "demo", "migrate", "esia-sim", "admin", "keys", "config", "audit"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(cmd)), "{cmd} missing:\n{help}");
    }
}

#[test]
fn migrate_creates_the_database_and_is_repeatable() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("utf-8 path");
    for _ in 0..2 {
        let out = zhurnal(&["migrate", "--data-dir", d]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(dir.path().join("zhurnal.db").exists());
    let verify = zhurnal(&["audit", "verify", "--data-dir", d]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

#[test]
fn bad_input_is_refused_with_a_message_that_says_what_to_fix() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("utf-8 path");
    assert!(zhurnal(&["migrate", "--data-dir", d]).status.success());
    let db = std::fs::read(dir.path().join("zhurnal.db")).expect("db");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "admin",
                "grant",
                "--snils",
                "112-233-445 00",
                "--role",
                "regional-admin",
                "--data-dir",
                d,
            ],
            "контрольное число СНИЛС не сходится",
        ),
        (
            &["admin", "grant", "--snils", "112-233-445 95", "--role", "director", "--data-dir", d],
            "неизвестная роль «director»",
        ),
        (
            &[
                "admin",
                "grant",
                "--snils",
                "112-233-445 95",
                "--role",
                "regional-admin",
                "--data-dir",
                d,
            ],
            "не зарегистрирован",
        ),
        (&["serve", "--data-dir", d], "[esia]"),
        (&["serve", "--listen", "nowhere", "--data-dir", d], "nowhere"),
    ];
    for (args, expected) in cases {
        let out = zhurnal(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: expected «{expected}» in:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:8080\"\nlisen = 1\n").expect("write");
    let out = zhurnal(&["--config", bad.to_str().expect("path"), "config", "check"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("lisen"), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("zhurnal.db")).expect("db"), db, "nothing written");
}

#[tokio::test]
async fn the_first_regional_admin_is_bound_by_snils_from_the_command_line() {
    let env = Env::start().await;
    let teacher = env.data.personas.iter().find(|p| p.id == "teacher-1").expect("persona");
    let snils = teacher.snils.as_ref().expect("snils").formatted();
    let d = env.data_dir.to_str().expect("path");
    let args = ["admin", "grant", "--snils", &snils, "--role", "regional-admin", "--data-dir", d];
    for _ in 0..2 {
        // Blocking is fine: the command talks to the database, not to this test's server.
        let out = zhurnal(&args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let person =
        env.app.store.find_person_by_uid(&env.persona_uid("teacher-1")).await.unwrap().unwrap();
    let grants = env.app.store.list_role_grants(person.id).await.unwrap();
    let regional = grants.iter().filter(|g| g.role == zhurnal_domain::Role::RegionalAdmin).count();
    assert_eq!(regional, 1, "granted once, the second run changes nothing");
    let audit = env.audit("role.grant").await;
    assert!(!audit.is_empty());
    assert!(
        audit.iter().all(|r| !r.event.details.to_string().contains(&snils)),
        "no СНИЛС in the audit"
    );
}

#[tokio::test]
async fn seeding_the_demo_again_changes_nothing() {
    let env = Env::start().await;
    let cfg = zhurnal::config::Config { data_dir: env.data_dir.clone(), ..Default::default() };
    let keys = cfg.load_keys(false).expect("keys");
    let before = env.app.store.list_audit(0, 100_000).await.expect("audit").len();
    let (_, stats) = zhurnal::seed::seed_demo(&env.app, &keys).await.expect("seed");
    assert!(stats.changed_nothing(), "{stats:?}");
    assert!(stats.unchanged > 10_000, "{stats:?}");
    let after = env.app.store.list_audit(0, 100_000).await.expect("audit").len();
    assert_eq!(after, before + 1, "one `demo.seed` record, nothing else");
}

#[tokio::test]
async fn keys_rotate_re_encrypts_every_snils_and_keeps_the_audit_key() {
    let env = Env::start().await;
    let cfg = zhurnal::config::Config { data_dir: env.data_dir.clone(), ..Default::default() };
    let old = cfg.load_keys(false).expect("keys");
    let d = env.data_dir.to_str().expect("path");
    let out = zhurnal(&["keys", "rotate", "--data-dir", d]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("перешифровано СНИЛС"));
    let new = cfg.load_keys(false).expect("new keys");
    assert_eq!(new.audit_hmac, old.audit_hmac, "the chain keeps verifying");
    assert_ne!(new.snils_aead, old.snils_aead);
    assert_ne!(new.snils_hmac, old.snils_hmac);
    let retired = std::fs::read_dir(&env.data_dir)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("keys.toml.retired-"))
        .count();
    assert_eq!(retired, 1, "the old keys are kept for older backups");

    // Every stored СНИЛС opens with the new key and not with the old one; matching follows.
    let (old_vault, new_vault) = (old.vault().expect("old"), new.vault().expect("new"));
    let stored = env.app.store.list_snils_ciphers().await.expect("list");
    assert!(stored.len() > 100, "the demo region: {}", stored.len());
    for s in &stored {
        let snils = new_vault.decrypt(&s.cipher, &s.uid).expect("new key opens it");
        assert!(old_vault.decrypt(&s.cipher, &s.uid).is_err());
        assert_eq!(s.hmac, new_vault.match_key(&snils));
    }
    let teacher = env.data.personas.iter().find(|p| p.id == "teacher-1").expect("persona");
    let snils = teacher.snils.as_ref().expect("snils");
    let found = env.app.store.find_person_by_snils_hmac(&new_vault.match_key(snils)).await;
    assert_eq!(found.expect("q").expect("found").uid, env.persona_uid("teacher-1"));
    assert_eq!(env.audit("keys.rotate").await.len(), 1);

    // A second rotation with the retired keys in place is refused and changes nothing.
    std::fs::write(env.data_dir.join("keys.toml"), zhurnal::config::toml_keys(&old).expect("toml"))
        .expect("write");
    let out = zhurnal(&["keys", "rotate", "--data-dir", d]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("не расшифровывается текущим ключом"), "{}", stderr(&out));
    assert!(!env.data_dir.join("keys.toml.new").exists(), "the staged file is removed");
    assert_eq!(env.app.store.list_snils_ciphers().await.expect("list"), stored);
}
