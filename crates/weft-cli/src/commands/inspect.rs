//! `weft inspect dataplane NAME`: online or not, config versions sent and
//! acknowledged, and the endpoints the proxy was given per outbound.

use anyhow::bail;
use weft_api::{Kind, rest::DataplaneStatus};

use crate::{
    cli::{InspectArgs, OutputFormat},
    output::{print_structured, table::Table},
};

pub async fn run(args: InspectArgs) -> anyhow::Result<()> {
    let kind: Kind = args.kind.parse().map_err(anyhow::Error::msg)?;
    if kind != Kind::Dataplane {
        bail!("inspect supports dataplanes only, not {}", kind.plural());
    }
    let client = args.cp.client()?;
    let path = format!("/meshes/{}/dataplanes/{}/status", args.mesh, args.name);
    let status: DataplaneStatus = client.get(&path).await?;
    if !matches!(args.output, OutputFormat::Table) {
        print_structured(args.output, &[serde_json::to_value(&status)?], true)?;
        return Ok(());
    }
    print!("{}", render(&status));
    Ok(())
}

fn render(s: &DataplaneStatus) -> String {
    let opt = |v: Option<u64>| v.map_or("none".to_owned(), |v| v.to_string());
    let state = if s.online {
        format!(
            "online (since {})",
            s.connected_since.as_deref().unwrap_or("?")
        )
    } else {
        match &s.disconnected_at {
            Some(t) => format!("offline (since {t})"),
            None => "offline (never connected)".to_owned(),
        }
    };
    let mut out = format!("Dataplane:      {}/{}\n", s.mesh, s.name);
    out += &format!("Status:         {state}\n");
    out += &format!(
        "Proxy version:  {}\n",
        s.proxy_version.as_deref().unwrap_or("-")
    );
    let in_sync =
        s.config_version_sent.is_some() && s.config_version_sent == s.config_version_acked;
    out += &format!(
        "Config:         sent {}, acknowledged {}{}\n",
        opt(s.config_version_sent),
        opt(s.config_version_acked),
        if in_sync { " (in sync)" } else { "" }
    );
    if let Some(n) = &s.last_nack {
        out += &format!("Last rejected:  version {}: {}\n", n.version, n.reason);
    }
    out += &inbounds(s);
    if s.outbounds.is_empty() {
        out += "Outbounds:      none\n";
        return out;
    }
    out += "Outbounds:\n";
    let mut table = Table::new(&["  PORT", "SERVICE", "PROTOCOL", "ENDPOINTS", "POLICIES"]);
    for o in &s.outbounds {
        let endpoints = if o.endpoints.is_empty() {
            "none".to_owned()
        } else {
            o.endpoints
                .iter()
                .map(|e| format!("{} ({}:{})", e.dataplane, e.address, e.port))
                .collect::<Vec<_>>()
                .join(", ")
        };
        table.row(vec![
            format!("  {}", o.port),
            o.service.clone(),
            o.protocol.to_string(),
            endpoints,
            policies(
                o.policies
                    .iter()
                    .map(|p| (p.kind.as_str(), p.name.as_str())),
            ),
        ]);
    }
    out + &table.render()
}

/// The inbounds with the permissions and rate limits their callers may get
/// (most specific first; the proxy takes the first matching the caller).
fn inbounds(s: &DataplaneStatus) -> String {
    if s.inbounds.is_empty() {
        return String::new();
    }
    let mut table = Table::new(&["  PORT", "SERVICE", "POLICIES"]);
    for i in &s.inbounds {
        let listed = i
            .permissions
            .iter()
            .map(|n| ("TrafficPermission", n.as_str()))
            .chain(i.rate_limits.iter().map(|n| ("RateLimit", n.as_str())))
            .chain(i.access_logs.iter().map(|n| ("AccessLog", n.as_str())));
        table.row(vec![
            format!("  {}", i.port),
            i.service.clone(),
            policies(listed),
        ]);
    }
    format!("Inbounds:\n{}", table.render())
}

/// `Kind/name, Kind/name`, or `-` when none applies.
fn policies<'a>(listed: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let text: Vec<String> = listed
        .map(|(kind, name)| format!("{kind}/{name}"))
        .collect();
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.join(", ")
    }
}
