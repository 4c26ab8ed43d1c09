//! The `weft` binary: one executable for the control plane, the proxy, the
//! demo and the command-line interface. This file only parses arguments and
//! dispatches; the work lives in the library crates and `commands/`.

mod cli;
mod client;
mod commands;
mod demo;
mod output;
mod process;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.command.is_server());
    weft_sidecar::block_on(cli.command.workers(), commands::run(cli))
}

/// Servers log at info by default; CLI verbs stay quiet unless `RUST_LOG` says otherwise.
fn init_logging(server: bool) {
    weft_sidecar::init_logging(if server { "info" } else { "warn" });
}
