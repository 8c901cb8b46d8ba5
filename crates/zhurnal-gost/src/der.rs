//! The small subset of DER that PKCS#8, SubjectPublicKeyInfo and X.509 certificates need.
//!
//! Hand-written instead of pulling in `der`/`x509-cert`: GOST keys need non-standard handling
//! (little-endian octet strings inside the key containers) that the generic crates leave to the
//! caller anyway, and the structures we touch are few and fixed. The reader never recurses and
//! bounds-checks every length, so hostile input can only produce errors.

use crate::GostError;

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;
pub(crate) const TAG_BOOLEAN: u8 = 0x01;

/// Context-specific constructed tag `[n]`.
pub(crate) const fn context(n: u8) -> u8 {
    0xa0 | n
}

fn der_err(msg: &str) -> GostError {
    GostError::Der(msg.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Writing

pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

pub(crate) fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SET, &parts.concat())
}

/// INTEGER from an unsigned big-endian magnitude (minimal encoding, positive).
pub(crate) fn uint(be: &[u8]) -> Vec<u8> {
    let start = be.iter().take_while(|b| **b == 0).count();
    let mut content = Vec::with_capacity(be.len() + 1);
    match be.get(start) {
        None => content.push(0),
        Some(first) => {
            if first & 0x80 != 0 {
                content.push(0);
            }
            content.extend_from_slice(&be[start..]);
        }
    }
    tlv(TAG_INTEGER, &content)
}

pub(crate) fn octet_string(content: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, content)
}

/// BIT STRING with no unused bits.
pub(crate) fn bit_string(content: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(content.len() + 1);
    c.push(0);
    c.extend_from_slice(content);
    tlv(TAG_BIT_STRING, &c)
}

/// Encodes a dotted OID. Only used with the crate's own constants, which are well-formed.
pub(crate) fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').filter_map(|a| a.parse().ok()).collect();
    let mut content = Vec::new();
    if arcs.len() >= 2 {
        encode_base128(arcs[0] * 40 + arcs[1], &mut content);
        for arc in &arcs[2..] {
            encode_base128(*arc, &mut content);
        }
    }
    tlv(TAG_OID, &content)
}

fn encode_base128(mut v: u64, out: &mut Vec<u8>) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    let last = tmp.len() - 1;
    for (j, b) in tmp.iter().enumerate().skip(i) {
        out.push(if j == last { *b } else { b | 0x80 });
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// One decoded TLV.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The complete encoding including tag and length (needed to hash the TBSCertificate).
    pub raw: &'a [u8],
}

/// Sequential reader over the contents of one constructed value.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    pub(crate) fn read_any(&mut self) -> Result<Tlv<'a>, GostError> {
        let data = self.data;
        let (&tag, rest) = data.split_first().ok_or_else(|| der_err("unexpected end"))?;
        if tag & 0x1f == 0x1f {
            return Err(der_err("high tag numbers are not supported"));
        }
        let (&first, rest) = rest.split_first().ok_or_else(|| der_err("missing length"))?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 {
                return Err(der_err("indefinite length is not DER"));
            }
            if n > 4 {
                return Err(der_err("length too large"));
            }
            let bytes = rest.get(..n).ok_or_else(|| der_err("truncated length"))?;
            let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        let content = rest.get(..len).ok_or_else(|| der_err("truncated value"))?;
        let header = data.len() - rest.len();
        let total = header + len;
        self.data = &data[total..];
        Ok(Tlv { tag, content, raw: &data[..total] })
    }

    pub(crate) fn read(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, GostError> {
        let t = self.read_any()?;
        if t.tag != tag {
            return Err(GostError::Der(format!(
                "expected {what} (tag 0x{tag:02x}), found tag 0x{:02x}",
                t.tag
            )));
        }
        Ok(t)
    }

    /// Reads a constructed value and returns a reader over its contents.
    pub(crate) fn read_nested(&mut self, tag: u8, what: &str) -> Result<Reader<'a>, GostError> {
        Ok(Reader::new(self.read(tag, what)?.content))
    }

    pub(crate) fn read_oid(&mut self) -> Result<String, GostError> {
        decode_oid(self.read(TAG_OID, "OBJECT IDENTIFIER")?.content)
    }

    pub(crate) fn finish(&self, what: &str) -> Result<(), GostError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(GostError::Der(format!("trailing data after {what}")))
        }
    }
}

/// Parses exactly one TLV that must fill `data`.
pub(crate) fn parse_single<'a>(data: &'a [u8], tag: u8, what: &str) -> Result<Tlv<'a>, GostError> {
    let mut r = Reader::new(data);
    let t = r.read(tag, what)?;
    r.finish(what)?;
    Ok(t)
}

/// Parses exactly one TLV of any tag that must fill `data`.
pub(crate) fn parse_single_any(data: &[u8]) -> Result<Tlv<'_>, GostError> {
    let mut r = Reader::new(data);
    let t = r.read_any()?;
    r.finish("value")?;
    Ok(t)
}

/// INTEGER contents as an unsigned big-endian magnitude; negative values are rejected.
pub(crate) fn uint_content(content: &[u8]) -> Result<&[u8], GostError> {
    match content.first() {
        None => Err(der_err("empty INTEGER")),
        Some(b) if b & 0x80 != 0 => Err(der_err("negative INTEGER")),
        Some(_) => Ok(content),
    }
}

/// BIT STRING contents without the unused-bits octet; only whole octets are accepted.
pub(crate) fn bit_string_content(content: &[u8]) -> Result<&[u8], GostError> {
    match content.split_first() {
        Some((0, rest)) => Ok(rest),
        Some(_) => Err(der_err("BIT STRING with unused bits")),
        None => Err(der_err("empty BIT STRING")),
    }
}

pub(crate) fn decode_oid(content: &[u8]) -> Result<String, GostError> {
    if content.is_empty() {
        return Err(der_err("empty OBJECT IDENTIFIER"));
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    let mut in_arc = false;
    for &b in content {
        if acc > (u64::MAX >> 7) {
            return Err(der_err("OBJECT IDENTIFIER arc too large"));
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        in_arc = true;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
            in_arc = false;
        }
    }
    if in_arc {
        return Err(der_err("truncated OBJECT IDENTIFIER"));
    }
    Ok(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn oid_round_trip() {
        for o in ["1.2.643.7.1.1.1.1", "1.2.643.2.2.35.1", "2.5.4.3", "1.2.840.113549.1.1.1"] {
            let enc = oid(o);
            let t = parse_single(&enc, TAG_OID, "oid").unwrap();
            assert_eq!(decode_oid(t.content).unwrap(), o);
        }
        // 1.2.643.7.1.1.1.1 as OpenSSL writes it.
        assert_eq!(hex::encode(oid("1.2.643.7.1.1.1.1")), "06082a85030701010101");
    }

    #[test]
    fn long_lengths() {
        let content = vec![7u8; 300];
        let enc = tlv(TAG_OCTET_STRING, &content);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let t = parse_single(&enc, TAG_OCTET_STRING, "x").unwrap();
        assert_eq!(t.content, &content[..]);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(uint(&[0, 0, 0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(&[0, 0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(uint(&[]), vec![0x02, 0x01, 0x00]);
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert!(Reader::new(&[0x30, 0x05, 0x01]).read_any().is_err());
        assert!(Reader::new(&[0x30, 0x80]).read_any().is_err());
        assert!(Reader::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).read_any().is_err());
        assert!(decode_oid(&[0x2a, 0x85]).is_err());
    }
}
