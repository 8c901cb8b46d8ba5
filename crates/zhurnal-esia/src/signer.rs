//! Signing `client_secret`: in-process with a PKCS#8 key file, or through an external command
//! (CryptoPro wrapper, HSM client, signing service).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zhurnal_gost::{Certificate, SIGNATURE_LEN, SigningKey};

use crate::{EsiaError, SignerConfig};

/// How long an external signer may take before we kill it. A login waits on it, and a hung
/// signer must not pile up blocked threads.
pub const COMMAND_SIGNER_TIMEOUT: Duration = Duration::from_secs(30);

/// Produces the raw GOST R 34.10-2012-256 signature ESIA expects in `client_secret`
/// (64 bytes, `s ‖ r` big-endian, OpenSSL hash convention — see `zhurnal-gost`).
///
/// `sign` may block (an external signer runs a process); async callers should run it on a
/// blocking thread, as [`crate::IdentityProvider::exchange_code`] on [`crate::EsiaClient`] does.
pub trait Signer: Send + Sync {
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, EsiaError>;
    /// The `client_certificate_hash` value to send.
    fn certificate_hash(&self) -> String;
}

fn read_certificate(path: &Path) -> Result<Certificate, EsiaError> {
    let pem = std::fs::read_to_string(path).map_err(|e| {
        EsiaError::Config(format!("cannot read certificate {}: {e}", path.display()))
    })?;
    Certificate::from_pem(&pem)
        .map_err(|e| EsiaError::Config(format!("cannot parse certificate {}: {e}", path.display())))
}

fn hash_for(cert: &Certificate, hash_override: Option<&str>) -> Result<String, EsiaError> {
    match hash_override {
        None => Ok(cert.streebog_hash_hex()),
        Some(h) => {
            let h = h.trim();
            if h.is_empty() || !h.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(EsiaError::Config(
                    "certificate_hash must be a non-empty hex string".into(),
                ));
            }
            Ok(h.to_owned())
        }
    }
}

/// Signs in-process with a key loaded from a PKCS#8 PEM file.
pub struct GostFileSigner {
    key: SigningKey,
    certificate_hash: String,
}

impl std::fmt::Debug for GostFileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GostFileSigner")
            .field("certificate_hash", &self.certificate_hash)
            .finish_non_exhaustive()
    }
}

impl GostFileSigner {
    /// Loads the key and the certificate; refuses a key that is not the certificate's.
    pub fn from_files(
        key_path: &Path,
        certificate_path: &Path,
        hash_override: Option<&str>,
    ) -> Result<Self, EsiaError> {
        let pem = std::fs::read_to_string(key_path).map_err(|e| {
            EsiaError::Config(format!("cannot read key {}: {e}", key_path.display()))
        })?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
            EsiaError::Config(format!("cannot parse key {}: {e}", key_path.display()))
        })?;
        let cert = read_certificate(certificate_path)?;
        Self::new(key, &cert, hash_override)
    }

    /// From an in-memory key and certificate (tests, the simulator's own tooling).
    pub fn new(
        key: SigningKey,
        certificate: &Certificate,
        hash_override: Option<&str>,
    ) -> Result<Self, EsiaError> {
        // ESIA would answer ESIA-007053 for every login; say what is wrong at start-up instead.
        if &key.verifying_key() != certificate.public_key() {
            return Err(EsiaError::Config(
                "the signing key does not belong to the configured certificate".into(),
            ));
        }
        Ok(GostFileSigner { key, certificate_hash: hash_for(certificate, hash_override)? })
    }
}

impl Signer for GostFileSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, EsiaError> {
        Ok(self.key.sign(message).to_vec())
    }

    fn certificate_hash(&self) -> String {
        self.certificate_hash.clone()
    }
}

/// Runs an external program per signature: message on stdin, raw 64-byte signature on stdout.
/// See [`SignerConfig::Command`] for the contract.
#[derive(Debug)]
pub struct CommandSigner {
    argv: Vec<String>,
    certificate: Certificate,
    certificate_hash: String,
    timeout: Duration,
}

impl CommandSigner {
    /// `argv[0]` is the program; it is run without a shell.
    pub fn new(
        argv: Vec<String>,
        certificate_path: &Path,
        hash_override: Option<&str>,
    ) -> Result<Self, EsiaError> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err(EsiaError::Config("signer argv is empty".into()));
        }
        let certificate = read_certificate(certificate_path)?;
        let certificate_hash = hash_for(&certificate, hash_override)?;
        Ok(CommandSigner { argv, certificate, certificate_hash, timeout: COMMAND_SIGNER_TIMEOUT })
    }

    /// Overrides [`COMMAND_SIGNER_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn run(&self, message: &[u8]) -> Result<Vec<u8>, EsiaError> {
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| EsiaError::Signer(format!("cannot start {}: {e}", self.argv[0])))?;

        // Feed stdin and drain stdout/stderr on their own threads so a signer that writes
        // before reading everything cannot deadlock against us.
        let stdin = child.stdin.take();
        let msg = message.to_vec();
        let writer = std::thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                // A signer that exits without reading is judged by its exit status below.
                let _ = stdin.write_all(&msg);
            }
        });
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut s) = stdout {
                // Cap what we keep: a signature is 64 bytes.
                let _ = s.by_ref().take(64 * 1024).read_to_end(&mut out);
            }
            out
        });
        let stderr = child.stderr.take();
        let err_reader = std::thread::spawn(move || {
            let mut err = Vec::new();
            if let Some(mut s) = stderr {
                let _ = s.by_ref().take(8 * 1024).read_to_end(&mut err);
            }
            err
        });

        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= self.timeout => {
                    // The child is ours; kill it so the reader threads see EOF.
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(EsiaError::Signer(format!(
                        "{} did not finish within {} s",
                        self.argv[0],
                        self.timeout.as_secs()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(EsiaError::Signer(format!("waiting for signer: {e}"))),
            }
        };
        let _ = writer.join();
        let out = reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        if !status.success() {
            let stderr = String::from_utf8_lossy(&err);
            tracing::warn!(
                program = %self.argv[0],
                %status,
                stderr = %stderr.trim(),
                "external ESIA signer failed"
            );
            return Err(EsiaError::Signer(format!("{} exited with {status}", self.argv[0])));
        }
        Ok(out)
    }
}

impl Signer for CommandSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, EsiaError> {
        let sig = self.run(message)?;
        if sig.len() != SIGNATURE_LEN {
            return Err(EsiaError::Signer(format!(
                "signer wrote {} bytes; a raw GOST R 34.10-2012-256 signature has {SIGNATURE_LEN}",
                sig.len()
            )));
        }
        // Catches the CryptoPro byte-order trap and key/certificate mix-ups before ESIA does.
        self.certificate.public_key().verify(message, &sig).map_err(|_| {
            EsiaError::Signer(
                "the external signature does not verify with the configured certificate \
                     (wrong key, or CryptoPro output not byte-reversed to s||r big-endian?)"
                    .into(),
            )
        })?;
        Ok(sig)
    }

    fn certificate_hash(&self) -> String {
        self.certificate_hash.clone()
    }
}

/// Builds the signer described by `config`. `hash_override` is
/// [`crate::EsiaConfig::certificate_hash`].
pub fn signer_from_config(
    config: &SignerConfig,
    hash_override: Option<&str>,
) -> Result<Arc<dyn Signer>, EsiaError> {
    Ok(match config {
        SignerConfig::KeyFile { key_path, certificate_path } => {
            Arc::new(GostFileSigner::from_files(key_path, certificate_path, hash_override)?)
        }
        SignerConfig::Command { argv, certificate_path } => {
            Arc::new(CommandSigner::new(argv.clone(), certificate_path, hash_override)?)
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use zhurnal_gost::ParamSet;

    struct Files {
        dir: tempfile::TempDir,
        key: SigningKey,
        cert: Certificate,
    }

    fn files() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(ParamSet::CryptoProA);
        let cert = Certificate::self_signed(&key, "Журнал тест", 30).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.to_pkcs8_pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.to_pem()).unwrap();
        Files { dir, key, cert }
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn file_signer_signs_and_hashes_the_der() {
        let f = files();
        let cfg = SignerConfig::KeyFile {
            key_path: f.dir.path().join("key.pem"),
            certificate_path: f.dir.path().join("cert.pem"),
        };
        let s = signer_from_config(&cfg, None).unwrap();
        assert_eq!(s.certificate_hash(), f.cert.streebog_hash_hex());
        let sig = s.sign(b"msg").unwrap();
        assert_eq!(sig.len(), 64);
        f.cert.public_key().verify(b"msg", &sig).unwrap();
        assert!(f.cert.public_key().verify(b"msh", &sig).is_err());

        let s = signer_from_config(&cfg, Some(" ABCDEF01 ")).unwrap();
        assert_eq!(s.certificate_hash(), "ABCDEF01");
        assert!(signer_from_config(&cfg, Some("not hex!")).is_err());
    }

    #[test]
    fn file_signer_refuses_a_key_of_another_certificate() {
        let f = files();
        let other = SigningKey::generate(ParamSet::CryptoProA);
        assert!(matches!(GostFileSigner::new(other, &f.cert, None), Err(EsiaError::Config(_))));
        assert!(GostFileSigner::new(f.key.clone(), &f.cert, None).is_ok());
        let missing = SignerConfig::KeyFile {
            key_path: f.dir.path().join("nope.pem"),
            certificate_path: f.dir.path().join("cert.pem"),
        };
        assert!(matches!(signer_from_config(&missing, None), Err(EsiaError::Config(_))));
    }

    #[test]
    fn command_signer_reads_raw_signature_from_stdout() {
        let f = files();
        // A "signer" that ignores stdin and prints a signature precomputed for b"hello".
        let sig_path = f.dir.path().join("sig.bin");
        std::fs::write(&sig_path, f.key.sign(b"hello")).unwrap();
        let cert_path = f.dir.path().join("cert.pem");
        let script = format!("cat >/dev/null; cat '{}'", sig_path.display());
        let s = CommandSigner::new(sh(&script), &cert_path, None).unwrap();
        assert_eq!(s.certificate_hash(), f.cert.streebog_hash_hex());
        assert_eq!(s.sign(b"hello").unwrap().len(), 64);
        // Same bytes for another message: must not verify, so must be refused.
        assert!(matches!(s.sign(b"other"), Err(EsiaError::Signer(_))));
    }

    #[test]
    fn command_signer_failures_are_signer_errors() {
        let f = files();
        let cert_path = f.dir.path().join("cert.pem");
        for script in ["exit 3", "printf abc", "cat"] {
            let s = CommandSigner::new(sh(script), &cert_path, None).unwrap();
            assert!(matches!(s.sign(b"0123456789"), Err(EsiaError::Signer(_))), "{script}");
        }
        let s = CommandSigner::new(vec!["/nonexistent/signer".into()], &cert_path, None).unwrap();
        assert!(matches!(s.sign(b"x"), Err(EsiaError::Signer(_))));
        let slow = CommandSigner::new(sh("sleep 5"), &cert_path, None)
            .unwrap()
            .with_timeout(Duration::from_millis(200));
        let t = Instant::now();
        assert!(matches!(slow.sign(b"x"), Err(EsiaError::Signer(_))));
        assert!(t.elapsed() < Duration::from_secs(4));
        assert!(CommandSigner::new(vec![], &cert_path, None).is_err());
    }

    fn gost_engine_available() -> bool {
        Command::new("openssl")
            .args(["engine", "gost"])
            .output()
            .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("gost"))
            .unwrap_or(false)
    }

    /// The realistic external signer: OpenSSL's gost engine, exactly as an operator would
    /// configure it. Skipped (with a note) where the engine is not installed.
    #[test]
    fn command_signer_with_openssl_gost_engine() {
        if !gost_engine_available() {
            eprintln!(
                "note: skipping (no openssl gost engine; apt-get install libengine-gost-openssl)"
            );
            return;
        }
        let f = files();
        let key = f.dir.path().join("key.pem").display().to_string();
        let argv = ["openssl", "dgst", "-engine", "gost", "-md_gost12_256", "-sign", key.as_str()]
            .map(String::from)
            .to_vec();
        let s = CommandSigner::new(argv, &f.dir.path().join("cert.pem"), None).unwrap();
        let msg = "ZHURNALopenid fullname2026.11.22 16:05:31 +0000\
                   0b5c8d3e-6f1a-4b2c-9d7e-8f9a0b1c2d3ehttp://127.0.0.1:8080/auth/callback";
        let sig = s.sign(msg.as_bytes()).unwrap();
        f.cert.public_key().verify(msg.as_bytes(), &sig).unwrap();
    }
}
