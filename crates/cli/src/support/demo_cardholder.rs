//! The demo's cardholder (Hanako), her card and the gift's addressee, and the local deployment's
//! runtime and storage: what `demo` and `up` share.

use anyhow::{Context, Result};
use warifu_core::PartyId;
use warifu_core::order::Expiry;
use warifu_services::dev::local::{Local, Storage};

/// The demo cardholder.
pub const CARDHOLDER: &str = "cardholder:hanako@mail.example";
/// The demo card (a test number that passes the Luhn check).
pub const CARD_NUMBER: &str = "4539148803436467";
pub const CARD_NAME: &str = "Hanako Yamada";
pub const CARD_EXPIRY: Expiry = Expiry {
    year: 2031,
    month: 7,
};
pub const CARD_LIMIT: u64 = 100_000;
/// The gift's addressee and address: only the carrier may learn them.
pub const ADDRESSEE: &str = "Taro Suzuki";
pub const ADDRESS: &str = "2-2-2 Umeda, Kita-ku, Osaka 530-0001";

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn storage(postgres: Option<&str>, prefix: &str) -> Storage {
    match postgres {
        Some(url) => Storage::Postgres {
            url: url.to_owned(),
            schema_prefix: prefix.to_owned(),
        },
        None => Storage::Sqlite,
    }
}

/// Enrolls the demo cardholder's card at the issuer as `card-1`, unless a data directory
/// reused by `up` already holds it.
pub async fn enroll_demo_card(local: &Local, cardholder: &PartyId) -> Result<()> {
    if local.issuer.store().get_card("card-1").await?.is_none() {
        local
            .enroll(
                "card-1",
                cardholder,
                CARD_NAME,
                CARD_NUMBER,
                CARD_EXPIRY,
                CARD_LIMIT,
                "JPY",
            )
            .await?;
    }
    Ok(())
}
