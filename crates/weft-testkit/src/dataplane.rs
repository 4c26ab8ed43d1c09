//! Builds Dataplane documents for tests.

use crate::free_port;

/// One workload's Dataplane, with fresh ports unless set.
#[derive(Debug, Clone)]
pub struct DataplaneSpec {
    pub mesh: String,
    pub name: String,
    pub service: String,
    pub protocol: String,
    pub inbound_port: u16,
    pub service_port: u16,
    pub admin_port: u16,
    /// (port, service, declared protocol)
    pub outbounds: Vec<(u16, String, Option<String>)>,
    /// Extra tags on the inbound.
    pub tags: Vec<(String, String)>,
}

impl DataplaneSpec {
    /// A Dataplane in mesh `default` for `service`, whose app listens on `service_port`.
    pub fn new(name: &str, service: &str, protocol: &str, service_port: u16) -> Self {
        Self {
            mesh: "default".into(),
            name: name.into(),
            service: service.into(),
            protocol: protocol.into(),
            inbound_port: free_port(),
            service_port,
            admin_port: free_port(),
            outbounds: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// Adds an outbound to `service` on a fresh local port; returns that port.
    pub fn outbound(&mut self, service: &str) -> u16 {
        let port = free_port();
        self.outbounds.push((port, service.into(), None));
        port
    }

    /// Adds an outbound that declares the protocol to use while no
    /// instance of `service` is registered; returns its port.
    pub fn outbound_with_protocol(&mut self, service: &str, protocol: &str) -> u16 {
        let port = free_port();
        self.outbounds
            .push((port, service.into(), Some(protocol.into())));
        port
    }

    pub fn yaml(&self) -> String {
        let mut tags = format!("service: {}, protocol: {}", self.service, self.protocol);
        for (k, v) in &self.tags {
            tags.push_str(&format!(", {k}: {v}"));
        }
        let mut y = format!(
            "type: Dataplane\nmesh: {}\nname: {}\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    \
             - port: {}\n      servicePort: {}\n      tags: {{ {tags} }}\n",
            self.mesh, self.name, self.inbound_port, self.service_port
        );
        if !self.outbounds.is_empty() {
            y.push_str("  outbound:\n");
            for (port, service, protocol) in &self.outbounds {
                y.push_str(&format!("    - port: {port}\n      service: {service}\n"));
                if let Some(p) = protocol {
                    y.push_str(&format!("      protocol: {p}\n"));
                }
            }
        }
        y.push_str(&format!("  admin: {{ port: {} }}\n", self.admin_port));
        y
    }
}
