//! Relying-party configuration. Every host, identifier, scope name and algorithm string that
//! ESIA has not confirmed in writing lives here, not in code.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

/// The JWT `alg` ESIA uses for GOST R 34.10-2012-256 tokens — an unconfirmed string.
pub const DEFAULT_JWT_ALG: &str = "GOST3410_2012_256";
/// Production ESIA's `iss` (http even on the https host).
pub const PRODUCTION_ISSUER: &str = "http://esia.gosuslugi.ru/";

/// How the relying party talks to ESIA.
///
/// Example (TOML, as the `zhurnal` binary reads it):
///
/// ```toml
/// base_url = "https://esia-portal1.test.gosuslugi.ru/"
/// client_id = "ABCD01234"
/// redirect_uri = "https://journal.example.ru/auth/callback"
/// logout_redirect_uri = "https://journal.example.ru/"
/// esia_certificate_path = "/etc/zhurnal/esia-test.pem"
/// issuer = "http://esia-portal1.test.gosuslugi.ru/"
///
/// [signer]
/// kind = "key_file"
/// key_path = "/etc/zhurnal/client-key.pem"
/// certificate_path = "/etc/zhurnal/client-cert.pem"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsiaConfig {
    /// ESIA's base URL, e.g. `https://esia.gosuslugi.ru/` or `http://127.0.0.1:PORT/` for the
    /// simulator. Endpoint paths are joined to it.
    pub base_url: Url,
    /// The information system's mnemonic registered in ESIA.
    pub client_id: String,
    /// Our callback, exactly as registered in ESIA (it is part of the signed string).
    pub redirect_uri: Url,
    /// Where ESIA's logout sends the browser back to.
    pub logout_redirect_uri: Url,
    /// Scopes of every login.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Extra scopes requested when a parent logs in, so `/kids` answers. The names are
    /// unconfirmed (`esia-protocol.md` §2.3).
    #[serde(default = "default_kid_scopes")]
    pub kid_scopes: Vec<String>,
    /// How `client_secret` is signed.
    pub signer: SignerConfig,
    /// `client_certificate_hash` verbatim (as the tech portal or `cpverify` shows it). When
    /// absent it is computed: Streebog-256 of the certificate's DER, lowercase hex.
    #[serde(default)]
    pub certificate_hash: Option<String>,
    /// ESIA's token-signing certificate (PEM), from the tech portal (test and production
    /// differ) or from the simulator's `/sim/esia-cert.pem`.
    pub esia_certificate_path: PathBuf,
    /// Expected `iss` of ESIA's tokens. One issuer per deployment: this is our mix-up defence.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Allowed clock skew for `exp`/`nbf`/`iat`, seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: i64,
    /// Timeout of every HTTP call to ESIA, seconds.
    #[serde(default = "default_http_timeout")]
    pub http_timeout_seconds: u64,
    /// JWT header `alg` values accepted for GOST-signed tokens. The exact string ESIA writes is
    /// unconfirmed; `none` is always refused and RS256 is not supported.
    #[serde(default = "default_jwt_algorithms")]
    pub jwt_algorithms: Vec<String>,
}

/// How `client_secret` gets signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignerConfig {
    /// A GOST R 34.10-2012-256 private key in a PKCS#8 PEM file (as `openssl genpkey -engine
    /// gost` writes it), signed in-process by `zhurnal-gost`.
    KeyFile {
        /// PKCS#8 PEM private key.
        key_path: PathBuf,
        /// The certificate registered for the system in ESIA (PEM).
        certificate_path: PathBuf,
    },
    /// An external program signs: it gets the message bytes on **stdin** and must write the
    /// **raw 64-byte signature** to **stdout** in the layout ESIA expects — `s ‖ r`, 32 bytes
    /// each, big-endian, over Streebog-256 with the OpenSSL hash convention (what `openssl dgst
    /// -engine gost -md_gost12_256 -sign key.pem` writes). CryptoPro's raw `SignHash` output is
    /// the byte-reversed form: a wrapper around `cryptcp`/`csptest` must reverse it. Exit status
    /// 0 means success; stderr is logged on failure. Each signature is checked against the
    /// certificate before use, so a wrong layout fails loudly here rather than at ESIA.
    Command {
        /// Program and arguments, run without a shell.
        argv: Vec<String>,
        /// The certificate registered for the system in ESIA (PEM).
        certificate_path: PathBuf,
    },
}

impl SignerConfig {
    /// The certificate file of either variant.
    pub fn certificate_path(&self) -> &std::path::Path {
        match self {
            SignerConfig::KeyFile { certificate_path, .. }
            | SignerConfig::Command { certificate_path, .. } => certificate_path,
        }
    }
}

/// `openid fullname birthdate gender snils email mobile`.
pub fn default_scopes() -> Vec<String> {
    ["openid", "fullname", "birthdate", "gender", "snils", "email", "mobile"]
        .map(String::from)
        .to_vec()
}

/// `kid_fullname kid_birthdate kid_snils kid_gender` (unconfirmed names).
pub fn default_kid_scopes() -> Vec<String> {
    ["kid_fullname", "kid_birthdate", "kid_snils", "kid_gender"].map(String::from).to_vec()
}

fn default_issuer() -> String {
    PRODUCTION_ISSUER.to_owned()
}

fn default_leeway() -> i64 {
    60
}

fn default_http_timeout() -> u64 {
    10
}

/// `["GOST3410_2012_256"]`.
pub fn default_jwt_algorithms() -> Vec<String> {
    vec![DEFAULT_JWT_ALG.to_owned()]
}

fn parse_static_url(s: &str) -> Url {
    match Url::parse(s) {
        Ok(u) => u,
        // The literals below are valid; a typo there is a programming error caught by tests.
        Err(e) => panic!("invalid built-in URL {s}: {e}"),
    }
}

impl Default for EsiaConfig {
    /// Production ESIA with placeholder identity: `client_id` is empty, so
    /// [`crate::EsiaClient::new`] refuses this until the operator fills it in.
    fn default() -> Self {
        EsiaConfig {
            base_url: parse_static_url("https://esia.gosuslugi.ru/"),
            client_id: String::new(),
            redirect_uri: parse_static_url("http://127.0.0.1:8080/auth/callback"),
            logout_redirect_uri: parse_static_url("http://127.0.0.1:8080/"),
            scopes: default_scopes(),
            kid_scopes: default_kid_scopes(),
            signer: SignerConfig::KeyFile {
                key_path: PathBuf::from("esia/client-key.pem"),
                certificate_path: PathBuf::from("esia/client-cert.pem"),
            },
            certificate_hash: None,
            esia_certificate_path: PathBuf::from("esia/esia-cert.pem"),
            issuer: default_issuer(),
            leeway_seconds: default_leeway(),
            http_timeout_seconds: default_http_timeout(),
            jwt_algorithms: default_jwt_algorithms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{
        "base_url": "http://127.0.0.1:9000/",
        "client_id": "ZHURNAL",
        "redirect_uri": "http://127.0.0.1:8080/auth/callback",
        "logout_redirect_uri": "http://127.0.0.1:8080/",
        "signer": {"kind": "key_file", "key_path": "k.pem", "certificate_path": "c.pem"},
        "esia_certificate_path": "esia.pem"
    }"#;

    #[test]
    fn defaults_fill_the_optional_fields() {
        let c: EsiaConfig = serde_json::from_str(MINIMAL).expect("parses");
        assert_eq!(c.scopes, default_scopes());
        assert_eq!(c.kid_scopes, default_kid_scopes());
        assert_eq!(c.issuer, "http://esia.gosuslugi.ru/");
        assert_eq!(c.leeway_seconds, 60);
        assert_eq!(c.http_timeout_seconds, 10);
        assert_eq!(c.jwt_algorithms, vec!["GOST3410_2012_256".to_owned()]);
        assert_eq!(c.certificate_hash, None);
        assert_eq!(c.signer.certificate_path(), std::path::Path::new("c.pem"));
        let d = EsiaConfig::default();
        assert!(d.client_id.is_empty());
        assert_eq!(d.base_url.as_str(), "https://esia.gosuslugi.ru/");
    }

    #[test]
    fn unknown_fields_and_missing_required_fields_are_refused() {
        let extra = MINIMAL.replace("\"client_id\"", "\"client_idd\": 1, \"client_id\"");
        assert!(serde_json::from_str::<EsiaConfig>(&extra).is_err());
        let no_client = MINIMAL.replace("\"client_id\": \"ZHURNAL\",", "");
        assert!(serde_json::from_str::<EsiaConfig>(&no_client).is_err());
        let bad_signer =
            MINIMAL.replace("\"kind\": \"key_file\",", "\"kind\": \"key_file\", \"x\": 1,");
        assert!(serde_json::from_str::<EsiaConfig>(&bad_signer).is_err());
    }

    #[test]
    fn command_signer_parses() {
        let cmd = MINIMAL.replace(
            r#"{"kind": "key_file", "key_path": "k.pem", "certificate_path": "c.pem"}"#,
            r#"{"kind": "command", "argv": ["sign", "-x"], "certificate_path": "c.pem"}"#,
        );
        let c: EsiaConfig = serde_json::from_str(&cmd).expect("parses");
        assert_eq!(
            c.signer,
            SignerConfig::Command {
                argv: vec!["sign".into(), "-x".into()],
                certificate_path: "c.pem".into()
            }
        );
    }
}
