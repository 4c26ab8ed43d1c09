//! The `Tap` RPC: a proxy's stream of tapped requests, opened beside its
//! config stream. Authenticated like `Hello` (the token must cover the
//! registered Dataplane's mesh and services) and accepted only while the
//! Dataplane's config stream is up; the commands of `weft tap` clients go
//! down it, the proxy's events up it (see `crate::taps`).

use std::{pin::Pin, time::Duration};

use futures_util::Stream;
use tokio::sync::watch;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};
use weft_api::{
    Kind, Resource, ResourceKey,
    proto::{TapCommand, TapEvent, TapHello, tap_event},
};

use super::{
    DiscoveryService,
    auth::{check, services_of},
};
use crate::{sessions::Sessions, taps::Taps};

/// A proxy that opened a Tap stream must say who it is within this time.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// The commands sent to one proxy.
pub type TapCommands = Pin<Box<dyn Stream<Item = Result<TapCommand, Status>> + Send + 'static>>;

impl DiscoveryService {
    pub(super) async fn open_tap(
        &self,
        request: Request<Streaming<TapEvent>>,
    ) -> Result<Response<TapCommands>, Status> {
        let mut inbound = request.into_inner();
        let hello = read_hello(&mut inbound).await?;
        let TapHello {
            mesh,
            dataplane: name,
            token,
            wall_clock_unix_ms,
        } = hello;
        if mesh.is_empty() || name.is_empty() {
            return Err(Status::invalid_argument("mesh and dataplane are required"));
        }
        check(&self.identity, &token, &mesh, &name, [], "Tap")?;
        let key = ResourceKey::in_mesh(Kind::Dataplane, &mesh, &name);
        let stored = self
            .store
            .get(&key)
            .await
            .map_err(|e| Status::unavailable(format!("store: {e}")))?;
        let Some(Resource::Dataplane(dataplane)) = stored.map(|s| s.resource) else {
            return Err(Status::failed_precondition(format!(
                "dataplane {mesh}/{name} is not registered; open the config stream first"
            )));
        };
        check(
            &self.identity,
            &token,
            &mesh,
            &name,
            services_of(&dataplane),
            "Tap",
        )?;
        let Some(session) = self.sessions.online_session(&mesh, &name) else {
            return Err(Status::failed_precondition(format!(
                "dataplane {mesh}/{name} is not connected; open the config stream first"
            )));
        };
        self.sessions
            .clock(&mesh, &name, session, wall_clock_unix_ms);
        let link = self.taps.connect(&mesh, &name, session);
        tracing::debug!(%mesh, dataplane = %name, "tap stream opened");
        let reader = Reader {
            taps: self.taps.clone(),
            sessions: self.sessions.clone(),
            mesh,
            name,
            stream: link.stream,
            session,
        };
        tokio::spawn(reader.run(inbound, link.alive));
        let commands = ReceiverStream::new(link.commands).map(Ok);
        Ok(Response::new(Box::pin(commands)))
    }
}

async fn read_hello(inbound: &mut Streaming<TapEvent>) -> Result<TapHello, Status> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!("no TapHello within {}s", HELLO_TIMEOUT.as_secs()))
        })??;
    match first.and_then(|e| e.kind) {
        Some(tap_event::Kind::Hello(hello)) => Ok(hello),
        Some(_) => Err(Status::invalid_argument(
            "the first Tap message must be TapHello",
        )),
        None => Err(Status::invalid_argument(
            "the Tap stream ended before its TapHello",
        )),
    }
}

/// Reads one proxy's tap events until its stream ends or its link is
/// replaced or closed (dropping `inbound` matters on shutdown: a graceful
/// HTTP/2 shutdown waits for it).
struct Reader {
    taps: std::sync::Arc<Taps>,
    sessions: std::sync::Arc<Sessions>,
    mesh: String,
    name: String,
    stream: u64,
    session: u64,
}

impl Reader {
    async fn run(self, mut inbound: Streaming<TapEvent>, mut alive: watch::Receiver<()>) {
        loop {
            let message = tokio::select! {
                message = inbound.message() => message,
                _ = alive.changed() => break,
            };
            match message {
                Ok(Some(TapEvent { kind: Some(kind) })) => self.handle(kind),
                Ok(Some(TapEvent { kind: None })) => {}
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(mesh = %self.mesh, dataplane = %self.name, error = %status, "tap stream broke");
                    break;
                }
            }
        }
        self.taps.disconnect(&self.mesh, &self.name, self.stream);
    }

    fn handle(&self, kind: tap_event::Kind) {
        match kind {
            tap_event::Kind::WallClockUnixMs(ms) => {
                self.sessions
                    .clock(&self.mesh, &self.name, self.session, ms);
            }
            tap_event::Kind::Hello(_) => {
                tracing::debug!(mesh = %self.mesh, dataplane = %self.name, "ignoring a repeated TapHello");
            }
            other => self
                .taps
                .deliver(&self.mesh, &self.name, self.stream, other),
        }
    }
}
