//! `weft control-plane`: runs the control plane until SIGINT or SIGTERM.

use anyhow::Context;
use weft_control_plane::{CaKey, CertFiles, ControlPlaneConfig, StoreUrl, TlsConfig};

use crate::cli::ControlPlaneArgs;
use weft_sidecar::shutdown;

pub async fn run(args: ControlPlaneArgs) -> anyhow::Result<()> {
    let store = match args.store {
        Some(s) => s
            .parse::<StoreUrl>()
            .map_err(|e| anyhow::anyhow!("--store: {e}"))?,
        None => StoreUrl::Sqlite(weft_control_plane::default_store_path()),
    };
    for (flag, value) in [
        ("--dp-keepalive-interval", args.dp_keepalive_interval),
        ("--dp-keepalive-timeout", args.dp_keepalive_timeout),
    ] {
        anyhow::ensure!(!value.is_zero(), "{flag}: must be more than 0");
    }
    let config = ControlPlaneConfig {
        store,
        api_addr: args.api_addr,
        dp_addr: args.dp_addr,
        startup_grace: args.startup_grace,
        dp_keepalive: (args.dp_keepalive_interval, args.dp_keepalive_timeout),
        ca_key: ca_key(args.ca_key_file.as_deref())?,
        dp_auth: args
            .dp_auth
            .parse()
            .map_err(|e| anyhow::anyhow!("--dp-auth: {e}"))?,
        admin_token_file: Some(
            args.admin_token_file
                .unwrap_or_else(weft_api::paths::default_admin_token_path),
        ),
        tls: TlsConfig {
            dp: !args.insecure_plaintext_dp,
            api: args.api_tls,
            dp_cert: cert_files(args.dp_tls_cert, args.dp_tls_key),
            api_cert: cert_files(args.api_tls_cert, args.api_tls_key),
            extra_sans: args.tls_sans,
            ca_file_out: Some(
                args.cp_ca_file_out
                    .unwrap_or_else(weft_api::paths::default_cp_ca_path),
            ),
        },
    };
    weft_control_plane::run(config, shutdown::signal_received())
        .await
        .context("control plane failed")
}

/// A certificate and key pair when both were given (clap requires both or neither).
fn cert_files(
    cert: Option<std::path::PathBuf>,
    key: Option<std::path::PathBuf>,
) -> Option<CertFiles> {
    Some(CertFiles {
        cert: cert?,
        key: key?,
    })
}

/// The CA encryption key from `--ca-key-file`, else from `WEFT_CA_KEY`.
/// Read from the environment by hand so that clap never prints it.
fn ca_key(file: Option<&std::path::Path>) -> anyhow::Result<Option<CaKey>> {
    if let Some(path) = file {
        return CaKey::from_file(path)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("--ca-key-file: {e}"));
    }
    match std::env::var("WEFT_CA_KEY") {
        Ok(text) => CaKey::from_base64(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("WEFT_CA_KEY: {e}")),
        Err(_) => Ok(None),
    }
}
