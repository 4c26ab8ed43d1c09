//! `weft control-plane`: runs the control plane until SIGINT or SIGTERM.

use anyhow::Context;
use weft_control_plane::{ControlPlaneConfig, StoreUrl};

use crate::{cli::ControlPlaneArgs, shutdown};

pub async fn run(args: ControlPlaneArgs) -> anyhow::Result<()> {
    let store = match args.store {
        Some(s) => s
            .parse::<StoreUrl>()
            .map_err(|e| anyhow::anyhow!("--store: {e}"))?,
        None => StoreUrl::Sqlite(weft_control_plane::default_store_path()),
    };
    let config = ControlPlaneConfig {
        store,
        api_addr: args.api_addr,
        dp_addr: args.dp_addr,
        startup_grace: args.startup_grace,
    };
    weft_control_plane::run(config, shutdown::signal_received())
        .await
        .context("control plane failed")
}
