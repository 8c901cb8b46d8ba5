//! PKCS#8 PrivateKeyInfo and SubjectPublicKeyInfo for GOST R 34.10-2012-256 keys, in the layout
//! OpenSSL's gost engine reads and writes (RFC 9215 §4 / RFC 4491 §2.3).

use num_bigint::BigUint;

use crate::der::{self, Reader};
use crate::key::{FIELD_BYTES, to_le32};
use crate::{GostError, ParamSet, SigningKey, VerifyingKey, pem};

/// id-tc26-gost3410-12-256: the public-key algorithm.
pub const OID_GOST3410_12_256: &str = "1.2.643.7.1.1.1.1";
/// id-tc26-gost3410-12-512 (recognised only to give a precise error).
const OID_GOST3410_12_512: &str = "1.2.643.7.1.1.1.2";
/// id-GostR3410-2001 (recognised only to give a precise error).
const OID_GOST3410_2001: &str = "1.2.643.2.2.19";
/// id-tc26-gost3411-12-256: Streebog-256.
pub const OID_GOST3411_12_256: &str = "1.2.643.7.1.1.2.2";

/// AlgorithmIdentifier { id-tc26-gost3410-12-256, SEQUENCE { paramset [, digest] } }.
pub(crate) fn algorithm_identifier(params: ParamSet) -> Vec<u8> {
    let paramset = der::oid(params.oid());
    let inner = if params.writes_digest_oid() {
        der::seq(&[&paramset, &der::oid(OID_GOST3411_12_256)])
    } else {
        der::seq(&[&paramset])
    };
    der::seq(&[&der::oid(OID_GOST3410_12_256), &inner])
}

/// Parses a GOST public-key AlgorithmIdentifier and returns its curve.
pub(crate) fn parse_algorithm_identifier(mut alg: Reader<'_>) -> Result<ParamSet, GostError> {
    let oid = alg.read_oid()?;
    match oid.as_str() {
        OID_GOST3410_12_256 => {}
        OID_GOST3410_12_512 => {
            return Err(GostError::UnsupportedParamSet("GOST R 34.10-2012 512-bit keys".into()));
        }
        OID_GOST3410_2001 => {
            return Err(GostError::UnsupportedParamSet(
                "GOST R 34.10-2001 keys (GOST R 34.11-94 hash)".into(),
            ));
        }
        other => {
            return Err(GostError::UnsupportedParamSet(format!("key algorithm {other}")));
        }
    }
    let mut params = alg.read_nested(der::TAG_SEQUENCE, "GOST key parameters")?;
    let paramset_oid = params.read_oid()?;
    let paramset = ParamSet::from_oid(&paramset_oid)
        .ok_or_else(|| GostError::UnsupportedParamSet(format!("parameter set {paramset_oid}")))?;
    if !params.is_empty() {
        let digest = params.read_oid()?;
        if digest != OID_GOST3411_12_256 {
            return Err(GostError::UnsupportedParamSet(format!("digest {digest}")));
        }
    }
    // A third element (encryptionParamSet, GOST 28147-89 S-box) may follow in old keys; it
    // does not affect signatures, so it is ignored.
    Ok(paramset)
}

pub(crate) fn private_key_to_der(key: &SigningKey) -> Vec<u8> {
    // What `openssl genpkey -engine gost` writes by default (gost-engine 3.0.x): the privateKey
    // OCTET STRING holds the 32-byte little-endian scalar directly, with no inner wrapper. The
    // engine also reads the wrapped forms, but older readers expecting only the wrapped form
    // are rarer than tools that round-trip the engine's own output.
    der::seq(&[
        &der::uint(&[0]),
        &algorithm_identifier(key.params()),
        &der::octet_string(&to_le32(key.scalar())),
    ])
}

pub(crate) fn private_key_from_der(data: &[u8]) -> Result<SigningKey, GostError> {
    let outer = der::parse_single(data, der::TAG_SEQUENCE, "PrivateKeyInfo")?;
    let mut r = Reader::new(outer.content);
    let version = r.read(der::TAG_INTEGER, "version")?;
    // v1 (0) is PKCS#8; v2 (1) is RFC 5958 OneAsymmetricKey, same prefix.
    if version.content != [0] && version.content != [1] {
        return Err(GostError::Der("unsupported PrivateKeyInfo version".into()));
    }
    let params =
        parse_algorithm_identifier(r.read_nested(der::TAG_SEQUENCE, "AlgorithmIdentifier")?)?;
    let private = r.read(der::TAG_OCTET_STRING, "privateKey")?.content;
    // Trailing [0] attributes / [1] publicKey are allowed and not needed.
    let d = decode_private_scalar(private, &params.curve().q)?;
    SigningKey::from_scalar_be(params, &d.to_bytes_be())
}

/// Decodes the privateKey contents the way the gost engine's `priv_decode_gost` does, in the
/// same order of precedence so that both read an ambiguous encoding identically:
///
/// 1. a length that is a multiple of 32: the little-endian scalar, optionally followed by
///    little-endian masks (CryptoPro-style masking); the key is the product of all of them
///    mod q;
/// 2. an OCTET STRING of 32 little-endian bytes (the engine's `LEGACY_PK_WRAP` output);
/// 3. an INTEGER (big-endian, written by old engine versions).
///
/// The SEQUENCE-wrapped masked form is not supported.
fn decode_private_scalar(private: &[u8], q: &BigUint) -> Result<BigUint, GostError> {
    if !private.is_empty() && private.len().is_multiple_of(FIELD_BYTES) {
        let mut chunks = private.chunks_exact(FIELD_BYTES);
        let mut d = chunks.next().map(BigUint::from_bytes_le).unwrap_or_default();
        for mask in chunks {
            d = (d * BigUint::from_bytes_le(mask)) % q;
        }
        return Ok(d);
    }
    let t = der::parse_single_any(private)?;
    match t.tag {
        der::TAG_OCTET_STRING if t.content.len() == FIELD_BYTES => {
            Ok(BigUint::from_bytes_le(t.content))
        }
        der::TAG_INTEGER => Ok(BigUint::from_bytes_be(der::uint_content(t.content)?)),
        _ => Err(GostError::Der(
            "unsupported GOST privateKey encoding (SEQUENCE-masked CryptoPro exports are not \
             supported; convert them with the gost engine first)"
                .into(),
        )),
    }
}

pub(crate) fn public_key_to_der(key: &VerifyingKey) -> Vec<u8> {
    let point = der::octet_string(&key.to_bytes_le());
    der::seq(&[&algorithm_identifier(key.params()), &der::bit_string(&point)])
}

/// Parses a SubjectPublicKeyInfo already split into its reader.
pub(crate) fn public_key_from_reader(mut r: Reader<'_>) -> Result<VerifyingKey, GostError> {
    let params =
        parse_algorithm_identifier(r.read_nested(der::TAG_SEQUENCE, "AlgorithmIdentifier")?)?;
    let bits = der::bit_string_content(r.read(der::TAG_BIT_STRING, "subjectPublicKey")?.content)?;
    r.finish("SubjectPublicKeyInfo")?;
    let point = der::parse_single(bits, der::TAG_OCTET_STRING, "GOST public key point")?;
    VerifyingKey::from_bytes_le(params, point.content)
}

pub(crate) fn public_key_from_der(data: &[u8]) -> Result<VerifyingKey, GostError> {
    let outer = der::parse_single(data, der::TAG_SEQUENCE, "SubjectPublicKeyInfo")?;
    public_key_from_reader(Reader::new(outer.content))
}

impl SigningKey {
    /// PKCS#8 DER (unencrypted), as `openssl pkey -engine gost -outform DER` writes it.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        private_key_to_der(self)
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), readable by `openssl -engine gost`.
    pub fn to_pkcs8_pem(&self) -> String {
        pem::encode("PRIVATE KEY", &self.to_pkcs8_der())
    }

    /// Loads an unencrypted PKCS#8 DER key (scalar as little-endian OCTET STRING or INTEGER).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, GostError> {
        private_key_from_der(der)
    }

    /// Loads the first `PRIVATE KEY` block of a PEM file.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, GostError> {
        Self::from_pkcs8_der(&pem::decode(pem, "PRIVATE KEY")?)
    }
}

impl VerifyingKey {
    /// SubjectPublicKeyInfo DER.
    pub fn to_public_key_der(&self) -> Vec<u8> {
        public_key_to_der(self)
    }

    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), as `openssl pkey -pubout` writes.
    pub fn to_public_key_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.to_public_key_der())
    }

    /// Parses SubjectPublicKeyInfo DER.
    pub fn from_public_key_der(der: &[u8]) -> Result<Self, GostError> {
        public_key_from_der(der)
    }

    /// Parses the first `PUBLIC KEY` block of a PEM file.
    pub fn from_public_key_pem(pem: &str) -> Result<Self, GostError> {
        Self::from_public_key_der(&pem::decode(pem, "PUBLIC KEY")?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pkcs8_round_trip_every_set() {
        for ps in ParamSet::ALL {
            let key = SigningKey::generate(ps);
            let der = key.to_pkcs8_der();
            let back = SigningKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(back.to_scalar_be(), key.to_scalar_be());
            assert_eq!(back.params(), ps);
            let pem = key.to_pkcs8_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let back = SigningKey::from_pkcs8_pem(&pem).unwrap();
            assert_eq!(back.verifying_key(), key.verifying_key());

            let vk = key.verifying_key();
            assert_eq!(VerifyingKey::from_public_key_der(&vk.to_public_key_der()).unwrap(), vk);
            assert_eq!(VerifyingKey::from_public_key_pem(&vk.to_public_key_pem()).unwrap(), vk);
        }
    }

    #[test]
    fn pkcs8_layout_is_the_engine_layout() {
        let key = SigningKey::from_scalar_be(ParamSet::CryptoProA, &[1, 2, 3]).unwrap();
        let der = key.to_pkcs8_der();
        // SEQUENCE { 0, SEQUENCE { gost3410-12-256, SEQUENCE { CryptoPro-A, streebog256 } },
        //            OCTET STRING (32, little-endian) }
        let expected_prefix = "3046020100301f06082a85030701010101301306072a8503020223010608\
                               2a85030701010202 0420 030201";
        let expected_prefix: String = expected_prefix.split_whitespace().collect();
        assert!(hex::encode(&der).starts_with(&expected_prefix), "{}", hex::encode(&der));
        assert_eq!(der.len(), 72);
        // TC26 sets carry no digest OID.
        let tc = SigningKey::from_scalar_be(ParamSet::Tc26A, &[1]).unwrap().to_pkcs8_der();
        assert!(hex::encode(&tc).starts_with("303e020100301706082a85030701010101300b"));
    }

    fn pkcs8_with(params: ParamSet, private: &[u8]) -> Vec<u8> {
        der::seq(&[&der::uint(&[0]), &algorithm_identifier(params), &der::octet_string(private)])
    }

    #[test]
    fn integer_wrapped_and_masked_forms_are_accepted() {
        let ps = ParamSet::CryptoProB;
        let key = SigningKey::from_scalar_be(ps, &[0x80, 0, 7]).unwrap();
        let from_int = pkcs8_with(ps, &der::uint(&[0x80, 0, 7]));
        assert_eq!(
            SigningKey::from_pkcs8_der(&from_int).unwrap().to_scalar_be(),
            key.to_scalar_be()
        );
        let wrapped = pkcs8_with(ps, &der::octet_string(&to_le32(key.scalar())));
        assert_eq!(
            SigningKey::from_pkcs8_der(&wrapped).unwrap().to_scalar_be(),
            key.to_scalar_be()
        );
        // 5 * 7 = 35, masks multiply in.
        let mut masked = [0u8; 64];
        masked[0] = 5;
        masked[32] = 7;
        let k = SigningKey::from_pkcs8_der(&pkcs8_with(ps, &masked)).unwrap();
        assert_eq!(k.to_scalar_be()[31], 35);
        assert!(SigningKey::from_pkcs8_der(&pkcs8_with(ps, &[1; 31])).is_err());
        assert!(SigningKey::from_pkcs8_der(&pkcs8_with(ps, &[])).is_err());
    }

    #[test]
    fn unsupported_algorithms_are_named() {
        let der = der::seq(&[
            &der::uint(&[0]),
            &der::seq(&[
                &der::oid("1.2.643.7.1.1.1.2"),
                &der::seq(&[&der::oid("1.2.643.7.1.2.1.2.1")]),
            ]),
            &der::octet_string(&der::octet_string(&[1; 64])),
        ]);
        assert!(matches!(SigningKey::from_pkcs8_der(&der), Err(GostError::UnsupportedParamSet(_))));
        let zero = pkcs8_with(ParamSet::CryptoProA, &[0; 32]);
        assert!(matches!(SigningKey::from_pkcs8_der(&zero), Err(GostError::InvalidKey)));
    }
}
