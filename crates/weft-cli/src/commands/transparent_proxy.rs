//! `weft install|uninstall|check transparent-proxy`: the iptables rules that
//! send a host's TCP (and optionally DNS) through its proxy without the
//! applications knowing. The rules are built as data (`rules`), rendered
//! once, and applied in one `iptables-restore` transaction (`iptables`),
//! in the current network namespace.

mod iptables;
pub mod rules;
mod run;

use anyhow::bail;
use clap::{Args, Subcommand};

use self::rules::Settings;
pub use self::run::{check, install, uninstall};
use weft_api::dataplane::transparent;

/// Where the proxy answers DNS by default.
pub const DEFAULT_DNS_PORT: u16 = 15053;

#[derive(Debug, Subcommand)]
pub enum InstallCommand {
    /// Redirect this host's TCP through the proxy with iptables rules (nat table).
    TransparentProxy(InstallArgs),
}

#[derive(Debug, Subcommand)]
pub enum UninstallCommand {
    /// Remove the rules `weft install transparent-proxy` added, and nothing else.
    TransparentProxy(UninstallArgs),
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Report whether the transparent-proxy rules are in place (exit 1 if not).
    TransparentProxy(CheckArgs),
}

/// The rule set's settings but the proxy's uid, shared by `install` and
/// `check`.
#[derive(Debug, Args)]
pub struct RuleArgs {
    /// The proxy's inbound redirect port.
    #[arg(long, default_value_t = transparent::DEFAULT_INBOUND_PORT.get(), value_parser = clap::value_parser!(u16).range(1..))]
    pub redirect_inbound_port: u16,
    /// The proxy's outbound redirect port.
    #[arg(long, default_value_t = transparent::DEFAULT_OUTBOUND_PORT.get(), value_parser = clap::value_parser!(u16).range(1..))]
    pub redirect_outbound_port: u16,
    /// Inbound TCP ports left alone, comma separated. The default keeps SSH
    /// reachable; pass an empty list (`--exclude-inbound-ports ''`) to
    /// capture it too.
    #[arg(long, value_delimiter = ',', default_value = "22", value_parser = port_or_empty)]
    pub exclude_inbound_ports: Vec<Option<u16>>,
    /// Outbound TCP destination ports left alone, comma separated.
    #[arg(long, value_delimiter = ',', value_parser = port_or_empty)]
    pub exclude_outbound_ports: Vec<Option<u16>>,
    /// Also send the applications' DNS queries (UDP and TCP port 53) to the
    /// proxy's DNS server.
    #[arg(long)]
    pub redirect_dns: bool,
    /// Leave IPv6 alone. By default the same rules go into ip6tables where
    /// it is installed and the kernel has IPv6, so that applications cannot
    /// leave the mesh over IPv6.
    #[arg(long)]
    pub no_ipv6: bool,
    /// The proxy's DNS port, for `--redirect-dns`.
    #[arg(long, default_value_t = DEFAULT_DNS_PORT, value_parser = clap::value_parser!(u16).range(1..))]
    pub redirect_dns_port: u16,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The uid the proxy runs as; its own traffic is never redirected.
    #[arg(long)]
    pub proxy_uid: u32,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Print the iptables-restore input instead of applying it.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Print the iptables-restore input instead of applying it.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// With it, check that the rules are exactly those `install` would
    /// write with the same flags; without it, that both directions are
    /// redirected.
    #[arg(long)]
    pub proxy_uid: Option<u32>,
    #[command(flatten)]
    pub rules: RuleArgs,
}

/// An empty item lets `--exclude-inbound-ports ''` clear the default.
fn port_or_empty(value: &str) -> Result<Option<u16>, String> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    match value.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(Some(p)),
        _ => Err(format!("{value:?} is not a port (1-65535)")),
    }
}

impl RuleArgs {
    fn settings(&self, proxy_uid: u32) -> anyhow::Result<Settings> {
        let settings = Settings {
            proxy_uid,
            inbound_port: self.redirect_inbound_port,
            outbound_port: self.redirect_outbound_port,
            dns_port: self.redirect_dns.then_some(self.redirect_dns_port),
            exclude_inbound_ports: ports(&self.exclude_inbound_ports),
            exclude_outbound_ports: ports(&self.exclude_outbound_ports),
        };
        if let Err(e) = settings.validate() {
            bail!(e);
        }
        Ok(settings)
    }
}

/// The ports of a list, each once, in the order given.
fn ports(list: &[Option<u16>]) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    for port in list.iter().flatten() {
        if !out.contains(port) {
            out.push(*port);
        }
    }
    out
}
