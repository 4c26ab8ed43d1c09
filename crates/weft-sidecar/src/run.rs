//! Runs one workload's proxy until SIGINT or SIGTERM.

use anyhow::{Context, bail};
use weft_api::{Resource, document::parse_resources};
use weft_proxy::ProxyOptions;

use crate::{ProxyArgs, shutdown};

/// Reads the Dataplane file and the credentials, then runs the proxy.
pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let path = &args.dataplane_file;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut resources = parse_resources(&text).with_context(|| format!("{}", path.display()))?;
    let dataplane = match (resources.len(), resources.pop()) {
        (1, Some(Resource::Dataplane(dp))) => dp,
        (1, Some(other)) => bail!(
            "{}: expected a Dataplane, found a {}",
            path.display(),
            other.kind()
        ),
        (n, _) => bail!(
            "{}: expected exactly one Dataplane document, found {n}",
            path.display()
        ),
    };
    let control_plane = with_scheme(&args.cp);
    let token = match &args.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?;
            let token = text.trim().to_owned();
            if token.is_empty() {
                bail!("the token file {} is empty", path.display());
            }
            Some(token)
        }
        None => None,
    };
    let cp_ca_pem = cp_ca_pem(&control_plane, &args)?;
    let options = ProxyOptions {
        dataplane,
        control_plane,
        cp_ca_pem,
        drain_time: args.drain_time,
        token,
        stats_interval: args.stats_interval,
    };
    weft_proxy::run(options, shutdown::signal_received())
        .await
        .context("proxy failed")
}

/// The CA certificate to verify an https control plane with: `--cp-ca-file`,
/// else the default file if it exists. Refuses a plain `http://` control
/// plane unless `--insecure-plaintext-cp` allows it.
fn cp_ca_pem(control_plane: &str, args: &ProxyArgs) -> anyhow::Result<Option<String>> {
    if control_plane.starts_with("http://") {
        if !args.insecure_plaintext_cp {
            bail!(
                "--cp {control_plane}: a plain http control plane cannot be verified; use \
                 https://HOST:PORT with --cp-ca-file (or --insecure-plaintext-cp, for tests only)"
            );
        }
        return Ok(None);
    }
    let (path, explicit) = match &args.cp_ca_file {
        Some(path) => (path.clone(), true),
        None => (weft_api::paths::default_cp_ca_path(), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(pem) => Ok(Some(pem)),
        Err(e) if explicit => bail!("--cp-ca-file: cannot read {}: {e}", path.display()),
        Err(_) => bail!(
            "no CA certificate to verify the control plane {control_plane} with: give \
             --cp-ca-file (or WEFT_CP_CA_FILE); {} does not exist",
            path.display()
        ),
    }
}

/// Accepts `HOST:PORT` as well as a URL; `HOST:PORT` means https.
fn with_scheme(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("https://{addr}")
    }
}
