//! The storage traits against SQLite (a temporary file) and PostgreSQL (a fresh schema on the
//! server at WARIFU_TEST_POSTGRES; set WARIFU_SKIP_POSTGRES=1 to skip when it is absent).
#![allow(missing_docs, clippy::unwrap_used)]

mod carrier;
mod common;
mod crash;
mod hotpath;
mod issuer;
mod merchant;
mod platform;
