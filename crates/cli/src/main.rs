//! The `warifu` command: parses the command line and dispatches to one module per command.
//!
//! Map (arrows point one way, down):
//! - `args`: the top-level clap command; each subcommand's arguments live with it.
//! - `commands/`: one module per command (`keycenter`, `seal`, `open`, `forward`, `policy`,
//!   `example`, `merchant`, `issuer`, `carrier`, `wallet`, `demo`, `up`, `bench`); no command
//!   imports another.
//! - `wallet_web/`: the cardholder's wallet as a local web page (`wallet web`, `up`).
//! - `support/`: what several commands share (flags, passphrases, files, key files, logging,
//!   text output, the party services' plumbing, the demo cardholder, the wallet profile).

mod args;
mod commands;
mod support;
mod wallet_web;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
#[cfg(feature = "bench")]
use crate::commands::bench;
use crate::commands::{
    carrier, demo, example, forward, issuer, keycenter, merchant, open, policy, seal, up, wallet,
};
/// mimalloc instead of the system allocator: the services allocate and free many small
/// buffers per request (JSON, headers, rows); glibc's malloc took ≈ 8 % of the CPU of an
/// order in `warifu bench`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.tls.apply().and_then(|()| run(&cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warifu: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
fn run(command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Keycenter(c) => keycenter::run(c),
        Command::Seal(a) => seal::seal(a),
        Command::Open(a) => open::open(a),
        Command::Forward(a) => forward::forward(a),
        Command::Policy(c) => policy::policy(c),
        Command::Example(c) => example::example(c),
        Command::Demo(a) => demo::demo(a),
        Command::Up(a) => up::up(a),
        Command::Merchant(c) => merchant::merchant(c),
        Command::Issuer(c) => issuer::issuer(c),
        Command::Carrier(c) => carrier::carrier(c),
        Command::Wallet(c) => wallet::run(c),
        #[cfg(feature = "bench")]
        Command::Bench(a) => bench::run(a),
    }
}
/// Whether the error is only that the reader of our output went away (`warifu … | head`).
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
