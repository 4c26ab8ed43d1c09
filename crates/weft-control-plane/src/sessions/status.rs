//! What the API shows about a Dataplane's proxy: the `DataplaneStatus` of
//! its session.

use weft_api::{
    proto,
    rest::{
        AppliedPolicy, CertificateStatus, DataplaneStatus, EndpointStatus, InboundStatus,
        OutboundStatus, rfc3339,
    },
};

use super::{Sessions, State, key};

impl Sessions {
    /// What is known about a Dataplane's proxy (offline and empty if it
    /// never connected).
    pub fn status(&self, mesh: &str, name: &str) -> DataplaneStatus {
        let inner = self.lock();
        let mut status = DataplaneStatus {
            mesh: mesh.to_owned(),
            name: name.to_owned(),
            ..DataplaneStatus::default()
        };
        if let Some(e) = inner.entries.get(&key(mesh, name))
            && e.state != State::Registering
        {
            status.online = e.state == State::Online;
            status.connected_since = e.connected_since.map(rfc3339);
            status.disconnected_at = e.disconnected_at.map(rfc3339);
            status.proxy_version = e.proxy_version.clone();
            status.config_version_sent = e.sent_version;
            status.config_version_acked = e.acked_version;
            status.last_nack = e.last_nack.clone();
            status.outbounds = e.sent_outbounds.clone();
            status.inbounds = e.sent_inbounds.clone();
            status.clock_skew_ms = e.clock_skew_ms;
            status.certificate = e
                .certificate
                .map(|(issued_at, not_after)| CertificateStatus {
                    issued_at: rfc3339(issued_at),
                    not_after: rfc3339(not_after),
                });
        }
        status
    }
}

pub(super) fn outbound_status(o: &proto::Outbound) -> OutboundStatus {
    OutboundStatus {
        // Ports come from validated resources; 0 would only flag a bug.
        port: u16::try_from(o.port).unwrap_or(0),
        service: o.service.clone(),
        protocol: o.protocol().into(),
        endpoints: o
            .endpoints
            .iter()
            .map(|e| EndpointStatus {
                dataplane: e.dataplane.clone(),
                address: e.address.clone(),
                port: u16::try_from(e.port).unwrap_or(0),
            })
            .collect(),
        policies: o
            .policies
            .as_ref()
            .map(applied)
            .unwrap_or_default()
            .into_iter()
            .chain(o.access_log.as_ref().map(|a| AppliedPolicy {
                kind: "AccessLog".to_owned(),
                name: a.name.clone(),
            }))
            .collect(),
    }
}

pub(super) fn inbound_status(i: &proto::Inbound) -> InboundStatus {
    InboundStatus {
        port: u16::try_from(i.port).unwrap_or(0),
        service: i
            .tags
            .get(weft_api::dataplane::SERVICE_TAG)
            .cloned()
            .unwrap_or_default(),
        permissions: i.permissions.iter().map(|p| p.name.clone()).collect(),
        rate_limits: i.rate_limits.iter().map(|p| p.name.clone()).collect(),
        access_logs: i.access_logs.iter().map(|p| p.name.clone()).collect(),
    }
}

/// The kinds present in an outbound's policies, in a fixed order.
fn applied(p: &proto::OutboundPolicies) -> Vec<AppliedPolicy> {
    let named = [
        ("Timeout", p.timeout.as_ref().map(|x| &x.name)),
        ("Retry", p.retry.as_ref().map(|x| &x.name)),
        (
            "CircuitBreaker",
            p.circuit_breaker.as_ref().map(|x| &x.name),
        ),
        ("HealthCheck", p.health_check.as_ref().map(|x| &x.name)),
        ("LoadBalancer", p.load_balancer.as_ref().map(|x| &x.name)),
        (
            "FaultInjection",
            p.fault_injection.as_ref().map(|x| &x.name),
        ),
        ("TrafficRoute", p.traffic_route.as_ref().map(|x| &x.name)),
    ];
    named
        .into_iter()
        .filter_map(|(kind, name)| {
            name.map(|n| AppliedPolicy {
                kind: kind.to_owned(),
                name: n.clone(),
            })
        })
        .collect()
}
