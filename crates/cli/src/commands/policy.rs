//! `warifu policy`: the patent's default disclosure policy, and checking a policy file.

use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;
use warifu_core::Role;
use warifu_core::policy::{Field, Policy};

use crate::support::files::read_policy;
use crate::support::format::print;

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
/// `warifu policy …`
pub fn policy(cmd: &PolicyCommand) -> Result<()> {
    match cmd {
        PolicyCommand::Default => print(&Policy::patent_default().to_toml()),
        PolicyCommand::Check { file } => {
            let p = read_policy(file)?;
            let mut out = String::new();
            for f in Field::ALL {
                let to: Vec<&str> = p.recipients(f).map(Role::as_str).collect();
                out.push_str(&format!("{:<22} {}\n", f.name(), to.join(", ")));
            }
            let digest: String = p.digest().iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!("digest {digest}\n"));
            print(&out)
        }
    }
}
