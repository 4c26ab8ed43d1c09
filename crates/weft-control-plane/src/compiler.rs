//! The config compiler: a pure function from a Dataplane, the other
//! Dataplanes of its mesh and the mesh's resolved mTLS settings to the
//! `ProxyConfig` its proxy runs.
//!
//! Pure means no store, no network and no clock: it is unit-tested on plain
//! values, and the distributor can call it as often as it likes and compare
//! results to decide whether a proxy needs a new version.

use std::{collections::BTreeSet, time::Duration};

mod observability;
mod permissions;
mod policies;
pub mod transparent;

pub use policies::MeshPolicies;

use weft_api::{
    Dataplane, MtlsMode, Protocol,
    dataplane::{Inbound, LOCALHOST, Networking},
    mesh::MeshMtls,
    proto,
};

use crate::identity::ca::Ca;

/// A mesh's mTLS settings with its CA resolved: what the compiler needs
/// and nothing it would have to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshTls {
    pub mode: MtlsMode,
    /// PEM of the roots peers are verified against: the issuing CA's, then
    /// those of the mesh's `trustedCas` (during a CA rotation).
    pub trust_bundle_pem: String,
    pub certificate_lifetime: Duration,
    /// Changes only when the CA does (see `Ca::issuer_id`).
    pub issuer_id: String,
}

impl MeshTls {
    /// The settings of a mesh whose mTLS is `mtls` and whose resolved CA is
    /// `ca`: the bundle holds the issuing CA's root and every trusted root
    /// (`mtls.trustedCas`), the issuer is the issuing CA alone.
    pub fn new(mtls: &MeshMtls, ca: &Ca) -> Self {
        Self {
            mode: mtls.mode,
            trust_bundle_pem: ca.trust_bundle_pem(),
            certificate_lifetime: mtls.certificate_lifetime(),
            issuer_id: ca.issuer_id().to_owned(),
        }
    }

    fn to_proto(&self) -> Option<proto::Mtls> {
        let mode = match self.mode {
            // Absent means plaintext to the proxy; nothing else to say.
            MtlsMode::Off => return None,
            MtlsMode::Permissive => proto::MtlsMode::MtlsPermissive,
            MtlsMode::Strict => proto::MtlsMode::MtlsStrict,
        };
        Some(proto::Mtls {
            mode: mode.into(),
            trust_bundle_pem: self.trust_bundle_pem.clone(),
            certificate_lifetime_seconds: self.certificate_lifetime.as_secs(),
            issuer_id: self.issuer_id.clone(),
        })
    }
}

/// Compiles `dataplane`'s config. `mesh_dataplanes` are the Dataplanes of its
/// mesh (it may be among them); `mtls` is the mesh's mTLS (`None`: off);
/// `policies` are the mesh's policies (each inbound gets the permissions
/// and rate limits that select it, ranked; each outbound one policy of each
/// traffic kind, resolved);
/// `is_online(name)` tells whether a Dataplane's proxy can take traffic.
/// The version is 0: the distributor sets it.
pub fn compile(
    dataplane: &Dataplane,
    mesh_dataplanes: &[Dataplane],
    mtls: Option<&MeshTls>,
    policies: &MeshPolicies,
    is_online: impl Fn(&str) -> bool,
) -> proto::ProxyConfig {
    let networking = &dataplane.networking;
    let inbounds = networking
        .inbound
        .iter()
        .map(|inbound| proto::Inbound {
            address: inbound_address(inbound, networking),
            port: inbound.port.get().into(),
            service_address: inbound
                .service_address
                .clone()
                .unwrap_or_else(|| LOCALHOST.to_string()),
            service_port: inbound.service_port.get().into(),
            protocol: proto::Protocol::from(inbound.protocol()).into(),
            tags: inbound.tags.clone().into_iter().collect(),
            permissions: policies.permissions_for(inbound),
            rate_limits: policies.rate_limits_for(inbound),
            access_logs: observability::access_logs_for_inbound(&policies.access_logs, inbound),
        })
        .collect();
    let outbounds = networking
        .outbound
        .iter()
        .map(|outbound| proto::Outbound {
            address: outbound
                .address
                .clone()
                .unwrap_or_else(|| LOCALHOST.to_string()),
            port: outbound.port.get().into(),
            service: outbound.service.clone(),
            protocol: proto::Protocol::from(
                service_protocol(&dataplane.mesh, &outbound.service, mesh_dataplanes)
                    .or(outbound.declared_protocol())
                    .unwrap_or_default(),
            )
            .into(),
            endpoints: endpoints(&outbound.service, mesh_dataplanes, &is_online),
            policies: policies.for_outbound(dataplane, &outbound.service, mesh_dataplanes),
            access_log: observability::access_log_for_outbound(
                &policies.access_logs,
                dataplane,
                &outbound.service,
                mesh_dataplanes,
            ),
        })
        .collect();
    proto::ProxyConfig {
        version: 0,
        mesh: dataplane.mesh.clone(),
        dataplane: dataplane.name.clone(),
        inbounds,
        outbounds,
        mtls: mtls.and_then(MeshTls::to_proto),
        // Needs the mesh's virtual IPs: see `transparent::compile`.
        transparent_proxy: None,
        tracing: observability::tracing_for(&policies.tracings, dataplane),
    }
}

/// Where an inbound listens: its own address, else the Dataplane's.
fn inbound_address(inbound: &Inbound, networking: &Networking) -> String {
    inbound
        .address
        .clone()
        .unwrap_or_else(|| networking.address.clone())
}

/// The inbounds that serve `service`, with the Dataplane they belong to.
fn serving<'a>(
    service: &'a str,
    dataplanes: &'a [Dataplane],
) -> impl Iterator<Item = (&'a Dataplane, &'a Inbound)> {
    dataplanes.iter().flat_map(move |dp| {
        dp.networking
            .inbound
            .iter()
            .filter(move |i| i.service() == service)
            .map(move |i| (dp, i))
    })
}

/// Every inbound of an online Dataplane that serves `service`, sorted by
/// (dataplane, port) so that equal inputs give equal configs.
fn endpoints(
    service: &str,
    dataplanes: &[Dataplane],
    is_online: impl Fn(&str) -> bool,
) -> Vec<proto::Endpoint> {
    let mut endpoints: Vec<proto::Endpoint> = serving(service, dataplanes)
        .filter(|(dp, _)| is_online(&dp.name))
        .map(|(dp, inbound)| proto::Endpoint {
            address: inbound_address(inbound, &dp.networking),
            port: inbound.port.get().into(),
            dataplane: dp.name.clone(),
            tags: inbound.tags.clone().into_iter().collect(),
        })
        .collect();
    endpoints.sort_by(|a, b| (&a.dataplane, a.port).cmp(&(&b.dataplane, b.port)));
    endpoints
}

/// The protocol the inbounds of `service` declare. Offline Dataplanes count
/// too, so an outbound keeps its protocol while no endpoint is left. When
/// they disagree the proxy can only copy bytes, so the answer is `tcp`.
/// `None` when no Dataplane serves it: the outbound's own declaration decides.
fn service_protocol(mesh: &str, service: &str, dataplanes: &[Dataplane]) -> Option<Protocol> {
    let declared: BTreeSet<&'static str> = serving(service, dataplanes)
        .map(|(_, inbound)| inbound.protocol().as_str())
        .collect();
    match declared.len() {
        0 => None,
        1 => Some(
            declared
                .first()
                .and_then(|p| p.parse().ok())
                .unwrap_or_default(),
        ),
        _ => {
            tracing::warn!(
                %mesh,
                %service,
                protocols = ?declared,
                "the inbounds of a service declare different protocols; treating it as tcp"
            );
            Some(Protocol::Tcp)
        }
    }
}

#[cfg(test)]
mod tests;
