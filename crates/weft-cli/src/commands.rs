//! One module per subcommand; `run` dispatches.

mod apply;
pub mod check;
mod control_plane;
mod delete;
mod get;
mod inspect;
mod stat;
pub mod tap;
mod token;
pub mod transparent_proxy;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::ControlPlane(args) => control_plane::run(args).await,
        Command::Proxy(args) => weft_sidecar::run(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::Get(args) => get::run(args).await,
        Command::Delete(args) => delete::run(args).await,
        Command::Inspect(args) => inspect::run(args).await,
        Command::Stat(args) => stat::run(args).await,
        Command::Token(cmd) => token::run(cmd).await,
        Command::Tap(cmd) => tap::run(cmd).await,
        Command::Demo(args) => crate::demo::run(args).await,
        Command::DemoApp(args) => crate::demo::app::run(args).await,
        Command::Install(cmd) => transparent_proxy::install(cmd),
        Command::Uninstall(cmd) => transparent_proxy::uninstall(cmd),
        Command::Check(args) => check::run(args).await,
    }
}

/// The REST path of one resource.
pub fn resource_path(kind: weft_api::Kind, mesh: &str, name: &str) -> String {
    if kind.is_mesh_scoped() {
        format!("/meshes/{mesh}/{}/{name}", kind.plural())
    } else {
        format!("/{}/{name}", kind.plural())
    }
}
