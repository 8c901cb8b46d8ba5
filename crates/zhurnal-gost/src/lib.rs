//! GOST R 34.10-2012 (256-bit) digital signatures with the Streebog-256 hash, for ESIA.
//!
//! # What this is
//!
//! ESIA (ЕСИА, the Russian federal identity provider) authenticates a relying party by a
//! signature: the v2 `client_secret` is a raw signature over the request parameters, and
//! ESIA's tokens are signed the same way. The algorithms are national standards:
//!
//! - **ГОСТ Р 34.11-2012 «Стрибог» (Streebog)**, the hash function (RFC 6986). We use the 256-bit
//!   variant from RustCrypto's `streebog` crate.
//! - **ГОСТ Р 34.10-2012**, an elliptic-curve signature scheme close to ECDSA/Schnorr (RFC 7091):
//!   `r = x(kP) mod q`, `s = (r·d + k·e) mod q`, where `d` is the private key, `k` a random
//!   nonce and `e` the hash as an integer.
//!
//! RustCrypto ships Streebog and the DER/X.509 building blocks but **no maintained GOST R
//! 34.10-2012 signature crate**, so the signature scheme lives here, in-tree, on `num-bigint`,
//! checked against the RFC 7091 example and against OpenSSL's gost engine (vectors committed
//! under `tests/vectors/`).
//!
//! The big-integer arithmetic (`num-bigint`) is **not constant-time**. That is acceptable for the
//! simulator and for a relying party signing a few `client_secret`s per login, and is a reason
//! an operator may prefer an external (HSM / CryptoPro) signer in production. Private scalars
//! are not zeroised on drop either.
//!
//! # The byte-order traps
//!
//! Every GOST interop bug we know of is a byte-order bug. This crate follows OpenSSL's gost
//! engine, which is what ESIA accepts (CryptoPro's raw output is the byte-reversed form):
//!
//! - **Hash integer**: `e` is the Streebog-256 output bytes read as a **little-endian** integer,
//!   reduced mod `q` (and `e = 1` if that gives 0). [`streebog256`] returns bytes in the order
//!   `openssl dgst -md_gost12_256` prints them; RFC 6986 prints the same digest as a reversed
//!   hex number.
//! - **Signature**: 64 bytes **`s ‖ r`**, each 32 bytes **big-endian** — what
//!   `openssl dgst -engine gost -md_gost12_256 -sign` writes, what ESIA expects base64url-encoded
//!   in `client_secret`, and what the BIT STRING of an X.509 GOST certificate holds.
//! - **Keys**: the PKCS#8 private scalar and the SubjectPublicKeyInfo point are
//!   **little-endian** (`x ‖ y`, 32 bytes each, for the public key).
//!
//! The committed OpenSSL vectors (`tests/openssl_vectors.rs`) pin all three down.
//!
//! # What OpenSSL's gost engine actually does
//!
//! Checked against Debian's `libengine-gost-openssl` 3.0.1 with OpenSSL 3.0.19:
//!
//! - `openssl dgst -engine gost -md_gost12_256 -sign` writes exactly 64 bytes, `s ‖ r`
//!   big-endian, over `e = int_le(Streebog-256(msg))` — as the ESIA brief says; `r ‖ s`,
//!   byte-reversed signatures and a big-endian `e` are all rejected.
//! - `openssl genpkey -algorithm gost2012_256` writes the PKCS#8 privateKey OCTET STRING as the
//!   **bare** 32-byte little-endian scalar (no inner OCTET STRING or INTEGER). The engine also
//!   reads an inner OCTET STRING (its `GOST_PK_FORMAT=LEGACY_PK_WRAP` output), an inner
//!   big-endian INTEGER, and a bare scalar followed by masks (key = product mod q). We read all
//!   of these with the engine's precedence and write the bare form, so our PKCS#8 and
//!   SubjectPublicKeyInfo output is byte-identical to the engine's.
//! - AlgorithmIdentifier parameters carry the digest OID (Streebog-256) for the CryptoPro sets
//!   and omit it for TC26 set A.
//! - Certificates made with `openssl req -x509 -md_gost12_256` use
//!   id-tc26-signwithdigest-gost3410-12-256 with NULL parameters (we write the parameters
//!   absent; the engine accepts that, see `tests/openssl_oracle.rs`) and a signature BIT STRING
//!   in the same `s ‖ r` layout.
//! - `paramset:A` for `gost2012_256` means id-GostR3410-2001-CryptoPro-A-ParamSet, not TC26-A.
//!
//! # Example
//!
//! ```
//! use zhurnal_gost::{base64url_nopad, Certificate, ParamSet, SigningKey};
//!
//! let key = SigningKey::generate(ParamSet::CryptoProA);
//! let cert = Certificate::self_signed(&key, "ЭЖД", 365)?;
//! let msg = "client_idopenid2026.11.22 17:02:15 +0300state";
//! let client_secret = base64url_nopad(&key.sign(msg.as_bytes()));
//! let client_certificate_hash = cert.streebog_hash_hex();
//! # let _ = (client_secret, client_certificate_hash);
//! cert.public_key().verify(msg.as_bytes(), &key.sign(msg.as_bytes()))?;
//! # Ok::<(), zhurnal_gost::GostError>(())
//! ```

#![forbid(unsafe_code)]

mod cert;
mod curve;
mod der;
mod error;
mod key;
mod pem;
mod pkcs8;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use streebog::Digest as _;

pub use cert::{Certificate, OID_SIGN_WITH_DIGEST_256};
pub use curve::{CurveConstants, ParamSet};
pub use error::GostError;
pub use key::{SIGNATURE_LEN, SigningKey, VerifyingKey};
pub use pkcs8::{OID_GOST3410_12_256, OID_GOST3411_12_256};

/// Streebog-256 (ГОСТ Р 34.11-2012, 256-bit output), bytes in the order OpenSSL prints them.
pub fn streebog256(data: &[u8]) -> [u8; 32] {
    streebog::Streebog256::digest(data).into()
}

/// [`streebog256`] as lowercase hex.
pub fn streebog256_hex(data: &[u8]) -> String {
    hex::encode(streebog256(data))
}

/// base64url without `=` padding (RFC 4648 §5), as ESIA and JWTs use.
pub fn base64url_nopad(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url with or without trailing `=` padding.
pub fn base64url_decode(s: &str) -> Result<Vec<u8>, GostError> {
    let trimmed = s.trim_end_matches('=');
    // More than two pad characters is never valid base64.
    if s.len() - trimmed.len() > 2 {
        return Err(GostError::Base64("too much padding".into()));
    }
    URL_SAFE_NO_PAD.decode(trimmed).map_err(|e| GostError::Base64(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn streebog256_m1() {
        // RFC 6986 §10.1, message M1, in OpenSSL byte order (esia-protocol.md §5.2).
        let m1 = b"012345678901234567890123456789012345678901234567890123456789012";
        assert_eq!(m1.len(), 63);
        assert_eq!(
            streebog256_hex(m1),
            "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500"
        );
        assert_eq!(hex::encode(streebog256(m1)), streebog256_hex(m1));
    }

    #[test]
    fn streebog256_m2() {
        // RFC 6986 §10.2, message M2 (72 bytes of CP1251 text; the RFC prints it reversed).
        // Expected value confirmed with `openssl dgst -engine gost -md_gost12_256`.
        let m2 = hex::decode(
            "d1e520e2e5f2f0e82c20d1f2f0e8e1eee6e820e2edf3f6e82c20e2e5fef2fa20f120eceef0ff20f1f2f0e5\
             ebe0ece820ede020f5f0e0e1f0fbff20efebfaeafb20c8e3eef0e5e2fb",
        )
        .unwrap();
        assert_eq!(m2.len(), 72);
        assert_eq!(
            streebog256_hex(&m2),
            "9dd2fe4e90409e5da87f53976d7405b0c0cac628fc669a741d50063c557e8f50"
        );
    }

    #[test]
    fn base64url() {
        let data = [0xfbu8, 0xff, 0xfe, 0x00];
        let enc = base64url_nopad(&data);
        assert_eq!(enc, "-__-AA");
        assert_eq!(base64url_decode(&enc).unwrap(), data);
        assert_eq!(base64url_decode("-__-AA==").unwrap(), data);
        assert!(base64url_decode("+//+AA").is_err());
        assert!(base64url_decode("-__-AA===").is_err());
        assert!(base64url_decode("A").is_err());
    }
}
