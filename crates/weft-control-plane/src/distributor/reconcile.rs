//! The one task that computes and pushes configs.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use tokio::{
    sync::watch,
    time::{Instant, sleep, sleep_until},
};
use weft_api::{Dataplane, Kind, Resource, proto::ProxyConfig};

use super::Versions;
use crate::{
    compiler::compile,
    sessions::{SessionId, Sessions},
    store::{Store, StoreError},
};

/// Changes that arrive together (a batch of proxies reconnecting, an apply
/// and the registrations it causes) are folded into one pass.
const DEBOUNCE: Duration = Duration::from_millis(10);
/// Wait before retrying a pass that failed to read the store.
const RETRY: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true.
pub(super) async fn run(
    store: Arc<dyn Store>,
    sessions: Arc<Sessions>,
    versions: Arc<Versions>,
    mut grace_end: Option<Instant>,
    mut stop: watch::Receiver<bool>,
) {
    let mut revisions = store.subscribe();
    let mut changes = sessions.subscribe();
    // What each session was last given, version zeroed, to push only changes.
    let mut last_pushed: HashMap<SessionId, ProxyConfig> = HashMap::new();
    loop {
        // Mark both as seen before reading: a change during the pass wakes
        // the loop again, so none is lost.
        revisions.borrow_and_update();
        changes.borrow_and_update();
        let retry = match pass(&*store, &sessions, &versions, &mut last_pushed).await {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot recompute proxy configs; retrying");
                Some(Instant::now() + RETRY)
            }
        };
        tokio::select! {
            r = revisions.changed() => if r.is_err() { break },
            r = changes.changed() => if r.is_err() { break },
            () = sleep_until(grace_end.unwrap_or_else(Instant::now)), if grace_end.is_some() => {
                grace_end = None;
                tracing::info!("startup grace over: only connected proxies count as online");
                sessions.end_grace();
            }
            () = sleep_until(retry.unwrap_or_else(Instant::now)), if retry.is_some() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        sleep(DEBOUNCE).await;
    }
}

/// Recompiles every connected proxy's config and pushes those that changed.
async fn pass(
    store: &dyn Store,
    sessions: &Sessions,
    versions: &Versions,
    last_pushed: &mut HashMap<SessionId, ProxyConfig>,
) -> Result<(), StoreError> {
    let stored = store.list(Kind::Dataplane, None).await?;
    let mut by_mesh: HashMap<String, Vec<Dataplane>> = HashMap::new();
    for s in stored {
        if let Resource::Dataplane(dp) = s.resource {
            by_mesh.entry(dp.mesh.clone()).or_default().push(dp);
        }
    }
    let online = sessions.online_view();
    let connected = sessions.connected();
    for session in &connected {
        let mesh_dataplanes = by_mesh.get(&session.mesh).map_or(&[][..], Vec::as_slice);
        let Some(dataplane) = mesh_dataplanes.iter().find(|d| d.name == session.name) else {
            // Deleted from the store while its proxy is connected: the proxy
            // keeps its last config until it reconnects and re-registers.
            continue;
        };
        let config = compile(dataplane, mesh_dataplanes, |name| {
            online.is_online(&session.mesh, name)
        });
        if last_pushed.get(&session.id) == Some(&config) {
            continue;
        }
        let mut versioned = config.clone();
        versioned.version = versions.next();
        let version = versioned.version;
        if sessions.push(&session.mesh, &session.name, session.id, versioned) {
            tracing::debug!(mesh = %session.mesh, dataplane = %session.name, version, "config pushed");
            last_pushed.insert(session.id, config);
        }
    }
    let live: HashSet<SessionId> = connected.iter().map(|s| s.id).collect();
    last_pushed.retain(|id, _| live.contains(id));
    sessions.retain_offline(|mesh, name| {
        by_mesh
            .get(mesh)
            .is_some_and(|dps| dps.iter().any(|d| d.name == name))
    });
    Ok(())
}
