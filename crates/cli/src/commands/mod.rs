//! One module per command, each with its clap arguments and its `run`. No command imports
//! another: what two share lives in `crate::support` (or `crate::wallet_web`).
//!
//! - `keycenter`: masters, personal keys, parameters, predistribution, the directory.
//! - `seal`, `open`, `forward`, `policy`, `example`: the sealed order format on files.
//! - `merchant`, `issuer`, `carrier`: one party's service alone and its operator's commands.
//! - `wallet`: the cardholder's client (buy, catalog, status, cancel, track, web).
//! - `demo`, `up`: the whole deployment in one process, once or until Ctrl-C.
//! - `bench`: the load benchmark (feature `bench`, on by default).

#[cfg(feature = "bench")]
pub mod bench;
pub mod carrier;
pub mod demo;
pub mod example;
pub mod forward;
pub mod issuer;
pub mod keycenter;
pub mod merchant;
pub mod open;
pub mod policy;
pub mod seal;
pub mod up;
pub mod wallet;
