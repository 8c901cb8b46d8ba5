//! Minimal X.509 v3 certificates carrying a GOST R 34.10-2012-256 key.
//!
//! ESIA identifies a relying party by the certificate registered on the technology portal
//! (`client_certificate_hash` is its Streebog-256 DER hash), and the simulator needs one for its
//! own token-signing key. Only what that requires is implemented: writing a self-signed
//! certificate, reading any DER certificate far enough to get its subject key, and checking a
//! GOST signature on it.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;

use crate::der::{self, Reader};
use crate::pkcs8::{public_key_from_reader, public_key_to_der};
use crate::{GostError, SigningKey, VerifyingKey, pem, streebog256, streebog256_hex};

/// id-tc26-signwithdigest-gost3410-12-256.
pub const OID_SIGN_WITH_DIGEST_256: &str = "1.2.643.7.1.1.3.2";
const OID_COMMON_NAME: &str = "2.5.4.3";
const OID_SUBJECT_KEY_ID: &str = "2.5.29.14";
const OID_KEY_USAGE: &str = "2.5.29.15";
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";

/// RFC 5280 ub-common-name.
const MAX_COMMON_NAME_CHARS: usize = 64;

/// A minimal X.509 v3 certificate with a GOST R 34.10-2012-256 key, as ESIA registers for an
/// information system.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Vec<u8>,
    signature_algorithm: String,
    signature: Vec<u8>,
    subject_cn: Option<String>,
    public_key: VerifyingKey,
}

impl Certificate {
    /// Issues a self-signed certificate for `key` with subject and issuer `CN=common_name`,
    /// valid from one minute ago (tolerates small clock skew) for `valid_days` days, signed with
    /// id-tc26-signwithdigest-gost3410-12-256.
    pub fn self_signed(
        key: &SigningKey,
        common_name: &str,
        valid_days: u32,
    ) -> Result<Self, GostError> {
        let chars = common_name.chars().count();
        if chars == 0 || chars > MAX_COMMON_NAME_CHARS {
            return Err(GostError::InvalidInput(format!(
                "common name must have 1..={MAX_COMMON_NAME_CHARS} characters"
            )));
        }
        if valid_days == 0 {
            return Err(GostError::InvalidInput("valid_days must be positive".into()));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| GostError::InvalidInput("system clock before 1970".into()))?
            .as_secs();
        let not_before = now.saturating_sub(60);
        let not_after = now + u64::from(valid_days) * 86_400;

        let mut serial = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut serial);
        // Positive and full length, as RFC 5280 recommends for unpredictable serials.
        serial[0] = (serial[0] & 0x7f) | 0x40;

        let name = der::seq(&[&der::set(&[&der::seq(&[
            &der::oid(OID_COMMON_NAME),
            &der::tlv(der::TAG_UTF8_STRING, common_name.as_bytes()),
        ])])]);
        let vk = key.verifying_key();
        let spki = public_key_to_der(&vk);
        // Key identifier: leading 20 bytes of Streebog-256 over the key's 64 point bytes (an
        // RFC 7093-style method; SHA-1 is not available here and nothing compares the value).
        let key_id = &streebog256(&vk.to_bytes_le())[..20];
        let extensions = der::seq(&[
            &extension(OID_BASIC_CONSTRAINTS, true, &der::seq(&[])),
            // digitalSignature | nonRepudiation: the key signs client_secret / tokens only.
            &extension(OID_KEY_USAGE, true, &der::tlv(der::TAG_BIT_STRING, &[0x06, 0xc0])),
            &extension(OID_SUBJECT_KEY_ID, false, &der::octet_string(key_id)),
        ]);
        let sig_alg = der::seq(&[&der::oid(OID_SIGN_WITH_DIGEST_256)]);
        let tbs = der::seq(&[
            &der::tlv(der::context(0), &der::uint(&[2])),
            &der::uint(&serial),
            &sig_alg,
            &name,
            &der::seq(&[&x509_time(not_before), &x509_time(not_after)]),
            &name,
            &spki,
            &der::tlv(der::context(3), &extensions),
        ]);
        let signature = key.sign(&tbs);
        let cert = der::seq(&[&tbs, &sig_alg, &der::bit_string(&signature)]);
        Self::from_der(&cert)
    }

    /// Parses a DER certificate. The subject key must be GOST R 34.10-2012-256; other key types
    /// give [`GostError::UnsupportedParamSet`].
    pub fn from_der(der: &[u8]) -> Result<Self, GostError> {
        let outer = der::parse_single(der, der::TAG_SEQUENCE, "Certificate")?;
        let mut cert = Reader::new(outer.content);
        let tbs = cert.read(der::TAG_SEQUENCE, "TBSCertificate")?;
        let mut sig_alg = cert.read_nested(der::TAG_SEQUENCE, "signatureAlgorithm")?;
        let signature_algorithm = sig_alg.read_oid()?;
        let signature =
            der::bit_string_content(cert.read(der::TAG_BIT_STRING, "signatureValue")?.content)?;
        cert.finish("Certificate")?;

        let mut t = Reader::new(tbs.content);
        if t.peek_tag() == Some(der::context(0)) {
            t.read_any()?;
        }
        t.read(der::TAG_INTEGER, "serialNumber")?;
        t.read(der::TAG_SEQUENCE, "signature")?;
        t.read(der::TAG_SEQUENCE, "issuer")?;
        t.read(der::TAG_SEQUENCE, "validity")?;
        let subject = t.read(der::TAG_SEQUENCE, "subject")?;
        let spki = t.read_nested(der::TAG_SEQUENCE, "subjectPublicKeyInfo")?;
        let public_key = public_key_from_reader(spki)?;

        Ok(Certificate {
            der: der.to_vec(),
            tbs: tbs.raw.to_vec(),
            signature_algorithm,
            signature: signature.to_vec(),
            subject_cn: common_name(subject.content),
            public_key,
        })
    }

    /// Parses the first `CERTIFICATE` block of a PEM file.
    pub fn from_pem(pem: &str) -> Result<Self, GostError> {
        Self::from_der(&pem::decode(pem, "CERTIFICATE")?)
    }

    /// PEM (`-----BEGIN CERTIFICATE-----`).
    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.der)
    }

    /// The DER encoding exactly as created or parsed.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }

    /// The subject's first common name (CN), if it is a UTF8String, PrintableString or
    /// IA5String.
    pub fn subject_common_name(&self) -> Option<&str> {
        self.subject_cn.as_deref()
    }

    /// ESIA `client_certificate_hash`: Streebog-256 of the DER, lowercase hex, bytes in the
    /// order `openssl dgst -engine gost -md_gost12_256` prints them.
    pub fn streebog_hash_hex(&self) -> String {
        streebog256_hex(&self.der)
    }

    /// Checks the certificate's signature with `issuer` (for a self-signed certificate, its own
    /// key). Only id-tc26-signwithdigest-gost3410-12-256 signatures are supported.
    pub fn verify_signature(&self, issuer: &VerifyingKey) -> Result<(), GostError> {
        if self.signature_algorithm != OID_SIGN_WITH_DIGEST_256 {
            return Err(GostError::UnsupportedParamSet(format!(
                "certificate signature algorithm {}",
                self.signature_algorithm
            )));
        }
        // RFC 4491 §2.2.2 / RFC 9215: the BIT STRING holds s ‖ r big-endian, the same layout
        // as the raw OpenSSL signature.
        issuer.verify(&self.tbs, &self.signature)
    }

    /// [`Certificate::verify_signature`] with the certificate's own key.
    pub fn verify_self_signed(&self) -> Result<(), GostError> {
        self.verify_signature(&self.public_key)
    }
}

fn extension(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    if critical {
        der::seq(&[&der::oid(oid), &der::tlv(der::TAG_BOOLEAN, &[0xff]), &der::octet_string(value)])
    } else {
        der::seq(&[&der::oid(oid), &der::octet_string(value)])
    }
}

fn common_name(name: &[u8]) -> Option<String> {
    let mut rdns = Reader::new(name);
    while !rdns.is_empty() {
        let mut rdn = rdns.read_nested(der::TAG_SET, "RDN").ok()?;
        while !rdn.is_empty() {
            let mut atv = rdn.read_nested(der::TAG_SEQUENCE, "AttributeTypeAndValue").ok()?;
            let oid = atv.read_oid().ok()?;
            let value = atv.read_any().ok()?;
            if oid == OID_COMMON_NAME {
                return match value.tag {
                    // UTF8String, PrintableString, IA5String.
                    0x0c | 0x13 | 0x16 => String::from_utf8(value.content.to_vec()).ok(),
                    _ => None,
                };
            }
        }
    }
    None
}

/// UTCTime for 1950–2049 and GeneralizedTime otherwise (RFC 5280 §4.1.2.5).
fn x509_time(unix: u64) -> Vec<u8> {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    if (1950..2050).contains(&y) {
        let s = format!("{:02}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z", y % 100);
        der::tlv(der::TAG_UTC_TIME, s.as_bytes())
    } else {
        let s = format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z");
        der::tlv(der::TAG_GENERALIZED_TIME, s.as_bytes())
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's algorithm), so no date crate is needed for two timestamps.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ParamSet;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        assert_eq!(x509_time(0), der::tlv(der::TAG_UTC_TIME, b"700101000000Z"));
        // 2050-01-01 switches to GeneralizedTime.
        assert_eq!(
            x509_time(2_524_608_000),
            der::tlv(der::TAG_GENERALIZED_TIME, b"20500101000000Z")
        );
    }

    #[test]
    fn self_signed_round_trip() {
        for ps in [ParamSet::CryptoProA, ParamSet::Tc26A] {
            let key = SigningKey::generate(ps);
            let cert = Certificate::self_signed(&key, "ЭЖД тест", 365).unwrap();
            cert.verify_self_signed().unwrap();
            assert_eq!(cert.subject_common_name(), Some("ЭЖД тест"));
            let parsed = Certificate::from_pem(&cert.to_pem()).unwrap();
            assert_eq!(parsed.der(), cert.der());
            assert_eq!(parsed.public_key(), &key.verifying_key());
            assert_eq!(parsed.streebog_hash_hex(), cert.streebog_hash_hex());
            assert_eq!(cert.streebog_hash_hex(), streebog256_hex(cert.der()));
            assert_eq!(cert.streebog_hash_hex().len(), 64);
            let other = SigningKey::generate(ps).verifying_key();
            assert!(cert.verify_signature(&other).is_err());
        }
    }

    #[test]
    fn tampered_certificate_fails_signature_check() {
        let key = SigningKey::generate(ParamSet::CryptoProA);
        let cert = Certificate::self_signed(&key, "rp", 1).unwrap();
        let mut der = cert.der().to_vec();
        // Flip a bit inside the CN value (the last byte of the first "rp").
        let pos = der.windows(2).position(|w| w == b"rp").unwrap() + 1;
        der[pos] ^= 1;
        let bad = Certificate::from_der(&der).unwrap();
        assert!(bad.verify_self_signed().is_err());
        assert_ne!(bad.streebog_hash_hex(), cert.streebog_hash_hex());
    }

    #[test]
    fn bad_arguments() {
        let key = SigningKey::generate(ParamSet::CryptoProA);
        assert!(Certificate::self_signed(&key, "", 1).is_err());
        assert!(Certificate::self_signed(&key, &"x".repeat(65), 1).is_err());
        assert!(Certificate::self_signed(&key, "x", 0).is_err());
        assert!(Certificate::from_pem("garbage").is_err());
        assert!(Certificate::from_der(&[0x30, 0x00]).is_err());
    }
}
