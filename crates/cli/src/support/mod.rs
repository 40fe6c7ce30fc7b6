//! What several commands share; nothing here imports a command.
//!
//! - `flags`: shared clap flags (key scheme and cache, sealed-order format, disclosure ceiling).
//! - `passphrase`: passphrase flags and reading one (file, environment, prompt).
//! - `files`: atomic writes, reading files or standard input, JSON, policies, sealed orders.
//! - `keystore`: key files, the key center's files and register (uses `files`, `passphrase`).
//! - `format`: writing to standard output; figures in words.
//! - `logging`: the log subscriber.
//! - `service`: the party commands' plumbing (store, keys, operator token and routes).
//! - `demo_cardholder`: the demo's cardholder, card and deployment storage (`demo`, `up`).
//! - `profile`: the cardholder's profile file (`wallet`, `up`).
//! - `tls`: the HTTPS flags (`--tls-cert`, `--tls-key`, `--tls-ca`) of every command.

pub mod demo_cardholder;
pub mod files;
pub mod flags;
pub mod format;
pub mod keystore;
pub mod logging;
pub mod passphrase;
pub mod profile;
pub mod service;
pub mod tls;
