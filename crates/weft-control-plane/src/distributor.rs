//! The distributor: the gRPC server proxies stream their config from, and
//! the task that recompiles and pushes configs when anything changes.
//!
//! * A proxy opens `Stream` and sends `Hello` with its Dataplane. The
//!   Dataplane is registered (upserted into the store), its session goes
//!   online, and the proxy receives its compiled config.
//! * One task, [`reconcile`], is the only writer of configs: whenever the
//!   store revision or the set of online sessions changes it recompiles
//!   every connected proxy's config and pushes those that differ from what
//!   that proxy was last given, each with a new version.
//! * Versions come from one process-wide counter seeded from the clock in
//!   milliseconds, so they keep growing across control-plane restarts, and
//!   raised to the version a reconnecting proxy runs, unless that is far
//!   above the seed (a corrupt or hostile report must not wrap them).
//! * Each mesh's mTLS settings are resolved (its CA loaded) once per pass
//!   and handed to the compiler. If a mesh's CA cannot be loaded, its
//!   proxies keep their last config (never a silent fall back to
//!   plaintext) and the pass is retried.
//! * Pushes go through a per-session `watch` channel: a slow proxy cannot
//!   hold up the others, and if it lags it only receives the latest config.
//!
//! # Startup grace
//!
//! For `startup_grace` after start, every Dataplane already in the store
//! counts as online even though its proxy has not reconnected yet, unless
//! that proxy connects and then disconnects. After a control-plane restart
//! the proxies are most likely still running and about to reconnect one by
//! one; without the grace, the first one back would receive an endpoint list
//! with none of the others and fail its traffic. When the grace ends, every
//! config is recomputed with only the proxies really connected.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::{sync::watch, task::JoinHandle};
use weft_api::{Kind, proto::dataplane_discovery_server::DataplaneDiscoveryServer};

use crate::{
    identity::Identity,
    sessions::Sessions,
    store::{Store, StoreError},
    taps::Taps,
};

mod auth;
mod certificates;
mod reconcile;
mod service;
mod tap;
mod transparent;

pub use service::DiscoveryService;

/// HTTP/2 keepalive on the proxy streams: a proxy whose host vanished
/// (no FIN, no RST) is detected within interval + timeout.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// See [`KEEPALIVE_INTERVAL`].
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// How far above the clock-based seed a version a proxy reports running may
/// be and still be believed: about 35 years of milliseconds, ample for a
/// previous control plane that handed out versions faster than one per
/// millisecond, and nowhere near 2^64, where the counter would wrap.
const MAX_REPORTED_AHEAD: u64 = 1 << 40;

/// Config versions: one counter for the whole process.
#[derive(Debug)]
pub struct Versions {
    last: AtomicU64,
    /// Reported versions above this are ignored.
    ceiling: u64,
}

impl Versions {
    /// Seeded from unix time in milliseconds, so a restarted control plane
    /// starts above every version the previous one handed out (unless the
    /// clock went back, which [`Versions::observe`] also covers).
    pub fn from_clock() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2));
        Self {
            last: AtomicU64::new(millis),
            ceiling: millis.saturating_add(MAX_REPORTED_AHEAD),
        }
    }

    /// The next version.
    pub fn next(&self) -> u64 {
        self.last.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    /// Makes sure later versions are above one a proxy reports running,
    /// unless it is far above anything a control plane hands out (see
    /// [`MAX_REPORTED_AHEAD`]): believing `u64::MAX` would wrap every
    /// version after it. Returns whether it was believed.
    pub fn observe(&self, running: u64) -> bool {
        if running > self.ceiling {
            return false;
        }
        self.last.fetch_max(running, Ordering::Relaxed);
        true
    }
}

/// The running distributor.
#[derive(Debug)]
pub struct Distributor {
    store: Arc<dyn Store>,
    sessions: Arc<Sessions>,
    versions: Arc<Versions>,
    identity: Arc<Identity>,
    taps: Arc<Taps>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Distributor {
    /// Starts the recompute task. Dataplanes stored now are presumed online
    /// for `startup_grace` (see the module docs). `identity` checks tokens
    /// and resolves each mesh's CA.
    pub async fn start(
        store: Arc<dyn Store>,
        startup_grace: Duration,
        identity: Arc<Identity>,
    ) -> Result<Self, StoreError> {
        let stored = store.list(Kind::Dataplane, None).await?;
        let presumed = stored.iter().filter_map(|s| {
            let mesh = s.resource.mesh()?;
            Some((mesh.to_owned(), s.resource.name().to_owned()))
        });
        let sessions = Arc::new(Sessions::new(presumed));
        let grace_end = if startup_grace.is_zero() {
            sessions.end_grace();
            None
        } else {
            Some(tokio::time::Instant::now() + startup_grace)
        };
        let versions = Arc::new(Versions::from_clock());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(reconcile::run(
            store.clone(),
            sessions.clone(),
            versions.clone(),
            identity.clone(),
            grace_end,
            stop_rx,
        ));
        Ok(Self {
            store,
            sessions,
            versions,
            identity,
            taps: Arc::new(Taps::default()),
            stop,
            task,
        })
    }

    /// The gRPC service to mount on a tonic server.
    pub fn service(&self) -> DataplaneDiscoveryServer<DiscoveryService> {
        DataplaneDiscoveryServer::new(DiscoveryService::new(
            self.store.clone(),
            self.sessions.clone(),
            self.versions.clone(),
            self.identity.clone(),
            self.taps.clone(),
        ))
    }

    /// The proxies' tap streams, for `weft tap`.
    pub fn taps(&self) -> &Arc<Taps> {
        &self.taps
    }

    /// The sessions, for status queries.
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// Stops pushing and ends every proxy stream, so that a graceful server
    /// shutdown does not wait for streams that never end.
    pub async fn shutdown(self) {
        self.sessions.close_all();
        self.taps.close_all();
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await
            && e.is_panic()
        {
            tracing::error!(error = %e, "the config distributor task panicked");
        }
    }
}

#[cfg(test)]
mod tests;
