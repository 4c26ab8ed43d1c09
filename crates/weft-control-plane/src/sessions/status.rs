//! What the API shows about a Dataplane's proxy: the `DataplaneStatus` of
//! its session.

use weft_api::{
    proto,
    rest::{DataplaneStatus, EndpointStatus, OutboundStatus, rfc3339},
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
    }
}
