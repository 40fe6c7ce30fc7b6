//! The `warifu` command: parses the command line and dispatches to one module per group.

mod bench;
mod cli;
mod demo;
mod files;
mod keycenter;
mod keystore;
mod serve;
mod wallet;
mod web;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.command) {
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
        Command::Seal(a) => files::seal(a),
        Command::Open(a) => files::open(a),
        Command::Forward(a) => files::forward(a),
        Command::Policy(c) => files::policy(c),
        Command::Example(c) => files::example(c),
        Command::Demo(a) => demo::demo(a),
        Command::Up(a) => demo::up(a),
        Command::Merchant(c) => serve::merchant(c),
        Command::Issuer(c) => serve::issuer(c),
        Command::Carrier(c) => serve::carrier(c),
        Command::Wallet(c) => wallet::run(c),
        Command::Bench(a) => bench::run(a),
    }
}

/// Writes text to standard output, returning an error instead of panicking when it fails.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::Error::new(e).context("cannot write to standard output"))
}

/// Whether the error is only that the reader of our output went away (`warifu … | head`).
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
