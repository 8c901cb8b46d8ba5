//! Keys kept outside the database: the audit chain key, and the СНИЛС encryption and matching
//! keys. A plain hash of a СНИЛС is reversible in seconds (≈10⁹ values), so matching uses a
//! keyed HMAC and the value itself is stored only as AEAD ciphertext bound to the person.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zhurnal_domain::Snils;
use zhurnal_store::AuditSealer;

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("ключ «{name}» должен быть 64 шестнадцатеричными символами (32 байта): {problem}")]
    BadKey { name: &'static str, problem: String },
    #[error("не удалось расшифровать СНИЛС: данные повреждены или зашифрованы другим ключом")]
    Decrypt,
    #[error("расшифрованное значение не является СНИЛС")]
    NotSnils,
}

/// The key set, as read from the keys file or environment (hex strings). `Debug` is redacted.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// HMAC key of the audit hash chain.
    pub audit_hmac: String,
    /// HMAC key for matching СНИЛС at login.
    pub snils_hmac: String,
    /// XChaCha20-Poly1305 key for СНИЛС at rest.
    pub snils_aead: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys { <redacted> }")
    }
}

impl Keys {
    /// Fresh random keys (for `zhurnal keys generate` and the demo's data directory).
    pub fn generate() -> Self {
        let random_key = || {
            let mut k = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut k);
            hex::encode(k)
        };
        Self { audit_hmac: random_key(), snils_hmac: random_key(), snils_aead: random_key() }
    }

    fn decode(name: &'static str, hex_key: &str) -> Result<[u8; 32], KeysError> {
        let bytes = hex::decode(hex_key.trim())
            .map_err(|e| KeysError::BadKey { name, problem: e.to_string() })?;
        bytes
            .try_into()
            .map_err(|b: Vec<u8>| KeysError::BadKey {
                name, problem: format!("{} байт", b.len())
            })
    }

    pub fn sealer(&self) -> Result<HmacSealer, KeysError> {
        Ok(HmacSealer { key: Self::decode("audit_hmac", &self.audit_hmac)? })
    }

    pub fn vault(&self) -> Result<SnilsVault, KeysError> {
        Ok(SnilsVault {
            hmac_key: Self::decode("snils_hmac", &self.snils_hmac)?,
            aead_key: Self::decode("snils_aead", &self.snils_aead)?,
        })
    }
}

/// HMAC-SHA-256 links of the audit chain.
pub struct HmacSealer {
    key: [u8; 32],
}

impl HmacSealer {
    pub fn from_key(key: [u8; 32]) -> Self {
        Self { key }
    }
}

impl AuditSealer for HmacSealer {
    fn seal(&self, prev_hash: &[u8], canonical: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; 32 bytes can never be rejected.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return Vec::new();
        };
        mac.update(prev_hash);
        mac.update(canonical);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Encrypts, decrypts and matches СНИЛС.
#[derive(Clone)]
pub struct SnilsVault {
    hmac_key: [u8; 32],
    aead_key: [u8; 32],
}

/// Ciphertext layout version: lets `zhurnal keys rotate` tell old rows from new ones.
const FORMAT_V1: u8 = 1;

impl SnilsVault {
    /// The keyed hash used to find a person by СНИЛС at login.
    pub fn match_key(&self, snils: &Snils) -> Vec<u8> {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac_key) else {
            return Vec::new();
        };
        mac.update(b"zhurnal-snils-v1:");
        mac.update(snils.digits().as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Encrypts for the person `uid`: the uid is associated data, so swapping two persons'
    /// ciphertexts makes both undecryptable instead of silently exchanging their СНИЛС.
    pub fn encrypt(&self, snils: &Snils, uid: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.aead_key).into());
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload { msg: snils.digits().as_bytes(), aad: uid.as_bytes() },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + 24 + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn decrypt(&self, data: &[u8], uid: &str) -> Result<Snils, KeysError> {
        if data.len() < 1 + 24 + 16 || data[0] != FORMAT_V1 {
            return Err(KeysError::Decrypt);
        }
        let cipher = XChaCha20Poly1305::new((&self.aead_key).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&data[1..25]),
                Payload { msg: &data[25..], aad: uid.as_bytes() },
            )
            .map_err(|_| KeysError::Decrypt)?;
        let text = String::from_utf8(plain).map_err(|_| KeysError::NotSnils)?;
        Snils::parse(&text).map_err(|_| KeysError::NotSnils)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> SnilsVault {
        Keys::generate().vault().expect("valid keys")
    }

    #[test]
    fn encryption_round_trips_and_is_bound_to_the_person() {
        let v = vault();
        let s = Snils::parse("112-233-445 95").expect("valid");
        let c = v.encrypt(&s, "uid-a");
        assert_eq!(v.decrypt(&c, "uid-a").expect("decrypts"), s);
        assert!(
            matches!(v.decrypt(&c, "uid-b"), Err(KeysError::Decrypt)),
            "swapped rows must not decrypt"
        );
        let mut flipped = c.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(v.decrypt(&flipped, "uid-a"), Err(KeysError::Decrypt)));
        assert!(
            !c.windows(11).any(|w| w == s.digits().as_bytes()),
            "no clear text in the ciphertext"
        );
    }

    #[test]
    fn match_keys_are_stable_per_key_and_differ_between_keys() {
        let s = Snils::parse("112-233-445 95").expect("valid");
        let a = vault();
        assert_eq!(a.match_key(&s), a.match_key(&s));
        assert_ne!(a.match_key(&s), vault().match_key(&s));
    }

    #[test]
    fn bad_keys_are_explained() {
        let mut k = Keys::generate();
        k.snils_aead = "abc".into();
        let err = k.vault().err().expect("rejected");
        assert!(err.to_string().contains("snils_aead"), "{err}");
        assert!(!format!("{k:?}").contains(&k.audit_hmac));
    }
}
