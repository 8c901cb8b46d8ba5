//! Parameter sets and prime-field elliptic-curve arithmetic.
//!
//! Big integers come from `num-bigint`, which is not constant-time. That is acceptable for the
//! simulator and for a relying party that signs a handful of `client_secret`s per login (the
//! timing channel would have to be measured locally on the server); it is the main reason an
//! operator may prefer an HSM / CryptoPro signer in production.

use std::sync::OnceLock;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};

/// Domain parameters of a 256-bit GOST R 34.10-2012 curve `y^2 = x^3 + ax + b (mod p)`.
///
/// The values are upper-case big-endian hex, as printed in the RFCs, so they can be compared
/// with the source documents by eye.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurveConstants {
    /// Field prime `p`.
    pub p: &'static str,
    /// Coefficient `a`.
    pub a: &'static str,
    /// Coefficient `b`.
    pub b: &'static str,
    /// Prime order `q` of the base point.
    pub q: &'static str,
    /// Base point `P`, x coordinate.
    pub x: &'static str,
    /// Base point `P`, y coordinate.
    pub y: &'static str,
}

/// The 256-bit parameter sets (наборы параметров) this crate implements.
///
/// Every set is checked by the tests: base point on the curve and `q·P = O`; all but the RFC 7091
/// test curve are also checked against OpenSSL's gost engine with committed vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamSet {
    /// id-GostR3410-2001-CryptoPro-A-ParamSet (RFC 4357 §11.4). What `openssl genpkey -algorithm
    /// gost2012_256 -pkeyopt paramset:A` picks, and what CryptoPro certificates commonly use.
    CryptoProA,
    /// id-GostR3410-2001-CryptoPro-B-ParamSet (RFC 4357 §11.4).
    CryptoProB,
    /// id-GostR3410-2001-CryptoPro-C-ParamSet (RFC 4357 §11.4).
    CryptoProC,
    /// id-tc26-gost-3410-12-256-paramSetA (RFC 7836 Appendix A.2): a twisted Edwards curve in
    /// Weierstrass form, cofactor 4.
    Tc26A,
    /// The test curve of GOST R 34.10-2012 / RFC 7091 Appendix A.1 (id-GostR3410-2001-TestParamSet).
    /// Only for known-answer tests; never use it for real keys.
    Rfc7091Test,
}

const CRYPTO_PRO_A: CurveConstants = CurveConstants {
    p: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97",
    a: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD94",
    b: "00000000000000000000000000000000000000000000000000000000000000A6",
    q: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF6C611070995AD10045841B09B761B893",
    x: "0000000000000000000000000000000000000000000000000000000000000001",
    y: "8D91E471E0989CDA27DF505A453F2B7635294F2DDF23E3B122ACC99C9E9F1E14",
};

const CRYPTO_PRO_B: CurveConstants = CurveConstants {
    p: "8000000000000000000000000000000000000000000000000000000000000C99",
    a: "8000000000000000000000000000000000000000000000000000000000000C96",
    b: "3E1AF419A269A5F866A7D3C25C3DF80AE979259373FF2B182F49D4CE7E1BBC8B",
    q: "800000000000000000000000000000015F700CFFF1A624E5E497161BCC8A198F",
    x: "0000000000000000000000000000000000000000000000000000000000000001",
    y: "3FA8124359F96680B83D1C3EB2C070E5C545C9858D03ECFB744BF8D717717EFC",
};

const CRYPTO_PRO_C: CurveConstants = CurveConstants {
    p: "9B9F605F5A858107AB1EC85E6B41C8AACF846E86789051D37998F7B9022D759B",
    a: "9B9F605F5A858107AB1EC85E6B41C8AACF846E86789051D37998F7B9022D7598",
    b: "000000000000000000000000000000000000000000000000000000000000805A",
    q: "9B9F605F5A858107AB1EC85E6B41C8AA582CA3511EDDFB74F02F3A6598980BB9",
    x: "0000000000000000000000000000000000000000000000000000000000000000",
    y: "41ECE55743711A8C3CBF3783CD08C0EE4D4DC440D4641A8F366E550DFDB3BB67",
};

const TC26_A: CurveConstants = CurveConstants {
    p: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97",
    a: "C2173F1513981673AF4892C23035A27CE25E2013BF95AA33B22C656F277E7335",
    b: "295F9BAE7428ED9CCC20E7C359A9D41A22FCCD9108E17BF7BA9337A6F8AE9513",
    q: "400000000000000000000000000000000FD8CDDFC87B6635C115AF556C360C67",
    x: "91E38443A5E82C0D880923425712B2BB658B9196932E02C78B2582FE742DAA28",
    y: "32879423AB1A0375895786C4BB46E9565FDE0B5344766740AF268ADB32322E5C",
};

const RFC7091_TEST: CurveConstants = CurveConstants {
    p: "8000000000000000000000000000000000000000000000000000000000000431",
    a: "0000000000000000000000000000000000000000000000000000000000000007",
    b: "5FBFF498AA938CE739B8E022FBAFEF40563F6E6A3472FC2A514C0CE9DAE23B7E",
    q: "8000000000000000000000000000000150FE8A1892976154C59CFC193ACCF5B3",
    x: "0000000000000000000000000000000000000000000000000000000000000002",
    y: "08E2A8A0E65147D4BD6316030E16D19C85C97F0A9CA267122B96ABBCEA7E8FC8",
};

impl ParamSet {
    /// Every implemented set, for tests and for iterating over choices in configuration UIs.
    pub const ALL: [ParamSet; 5] = [
        ParamSet::CryptoProA,
        ParamSet::CryptoProB,
        ParamSet::CryptoProC,
        ParamSet::Tc26A,
        ParamSet::Rfc7091Test,
    ];

    /// The object identifier written into keys and certificates.
    pub fn oid(&self) -> &'static str {
        match self {
            ParamSet::CryptoProA => "1.2.643.2.2.35.1",
            ParamSet::CryptoProB => "1.2.643.2.2.35.2",
            ParamSet::CryptoProC => "1.2.643.2.2.35.3",
            ParamSet::Tc26A => "1.2.643.7.1.2.1.1.1",
            ParamSet::Rfc7091Test => "1.2.643.2.2.35.0",
        }
    }

    /// Maps a parameter-set OID found in a key or certificate to the curve it denotes.
    ///
    /// Besides the canonical OIDs this accepts the aliases that name the same curves: the
    /// CryptoPro "exchange" sets XchA/XchB and TC26 sets B/C/D (RFC 7836 / RFC 9215 define them
    /// as the CryptoPro curves A/B/C). Keys loaded through an alias are re-encoded with the
    /// canonical OID.
    pub fn from_oid(oid: &str) -> Option<ParamSet> {
        match oid {
            "1.2.643.2.2.35.1" | "1.2.643.2.2.36.0" | "1.2.643.7.1.2.1.1.2" => {
                Some(ParamSet::CryptoProA)
            }
            "1.2.643.2.2.35.2" | "1.2.643.7.1.2.1.1.3" => Some(ParamSet::CryptoProB),
            "1.2.643.2.2.35.3" | "1.2.643.2.2.36.1" | "1.2.643.7.1.2.1.1.4" => {
                Some(ParamSet::CryptoProC)
            }
            "1.2.643.7.1.2.1.1.1" => Some(ParamSet::Tc26A),
            "1.2.643.2.2.35.0" => Some(ParamSet::Rfc7091Test),
            _ => None,
        }
    }

    /// The curve constants as hex strings.
    pub fn constants(&self) -> &'static CurveConstants {
        match self {
            ParamSet::CryptoProA => &CRYPTO_PRO_A,
            ParamSet::CryptoProB => &CRYPTO_PRO_B,
            ParamSet::CryptoProC => &CRYPTO_PRO_C,
            ParamSet::Tc26A => &TC26_A,
            ParamSet::Rfc7091Test => &RFC7091_TEST,
        }
    }

    /// Whether keys on this set carry the digest OID inside their AlgorithmIdentifier
    /// parameters. The gost engine omits it for the TC26 sets and keeps it for the CryptoPro
    /// ones (see the committed vectors); we do the same so our encodings are byte-identical.
    pub(crate) fn writes_digest_oid(&self) -> bool {
        !matches!(self, ParamSet::Tc26A)
    }

    pub(crate) fn curve(&self) -> &'static Curve {
        static CURVES: [OnceLock<Curve>; 5] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let idx = match self {
            ParamSet::CryptoProA => 0,
            ParamSet::CryptoProB => 1,
            ParamSet::CryptoProC => 2,
            ParamSet::Tc26A => 3,
            ParamSet::Rfc7091Test => 4,
        };
        CURVES[idx].get_or_init(|| Curve::from_constants(self.constants()))
    }
}

fn from_hex(h: &str) -> BigUint {
    // Only ever called on the compile-time constants above, which the tests parse.
    BigUint::parse_bytes(h.as_bytes(), 16).expect("curve constants are valid hex")
}

/// A point in affine coordinates; `None` is the point at infinity.
pub(crate) type Affine = Option<(BigUint, BigUint)>;

/// Jacobian coordinates `(X, Y, Z)` for `(X/Z^2, Y/Z^3)`; `Z = 0` is the point at infinity.
/// Used internally so a scalar multiplication needs one field inversion instead of hundreds.
#[derive(Clone, Debug)]
struct Jacobian {
    x: BigUint,
    y: BigUint,
    z: BigUint,
}

#[derive(Debug)]
pub(crate) struct Curve {
    pub p: BigUint,
    pub a: BigUint,
    pub b: BigUint,
    pub q: BigUint,
    pub g: (BigUint, BigUint),
}

impl Curve {
    fn from_constants(c: &CurveConstants) -> Self {
        Curve {
            p: from_hex(c.p),
            a: from_hex(c.a),
            b: from_hex(c.b),
            q: from_hex(c.q),
            g: (from_hex(c.x), from_hex(c.y)),
        }
    }

    fn add_mod(&self, x: &BigUint, y: &BigUint) -> BigUint {
        (x + y) % &self.p
    }

    fn sub_mod(&self, x: &BigUint, y: &BigUint) -> BigUint {
        // Operands are already reduced, so adding p once keeps the difference non-negative.
        (x + &self.p - y) % &self.p
    }

    fn mul_mod(&self, x: &BigUint, y: &BigUint) -> BigUint {
        (x * y) % &self.p
    }

    pub(crate) fn is_on_curve(&self, x: &BigUint, y: &BigUint) -> bool {
        if x >= &self.p || y >= &self.p {
            return false;
        }
        let lhs = self.mul_mod(y, y);
        let x3 = self.mul_mod(&self.mul_mod(x, x), x);
        let rhs = self.add_mod(&self.add_mod(&x3, &self.mul_mod(&self.a, x)), &self.b);
        lhs == rhs
    }

    fn infinity() -> Jacobian {
        Jacobian { x: BigUint::one(), y: BigUint::one(), z: BigUint::zero() }
    }

    fn to_jacobian(point: &(BigUint, BigUint)) -> Jacobian {
        Jacobian { x: point.0.clone(), y: point.1.clone(), z: BigUint::one() }
    }

    fn to_affine(&self, pt: &Jacobian) -> Affine {
        if pt.z.is_zero() {
            return None;
        }
        let z_inv = self.inv_p(&pt.z)?;
        let z_inv2 = self.mul_mod(&z_inv, &z_inv);
        let z_inv3 = self.mul_mod(&z_inv2, &z_inv);
        Some((self.mul_mod(&pt.x, &z_inv2), self.mul_mod(&pt.y, &z_inv3)))
    }

    fn inv_p(&self, v: &BigUint) -> Option<BigUint> {
        v.modinv(&self.p)
    }

    fn double(&self, pt: &Jacobian) -> Jacobian {
        if pt.z.is_zero() || pt.y.is_zero() {
            return Self::infinity();
        }
        let xx = self.mul_mod(&pt.x, &pt.x);
        let yy = self.mul_mod(&pt.y, &pt.y);
        let yyyy = self.mul_mod(&yy, &yy);
        let zz = self.mul_mod(&pt.z, &pt.z);
        let s = self.mul_mod(&BigUint::from(4u8), &self.mul_mod(&pt.x, &yy));
        let m = self.add_mod(
            &self.mul_mod(&BigUint::from(3u8), &xx),
            &self.mul_mod(&self.a, &self.mul_mod(&zz, &zz)),
        );
        let x3 = self.sub_mod(&self.mul_mod(&m, &m), &self.add_mod(&s, &s));
        let y3 = self.sub_mod(
            &self.mul_mod(&m, &self.sub_mod(&s, &x3)),
            &self.mul_mod(&BigUint::from(8u8), &yyyy),
        );
        let z3 = self.mul_mod(&self.add_mod(&pt.y, &pt.y), &pt.z);
        Jacobian { x: x3, y: y3, z: z3 }
    }

    fn add(&self, p1: &Jacobian, p2: &Jacobian) -> Jacobian {
        if p1.z.is_zero() {
            return p2.clone();
        }
        if p2.z.is_zero() {
            return p1.clone();
        }
        let z1z1 = self.mul_mod(&p1.z, &p1.z);
        let z2z2 = self.mul_mod(&p2.z, &p2.z);
        let u1 = self.mul_mod(&p1.x, &z2z2);
        let u2 = self.mul_mod(&p2.x, &z1z1);
        let s1 = self.mul_mod(&p1.y, &self.mul_mod(&p2.z, &z2z2));
        let s2 = self.mul_mod(&p2.y, &self.mul_mod(&p1.z, &z1z1));
        if u1 == u2 {
            return if s1 == s2 { self.double(p1) } else { Self::infinity() };
        }
        let h = self.sub_mod(&u2, &u1);
        let r = self.sub_mod(&s2, &s1);
        let hh = self.mul_mod(&h, &h);
        let hhh = self.mul_mod(&h, &hh);
        let v = self.mul_mod(&u1, &hh);
        let x3 = self.sub_mod(&self.sub_mod(&self.mul_mod(&r, &r), &hhh), &self.add_mod(&v, &v));
        let y3 = self.sub_mod(&self.mul_mod(&r, &self.sub_mod(&v, &x3)), &self.mul_mod(&s1, &hhh));
        let z3 = self.mul_mod(&self.mul_mod(&p1.z, &p2.z), &h);
        Jacobian { x: x3, y: y3, z: z3 }
    }

    fn mul_jacobian(&self, k: &BigUint, point: &(BigUint, BigUint)) -> Jacobian {
        let base = Self::to_jacobian(point);
        let mut acc = Self::infinity();
        for i in (0..k.bits()).rev() {
            acc = self.double(&acc);
            if k.bit(i) {
                acc = self.add(&acc, &base);
            }
        }
        acc
    }

    /// `k·point` for an affine point assumed to be on the curve.
    pub(crate) fn mul(&self, k: &BigUint, point: &(BigUint, BigUint)) -> Affine {
        self.to_affine(&self.mul_jacobian(k, point))
    }

    /// `k1·G + k2·point`.
    pub(crate) fn mul_add(&self, k1: &BigUint, k2: &BigUint, point: &(BigUint, BigUint)) -> Affine {
        let a = self.mul_jacobian(k1, &self.g);
        let b = self.mul_jacobian(k2, point);
        self.to_affine(&self.add(&a, &b))
    }

    /// Reduces `v` modulo `q` and maps zero to one, as GOST R 34.10-2012 §6.1 step 2 requires
    /// for the hash integer `e`.
    pub(crate) fn hash_to_e(&self, v: &BigUint) -> BigUint {
        let e = v.mod_floor(&self.q);
        if e.is_zero() { BigUint::one() } else { e }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_consistent() {
        for ps in ParamSet::ALL {
            let c = ps.curve();
            assert!(c.is_on_curve(&c.g.0, &c.g.1), "{ps:?}: base point not on curve");
            assert!(c.mul(&c.q, &c.g).is_none(), "{ps:?}: q*G is not infinity");
            // A wrong q that still had q*G = O would have to be a multiple of the true order;
            // (q-1)*G = -G rules out the trivial mistakes.
            let minus_g = c.mul(&(&c.q - 1u8), &c.g);
            let neg_y = &c.p - &c.g.1;
            assert_eq!(minus_g, Some((c.g.0.clone(), neg_y % &c.p)), "{ps:?}");
            assert_eq!(ParamSet::from_oid(ps.oid()), Some(ps));
            assert_eq!(c.p.bits(), 256, "{ps:?}");
        }
    }

    #[test]
    fn small_multiples_agree_with_repeated_addition() {
        for ps in ParamSet::ALL {
            let c = ps.curve();
            let g = Curve::to_jacobian(&c.g);
            let mut acc = Curve::infinity();
            for k in 1u32..=9 {
                acc = c.add(&acc, &g);
                assert_eq!(c.to_affine(&acc), c.mul(&BigUint::from(k), &c.g), "{ps:?} k={k}");
            }
        }
    }

    #[test]
    fn wrong_constants_are_caught() {
        // Guards the guard: a curve with a perturbed b must fail the same checks.
        let mut c = Curve::from_constants(ParamSet::CryptoProA.constants());
        c.b += 1u8;
        assert!(!c.is_on_curve(&c.g.0, &c.g.1));
    }
}
