//! The transparent-proxy part of a proxy's config: its redirect ports, the
//! mesh's settings, and every service of the mesh with its virtual IP, its
//! endpoints and the addresses its instances had before the mesh, since a
//! transparently proxied application may call any of them.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use weft_api::{
    Dataplane,
    mesh::transparent::{MeshTransparentProxying, OutsideMesh},
    proto,
};

use super::{endpoints, service_protocol, serving};

/// Every service of the mesh: those its Dataplanes serve and those they
/// call. Each gets a virtual IP.
pub fn mesh_services(mesh_dataplanes: &[Dataplane]) -> Vec<String> {
    let mut services = BTreeSet::new();
    for dp in mesh_dataplanes {
        for inbound in &dp.networking.inbound {
            services.insert(inbound.service().to_owned());
        }
        for outbound in &dp.networking.outbound {
            services.insert(outbound.service.clone());
        }
    }
    services.remove("");
    services.into_iter().collect()
}

/// `None` unless `dataplane` declares `transparentProxying`. `settings`
/// are its mesh's (defaults when absent); `virtual_ips` holds the IP of
/// each service of [`mesh_services`] (one without an IP is left out: it
/// cannot be called by name yet, only by instance address).
pub fn compile(
    dataplane: &Dataplane,
    settings: Option<&MeshTransparentProxying>,
    mesh_dataplanes: &[Dataplane],
    virtual_ips: &BTreeMap<String, Ipv4Addr>,
    is_online: impl Fn(&str) -> bool,
) -> Option<proto::TransparentProxy> {
    let ports = dataplane.networking.transparent_proxying.as_ref()?;
    let defaults = MeshTransparentProxying::default();
    let settings = settings.unwrap_or(&defaults);
    let services = mesh_services(mesh_dataplanes)
        .into_iter()
        .map(|name| {
            let protocol =
                service_protocol(&dataplane.mesh, &name, mesh_dataplanes).unwrap_or_default();
            let instance_addresses = instance_addresses(&name, mesh_dataplanes, &is_online);
            proto::MeshService {
                virtual_ip: virtual_ips
                    .get(&name)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                protocol: proto::Protocol::from(protocol).into(),
                endpoints: endpoints(&name, mesh_dataplanes, &is_online),
                instance_addresses,
                name,
            }
        })
        .collect();
    Some(proto::TransparentProxy {
        inbound_port: ports.redirect_port_inbound.get().into(),
        outbound_port: ports.redirect_port_outbound.get().into(),
        dns_port: ports.redirect_port_dns.map_or(0, |p| p.get().into()),
        dns_suffix: settings.dns_suffix.clone(),
        outside_mesh: match settings.outside_mesh {
            OutsideMesh::Passthrough => proto::OutsideMesh::Passthrough,
            OutsideMesh::Refuse => proto::OutsideMesh::Refuse,
        }
        .into(),
        server_first_ports: settings
            .server_first_ports
            .iter()
            .map(|p| p.get().into())
            .collect(),
        services,
    })
}

/// `address:servicePort` of every online instance of `service`: where its
/// application was reached before it joined the mesh. Sorted, each once.
fn instance_addresses(
    service: &str,
    dataplanes: &[Dataplane],
    is_online: impl Fn(&str) -> bool,
) -> Vec<String> {
    let addresses: BTreeSet<String> = serving(service, dataplanes)
        .filter(|(dp, _)| is_online(&dp.name))
        .map(|(dp, inbound)| format!("{}:{}", dp.networking.address, inbound.service_port))
        .collect();
    addresses.into_iter().collect()
}

#[cfg(test)]
mod tests;
