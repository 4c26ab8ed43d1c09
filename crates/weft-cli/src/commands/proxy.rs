//! `weft proxy`: runs one workload's proxy until SIGINT or SIGTERM.

use anyhow::{Context, bail};
use weft_api::{Resource, document::parse_resources};
use weft_proxy::ProxyOptions;

use crate::{cli::ProxyArgs, shutdown};

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
    let options = ProxyOptions {
        dataplane,
        control_plane,
        drain_time: args.drain_time,
        token,
    };
    weft_proxy::run(options, shutdown::signal_received())
        .await
        .context("proxy failed")
}

/// Accepts `HOST:PORT` as well as a URL.
fn with_scheme(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}
