//! `weft-proxy`: the proxy alone, the executable to run beside each
//! workload. It takes the same arguments as `weft proxy`.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "weft-proxy",
    version,
    about = "Weft proxy: runs beside one workload (the same as `weft proxy`)"
)]
struct Cli {
    #[command(flatten)]
    args: weft_sidecar::ProxyArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    weft_sidecar::init_logging("info");
    weft_sidecar::block_on(Some(cli.args.workers()), weft_sidecar::run(cli.args))
}
