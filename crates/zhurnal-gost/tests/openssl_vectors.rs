//! Interop with OpenSSL's gost engine through committed vectors (see `vectors/README.md`).
//! These pin down every byte order: PKCS#8 scalar, SubjectPublicKeyInfo point, raw signature
//! layout, hash integer, X.509 signature value and the Streebog digest of a certificate.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use zhurnal_gost::{Certificate, ParamSet, SigningKey, VerifyingKey, streebog256};

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(vector_path(name)).unwrap()
}

fn read_text(name: &str) -> String {
    std::fs::read_to_string(vector_path(name)).unwrap()
}

/// The engine's `-text` printout: `Private key: HEX`, `X:HEX`, `Y:HEX` (big-endian, leading
/// zeros dropped), returned as 32-byte big-endian arrays.
struct EngineKeyText {
    d: [u8; 32],
    x: [u8; 32],
    y: [u8; 32],
}

fn be32_from_hex(h: &str) -> [u8; 32] {
    let padded = format!("{:0>64}", h.trim());
    hex::decode(padded).unwrap().try_into().unwrap()
}

fn engine_key_text(name: &str) -> EngineKeyText {
    let text = read_text(name);
    let field = |prefix: &str| {
        let line = text.lines().map(str::trim).find(|l| l.starts_with(prefix)).unwrap();
        be32_from_hex(&line[prefix.len()..])
    };
    EngineKeyText { d: field("Private key:"), x: field("X:"), y: field("Y:") }
}

const SETS: [(&str, ParamSet); 4] = [
    ("A", ParamSet::CryptoProA),
    ("B", ParamSet::CryptoProB),
    ("C", ParamSet::CryptoProC),
    ("TCA", ParamSet::Tc26A),
];

#[test]
fn engine_keys_load_with_the_same_scalar_and_point() {
    for (tag, ps) in SETS {
        let key = SigningKey::from_pkcs8_pem(&read_text(&format!("key_{tag}.pem"))).unwrap();
        let expected = engine_key_text(&format!("key_{tag}.txt"));
        assert_eq!(key.params(), ps, "{tag}");
        assert_eq!(key.to_scalar_be(), expected.d, "{tag}: private scalar");
        let vk = key.verifying_key();
        assert_eq!(vk.to_affine_be(), (expected.x, expected.y), "{tag}: d·P");

        let public = VerifyingKey::from_public_key_pem(&read_text(&format!("pub_{tag}.pem")));
        assert_eq!(public.unwrap(), vk, "{tag}: SubjectPublicKeyInfo");
    }
}

#[test]
fn parameter_set_aliases_map_to_the_right_curves() {
    for (tag, ps) in [
        ("TCB", ParamSet::CryptoProA),
        ("TCC", ParamSet::CryptoProB),
        ("TCD", ParamSet::CryptoProC),
        ("XA", ParamSet::CryptoProA),
        ("XB", ParamSet::CryptoProC),
    ] {
        let key = SigningKey::from_pkcs8_pem(&read_text(&format!("alias_{tag}.pem"))).unwrap();
        let expected = engine_key_text(&format!("alias_{tag}.txt"));
        assert_eq!(key.params(), ps, "{tag}");
        assert_eq!(key.to_scalar_be(), expected.d, "{tag}");
        assert_eq!(key.verifying_key().to_affine_be(), (expected.x, expected.y), "{tag}");
    }
}

#[test]
fn our_encodings_are_byte_identical_to_the_engine() {
    for (tag, _) in SETS {
        let pem = read_text(&format!("key_{tag}.pem"));
        let key = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(key.to_pkcs8_pem(), pem, "{tag}: PKCS#8");
        let pub_pem = read_text(&format!("pub_{tag}.pem"));
        assert_eq!(key.verifying_key().to_public_key_pem(), pub_pem, "{tag}: SPKI");
    }
}

#[test]
fn other_private_key_forms_read_as_the_engine_reads_them() {
    let plain = SigningKey::from_pkcs8_pem(&read_text("key_B.pem")).unwrap();
    let wrapped = SigningKey::from_pkcs8_pem(&read_text("key_B_wrapped.pem")).unwrap();
    assert_eq!(wrapped.to_scalar_be(), plain.to_scalar_be());
    for name in ["key_B_masked", "key_B_integer"] {
        let key = SigningKey::from_pkcs8_pem(&read_text(&format!("{name}.pem"))).unwrap();
        let expected = engine_key_text(&format!("{name}.txt"));
        assert_eq!(key.to_scalar_be(), expected.d, "{name}");
        assert_eq!(key.verifying_key().to_affine_be(), (expected.x, expected.y), "{name}");
    }
}

#[test]
fn engine_signatures_verify_and_the_layout_is_s_then_r_with_little_endian_e() {
    let msg = read("msg.txt");
    for (tag, _) in SETS {
        let vk = VerifyingKey::from_public_key_pem(&read_text(&format!("pub_{tag}.pem"))).unwrap();
        let sig = read(&format!("sig_{tag}.bin"));
        assert_eq!(sig.len(), 64);
        vk.verify(&msg, &sig).unwrap();

        // The documented layout is the only one that works.
        let r_then_s = [&sig[32..], &sig[..32]].concat();
        assert!(vk.verify(&msg, &r_then_s).is_err(), "{tag}: r||s must fail");
        let mut reversed = sig.clone();
        reversed.reverse();
        assert!(vk.verify(&msg, &reversed).is_err(), "{tag}: reversed must fail");
        // e is the digest read little-endian, i.e. the reversed bytes as a big-endian number.
        let mut digest = streebog256(&msg);
        assert!(vk.verify_digest(&digest, &sig).is_err(), "{tag}: big-endian e must fail");
        digest.reverse();
        vk.verify_digest(&digest, &sig).unwrap();

        let mut tampered = msg.clone();
        tampered[0] ^= 1;
        assert!(vk.verify(&tampered, &sig).is_err(), "{tag}: other message");
    }
    // A signature made with key A does not verify under key B of the same curve family.
    let a = VerifyingKey::from_public_key_pem(&read_text("pub_A.pem")).unwrap();
    assert!(a.verify(&msg, &read("sig_B.bin")).is_err());
}

#[test]
fn engine_certificates_parse_hash_and_verify() {
    for (tag, cn) in [("A", "Zhurnal OpenSSL test"), ("TCA", "Zhurnal TC26-A test")] {
        let cert = Certificate::from_pem(&read_text(&format!("cert_{tag}.pem"))).unwrap();
        let key = SigningKey::from_pkcs8_pem(&read_text(&format!("key_{tag}.pem"))).unwrap();
        assert_eq!(cert.public_key(), &key.verifying_key(), "{tag}");
        assert_eq!(cert.subject_common_name(), Some(cn));
        let expected_hash = read_text(&format!("cert_{tag}.streebog256.txt"));
        assert_eq!(cert.streebog_hash_hex(), expected_hash.trim(), "{tag}");
        // The engine's X.509 signature value uses the same s||r layout as the raw signature.
        cert.verify_self_signed().unwrap();
        // PEM re-armouring keeps the DER, hence the hash.
        let again = Certificate::from_pem(&cert.to_pem()).unwrap();
        assert_eq!(again.streebog_hash_hex(), cert.streebog_hash_hex());
    }
}
