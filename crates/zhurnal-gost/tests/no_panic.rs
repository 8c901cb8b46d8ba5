//! Hostile input must produce errors, never panics: random bytes and random mutations of valid
//! encodings through every parser and through verification.

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use zhurnal_gost::{Certificate, GostError, ParamSet, SigningKey, VerifyingKey, base64url_decode};

struct Fixtures {
    key: SigningKey,
    key_der: Vec<u8>,
    spki_der: Vec<u8>,
    cert_der: Vec<u8>,
    sig: [u8; 64],
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let key = SigningKey::generate(ParamSet::CryptoProA);
        let cert = Certificate::self_signed(&key, "fuzz", 1).unwrap();
        Fixtures {
            key_der: key.to_pkcs8_der(),
            spki_der: key.verifying_key().to_public_key_der(),
            cert_der: cert.der().to_vec(),
            sig: key.sign(b"msg"),
            key,
        }
    })
}

fn all_parsers(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = SigningKey::from_pkcs8_der(bytes);
    let _ = SigningKey::from_pkcs8_pem(&text);
    let _ = VerifyingKey::from_public_key_der(bytes);
    let _ = VerifyingKey::from_public_key_pem(&text);
    let _ = Certificate::from_der(bytes).map(|c| c.verify_self_signed());
    let _ = Certificate::from_pem(&text);
    let _ = base64url_decode(&text);
    for ps in ParamSet::ALL {
        let _ = SigningKey::from_scalar_be(ps, bytes);
        let _ = VerifyingKey::from_bytes_le(ps, bytes);
    }
}

/// PEM-armours `der` so the PEM parsers reach the DER code too.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        all_parsers(&bytes);
        let _ = SigningKey::from_pkcs8_pem(&pem("PRIVATE KEY", &bytes));
        let _ = Certificate::from_pem(&pem("CERTIFICATE", &bytes));
    }

    #[test]
    fn mutated_encodings_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let f = fixtures();
        let mut data = match which {
            0 => f.key_der.clone(),
            1 => f.spki_der.clone(),
            _ => f.cert_der.clone(),
        };
        for (idx, value) in edits {
            let i = idx.index(data.len());
            data[i] = value;
        }
        if truncate {
            data.truncate(cut.index(data.len()));
        }
        all_parsers(&data);
    }

    #[test]
    fn random_signatures_are_rejected(sig in proptest::collection::vec(any::<u8>(), 0..80)) {
        let f = fixtures();
        let vk = f.key.verifying_key();
        prop_assume!(sig.as_slice() != f.sig.as_slice());
        prop_assert!(vk.verify(b"msg", &sig).is_err());
        // Random bytes as the hash integer: must not panic (a match would need e ≡ e_msg mod q).
        prop_assert!(vk.verify_digest(&sig, &f.sig).is_err());
    }

    #[test]
    fn sign_with_any_nonce_never_panics(k in proptest::collection::vec(any::<u8>(), 0..40)) {
        let f = fixtures();
        if let Ok(sig) = f.key.sign_with_k(b"msg", &k) {
            prop_assert!(f.key.verifying_key().verify(b"msg", &sig).is_ok());
        }
    }
}

#[test]
fn garbage_pem_is_an_error() {
    for text in [
        "",
        "hello",
        "-----BEGIN PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\n%%%%\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    ] {
        assert!(SigningKey::from_pkcs8_pem(text).is_err(), "{text:?}");
        assert!(Certificate::from_pem(text).is_err(), "{text:?}");
        assert!(VerifyingKey::from_public_key_pem(text).is_err(), "{text:?}");
    }
    assert!(matches!(SigningKey::from_pkcs8_pem("nothing"), Err(GostError::Pem(_))));
    assert!(matches!(
        SigningKey::from_pkcs8_pem("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----"),
        Err(GostError::Der(_))
    ));
}
