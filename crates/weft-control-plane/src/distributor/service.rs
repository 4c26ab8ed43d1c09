//! The `DataplaneDiscovery` gRPC service: registration, the config stream,
//! ACK/NACK, and deregistration.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures_util::Stream;
use tokio::sync::watch;
use tokio_stream::{StreamExt, wrappers::WatchStream};
use tonic::{Request, Response, Status, Streaming};
use weft_api::{
    Dataplane, Kind, Resource, ResourceKey,
    proto::{
        DeregisterRequest, DeregisterResponse, Hello, ProxyConfig, ProxyMessage,
        dataplane_discovery_server::DataplaneDiscovery, proxy_message,
    },
};

use super::Versions;
use crate::{
    sessions::{SessionId, Sessions},
    store::{Change, Store, StoreError},
};

/// A proxy that opened a stream must say who it is within this time.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// The configs sent to one proxy.
pub type ConfigStream = Pin<Box<dyn Stream<Item = Result<ProxyConfig, Status>> + Send + 'static>>;

/// Implements the generated `DataplaneDiscovery` trait.
#[derive(Debug)]
pub struct DiscoveryService {
    store: Arc<dyn Store>,
    sessions: Arc<Sessions>,
    versions: Arc<Versions>,
}

impl DiscoveryService {
    pub(super) fn new(
        store: Arc<dyn Store>,
        sessions: Arc<Sessions>,
        versions: Arc<Versions>,
    ) -> Self {
        Self {
            store,
            sessions,
            versions,
        }
    }
}

/// Marks its session offline when dropped, however the stream ended.
struct SessionGuard {
    sessions: Arc<Sessions>,
    mesh: String,
    name: String,
    id: SessionId,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions.disconnect(&self.mesh, &self.name, self.id);
    }
}

#[tonic::async_trait]
impl DataplaneDiscovery for DiscoveryService {
    type StreamStream = ConfigStream;

    async fn stream(
        &self,
        request: Request<Streaming<ProxyMessage>>,
    ) -> Result<Response<ConfigStream>, Status> {
        let mut inbound = request.into_inner();
        let hello = read_hello(&mut inbound).await?;
        let dataplane = parse_dataplane(&hello.dataplane_json)?;
        let (mesh, name) = (dataplane.mesh.clone(), dataplane.name.clone());
        let id = self
            .sessions
            .claim(&mesh, &name, &hello.proxy_version)
            .map_err(|e| Status::already_exists(e.to_string()))?;
        // From here on, every way out (error, client gone) frees the slot.
        let guard = SessionGuard {
            sessions: self.sessions.clone(),
            mesh: mesh.clone(),
            name: name.clone(),
            id,
        };
        match self
            .store
            .apply(vec![Change::Upsert(Resource::Dataplane(dataplane))])
            .await
        {
            Ok(_) => {}
            Err(e @ StoreError::MeshNotFound { .. }) => {
                return Err(Status::failed_precondition(e.to_string()));
            }
            Err(e) => {
                tracing::warn!(%mesh, dataplane = %name, error = %e, "cannot register a dataplane");
                return Err(Status::unavailable(format!(
                    "cannot register dataplane {mesh}/{name}: {e}"
                )));
            }
        }
        self.versions.observe(hello.running_version);
        let (tx, rx) = watch::channel(None);
        if !self.sessions.activate(&mesh, &name, id, tx) {
            return Err(Status::unavailable("the control plane is shutting down"));
        }
        tracing::info!(
            %mesh,
            dataplane = %name,
            session = id,
            proxy_version = %hello.proxy_version,
            running_version = hello.running_version,
            "proxy connected"
        );
        tokio::spawn(read_answers(inbound, rx.clone(), guard));

        let sessions = self.sessions.clone();
        // Ends when the session's sender is dropped: it went offline, was
        // deregistered, or the control plane is stopping.
        let configs = WatchStream::from_changes(rx).filter_map(move |config| {
            let config = config?;
            sessions.record_sent(id, &config);
            Some(Ok(config))
        });
        Ok(Response::new(Box::pin(configs)))
    }

    async fn issue_certificate(
        &self,
        _request: Request<weft_api::proto::CertificateRequest>,
    ) -> Result<Response<weft_api::proto::CertificateResponse>, Status> {
        Err(Status::unimplemented(
            "this control plane does not issue certificates yet",
        ))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let DeregisterRequest { mesh, name, .. } = request.into_inner();
        if mesh.is_empty() || name.is_empty() {
            return Err(Status::invalid_argument("mesh and name are required"));
        }
        let key = ResourceKey::in_mesh(Kind::Dataplane, &mesh, &name);
        match self.store.apply(vec![Change::Delete(key)]).await {
            // Already gone is fine: deregistering twice must not fail a stop.
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => {
                return Err(Status::unavailable(format!(
                    "cannot deregister dataplane {mesh}/{name}: {e}"
                )));
            }
        }
        self.sessions.remove(&mesh, &name);
        tracing::info!(%mesh, dataplane = %name, "dataplane deregistered");
        Ok(Response::new(DeregisterResponse {}))
    }
}

async fn read_hello(inbound: &mut Streaming<ProxyMessage>) -> Result<Hello, Status> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!("no Hello within {}s", HELLO_TIMEOUT.as_secs()))
        })??;
    match first {
        Some(ProxyMessage {
            kind: Some(proxy_message::Kind::Hello(hello)),
        }) => Ok(hello),
        Some(_) => Err(Status::invalid_argument("the first message must be Hello")),
        None => Err(Status::invalid_argument(
            "the stream ended before its Hello message",
        )),
    }
}

/// Parses and validates the Dataplane in a Hello; errors name every field.
fn parse_dataplane(json: &str) -> Result<Dataplane, Status> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Status::invalid_argument(format!("dataplane_json is not JSON: {e}")))?;
    match Resource::from_value(value) {
        Ok(Resource::Dataplane(dp)) => Ok(dp),
        Ok(other) => Err(Status::invalid_argument(format!(
            "dataplane_json must be a Dataplane, not a {}",
            other.kind()
        ))),
        Err(errors) => Err(Status::invalid_argument(format!(
            "invalid Dataplane:\n{}",
            errors.lines().join("\n")
        ))),
    }
}

/// Reads ACKs and NACKs until the proxy's side of the stream ends, or the
/// session is over on ours (`configs` closed: deregistered or shutting
/// down); then the guard marks the session offline. Dropping `inbound`
/// matters on shutdown: a graceful HTTP/2 shutdown waits for it.
async fn read_answers(
    mut inbound: Streaming<ProxyMessage>,
    mut configs: watch::Receiver<Option<ProxyConfig>>,
    session: SessionGuard,
) {
    let SessionGuard {
        sessions,
        mesh,
        name,
        id,
    } = &session;
    loop {
        let message = tokio::select! {
            message = inbound.message() => message,
            closed = configs.changed() => {
                if closed.is_err() {
                    break;
                }
                continue;
            }
        };
        match message {
            Ok(Some(ProxyMessage { kind })) => match kind {
                Some(proxy_message::Kind::Ack(ack)) => {
                    tracing::debug!(%mesh, dataplane = %name, version = ack.version, "config acknowledged");
                    sessions.ack(mesh, name, *id, ack.version);
                }
                Some(proxy_message::Kind::Nack(nack)) => {
                    tracing::warn!(
                        %mesh,
                        dataplane = %name,
                        version = nack.version,
                        reason = %nack.reason,
                        "proxy rejected its config"
                    );
                    sessions.nack(mesh, name, *id, nack.version, nack.reason);
                }
                Some(proxy_message::Kind::Hello(_)) => {
                    tracing::debug!(%mesh, dataplane = %name, "ignoring a repeated Hello");
                }
                None => {}
            },
            Ok(None) => {
                tracing::info!(%mesh, dataplane = %name, session = id, "proxy closed its stream");
                break;
            }
            Err(status) => {
                tracing::info!(%mesh, dataplane = %name, session = id, error = %status, "proxy stream broke");
                break;
            }
        }
    }
}
