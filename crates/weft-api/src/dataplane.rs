//! The `Dataplane` resource: one workload, its proxy's listeners and the
//! services it calls.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
};

pub mod transparent;

use serde::{Deserialize, Serialize};

use crate::{
    Port, Protocol, ValidationErrors,
    name::{name_problem, tag_key_problem},
};

/// Tag that names the service an inbound serves.
pub const SERVICE_TAG: &str = "service";
/// Tag that names the protocol an inbound speaks (default `tcp`).
pub const PROTOCOL_TAG: &str = "protocol";
/// Admin port used when a Dataplane does not set one.
pub const DEFAULT_ADMIN_PORT: u16 = 9901;
/// Loopback: where the local service, outbound and admin listeners live by default.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One workload in a mesh and its proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dataplane {
    pub mesh: String,
    pub name: String,
    pub networking: Networking,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Networking {
    /// Address other proxies reach this one at; inbounds listen on it.
    pub address: String,
    pub inbound: Vec<Inbound>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbound: Vec<Outbound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<Admin>,
    /// Present when the host's iptables rules redirect traffic to this
    /// proxy (`weft install transparent-proxy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparent_proxying: Option<transparent::TransparentProxying>,
}

/// A port on which the proxy accepts mesh traffic for the local service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inbound {
    pub port: Port,
    pub service_port: Port,
    /// Where the local service listens (default 127.0.0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_address: Option<String>,
    /// Listen address for this inbound (default `networking.address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// A local port on which the workload reaches another service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Outbound {
    pub port: Port,
    pub service: String,
    /// Listen address (default 127.0.0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The protocol to assume while no Dataplane of `service` is known (its
    /// inbounds' `protocol` tag wins otherwise); without it, `tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// The proxy's admin server: `/ready`, `/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Admin {
    pub port: Port,
    /// Listen address (default 127.0.0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Inbound {
    /// The service this inbound serves (validated to be present).
    pub fn service(&self) -> &str {
        self.tags.get(SERVICE_TAG).map_or("", String::as_str)
    }

    /// The declared protocol; `tcp` when absent or unknown (validation rejects unknown).
    pub fn protocol(&self) -> Protocol {
        self.tags
            .get(PROTOCOL_TAG)
            .and_then(|p| p.parse().ok())
            .unwrap_or_default()
    }

    /// The address this inbound listens on.
    pub fn listen_ip(&self, networking: &Networking) -> Option<IpAddr> {
        self.address
            .as_deref()
            .unwrap_or(&networking.address)
            .parse()
            .ok()
    }

    /// The address of the local service.
    pub fn service_ip(&self) -> Option<IpAddr> {
        parse_or_localhost(self.service_address.as_deref())
    }
}

impl Outbound {
    pub fn listen_ip(&self) -> Option<IpAddr> {
        parse_or_localhost(self.address.as_deref())
    }

    /// The declared fallback protocol (validation rejects unknown ones).
    pub fn declared_protocol(&self) -> Option<Protocol> {
        self.protocol.as_deref().and_then(|p| p.parse().ok())
    }
}

impl Admin {
    pub fn listen_ip(&self) -> Option<IpAddr> {
        parse_or_localhost(self.address.as_deref())
    }
}

impl Networking {
    /// The admin listener, with defaults filled in.
    pub fn admin_or_default(&self) -> Admin {
        self.admin.clone().unwrap_or(Admin {
            port: Port(DEFAULT_ADMIN_PORT),
            address: None,
        })
    }
}

fn parse_or_localhost(addr: Option<&str>) -> Option<IpAddr> {
    addr.map_or(Some(LOCALHOST), |a| a.parse().ok())
}

impl Dataplane {
    /// Checks what the types alone cannot: names, addresses, tags, and that
    /// no two listeners of this proxy share a port.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        for (path, value) in [("mesh", &self.mesh), ("name", &self.name)] {
            if let Some(p) = name_problem(value) {
                errors.push(path, p);
            }
        }
        self.networking.validate(&mut errors);
        errors.into_result()
    }
}

/// A port the proxy binds, remembered to find duplicates.
struct Listener {
    ip: Option<IpAddr>,
    port: Port,
    path: String,
}

impl Listener {
    fn clashes_with(&self, other: &Listener) -> bool {
        self.port == other.port
            && match (self.ip, other.ip) {
                (Some(a), Some(b)) => a == b || a.is_unspecified() || b.is_unspecified(),
                _ => false,
            }
    }
}

impl Networking {
    fn validate(&self, errors: &mut ValidationErrors) {
        check_ip(errors, "networking.address", Some(&self.address));
        if self.inbound.is_empty() {
            errors.push("networking.inbound", "at least one inbound is required");
        }
        let mut listeners = Vec::new();
        for (i, inbound) in self.inbound.iter().enumerate() {
            let path = format!("networking.inbound[{i}]");
            inbound.validate(&path, errors);
            listeners.push(Listener {
                ip: inbound.listen_ip(self),
                port: inbound.port,
                path: format!("{path}.port"),
            });
        }
        for (i, outbound) in self.outbound.iter().enumerate() {
            let path = format!("networking.outbound[{i}]");
            check_ip(
                errors,
                &format!("{path}.address"),
                outbound.address.as_deref(),
            );
            if let Some(p) = name_problem(&outbound.service) {
                errors.push(format!("{path}.service"), p);
            }
            if let Some(Err(e)) = outbound.protocol.as_deref().map(str::parse::<Protocol>) {
                errors.push(format!("{path}.protocol"), e);
            }
            listeners.push(Listener {
                ip: outbound.listen_ip(),
                port: outbound.port,
                path: format!("{path}.port"),
            });
        }
        let admin = self.admin_or_default();
        if let Some(a) = &self.admin {
            check_ip(errors, "networking.admin.address", a.address.as_deref());
        }
        listeners.push(Listener {
            ip: admin.listen_ip(),
            port: admin.port,
            path: "networking.admin.port".into(),
        });
        if let Some(transparent) = &self.transparent_proxying {
            for (ip, port, path) in transparent.listeners() {
                listeners.push(Listener {
                    ip: Some(ip),
                    port,
                    path: path.into(),
                });
            }
        }
        check_duplicate_ports(&listeners, errors);
        self.check_service_ports(&listeners, errors);
    }

    /// A local service on one of the proxy's own listener ports would make
    /// the proxy forward to itself.
    fn check_service_ports(&self, listeners: &[Listener], errors: &mut ValidationErrors) {
        for (i, inbound) in self.inbound.iter().enumerate() {
            let service = Listener {
                ip: inbound.service_ip(),
                port: inbound.service_port,
                path: String::new(),
            };
            if let Some(l) = listeners.iter().find(|l| l.clashes_with(&service)) {
                errors.push(
                    format!("networking.inbound[{i}].servicePort"),
                    format!("{} is already used by {}", inbound.service_port, l.path),
                );
            }
        }
    }
}

fn check_duplicate_ports(listeners: &[Listener], errors: &mut ValidationErrors) {
    for (i, l) in listeners.iter().enumerate() {
        if let Some(first) = listeners[..i].iter().find(|o| o.clashes_with(l)) {
            errors.push(
                l.path.clone(),
                format!("{} is already used by {}", l.port, first.path),
            );
        }
    }
}

fn check_ip(errors: &mut ValidationErrors, path: &str, value: Option<&str>) {
    if let Some(v) = value
        && v.parse::<IpAddr>().is_err()
    {
        errors.push(path, format!("{v:?} is not an IP address"));
    }
}

impl Inbound {
    fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        check_ip(errors, &format!("{path}.address"), self.address.as_deref());
        check_ip(
            errors,
            &format!("{path}.serviceAddress"),
            self.service_address.as_deref(),
        );
        for (key, value) in &self.tags {
            if let Some(p) = tag_key_problem(key) {
                errors.push(format!("{path}.tags"), p);
            } else if value.is_empty() {
                errors.push(format!("{path}.tags.{key}"), "must not be empty");
            }
        }
        match self.tags.get(SERVICE_TAG) {
            None => errors.push(
                format!("{path}.tags.{SERVICE_TAG}"),
                "required (the name of the service this inbound serves)",
            ),
            Some(s) => {
                if let Some(p) = name_problem(s) {
                    errors.push(format!("{path}.tags.{SERVICE_TAG}"), p);
                }
            }
        }
        if let Some(p) = self.tags.get(PROTOCOL_TAG)
            && let Err(e) = p.parse::<Protocol>()
        {
            errors.push(format!("{path}.tags.{PROTOCOL_TAG}"), e);
        }
    }
}

#[cfg(test)]
mod tests;
