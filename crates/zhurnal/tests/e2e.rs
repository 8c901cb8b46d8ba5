//! End to end: the real router and the bundled ESIA simulator over loopback HTTP, seeded with
//! the demo school, driven like a browser (cookies, redirects). One binary for all e2e tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod admin;
mod authz;
mod bench;
mod browser;
mod cli;
mod journal;
mod login;
mod pages;

mod diary;
mod import;
mod security;
// Area `integrations`.
mod integrations;
