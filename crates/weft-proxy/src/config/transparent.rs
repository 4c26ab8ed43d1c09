//! `ProxyConfig.transparent_proxy`, parsed: the redirect ports, the mesh's
//! settings, and every mesh service with the addresses that lead to it.

use std::{
    collections::BTreeSet,
    net::{IpAddr, SocketAddr},
};

use serde::Serialize;
use weft_api::{Protocol, mesh::transparent::OutsideMesh, name::name_problem, proto};

use super::{EndpointConfig, Fields};

/// What a proxy behind transparent-proxy rules runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransparentConfig {
    pub inbound_port: u16,
    pub outbound_port: u16,
    /// `None`: no DNS server.
    pub dns_port: Option<u16>,
    /// Lowercase, without dots at either end.
    pub dns_suffix: String,
    pub outside_mesh: OutsideMesh,
    pub server_first_ports: BTreeSet<u16>,
    pub services: Vec<MeshServiceConfig>,
}

/// One service of the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshServiceConfig {
    pub name: String,
    /// `None` until the control plane assigned one.
    pub virtual_ip: Option<IpAddr>,
    pub protocol: Protocol,
    pub endpoints: Vec<EndpointConfig>,
    /// Where the instances' applications were reached before the mesh.
    pub instance_addresses: Vec<SocketAddr>,
}

impl Fields<'_> {
    pub(super) fn transparent(
        &mut self,
        msg: proto::TransparentProxy,
    ) -> Option<TransparentConfig> {
        let path = "transparent_proxy";
        let inbound_port = self.port(&format!("{path}.inbound_port"), msg.inbound_port);
        let outbound_port = self.port(&format!("{path}.outbound_port"), msg.outbound_port);
        let dns_port = match msg.dns_port {
            0 => Some(None),
            p => self.port(&format!("{path}.dns_port"), p).map(Some),
        };
        let dns_suffix = msg.dns_suffix.trim_matches('.').to_ascii_lowercase();
        if dns_suffix.is_empty() {
            self.errors
                .push(format!("{path}.dns_suffix"), "required (e.g. \"mesh\")");
        }
        let outside_mesh = match proto::OutsideMesh::try_from(msg.outside_mesh) {
            Ok(proto::OutsideMesh::Passthrough) => Some(OutsideMesh::Passthrough),
            Ok(proto::OutsideMesh::Refuse) => Some(OutsideMesh::Refuse),
            Err(_) => {
                self.errors.push(
                    format!("{path}.outside_mesh"),
                    format!(
                        "{} is not a choice (0 passthrough, 1 refuse)",
                        msg.outside_mesh
                    ),
                );
                None
            }
        };
        let server_first_ports = msg
            .server_first_ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| self.port(&format!("{path}.server_first_ports[{i}]"), *p))
            .collect();
        let services = msg
            .services
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| self.mesh_service(&format!("{path}.services[{i}]"), s))
            .collect();
        Some(TransparentConfig {
            inbound_port: inbound_port?,
            outbound_port: outbound_port?,
            dns_port: dns_port?,
            dns_suffix,
            outside_mesh: outside_mesh?,
            server_first_ports,
            services,
        })
    }

    fn mesh_service(&mut self, path: &str, msg: proto::MeshService) -> Option<MeshServiceConfig> {
        if let Some(p) = name_problem(&msg.name) {
            self.errors.push(format!("{path}.name"), p);
        }
        let virtual_ip = match msg.virtual_ip.as_str() {
            "" => Some(None),
            ip => match ip.parse::<IpAddr>() {
                Ok(ip) => Some(Some(ip)),
                Err(_) => {
                    self.errors.push(
                        format!("{path}.virtual_ip"),
                        format!("{ip:?} is not an IP address"),
                    );
                    None
                }
            },
        };
        let protocol = self.protocol(path, msg.protocol);
        let endpoints = msg
            .endpoints
            .into_iter()
            .enumerate()
            .filter_map(|(i, e)| self.endpoint(&format!("{path}.endpoints[{i}]"), e))
            .collect();
        let mut instance_addresses = Vec::new();
        for (i, addr) in msg.instance_addresses.iter().enumerate() {
            match addr.parse::<SocketAddr>() {
                Ok(a) => instance_addresses.push(a),
                Err(_) => self.errors.push(
                    format!("{path}.instance_addresses[{i}]"),
                    format!("{addr:?} is not an ip:port address"),
                ),
            }
        }
        Some(MeshServiceConfig {
            name: msg.name,
            virtual_ip: virtual_ip?,
            protocol: protocol?,
            endpoints,
            instance_addresses,
        })
    }

    fn port(&mut self, path: &str, port: u32) -> Option<u16> {
        match u16::try_from(port) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.errors
                    .push(path.to_owned(), format!("{port} is not a port (1-65535)"));
                None
            }
        }
    }
}
