//! The command line, declared with clap derive: every subcommand and its arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Warifu: electronic commerce after JP H10-78988. A cardholder seals each party's part of an
/// order under a Blom pairwise key; each party opens only its own part.
#[derive(Debug, Parser)]
#[command(name = "warifu", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The key issuing center: create a master, issue personal keys, show the parameters.
    #[command(subcommand)]
    Keycenter(KeycenterCommand),
    /// Seal an order for the merchant, the issuer and the carrier (as the cardholder).
    Seal(SealArgs),
    /// Open one party's part of a sealed order and print that party's view as JSON.
    Open(OpenArgs),
    /// Extract what the merchant forwards to the issuer or the carrier (one part plus the
    /// other parts' commitments).
    Forward(ForwardArgs),
    /// Disclosure policies: which party receives which field.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print example input files, to try `seal` and `open` from the shell.
    #[command(subcommand)]
    Example(ExampleCommand),
    /// The main job: a whole purchase on embedded defaults (key center, the three services on
    /// loopback, approved and declined orders), printing what each party holds.
    Demo(crate::demo::DemoArgs),
    /// Run the merchant, the issuer and the carrier on localhost until Ctrl-C, with a
    /// persistent data directory, printing their endpoints.
    Up(crate::demo::UpArgs),
    /// The merchant's service.
    #[command(subcommand)]
    Merchant(crate::serve::MerchantCommand),
    /// The issuer's (card manager's) service, and card enrollment.
    #[command(subcommand)]
    Issuer(crate::serve::IssuerCommand),
    /// The carrier's (distributor's) service.
    #[command(subcommand)]
    Carrier(crate::serve::CarrierCommand),
    /// The cardholder's wallet: buy, follow an order, track a parcel.
    #[command(subcommand, alias = "cardholder")]
    Wallet(crate::wallet::WalletCommand),
    /// Load benchmark: concurrent cardholders buy end to end on a local deployment and on the
    /// plaintext baseline in the same run; orders/s, latency percentiles, errors, the privacy
    /// overhead, and an HTML report with a latency histogram.
    Bench(crate::bench::BenchArgs),
}

/// `warifu keycenter …`
#[derive(Debug, Subcommand)]
pub enum KeycenterCommand {
    /// Create a key center: a fresh master (OS CSPRNG) and an empty register of issued ids.
    Init(InitArgs),
    /// Issue the secret personal keys of one or more identifiers.
    Issue(IssueArgs),
    /// Show the parameters: k, the collusion bound, sizes and the cost of issuing a key.
    Show(ShowArgs),
    /// The patent's variant 【0053】: draw a random key for every pair of the given parties
    /// and write each party its table (no master, no collusion bound, no later additions).
    Predistribute(PredistributeArgs),
    /// The directory of institutions (identifier → role → endpoint) that parties use to
    /// find each other.
    #[command(subcommand)]
    Directory(crate::serve::DirectoryCommand),
}

/// A key scheme on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// Blom alone: fast, but any k+1 colluding key holders recover the master.
    Blom,
    /// Sakai–Ohgishi–Kasahara on BLS12-381 alone: no collusion bound, a pairing per new peer.
    Sok,
    /// Blom and SOK from two separate masters: breaking a key needs breaking both.
    Hybrid,
}

impl From<SchemeArg> for warifu_core::sok::KeyScheme {
    fn from(s: SchemeArg) -> Self {
        match s {
            SchemeArg::Blom => warifu_core::sok::KeyScheme::Blom,
            SchemeArg::Sok => warifu_core::sok::KeyScheme::Sok,
            SchemeArg::Hybrid => warifu_core::sok::KeyScheme::Hybrid,
        }
    }
}

/// How a party uses its key files: the scheme and the pairwise-key cache.
#[derive(Debug, Clone, Args)]
pub struct KeyUseArgs {
    /// The key scheme. Default: the hybrid when the key files hold both halves (a hybrid
    /// bundle, or a Blom and a SOK key), else the one scheme they serve.
    #[arg(long, value_enum)]
    pub scheme: Option<SchemeArg>,
    /// How many counterparties' pairwise keys to keep in memory (0: none).
    #[arg(long, value_name = "N", default_value_t = warifu_services::keys::DEFAULT_KEY_CACHE)]
    pub key_cache: usize,
}

/// How a key file being written is protected.
#[derive(Debug, Clone, Args)]
pub struct NewPassphraseArgs {
    /// Seal the file under the passphrase in this file (first line). Without it the
    /// passphrase comes from WARIFU_PASSPHRASE, or a prompt on a terminal.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Write the file unsealed (still with 0600 permissions).
    #[arg(long, conflicts_with = "passphrase_file")]
    pub no_passphrase: bool,
}

/// Where the passphrase of a sealed key file being read comes from.
#[derive(Debug, Clone, Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from this file (first line). Otherwise from WARIFU_PASSPHRASE, or
    /// a prompt on a terminal. Only asked for when the key file is sealed.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// The most the cardholder discloses: the patent's table (the card only to the issuer, the
/// destination only to the carrier) unless widened here, knowingly.
#[derive(Debug, Clone, Default, Args)]
pub struct DisclosureArgs {
    /// Also allow the form to give FIELD to PARTY (e.g. `delivery_destination=merchant`, the
    /// 【0033】 variant); repeatable. Without it a form asking for more than the patent's
    /// table is refused and nothing is sealed.
    #[arg(long = "allow", value_name = "FIELD=PARTY")]
    pub allow: Vec<String>,
}

impl DisclosureArgs {
    /// The cardholder's disclosure ceiling: the patent's table widened by each `--allow`.
    pub fn ceiling(&self) -> anyhow::Result<warifu_core::policy::Policy> {
        use anyhow::Context as _;
        let mut ceiling = warifu_core::policy::Policy::patent_default();
        for grant in &self.allow {
            let (field, party) = warifu_core::policy::Policy::parse_grant(grant)
                .with_context(|| format!("--allow {grant}"))?;
            ceiling = ceiling
                .widened(field, party)
                .with_context(|| format!("--allow {grant}"))?;
        }
        Ok(ceiling)
    }
}

/// `warifu keycenter init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The key center's directory (created if missing): master.key and issued.txt (Blom),
    /// sok-master.key (SOK).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Which masters to create: `blom`, `sok`, or `hybrid` (both, in one directory). For
    /// the hybrid held by two separate centers, init one directory `--scheme blom` and
    /// another `--scheme sok`.
    #[arg(long, value_enum, default_value_t = SchemeArg::Hybrid)]
    pub scheme: SchemeArg,
    /// The collusion bound of the Blom master: any k+1 key holders together recover it.
    #[arg(long, default_value_t = warifu_core::blom::DEFAULT_K)]
    pub k: u32,
    /// Protection of master.key.
    #[command(flatten)]
    pub passphrase: NewPassphraseArgs,
}

/// `warifu keycenter issue`
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The key center's directory.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to write the personal keys, one `<identifier>.key` file each.
    #[arg(long, value_name = "OUTDIR")]
    pub out: PathBuf,
    /// The passphrase of master.key, if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Seal every issued key under the passphrase in this file (default: unsealed, 0600).
    #[arg(long, value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// Issue only this scheme's keys. Default: every master the directory holds (both →
    /// one hybrid key file each; a Blom or a SOK center alone → its own key file).
    #[arg(long, value_enum)]
    pub scheme: Option<SchemeArg>,
    /// Identifiers such as `cardholder:alice@mail.example` or `merchant:shop.example`.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

/// `warifu keycenter show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The key center's directory (reads k from master.key and counts issued.txt).
    #[arg(long, value_name = "DIR", required_unless_present = "k")]
    pub dir: Option<PathBuf>,
    /// Show the figures for this k without a key center (times a throwaway master).
    #[arg(long, conflicts_with = "dir")]
    pub k: Option<u32>,
    /// The passphrase of master.key, if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `warifu keycenter predistribute`
#[derive(Debug, Args)]
pub struct PredistributeArgs {
    /// Where to write each party's table, one `<identifier>.key` file each.
    #[arg(long, value_name = "OUTDIR")]
    pub out: PathBuf,
    /// Replace existing key files (their old pairwise keys stop working).
    #[arg(long)]
    pub force: bool,
    /// Seal every table under the passphrase in this file (default: unsealed, 0600).
    #[arg(long, value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// The parties, at least two.
    #[arg(value_name = "ID", required = true, num_args = 2..)]
    pub ids: Vec<String>,
}

/// Wire form of a sealed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON, binary fields in unpadded base64url.
    Json,
    /// The binary encoding of docs/PROTOCOL.md.
    Binary,
}

/// `warifu seal`
#[derive(Debug, Args)]
pub struct SealArgs {
    /// The cardholder's key file.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The merchant's order form (JSON).
    #[arg(long, value_name = "FORM.json")]
    pub form: PathBuf,
    /// The cardholder's order (JSON).
    #[arg(long, value_name = "ORDER.json")]
    pub order: PathBuf,
    /// The card's issuer; defaults to the form's only accepted issuer.
    #[arg(long, value_name = "ID")]
    pub issuer: Option<String>,
    /// Output wire form.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Where to write the sealed order (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The passphrase of the key file, if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// What the cardholder allows the form to disclose.
    #[command(flatten)]
    pub disclosure: DisclosureArgs,
}

/// `warifu open`
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The opening party's key file; its identifier's role picks the part.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The disclosure policy (TOML) the order was sealed under.
    #[arg(long, value_name = "POLICY.toml", conflicts_with = "form")]
    pub policy: Option<PathBuf>,
    /// Take the policy from this order form instead. With neither, the patent's default.
    #[arg(long, value_name = "FORM.json")]
    pub form: Option<PathBuf>,
    /// The sealed order or forwarded part, JSON or binary (`-` for standard input).
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// The passphrase of the key file, if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// A party that receives a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecipientRole {
    /// The card issuer (card manager).
    Issuer,
    /// The carrier (distributor).
    Carrier,
}

/// `warifu forward`
#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// The whole sealed order, JSON or binary (`-` for standard input).
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// Whose part to extract.
    #[arg(long, value_enum)]
    pub to: RecipientRole,
    /// Output wire form.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Where to write it (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `warifu policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the patent's default policy (【0032】, Fig. 2) as TOML.
    Default,
    /// Check a policy file and print its recipients and digest.
    Check {
        /// The policy (TOML).
        #[arg(value_name = "POLICY.toml")]
        file: PathBuf,
    },
}

/// `warifu example …`
#[derive(Debug, Subcommand)]
pub enum ExampleCommand {
    /// Print an example order form (JSON) valid for seven days.
    Form(ExampleFormArgs),
    /// Print an example order (JSON) for a form's catalog, with a test card number.
    Order(ExampleOrderArgs),
}

/// `warifu example form`
#[derive(Debug, Args)]
pub struct ExampleFormArgs {
    /// The merchant.
    #[arg(long, default_value = "merchant:shop.example")]
    pub merchant: String,
    /// The accepted issuer.
    #[arg(long, default_value = "issuer:bank.example")]
    pub issuer: String,
    /// The carrier.
    #[arg(
        long,
        default_value = "carrier:post.example",
        conflicts_with = "no_carrier"
    )]
    pub carrier: String,
    /// Digital goods: no carrier and no delivery destination (【0052】).
    #[arg(long)]
    pub no_carrier: bool,
    /// A disclosure policy (TOML) instead of the patent's default.
    #[arg(long, value_name = "POLICY.toml")]
    pub policy: Option<PathBuf>,
}

/// `warifu example order`
#[derive(Debug, Args)]
pub struct ExampleOrderArgs {
    /// Fill the order from this form's catalog (default: the example form's catalog).
    #[arg(long, value_name = "FORM.json")]
    pub form: Option<PathBuf>,
}
