//! `networking.transparentProxying` of a Dataplane: the ports on which its
//! proxy receives the connections (and DNS queries) that the host's
//! iptables rules (`weft install transparent-proxy`) redirect to it.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::Port;

/// Default inbound redirect port (`weft install transparent-proxy` uses the same).
pub const DEFAULT_INBOUND_PORT: Port = Port(15006);
/// Default outbound redirect port.
pub const DEFAULT_OUTBOUND_PORT: Port = Port(15001);
/// Where the inbound redirect listener binds: traffic from the network is
/// redirected to the address it arrived on, so every address.
pub const INBOUND_LISTEN_IP: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
/// Where the outbound redirect listener and the DNS server bind: the
/// kernel redirects locally sent packets to 127.0.0.1.
pub const OUTBOUND_LISTEN_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A proxy behind transparent-proxy rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransparentProxying {
    /// Redirected inbound TCP arrives here (default 15006).
    #[serde(default = "default_inbound")]
    pub redirect_port_inbound: Port,
    /// Redirected outbound TCP arrives here (default 15001).
    #[serde(default = "default_outbound")]
    pub redirect_port_outbound: Port,
    /// Where the proxy answers DNS (UDP and TCP on 127.0.0.1); absent means
    /// no DNS server (`weft install transparent-proxy --redirect-dns` uses 15053).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_port_dns: Option<Port>,
}

fn default_inbound() -> Port {
    DEFAULT_INBOUND_PORT
}

fn default_outbound() -> Port {
    DEFAULT_OUTBOUND_PORT
}

impl TransparentProxying {
    /// Every port this adds, with the field that asks for it and the
    /// address it binds.
    pub fn listeners(&self) -> Vec<(IpAddr, Port, &'static str)> {
        let mut out = vec![
            (
                INBOUND_LISTEN_IP,
                self.redirect_port_inbound,
                "networking.transparentProxying.redirectPortInbound",
            ),
            (
                OUTBOUND_LISTEN_IP,
                self.redirect_port_outbound,
                "networking.transparentProxying.redirectPortOutbound",
            ),
        ];
        if let Some(dns) = self.redirect_port_dns {
            out.push((
                OUTBOUND_LISTEN_IP,
                dns,
                "networking.transparentProxying.redirectPortDns",
            ));
        }
        out
    }
}
