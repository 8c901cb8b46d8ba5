//! Key pairs, signing and verification (ГОСТ Р 34.10-2012, §6.1 and §6.2 of the standard).

use std::fmt;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::Zero;
use rand::RngCore;

use crate::curve::ParamSet;
use crate::{GostError, streebog256};

/// Size of `r`, `s`, coordinates and scalars for the 256-bit variant.
pub(crate) const FIELD_BYTES: usize = 32;
/// Raw signature size: `s ‖ r`.
pub const SIGNATURE_LEN: usize = 2 * FIELD_BYTES;

/// A GOST R 34.10-2012 (256-bit) private key (ключ подписи): the curve and the scalar `d`.
///
/// `Debug` prints only the parameter set; the scalar never reaches logs.
#[derive(Clone)]
pub struct SigningKey {
    params: ParamSet,
    d: BigUint,
}

/// A GOST R 34.10-2012 (256-bit) public key (ключ проверки подписи): the curve and `Q = d·P`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    params: ParamSet,
    x: BigUint,
    y: BigUint,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("params", &self.params).finish_non_exhaustive()
    }
}

/// Big-endian, left-padded to 32 bytes. Callers only pass values below a 256-bit modulus.
pub(crate) fn to_be32(v: &BigUint) -> [u8; FIELD_BYTES] {
    let bytes = v.to_bytes_be();
    let mut out = [0u8; FIELD_BYTES];
    let n = bytes.len().min(FIELD_BYTES);
    out[FIELD_BYTES - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    out
}

/// Little-endian, right-padded to 32 bytes.
pub(crate) fn to_le32(v: &BigUint) -> [u8; FIELD_BYTES] {
    let mut out = to_be32(v);
    out.reverse();
    out
}

/// Uniform scalar in `[1, q-1]` by rejection sampling over `bits(q)`-bit strings, so no value
/// is favoured (at worst half of the draws are rejected, for TC26-A whose q is just over 2^254).
fn random_scalar(q: &BigUint) -> BigUint {
    let bits = q.bits();
    let top_mask: u8 = match bits % 8 {
        0 => 0xff,
        r => (1u8 << r) - 1,
    };
    let mut rng = rand::rngs::OsRng;
    let mut buf = vec![0u8; bits.div_ceil(8) as usize];
    loop {
        rng.fill_bytes(&mut buf);
        buf[0] &= top_mask;
        let k = BigUint::from_bytes_be(&buf);
        if !k.is_zero() && &k < q {
            return k;
        }
    }
}

/// The hash integer `e` of GOST R 34.10-2012 §6.1 step 2 as OpenSSL and ESIA compute it:
/// the Streebog output bytes read as a **little-endian** number.
fn message_integer(msg: &[u8]) -> BigUint {
    BigUint::from_bytes_le(&streebog256(msg))
}

impl SigningKey {
    /// A fresh key pair on `params`, with `d` drawn uniformly from `[1, q-1]` using the OS RNG.
    pub fn generate(params: ParamSet) -> Self {
        let d = random_scalar(&params.curve().q);
        SigningKey { params, d }
    }

    /// Loads `d` from a big-endian byte string (any length; leading zeros allowed).
    pub fn from_scalar_be(params: ParamSet, d: &[u8]) -> Result<Self, GostError> {
        let d = BigUint::from_bytes_be(d);
        if d.is_zero() || d >= params.curve().q {
            return Err(GostError::InvalidKey);
        }
        Ok(SigningKey { params, d })
    }

    /// The parameter set of this key.
    pub fn params(&self) -> ParamSet {
        self.params
    }

    /// `d` as 32 big-endian bytes. Handle with the care due to a private key.
    pub fn to_scalar_be(&self) -> [u8; FIELD_BYTES] {
        to_be32(&self.d)
    }

    /// The matching public key `Q = d·P`.
    pub fn verifying_key(&self) -> VerifyingKey {
        let curve = self.params.curve();
        match curve.mul(&self.d, &curve.g) {
            Some((x, y)) => VerifyingKey { params: self.params, x, y },
            // d is in [1, q-1] by construction and P has prime order q, so d·P is never O.
            None => unreachable!("d·P is never infinity for 0 < d < q"),
        }
    }

    /// Signs `msg` (hashing it with Streebog-256) with a fresh random nonce.
    ///
    /// Output: `s ‖ r`, each 32 bytes big-endian — the layout of `openssl dgst -engine gost
    /// -md_gost12_256 -sign` and of ESIA v2 `client_secret` (before base64url).
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        let curve = self.params.curve();
        let e = curve.hash_to_e(&message_integer(msg));
        loop {
            let k = random_scalar(&curve.q);
            // r = 0 or s = 0 happen with probability ~2^-255; the standard says draw again.
            if let Ok(sig) = self.sign_e_k(&e, &k) {
                return sig;
            }
        }
    }

    /// Deterministic signing with a caller-chosen nonce `k` (big-endian). Only for known-answer
    /// tests: reusing `k` for two messages reveals the private key.
    pub fn sign_with_k(&self, msg: &[u8], k: &[u8]) -> Result<[u8; SIGNATURE_LEN], GostError> {
        let e = self.params.curve().hash_to_e(&message_integer(msg));
        self.sign_e_k(&e, &BigUint::from_bytes_be(k))
    }

    /// Signs a hash integer `e` given directly as a big-endian number (reduced mod q, 0 ↦ 1),
    /// with nonce `k`. This is the entry point for the RFC 7091 vector, which states `e` rather
    /// than a message. Only for known-answer tests.
    pub fn sign_digest_with_k(
        &self,
        e_be: &[u8],
        k: &[u8],
    ) -> Result<[u8; SIGNATURE_LEN], GostError> {
        let e = self.params.curve().hash_to_e(&BigUint::from_bytes_be(e_be));
        self.sign_e_k(&e, &BigUint::from_bytes_be(k))
    }

    fn sign_e_k(&self, e: &BigUint, k: &BigUint) -> Result<[u8; SIGNATURE_LEN], GostError> {
        let curve = self.params.curve();
        let q = &curve.q;
        if k.is_zero() || k >= q {
            return Err(GostError::InvalidNonce);
        }
        let (cx, _) = curve.mul(k, &curve.g).ok_or(GostError::InvalidNonce)?;
        let r = cx.mod_floor(q);
        if r.is_zero() {
            return Err(GostError::InvalidNonce);
        }
        let s = (&r * &self.d + k * e).mod_floor(q);
        if s.is_zero() {
            return Err(GostError::InvalidNonce);
        }
        let mut out = [0u8; SIGNATURE_LEN];
        out[..FIELD_BYTES].copy_from_slice(&to_be32(&s));
        out[FIELD_BYTES..].copy_from_slice(&to_be32(&r));
        Ok(out)
    }

    pub(crate) fn scalar(&self) -> &BigUint {
        &self.d
    }
}

impl VerifyingKey {
    /// Builds a public key from affine coordinates (big-endian), checking that the point lies on
    /// the curve and in the subgroup of order q (matters for TC26-A, whose cofactor is 4).
    pub fn from_affine_be(params: ParamSet, x: &[u8], y: &[u8]) -> Result<Self, GostError> {
        let x = BigUint::from_bytes_be(x);
        let y = BigUint::from_bytes_be(y);
        let curve = params.curve();
        if !curve.is_on_curve(&x, &y) {
            return Err(GostError::InvalidKey);
        }
        let point = (x, y);
        if curve.mul(&curve.q, &point).is_some() {
            return Err(GostError::InvalidKey);
        }
        let (x, y) = point;
        Ok(VerifyingKey { params, x, y })
    }

    /// Builds a public key from the 64-byte wire form used inside SubjectPublicKeyInfo:
    /// `x` little-endian (32) ‖ `y` little-endian (32).
    pub fn from_bytes_le(params: ParamSet, xy: &[u8]) -> Result<Self, GostError> {
        if xy.len() != 2 * FIELD_BYTES {
            return Err(GostError::InvalidKey);
        }
        let mut x = xy[..FIELD_BYTES].to_vec();
        let mut y = xy[FIELD_BYTES..].to_vec();
        x.reverse();
        y.reverse();
        Self::from_affine_be(params, &x, &y)
    }

    /// The 64-byte wire form: `x` little-endian ‖ `y` little-endian.
    pub fn to_bytes_le(&self) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out[..FIELD_BYTES].copy_from_slice(&to_le32(&self.x));
        out[FIELD_BYTES..].copy_from_slice(&to_le32(&self.y));
        out
    }

    /// Affine coordinates `(x, y)`, each 32 bytes big-endian.
    pub fn to_affine_be(&self) -> ([u8; FIELD_BYTES], [u8; FIELD_BYTES]) {
        (to_be32(&self.x), to_be32(&self.y))
    }

    /// The parameter set of this key.
    pub fn params(&self) -> ParamSet {
        self.params
    }

    /// Verifies a 64-byte `s ‖ r` signature over `msg` (hashed with Streebog-256).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), GostError> {
        let e = self.params.curve().hash_to_e(&message_integer(msg));
        self.verify_e(&e, sig)
    }

    /// Verifies a signature over a hash integer `e` given as a big-endian number.
    pub fn verify_digest(&self, e_be: &[u8], sig: &[u8]) -> Result<(), GostError> {
        let e = self.params.curve().hash_to_e(&BigUint::from_bytes_be(e_be));
        self.verify_e(&e, sig)
    }

    fn verify_e(&self, e: &BigUint, sig: &[u8]) -> Result<(), GostError> {
        if sig.len() != SIGNATURE_LEN {
            return Err(GostError::InvalidSignature);
        }
        let curve = self.params.curve();
        let q = &curve.q;
        let s = BigUint::from_bytes_be(&sig[..FIELD_BYTES]);
        let r = BigUint::from_bytes_be(&sig[FIELD_BYTES..]);
        if r.is_zero() || s.is_zero() || &r >= q || &s >= q {
            return Err(GostError::InvalidSignature);
        }
        // e is in [1, q-1] and q is prime, so the inverse exists.
        let v = e.modinv(q).ok_or(GostError::InvalidSignature)?;
        let z1 = (&s * &v).mod_floor(q);
        let z2 = ((q - &r) * &v).mod_floor(q);
        let point = (self.x.clone(), self.y.clone());
        let (cx, _) = curve.mul_add(&z1, &z2, &point).ok_or(GostError::InvalidSignature)?;
        if cx.mod_floor(q) == r { Ok(()) } else { Err(GostError::InvalidSignature) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 7091 Appendix A.1 / ГОСТ Р 34.10-2012 Appendix A.1 (esia-protocol.md §5.2).
    const D: &str = "7A929ADE789BB9BE10ED359DD39A72C11B60961F49397EEE1D19CE9891EC3B28";
    const E: &str = "2DFBC1B372D89A1188C09C52E0EEC61FCE52032AB1022E8E67ECE6672B043EE5";
    const K: &str = "77105C9B20BCD3122823C8CF6FCC7B956DE33814E95B7FE64FED924594DCEAB3";
    const R: &str = "41AA28D2F1AB148280CD9ED56FEDA41974053554A42767B83AD043FD39DC0493";
    const S: &str = "01456C64BA4642A1653C235A98A60249BCD6D3F746B631DF928014F6C5BF9C40";
    const QX: &str = "7F2B49E270DB6D90D8595BEC458B50C58585BA1D4E9B788F6689DBD8E56FD80B";
    const QY: &str = "26F1B489D6701DD185C8413A977B3CBBAF64D1C593D26627DFFB101A87FF77DA";

    fn rfc_key() -> SigningKey {
        SigningKey::from_scalar_be(ParamSet::Rfc7091Test, &h(D)).unwrap()
    }

    fn rfc_sig() -> Vec<u8> {
        [h(S), h(R)].concat()
    }

    #[test]
    fn rfc7091_public_key() {
        let (x, y) = rfc_key().verifying_key().to_affine_be();
        assert_eq!(hex::encode_upper(x), QX);
        assert_eq!(hex::encode_upper(y), QY);
    }

    #[test]
    fn rfc7091_signature() {
        let sig = rfc_key().sign_digest_with_k(&h(E), &h(K)).unwrap();
        assert_eq!(hex::encode_upper(&sig[..32]), S, "s");
        assert_eq!(hex::encode_upper(&sig[32..]), R, "r");
    }

    #[test]
    fn rfc7091_verify_and_every_bit_flip_rejected() {
        let vk = rfc_key().verifying_key();
        let sig = rfc_sig();
        vk.verify_digest(&h(E), &sig).unwrap();
        for bit in 0..sig.len() * 8 {
            let mut bad = sig.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(vk.verify_digest(&h(E), &bad).is_err(), "bit {bit}");
        }
        let mut e = h(E);
        e[31] ^= 1;
        assert!(vk.verify_digest(&e, &sig).is_err(), "other digest");
        let other = SigningKey::generate(ParamSet::Rfc7091Test).verifying_key();
        assert!(other.verify_digest(&h(E), &sig).is_err(), "other key");
    }

    #[test]
    fn sign_verify_round_trip_on_every_set() {
        for ps in ParamSet::ALL {
            let a = SigningKey::generate(ps);
            let b = SigningKey::generate(ps);
            let msg = b"client_id scope 2026.11.22 17:02:15 +0300";
            let sig = a.sign(msg);
            a.verifying_key().verify(msg, &sig).unwrap();
            assert!(a.verifying_key().verify(b"other", &sig).is_err(), "{ps:?}");
            assert!(b.verifying_key().verify(msg, &sig).is_err(), "{ps:?}");
            // Two signatures of one message differ (random k) and both verify.
            let sig2 = a.sign(msg);
            assert_ne!(sig, sig2);
            a.verifying_key().verify(msg, &sig2).unwrap();
        }
    }

    #[test]
    fn deterministic_signing_is_deterministic() {
        let key = SigningKey::generate(ParamSet::CryptoProA);
        let k = [0x42u8; 32];
        let s1 = key.sign_with_k(b"m", &k).unwrap();
        assert_eq!(s1, key.sign_with_k(b"m", &k).unwrap());
        key.verifying_key().verify(b"m", &s1).unwrap();
    }

    #[test]
    fn out_of_range_inputs_are_rejected() {
        let ps = ParamSet::CryptoProA;
        let q = ps.curve().q.to_bytes_be();
        assert!(SigningKey::from_scalar_be(ps, &[0]).is_err());
        assert!(SigningKey::from_scalar_be(ps, &[]).is_err());
        assert!(SigningKey::from_scalar_be(ps, &q).is_err());
        let key = SigningKey::from_scalar_be(ps, &[1]).unwrap();
        assert!(matches!(key.sign_with_k(b"m", &[0]), Err(GostError::InvalidNonce)));
        assert!(matches!(key.sign_with_k(b"m", &q), Err(GostError::InvalidNonce)));

        let vk = key.verifying_key();
        let sig = key.sign(b"m");
        assert!(vk.verify(b"m", &sig[..63]).is_err());
        assert!(vk.verify(b"m", &[sig.as_slice(), &[0]].concat()).is_err());
        assert!(vk.verify(b"m", &[]).is_err());
        let zero = [0u8; 32];
        let q32 = to_be32(&ps.curve().q);
        for (s, r) in [
            (&sig[..32], &zero[..]),
            (&zero[..], &sig[32..]),
            (&q32[..], &sig[32..]),
            (&sig[..32], &q32[..]),
            (&[0xff; 32][..], &sig[32..]),
        ] {
            let bad = [s, r].concat();
            assert!(matches!(vk.verify(b"m", &bad), Err(GostError::InvalidSignature)));
        }
    }

    #[test]
    fn public_key_validation() {
        let vk = SigningKey::generate(ParamSet::Tc26A).verifying_key();
        let le = vk.to_bytes_le();
        assert_eq!(VerifyingKey::from_bytes_le(ParamSet::Tc26A, &le).unwrap(), vk);
        let mut bad = le;
        bad[0] ^= 1;
        assert!(VerifyingKey::from_bytes_le(ParamSet::Tc26A, &bad).is_err());
        assert!(VerifyingKey::from_bytes_le(ParamSet::Tc26A, &le[..63]).is_err());
        // Same coordinates are not a point of another curve.
        assert!(VerifyingKey::from_bytes_le(ParamSet::CryptoProA, &le).is_err());
    }

    #[test]
    fn debug_hides_the_scalar() {
        let key = SigningKey::from_scalar_be(ParamSet::Rfc7091Test, &h(D)).unwrap();
        let dbg = format!("{key:?}");
        assert!(!dbg.to_uppercase().contains("7A929A"), "{dbg}");
        assert!(!dbg.contains(&BigUint::from_bytes_be(&h(D)).to_string()), "{dbg}");
    }
}
