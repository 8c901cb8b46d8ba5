//! Error type shared by every part of the crate.

/// Everything that can go wrong when loading keys, parsing certificates or checking signatures.
///
/// Variants carry no key material, so errors are safe to log.
#[derive(Debug, thiserror::Error)]
pub enum GostError {
    /// A private scalar outside `[1, q-1]`, or a public point that is not a valid curve point
    /// of prime order `q`.
    #[error("invalid GOST R 34.10-2012 key")]
    InvalidKey,
    /// The signature has the wrong length, `r`/`s` out of range, or does not verify.
    #[error("invalid GOST R 34.10-2012 signature")]
    InvalidSignature,
    /// A caller-supplied nonce `k` outside `[1, q-1]`, or one that yields `r = 0` or `s = 0`.
    #[error("invalid signing nonce k")]
    InvalidNonce,
    /// Malformed or unexpected DER structure.
    #[error("DER error: {0}")]
    Der(String),
    /// Malformed PEM armour.
    #[error("PEM error: {0}")]
    Pem(String),
    /// Malformed base64 / base64url text.
    #[error("base64 error: {0}")]
    Base64(String),
    /// A key or parameter set we do not implement (e.g. 512-bit keys, GOST R 34.10-2001 keys).
    #[error("unsupported algorithm or parameter set: {0}")]
    UnsupportedParamSet(String),
    /// A caller-supplied argument that cannot be encoded (e.g. an empty common name).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}
