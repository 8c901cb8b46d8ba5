//! Compact JWS tokens signed with GOST R 34.10-2012-256, as ESIA issues them.
//!
//! A token is `base64url(header).base64url(payload).base64url(signature)`, where the signature
//! is the raw 64-byte GOST signature (`s ‖ r`, big-endian, see `zhurnal-gost`) over the ASCII
//! bytes of `header.payload`. The header's `alg` string for GOST is **unconfirmed**
//! (`GOST3410_2012_256` by default), so the accepted set is configuration; `none` is refused
//! whatever the configuration says.
//!
//! Claims are reachable only through [`verify`], which checks the signature first: there is no
//! way in this API to read an unverified payload.

use serde_json::{Map, Value};
use zhurnal_gost::{SIGNATURE_LEN, SigningKey, VerifyingKey, base64url_decode, base64url_nopad};

use crate::EsiaError;

/// Longer tokens are refused before any decoding (ESIA's are a few kilobytes).
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

const fn invalid(reason: &'static str) -> EsiaError {
    EsiaError::InvalidToken { reason }
}

/// The claims of a token whose signature has been verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl VerifiedClaims {
    /// The JOSE header.
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// All claims.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// One claim.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// A string claim.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim (seconds since the epoch); fractional values are truncated.
    pub fn numeric_date(&self, name: &str) -> Result<Option<i64>, EsiaError> {
        match self.claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or(invalid("malformed")),
        }
    }

    /// An identifier claim that ESIA may send as a number or a string (`urn:esia:sbj_id`,
    /// `sub`), as a string.
    pub fn id(&self, name: &str) -> Option<String> {
        id_value(self.claims.get(name)?)
    }

    /// Checks `exp` (required), `nbf` and `iat` (optional) against `now` with `leeway`
    /// seconds of clock skew either way.
    pub fn check_times(&self, now: i64, leeway: i64) -> Result<(), EsiaError> {
        let exp = self.numeric_date("exp")?.ok_or(invalid("malformed"))?;
        if exp.saturating_add(leeway) <= now {
            return Err(invalid("expired"));
        }
        for name in ["nbf", "iat"] {
            if let Some(t) = self.numeric_date(name)?
                && t > now.saturating_add(leeway)
            {
                return Err(invalid("not_yet_valid"));
            }
        }
        Ok(())
    }
}

/// A JSON number or non-empty string as an identifier string.
pub(crate) fn id_value(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn decode_json_segment(seg: &str) -> Result<Map<String, Value>, EsiaError> {
    // JWS forbids padding; a padded segment is not a token we issued or ESIA did.
    if seg.is_empty() || seg.contains('=') {
        return Err(invalid("malformed"));
    }
    let bytes = base64url_decode(seg).map_err(|_| invalid("malformed"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid("malformed")),
    }
}

/// Verifies the token's structure, `alg` and signature, and returns its claims.
/// Issuer, audience and time checks are the caller's (they depend on the token kind).
pub fn verify(
    token: &str,
    key: &VerifyingKey,
    allowed_algs: &[String],
) -> Result<VerifiedClaims, EsiaError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || !token.is_ascii() {
        return Err(invalid("malformed"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("malformed"));
    };
    let header = decode_json_segment(h)?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or(invalid("malformed"))?;
    if alg.eq_ignore_ascii_case("none") || !allowed_algs.iter().any(|a| a == alg) {
        return Err(invalid("alg_not_allowed"));
    }
    // We implement no JWS extensions, so a critical one can never be honoured (RFC 7515 §4.1.11).
    if header.contains_key("crit") {
        return Err(invalid("malformed"));
    }
    if s.contains('=') {
        return Err(invalid("malformed"));
    }
    let sig = base64url_decode(s).map_err(|_| invalid("malformed"))?;
    if sig.len() != SIGNATURE_LEN {
        return Err(invalid("bad_signature"));
    }
    let signing_input = &token[..h.len() + 1 + p.len()];
    key.verify(signing_input.as_bytes(), &sig).map_err(|_| invalid("bad_signature"))?;
    // Only now is the payload worth parsing.
    let claims = decode_json_segment(p)?;
    Ok(VerifiedClaims { header, claims })
}

/// Issues a token: `header` must carry the `alg` the verifier expects.
pub fn sign(header: &Value, claims: &Value, key: &SigningKey) -> String {
    let signing_input = format!(
        "{}.{}",
        base64url_nopad(header.to_string().as_bytes()),
        base64url_nopad(claims.to_string().as_bytes())
    );
    let sig = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", base64url_nopad(&sig))
}

/// An unsecured token (`alg: none`, empty signature), for the simulator's attack fault and
/// for tests that check it is refused.
pub fn unsigned(claims: &Value) -> String {
    let header = serde_json::json!({"alg": "none", "typ": "JWT"});
    format!(
        "{}.{}.",
        base64url_nopad(header.to_string().as_bytes()),
        base64url_nopad(claims.to_string().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use zhurnal_gost::ParamSet;

    fn algs() -> Vec<String> {
        vec!["GOST3410_2012_256".into()]
    }

    fn header() -> Value {
        json!({"alg": "GOST3410_2012_256", "typ": "JWT", "sbt": "access", "ver": 1})
    }

    fn key() -> SigningKey {
        SigningKey::generate(ParamSet::CryptoProA)
    }

    fn reason(r: Result<VerifiedClaims, EsiaError>) -> &'static str {
        match r {
            Err(EsiaError::InvalidToken { reason }) => reason,
            other => panic!("expected InvalidToken, got {other:?}"),
        }
    }

    #[test]
    fn round_trip() {
        let k = key();
        let t = sign(&header(), &json!({"sub": 1000, "iss": "x", "exp": 10}), &k);
        assert_eq!(t.split('.').count(), 3);
        let c = verify(&t, &k.verifying_key(), &algs()).unwrap();
        assert_eq!(c.id("sub").as_deref(), Some("1000"));
        assert_eq!(c.str("iss"), Some("x"));
        assert_eq!(c.numeric_date("exp").unwrap(), Some(10));
        assert_eq!(c.header()["sbt"], "access");
        assert_eq!(c.claims().len(), 3);
    }

    #[test]
    fn signature_is_over_the_ascii_header_dot_payload() {
        let k = key();
        let t = sign(&header(), &json!({"a": 1}), &k);
        let (input, sig) = t.rsplit_once('.').unwrap();
        let sig = base64url_decode(sig).unwrap();
        k.verifying_key().verify(input.as_bytes(), &sig).unwrap();
    }

    #[test]
    fn another_key_or_a_changed_payload_is_a_bad_signature() {
        let k = key();
        let t = sign(&header(), &json!({"sub": "1"}), &k);
        assert_eq!(reason(verify(&t, &key().verifying_key(), &algs())), "bad_signature");
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], base64url_nopad(br#"{"sub":"2"}"#), parts[2]);
        assert_eq!(reason(verify(&forged, &k.verifying_key(), &algs())), "bad_signature");
        let short = format!("{}.{}.{}", parts[0], parts[1], base64url_nopad(&[1, 2, 3]));
        assert_eq!(reason(verify(&short, &k.verifying_key(), &algs())), "bad_signature");
        let empty = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(reason(verify(&empty, &k.verifying_key(), &algs())), "bad_signature");
    }

    #[test]
    fn alg_none_and_unknown_algs_are_refused() {
        let k = key();
        let vk = k.verifying_key();
        let none = unsigned(&json!({"sub": "1"}));
        assert_eq!(reason(verify(&none, &vk, &algs())), "alg_not_allowed");
        // Even a configuration that lists "none" cannot enable it.
        let with_none = vec!["none".to_owned(), "NONE".to_owned()];
        assert_eq!(reason(verify(&none, &vk, &with_none)), "alg_not_allowed");
        let none_sig = format!("{}{}", none, base64url_nopad(&[0u8; 64]));
        assert_eq!(reason(verify(&none_sig, &vk, &algs())), "alg_not_allowed");
        for alg in ["RS256", "HS256", "gost3410_2012_256", ""] {
            let t = sign(&json!({"alg": alg}), &json!({}), &k);
            assert_eq!(reason(verify(&t, &vk, &algs())), "alg_not_allowed", "{alg}");
        }
        // A different configured string is honoured.
        let t = sign(&json!({"alg": "GOST3410_2012"}), &json!({}), &k);
        assert!(verify(&t, &vk, &["GOST3410_2012".to_owned()]).is_ok());
        let t = sign(&json!({"typ": "JWT"}), &json!({}), &k);
        assert_eq!(reason(verify(&t, &vk, &algs())), "malformed");
        let t = sign(&json!({"alg": "GOST3410_2012_256", "crit": ["x"]}), &json!({}), &k);
        assert_eq!(reason(verify(&t, &vk, &algs())), "malformed");
    }

    #[test]
    fn malformed_tokens() {
        let k = key();
        let vk = k.verifying_key();
        let good = sign(&header(), &json!({"a": 1}), &k);
        let parts: Vec<&str> = good.split('.').collect();
        let not_object = sign(&header(), &json!([1, 2]), &k);
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let padded = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
        let cases = [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "..",
            "!!!.e30.AA",
            long.as_str(),
            padded.as_str(),
            not_object.as_str(),
        ];
        for t in cases {
            assert_eq!(reason(verify(t, &vk, &algs())), "malformed", "{t:.40}");
        }
        let header_not_json = format!("{}.{}.{}", base64url_nopad(b"{"), parts[1], parts[2]);
        assert_eq!(reason(verify(&header_not_json, &vk, &algs())), "malformed");
        let extra = format!("{good}.");
        assert_eq!(reason(verify(&extra, &vk, &algs())), "malformed");
    }

    #[test]
    fn time_checks_with_leeway() {
        let k = key();
        let vk = k.verifying_key();
        let c = |claims: Value| verify(&sign(&header(), &claims, &k), &vk, &algs()).unwrap();
        let now = 1_000_000;
        let t = c(json!({"exp": now + 10, "nbf": now - 10, "iat": now - 10}));
        t.check_times(now, 60).unwrap();
        let r = |res: Result<(), EsiaError>| match res {
            Err(EsiaError::InvalidToken { reason }) => reason,
            other => panic!("{other:?}"),
        };
        // Expired, but within leeway: accepted; beyond: refused.
        c(json!({"exp": now - 30})).check_times(now, 60).unwrap();
        assert_eq!(r(c(json!({"exp": now - 61})).check_times(now, 60)), "expired");
        assert_eq!(r(c(json!({"exp": now})).check_times(now, 0)), "expired");
        assert_eq!(
            r(c(json!({"exp": now + 999, "nbf": now + 61})).check_times(now, 60)),
            "not_yet_valid"
        );
        assert_eq!(
            r(c(json!({"exp": now + 999, "iat": now + 61})).check_times(now, 60)),
            "not_yet_valid"
        );
        c(json!({"exp": now + 999, "nbf": now + 59})).check_times(now, 60).unwrap();
        assert_eq!(r(c(json!({"nbf": now})).check_times(now, 60)), "malformed");
        assert_eq!(r(c(json!({"exp": "soon"})).check_times(now, 60)), "malformed");
        c(json!({"exp": (now + 5) as f64 + 0.5})).check_times(now, 0).unwrap();
    }

    #[test]
    fn ids_may_be_numbers_or_strings() {
        assert_eq!(id_value(&json!(1000299654)).as_deref(), Some("1000299654"));
        assert_eq!(id_value(&json!("1000299654")).as_deref(), Some("1000299654"));
        assert_eq!(id_value(&json!("")), None);
        assert_eq!(id_value(&json!(1.5)), None);
        assert_eq!(id_value(&json!(null)), None);
    }
}
