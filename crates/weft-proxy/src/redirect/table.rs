//! Where a captured connection goes: the lookup from its original
//! destination to a mesh service's outbound stack (by virtual IP, endpoint
//! or instance address) or to an inbound's stack (by port), rebuilt for
//! every config. Stacks whose spec did not change are carried over, so
//! their connection pools survive an endpoint update.

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use weft_api::{Protocol, mesh::transparent::OutsideMesh};

use crate::{
    config::{Config, EndpointConfig, MeshServiceConfig, OutboundConfig, TransparentConfig},
    drain::Watch,
    listeners::route::{Route, Spec},
    tls::Identity,
};

/// One mesh service's outbound stack.
#[derive(Debug, Clone)]
pub struct ServiceRoute {
    pub name: String,
    pub protocol: Protocol,
    pub route: Route,
    /// What the stack was built from: a new spec (other policies) builds a
    /// new stack, as for listeners.
    spec: Spec,
}

/// The lookups of one config. Read per connection through an `ArcSwap`.
#[derive(Debug, Default)]
pub struct Table {
    services: Vec<ServiceRoute>,
    by_ip: HashMap<IpAddr, usize>,
    by_addr: HashMap<SocketAddr, usize>,
    inbounds: HashMap<u16, (Spec, Route)>,
    pub outside_mesh: OutsideMesh,
    pub server_first_ports: BTreeSet<u16>,
    /// Held by every connection served with this table's stacks; drained
    /// when a later table replaces a stack, so that connections (pooled
    /// ones above all) move to the new stacks instead of keeping old
    /// permissions forever. Set when the table starts running.
    pub drain: Option<Watch>,
    /// Whether some stack was built anew rather than carried over.
    pub new_stacks: bool,
    /// Endpoint sets for stacks carried over, swapped in only when the
    /// table starts running ([`Table::apply_endpoints`]), so a config that
    /// fails later leaves the running stacks as they were.
    endpoint_updates: Vec<(Route, Vec<EndpointConfig>)>,
}

impl Table {
    /// The service a connection to `dst` is for.
    pub fn service_for(&self, dst: SocketAddr) -> Option<&ServiceRoute> {
        let index = self
            .by_ip
            .get(&dst.ip())
            .or_else(|| self.by_addr.get(&dst))?;
        self.services.get(*index)
    }

    /// The inbound stack for traffic that arrived for `port`: an inbound
    /// whose mesh port or application port it is.
    pub fn inbound_for(&self, port: u16) -> Option<&Route> {
        self.inbounds.get(&port).map(|(_, route)| route)
    }

    /// Gives the stacks carried over from the last table their new
    /// endpoints; called when this table starts running.
    pub fn apply_endpoints(&mut self) {
        for (route, endpoints) in self.endpoint_updates.drain(..) {
            route.update_endpoints(&endpoints);
        }
    }

    /// The table for `config`, reusing `previous`'s stacks where the spec
    /// is the same. Fails only if rustls rejects our TLS settings.
    pub fn build(
        config: &Config,
        transparent: &TransparentConfig,
        previous: &Table,
        identity: &Arc<Identity>,
    ) -> Result<Table, rustls::Error> {
        let mut table = Table {
            outside_mesh: transparent.outside_mesh,
            server_first_ports: transparent.server_first_ports.clone(),
            ..Table::default()
        };
        let kept: HashMap<&str, &ServiceRoute> = previous
            .services
            .iter()
            .map(|s| (s.name.as_str(), s))
            .collect();
        for service in &transparent.services {
            let outbound = outbound_config(service, config);
            let spec = Spec::outbound(&outbound);
            let route = match kept.get(service.name.as_str()) {
                Some(kept) if kept.spec == spec => {
                    table
                        .endpoint_updates
                        .push((kept.route.clone(), service.endpoints.clone()));
                    kept.route.clone()
                }
                _ => {
                    table.new_stacks = true;
                    Route::outbound(&outbound, identity)?
                }
            };
            let index = table.services.len();
            if let Some(ip) = service.virtual_ip {
                table.by_ip.insert(ip, index);
            }
            for addr in service
                .endpoints
                .iter()
                .map(|e| e.address)
                .chain(service.instance_addresses.iter().copied())
            {
                table.by_addr.entry(addr).or_insert(index);
            }
            table.services.push(ServiceRoute {
                name: service.name.clone(),
                protocol: service.protocol,
                route,
                spec,
            });
        }
        for inbound in &config.inbounds {
            let spec = Spec::inbound(inbound);
            let route = match previous.inbounds.get(&inbound.listen.port()) {
                Some((kept_spec, kept)) if *kept_spec == spec => kept.clone(),
                _ => {
                    table.new_stacks = true;
                    Route::inbound(inbound, identity)?
                }
            };
            for port in [inbound.listen.port(), inbound.service_address.port()] {
                table
                    .inbounds
                    .entry(port)
                    .or_insert_with(|| (spec.clone(), route.clone()));
            }
        }
        // A stack that is gone also ends its connections.
        if table.services.len() != previous.services.len()
            || table.inbounds.len() != previous.inbounds.len()
        {
            table.new_stacks = true;
        }
        Ok(table)
    }
}

/// An outbound stack is built from an outbound listener's config; the
/// address is never bound (connections come from the redirect listener).
/// Traffic policies come from the Dataplane's own outbound to the service
/// when it declares one; the control plane does not resolve them for
/// services reached only through redirection yet.
fn outbound_config(service: &MeshServiceConfig, config: &Config) -> OutboundConfig {
    let declared = config.outbounds.iter().find(|o| o.service == service.name);
    OutboundConfig {
        listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        service: service.name.clone(),
        protocol: service.protocol,
        endpoints: service.endpoints.clone(),
        policies: declared.map(|o| o.policies.clone()).unwrap_or_default(),
        access_log: declared.and_then(|o| o.access_log.clone()),
    }
}

#[cfg(test)]
mod tests;
