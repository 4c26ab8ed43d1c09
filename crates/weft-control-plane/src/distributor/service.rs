//! The `DataplaneDiscovery` gRPC service: registration, the config stream,
//! ACK/NACK, deregistration, certificates (in `certificates`) and the
//! tap stream (in `tap`).
//!
//! A `Deregister` only deletes a Dataplane whose stream is over (the proxy
//! closes its stream first): a live one belongs to a newer instance, which
//! an old instance's late Deregister must not remove.
//!
//! `Hello`, `Deregister` and `IssueCertificate` carry a dataplane token,
//! checked against the Dataplane's mesh and services (see `auth`) unless
//! the control plane runs with `--dp-auth none`.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures_util::Stream;
use tokio::sync::watch;
use tokio_stream::{StreamExt, wrappers::WatchStream};
use tonic::{Request, Response, Status, Streaming};
use weft_api::{
    Dataplane, Kind, Resource, ResourceKey,
    proto::{
        CertificateRequest, CertificateResponse, DeregisterRequest, DeregisterResponse, Hello,
        ProxyConfig, ProxyMessage, dataplane_discovery_server::DataplaneDiscovery, proxy_message,
    },
};

use super::{
    Versions,
    auth::{authenticate, check, services_of},
};
use crate::{
    identity::Identity,
    sessions::{ClaimError, SessionId, Sessions},
    store::{Change, Store, StoreError},
    taps::Taps,
};

/// A proxy that opened a stream must say who it is within this time.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a `Deregister` waits for its proxy's stream to be seen ending
/// (the proxy closes it first) before taking a live stream for another
/// instance's and leaving the Dataplane registered.
const DEREGISTER_WAIT: Duration = Duration::from_secs(1);

/// The configs sent to one proxy.
pub type ConfigStream = Pin<Box<dyn Stream<Item = Result<ProxyConfig, Status>> + Send + 'static>>;

/// Implements the generated `DataplaneDiscovery` trait.
#[derive(Debug)]
pub struct DiscoveryService {
    pub(super) store: Arc<dyn Store>,
    pub(super) sessions: Arc<Sessions>,
    versions: Arc<Versions>,
    pub(super) identity: Arc<Identity>,
    pub(super) taps: Arc<Taps>,
}

impl DiscoveryService {
    pub(super) fn new(
        store: Arc<dyn Store>,
        sessions: Arc<Sessions>,
        versions: Arc<Versions>,
        identity: Arc<Identity>,
        taps: Arc<Taps>,
    ) -> Self {
        Self {
            store,
            sessions,
            versions,
            identity,
            taps,
        }
    }
}

/// Marks its session offline when dropped, however the stream ended, and
/// ends the Tap stream opened beside it.
struct SessionGuard {
    sessions: Arc<Sessions>,
    taps: Arc<Taps>,
    mesh: String,
    name: String,
    id: SessionId,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions.disconnect(&self.mesh, &self.name, self.id);
        self.taps.end_session(&self.mesh, &self.name, self.id);
    }
}

#[tonic::async_trait]
impl DataplaneDiscovery for DiscoveryService {
    type StreamStream = ConfigStream;
    type TapStream = super::tap::TapCommands;

    async fn tap(
        &self,
        request: Request<Streaming<weft_api::proto::TapEvent>>,
    ) -> Result<Response<Self::TapStream>, Status> {
        self.open_tap(request).await
    }

    async fn stream(
        &self,
        request: Request<Streaming<ProxyMessage>>,
    ) -> Result<Response<ConfigStream>, Status> {
        let mut inbound = request.into_inner();
        let hello = read_hello(&mut inbound).await?;
        let dataplane = parse_dataplane(&hello.dataplane_json)?;
        let auth = authenticate(&self.identity, &hello.token, &dataplane, "Hello")?;
        let (mesh, name) = (dataplane.mesh.clone(), dataplane.name.clone());
        self.may_replace(&hello.token, &dataplane).await?;
        let id = self
            .sessions
            .claim(&mesh, &name, &hello.proxy_version)
            .map_err(|e| match e {
                ClaimError::AlreadyConnected { .. } => Status::already_exists(e.to_string()),
                ClaimError::Deregistering { .. } => Status::unavailable(format!("{e}; try again")),
            })?;
        // From here on, every way out (error, client gone) frees the slot.
        let guard = SessionGuard {
            sessions: self.sessions.clone(),
            taps: self.taps.clone(),
            mesh: mesh.clone(),
            name: name.clone(),
            id,
        };
        let recheck = dataplane.clone();
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
        if !self.versions.observe(hello.running_version) {
            tracing::warn!(
                %mesh,
                dataplane = %name,
                running_version = hello.running_version,
                "ignoring the config version the proxy says it runs: far above any this control plane hands out"
            );
        }
        let (tx, rx) = watch::channel(None);
        if !self.sessions.activate(&mesh, &name, id, tx, auth) {
            return Err(Status::unavailable("the control plane is shutting down"));
        }
        self.sessions
            .clock(&mesh, &name, id, hello.wall_clock_unix_ms);
        // A revocation or rotation from now on ends this stream through its
        // session; one that landed since the first check is caught here.
        authenticate(&self.identity, &hello.token, &recheck, "Hello")?;
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
        // Ends when the session's sender is dropped: it went offline, its
        // token was revoked, or the control plane is stopping.
        let configs = WatchStream::from_changes(rx).filter_map(move |config| {
            let config = config?;
            sessions.record_sent(id, &config);
            Some(Ok(config))
        });
        // If its token was revoked (or its key rotated), the stream ends
        // with that reason rather than quietly.
        let sessions = self.sessions.clone();
        let reason =
            futures_util::stream::once(async move { sessions.end_reason(&mesh, &name, id) })
                .filter_map(|reason| reason.map(|r| Err(Status::unauthenticated(r))));
        Ok(Response::new(Box::pin(configs.chain(reason))))
    }

    async fn issue_certificate(
        &self,
        request: Request<CertificateRequest>,
    ) -> Result<Response<CertificateResponse>, Status> {
        let issued = self.issue(request.into_inner()).await;
        let telemetry = self.sessions.telemetry();
        match &issued {
            Ok(_) => telemetry.certificates_issued.inc(),
            Err(_) => telemetry.certificate_failures.inc(),
        };
        issued.map(Response::new)
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let DeregisterRequest { mesh, name, token } = request.into_inner();
        if mesh.is_empty() || name.is_empty() {
            return Err(Status::invalid_argument("mesh and name are required"));
        }
        let key = ResourceKey::in_mesh(Kind::Dataplane, &mesh, &name);
        // The token must be for the mesh, and for the services of the
        // Dataplane if it is still stored.
        check(&self.identity, &token, &mesh, &name, [], "Deregister")?;
        let stored = match self.store.get(&key).await {
            Ok(Some(stored)) => match stored.resource {
                Resource::Dataplane(dp) => Some(dp),
                _ => None,
            },
            Ok(None) => None,
            Err(e) => {
                return Err(Status::unavailable(format!(
                    "cannot deregister dataplane {mesh}/{name}: {e}"
                )));
            }
        };
        if let Some(dp) = &stored {
            check(
                &self.identity,
                &token,
                &mesh,
                &name,
                services_of(dp),
                "Deregister",
            )?;
        }
        let Some(deregistration) = self
            .sessions
            .deregistration(&mesh, &name, DEREGISTER_WAIT)
            .await
        else {
            // A late Deregister from an old instance: the new one stays.
            tracing::info!(%mesh, dataplane = %name, "Deregister ignored: another proxy of this dataplane is connected");
            return Ok(Response::new(DeregisterResponse {}));
        };
        match self.store.apply(vec![Change::Delete(key)]).await {
            // Already gone is fine: deregistering twice must not fail a stop.
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => {
                return Err(Status::unavailable(format!(
                    "cannot deregister dataplane {mesh}/{name}: {e}"
                )));
            }
        }
        deregistration.finish();
        tracing::info!(%mesh, dataplane = %name, "dataplane deregistered");
        Ok(Response::new(DeregisterResponse {}))
    }
}

impl DiscoveryService {
    /// A token may only replace a stored Dataplane whose services it also
    /// covers: a token for `web` must not take over `billing-1`.
    async fn may_replace(&self, token: &str, dataplane: &Dataplane) -> Result<(), Status> {
        let key = ResourceKey::in_mesh(Kind::Dataplane, &dataplane.mesh, &dataplane.name);
        let stored = self
            .store
            .get(&key)
            .await
            .map_err(|e| Status::unavailable(format!("cannot register {key}: {e}")))?;
        if let Some(Resource::Dataplane(old)) = stored.map(|s| s.resource) {
            check(
                &self.identity,
                token,
                &old.mesh,
                &old.name,
                services_of(&old),
                "Hello",
            )?;
        }
        Ok(())
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
/// session is over on ours (`configs` closed: token revoked or shutting
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
        ..
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
                Some(proxy_message::Kind::StatsReport(report)) => {
                    sessions.telemetry().reports.record(mesh, name, *id, report);
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
