//! Extra oracle: if `openssl` with the gost engine is installed (Debian:
//! `libengine-gost-openssl`), check that OpenSSL accepts what *we* produce. Skipped with a note
//! otherwise; the committed vectors in `openssl_vectors.rs` are the mandatory interop check.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use zhurnal_gost::{Certificate, ParamSet, SigningKey};

fn openssl(args: &[&str], dir: &Path) -> Output {
    Command::new("openssl").args(args).current_dir(dir).output().unwrap()
}

fn gost_engine_available() -> bool {
    match Command::new("openssl").args(["engine", "gost"]).output() {
        Ok(out) => out.status.success() && String::from_utf8_lossy(&out.stdout).contains("gost"),
        Err(_) => false,
    }
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openssl_accepts_our_keys_signatures_and_certificates() {
    if !gost_engine_available() {
        eprintln!(
            "note: skipping the OpenSSL oracle (no `openssl` with the gost engine; \
             apt-get install libengine-gost-openssl)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let msg = "client_idopenid2026.11.22 17:02:15 +0300state-uuidhttps://rp.example/cb";
    std::fs::write(d.join("msg"), msg).unwrap();

    for (name, ps) in [
        ("A", ParamSet::CryptoProA),
        ("B", ParamSet::CryptoProB),
        ("C", ParamSet::CryptoProC),
        ("TCA", ParamSet::Tc26A),
    ] {
        let key = SigningKey::generate(ps);
        let vk = key.verifying_key();
        std::fs::write(d.join("key.pem"), key.to_pkcs8_pem()).unwrap();
        std::fs::write(d.join("pub.pem"), vk.to_public_key_pem()).unwrap();
        std::fs::write(d.join("sig.bin"), key.sign(msg.as_bytes())).unwrap();

        // OpenSSL verifies our raw signature with our SubjectPublicKeyInfo.
        let out = openssl(
            &[
                "dgst",
                "-engine",
                "gost",
                "-md_gost12_256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig.bin",
                "msg",
            ],
            d,
        );
        assert_ok(&out, &format!("{name}: openssl dgst -verify"));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));

        // OpenSSL reads our PKCS#8 key: same public key, and its signature verifies with us.
        let out = openssl(&["pkey", "-engine", "gost", "-in", "key.pem", "-pubout"], d);
        assert_ok(&out, &format!("{name}: openssl pkey"));
        assert_eq!(String::from_utf8_lossy(&out.stdout), vk.to_public_key_pem());
        let out = openssl(
            &[
                "dgst",
                "-engine",
                "gost",
                "-md_gost12_256",
                "-sign",
                "key.pem",
                "-out",
                "osig.bin",
                "msg",
            ],
            d,
        );
        assert_ok(&out, &format!("{name}: openssl dgst -sign"));
        let osig = std::fs::read(d.join("osig.bin")).unwrap();
        vk.verify(msg.as_bytes(), &osig).unwrap();

        // Our certificate: OpenSSL parses it, checks its signature and hashes it as we do.
        let cert = Certificate::self_signed(&key, "Zhurnal oracle", 30).unwrap();
        std::fs::write(d.join("cert.pem"), cert.to_pem()).unwrap();
        let out = openssl(
            &["verify", "-engine", "gost", "-CAfile", "cert.pem", "-check_ss_sig", "cert.pem"],
            d,
        );
        assert_ok(&out, &format!("{name}: openssl verify"));
        let out = openssl(&["x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der"], d);
        assert_ok(&out, &format!("{name}: openssl x509"));
        assert_eq!(std::fs::read(d.join("cert.der")).unwrap(), cert.der());
        let out = openssl(&["dgst", "-engine", "gost", "-md_gost12_256", "cert.der"], d);
        assert_ok(&out, &format!("{name}: openssl dgst cert.der"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let hash = stdout.trim().rsplit("= ").next().unwrap();
        assert_eq!(hash, cert.streebog_hash_hex(), "{name}");
    }
}
