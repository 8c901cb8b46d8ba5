//! PEM armour (RFC 7468): just enough to read what OpenSSL writes and to write the same.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::GostError;

pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 output is ASCII, so splitting on byte boundaries is safe.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Finds the first block labelled `label` and returns its decoded contents. Text around the
/// block (OpenSSL's "Bag Attributes", a certificate next to its key, ...) is ignored.
pub(crate) fn decode(text: &str, label: &str) -> Result<Vec<u8>, GostError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or_else(|| GostError::Pem(format!("no \"{begin}\" line")))?
        + begin.len();
    let rest = &text[start..];
    let stop = rest.find(&end).ok_or_else(|| GostError::Pem(format!("no \"{end}\" line")))?;
    let body: String = rest[..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if body.contains(':') {
        // Encrypted legacy PEM ("Proc-Type: 4,ENCRYPTED") is not supported.
        return Err(GostError::Pem("PEM headers (encrypted keys) are not supported".into()));
    }
    STANDARD.decode(body.as_bytes()).map_err(|e| GostError::Pem(format!("bad base64: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let data: Vec<u8> = (0..=255).collect();
        let pem = encode("CERTIFICATE", &data);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(decode(&format!("junk\n{pem}more"), "CERTIFICATE").unwrap(), data);
        assert!(decode(&pem, "PRIVATE KEY").is_err());
        assert!(decode("-----BEGIN X-----\n!!!\n-----END X-----\n", "X").is_err());
        assert!(decode("-----BEGIN X-----\nAAAA\n", "X").is_err());
    }
}
