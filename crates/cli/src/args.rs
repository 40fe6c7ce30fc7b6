//! The command line, declared with clap derive: the top-level command and its subcommands (each
//! subcommand's own arguments live next to it in `commands/`).

use clap::{Parser, Subcommand};

#[cfg(feature = "bench")]
use crate::commands::bench;
use crate::commands::{
    carrier, demo, example, forward, issuer, keycenter, merchant, open, policy, seal, up, wallet,
};
/// Warifu: electronic commerce after JP H10-78988. A cardholder seals each party's part of an
/// order under a Blom pairwise key; each party opens only its own part.
#[derive(Debug, Parser)]
#[command(name = "warifu", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// HTTPS: serving (certificate and key) and trusting peers (CA).
    #[command(flatten)]
    pub tls: crate::support::tls::TlsArgs,
}

/// The top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The key issuing center: create a master, issue personal keys, show the parameters.
    #[command(subcommand)]
    Keycenter(keycenter::KeycenterCommand),
    /// Seal an order for the merchant, the issuer and the carrier (as the cardholder).
    Seal(seal::SealArgs),
    /// Open one party's part of a sealed order and print that party's view as JSON.
    Open(open::OpenArgs),
    /// Extract what the merchant forwards to the issuer or the carrier (one part plus the
    /// other parts' commitments).
    Forward(forward::ForwardArgs),
    /// Disclosure policies: which party receives which field.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Print example input files, to try `seal` and `open` from the shell.
    #[command(subcommand)]
    Example(example::ExampleCommand),
    /// The main job: a whole purchase on embedded defaults (key center, the three services on
    /// loopback, approved and declined orders), printing what each party holds.
    Demo(demo::DemoArgs),
    /// Run the merchant, the issuer and the carrier on localhost until Ctrl-C, with a
    /// persistent data directory, printing their endpoints.
    Up(up::UpArgs),
    /// The merchant's service.
    #[command(subcommand)]
    Merchant(merchant::MerchantCommand),
    /// The issuer's (card manager's) service, and card enrollment.
    #[command(subcommand)]
    Issuer(issuer::IssuerCommand),
    /// The carrier's (distributor's) service.
    #[command(subcommand)]
    Carrier(carrier::CarrierCommand),
    /// The cardholder's wallet: buy, follow an order, track a parcel.
    #[command(subcommand, alias = "cardholder")]
    Wallet(wallet::WalletCommand),
    /// Load benchmark: concurrent cardholders buy end to end on a local deployment and on the
    /// plaintext baseline in the same run; orders/s, latency percentiles, errors, the privacy
    /// overhead, and an HTML report with a latency histogram. (Built with the default `bench`
    /// feature; a production build leaves it and the plaintext baseline out.)
    #[cfg(feature = "bench")]
    Bench(bench::BenchArgs),
}
