//! Small wire-format helpers shared by the relying party and the simulator: the ESIA
//! timestamp, PKCE, query encoding and constant-time comparison.

use chrono::{DateTime, FixedOffset, Utc};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::EsiaError;

/// `yyyy.MM.dd HH:mm:ss +0000` — ESIA's `timestamp` (PHP `date('Y.m.d H:i:s O')`), always sent
/// in UTC by us.
pub fn format_timestamp(now: DateTime<Utc>) -> String {
    now.format("%Y.%m.%d %H:%M:%S +0000").to_string()
}

/// Parses `yyyy.MM.dd HH:mm:ss ±hhmm` strictly: exactly that shape, 25 characters. A `+`
/// that was not percent-encoded arrives as a space and is refused here, as ESIA would.
pub fn parse_timestamp(s: &str) -> Result<DateTime<FixedOffset>, EsiaError> {
    const SHAPE: &[u8] = b"dddd.dd.dd dd:dd:dd sdddd";
    let b = s.as_bytes();
    let ok = b.len() == SHAPE.len()
        && b.iter().zip(SHAPE).all(|(c, want)| match want {
            b'd' => c.is_ascii_digit(),
            b's' => *c == b'+' || *c == b'-',
            other => c == other,
        });
    if !ok {
        return Err(EsiaError::Protocol(format!(
            "timestamp {s:?} is not in the form yyyy.MM.dd HH:mm:ss +hhmm"
        )));
    }
    DateTime::parse_from_str(s, "%Y.%m.%d %H:%M:%S %z")
        .map_err(|e| EsiaError::Protocol(format!("timestamp {s:?}: {e}")))
}

/// A PKCE S256 challenge: base64url(SHA-256(verifier)) without padding (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    zhurnal_gost::base64url_nopad(&Sha256::digest(verifier.as_bytes()))
}

/// A fresh PKCE verifier: 32 random bytes, base64url (43 characters of the unreserved set).
pub fn pkce_verifier() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    zhurnal_gost::base64url_nopad(&bytes)
}

/// Percent-encodes everything except RFC 3986 unreserved characters, so a space is `%20` and
/// a `+` is `%2B` — unambiguous for both form decoders and plain URI decoders.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// `k1=v1&k2=v2…` with [`percent_encode`]; used for query strings and form bodies.
pub fn encode_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Compares secrets (`state`, PKCE values) without an early exit on the first differing byte.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn timestamp_has_the_esia_format() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 16, 5, 31).unwrap();
        assert_eq!(format_timestamp(t), "2026.11.22 16:05:31 +0000");
        let t = Utc.with_ymd_and_hms(2027, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_timestamp(t), "2027.01.02 03:04:05 +0000");
        assert_eq!(parse_timestamp(&format_timestamp(t)).unwrap(), t);
    }

    #[test]
    fn timestamp_parsing_is_strict() {
        let t = parse_timestamp("2026.11.22 17:02:15 +0300").unwrap();
        assert_eq!(t.with_timezone(&Utc), Utc.with_ymd_and_hms(2026, 11, 22, 14, 2, 15).unwrap());
        for bad in [
            "2026.11.22 17:02:15  0300", // the un-encoded `+` decoded to a space
            "2026-11-22T17:02:15+0300",
            "2026.11.22 17:02:15 +03:00",
            "2026.11.22 17:02:15",
            "2026.13.22 17:02:15 +0300",
            "2026.11.22 17:02:15 +0300 ",
            "",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v = pkce_verifier();
        assert_eq!(v.len(), 43);
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(v, pkce_verifier());
    }

    #[test]
    fn percent_encoding_encodes_plus_and_space() {
        assert_eq!(
            percent_encode("2026.11.22 16:05:31 +0000"),
            "2026.11.22%2016%3A05%3A31%20%2B0000"
        );
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("я"), "%D1%8F");
        assert_eq!(encode_pairs([("a b", "c&d"), ("e", "")]), "a%20b=c%26d&e=");
        // Our encoding round-trips through a form decoder (what ESIA and axum use).
        let q = encode_pairs([("timestamp", "2026.11.22 16:05:31 +0000")]);
        let decoded: Vec<(String, String)> =
            url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        assert_eq!(decoded[0].1, "2026.11.22 16:05:31 +0000");
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
        assert!(ct_eq("", ""));
    }
}
