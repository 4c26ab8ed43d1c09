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
    let runtime = match weft_sidecar::runtime(cli.command.workers()) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Servers log at info by default; CLI verbs stay quiet unless `RUST_LOG` says otherwise.
fn init_logging(server: bool) {
    weft_sidecar::init_logging(if server { "info" } else { "warn" });
}
