//! ESIA (ЕСИА, Госуслуги) for Zhurnal: the relying party and the bundled simulator.
//!
//! ESIA is the only way into the journal. This crate implements the v2 protocol of
//! `docs/esia.md` / `esia-protocol.md` with GOST R 34.10-2012 signatures from `zhurnal-gost`,
//! and a simulator ([`sim`]) that speaks the same wire format on loopback for the demo and
//! the tests.
//!
//! # The login flow
//!
//! 1. **Authorization request** — [`IdentityProvider::authorization_request`] builds
//!    `GET {base}/aas/oauth2/v2/ac?…` with `client_id`, `scope` (plus the kid scopes for a
//!    parent), `response_type=code`, a fresh UUID v4 `state`, `timestamp`
//!    (`yyyy.MM.dd HH:mm:ss +0000`, percent-encoded so the `+` survives), `access_type=online`,
//!    `client_certificate_hash`, PKCE `code_challenge` (S256) and `client_secret` =
//!    base64url(raw GOST signature over `client_id + scope + scope_org + timestamp + state +
//!    redirect_uri`). The web crate stores the returned `state` and `code_verifier` against
//!    the browser's pre-login cookie and redirects the browser.
//! 2. **Callback** — ESIA returns to `redirect_uri` with `code` and `state`, or with `error`
//!    and `error_description` (`ESIA-0070xx: …`). [`IdentityProvider::parse_callback`] checks
//!    the state in constant time and turns errors into [`EsiaError`]s.
//! 3. **Token exchange** — [`IdentityProvider::exchange_code`] posts to
//!    `{base}/aas/oauth2/v3/te` with a new `state`, a new signature that also covers `code`,
//!    the `code_verifier` and `client_certificate_hash`; it refuses a code it has already
//!    exchanged before ESIA sees it. Both JWTs are then verified: GOST signature with ESIA's
//!    configured certificate (`alg` from an allow-list; `none` never), `iss` exact, `aud` /
//!    `client_id`, `exp`/`nbf`/`iat` with leeway, the echoed `state`, and
//!    `sub` == `urn:esia:sbj_id`. The account is confirmed only if the id_token's
//!    `urn:esia:sbj` carries `urn:esia:sbj:is_tru`. The result, [`VerifiedLogin`], is never
//!    built from unverified claims.
//! 4. **Person data** — [`IdentityProvider::person`], [`IdentityProvider::contacts`] and
//!    [`IdentityProvider::kids`] call `/rs/prns/{oid}`, `/ctts?embed=(elements)` and
//!    `/kids?embed=(elements)` with the bearer token. [`EsiaPerson::trusted`] is true only if
//!    the id_token and `/rs/prns` agree.
//! 5. **Logout** — the journal ends its own session, then sends the browser to
//!    [`IdentityProvider::logout_url`].
//!
//! Every failure is an [`EsiaError`] with a stable [`EsiaError::reason_code`] for the audit
//! log and a Russian [`EsiaError::user_message_ru`] for the refusal page.
//!
//! # Unconfirmed facts, kept as configuration
//!
//! We have not read the normative «Методические рекомендации по использованию ЕСИА»; these
//! facts come from open-source clients and are therefore configuration or one table:
//!
//! - **Kid scope names** (`kid_fullname kid_birthdate kid_snils kid_gender`):
//!   [`EsiaConfig::kid_scopes`].
//! - **JWT `alg` strings** (`GOST3410_2012_256`): [`EsiaConfig::jwt_algorithms`]. RS256 is
//!   not supported.
//! - **Error codes** (`ESIA-0070xx` meanings, which ones are transient): the [`codes`] table,
//!   the only place either side looks them up.
//! - **`client_certificate_hash`** spelling (case, byte order as `cpverify` prints it):
//!   [`EsiaConfig::certificate_hash`] overrides the computed Streebog-256 of the DER.
//! - **Issuer**, hosts and timeouts: [`EsiaConfig::issuer`], [`EsiaConfig::base_url`],
//!   [`EsiaConfig::leeway_seconds`], [`EsiaConfig::http_timeout_seconds`].
//! - **PKCE support by ESIA** is likely (errors 007039/007040 exist) but unconfirmed; we always
//!   send S256.
//! - The spelling of granted scopes inside the access token (`fullname?oid=…`) and of
//!   `urn:esia:sbj:is_tru` (boolean or string) are read tolerantly.
//!
//! # Signing
//!
//! `client_secret` goes through the [`Signer`] trait: [`GostFileSigner`] signs in-process
//! with a PKCS#8 key; [`CommandSigner`] runs an external program (CryptoPro wrapper, HSM
//! client) that reads the message on stdin and writes the raw 64-byte signature to stdout —
//! see [`SignerConfig::Command`].
//!
//! # Not implemented
//!
//! The v1 protocol (detached CMS `client_secret`), refresh tokens (`access_type=offline`) and
//! RS256 tokens.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod codes;
mod config;
mod error;
pub mod jwt;
mod rp;
mod signer;
pub mod sim;
pub mod wire;

pub use config::{
    DEFAULT_JWT_ALG, EsiaConfig, PRODUCTION_ISSUER, SignerConfig, default_jwt_algorithms,
    default_kid_scopes, default_scopes,
};
pub use error::EsiaError;
pub use rp::{
    AUTHORIZE_PATH, AuthorizationRequest, EsiaClient, EsiaContact, EsiaKid, EsiaPerson,
    IdentityProvider, LOGOUT_PATH, TOKEN_PATH, VerifiedLogin,
};
pub use signer::{
    COMMAND_SIGNER_TIMEOUT, CommandSigner, GostFileSigner, Signer, signer_from_config,
};
