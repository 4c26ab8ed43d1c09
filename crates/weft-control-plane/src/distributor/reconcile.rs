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

use super::{Versions, transparent};
use crate::{
    compiler::{self, MeshPolicies, MeshTls, compile},
    identity::Identity,
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
    identity: Arc<Identity>,
    mut grace_end: Option<Instant>,
    mut stop: watch::Receiver<bool>,
) {
    let mut revisions = store.subscribe();
    let mut changes = sessions.subscribe();
    let mut state = PassState::default();
    loop {
        // Mark both as seen before reading: a change during the pass wakes
        // the loop again, so none is lost.
        revisions.borrow_and_update();
        changes.borrow_and_update();
        let retry = match pass(&*store, &sessions, &versions, &identity, &mut state).await {
            Ok(Complete::Yes) => None,
            Ok(Complete::No) => Some(Instant::now() + RETRY),
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

/// What passes remember.
#[derive(Default)]
struct PassState {
    /// What each session was last given, version zeroed, to push only changes.
    last_pushed: HashMap<SessionId, ProxyConfig>,
    /// The last CA error of each mesh, so a broken CA is logged when it
    /// breaks rather than on every retry.
    ca_errors: HashMap<String, String>,
}

/// Whether every proxy got its config; `No` when some mesh's CA could not
/// be loaded, to try again soon.
enum Complete {
    Yes,
    No,
}

/// Each mesh's resolved mTLS: `Ok(None)` when off, `Err` when its CA
/// cannot be loaded now.
async fn mesh_tls(
    store: &dyn Store,
    identity: &Identity,
    ca_errors: &mut HashMap<String, String>,
) -> Result<HashMap<String, Result<Option<MeshTls>, ()>>, StoreError> {
    let mut resolved = HashMap::new();
    for stored in store.list(Kind::Mesh, None).await? {
        let Resource::Mesh(mesh) = stored.resource else {
            continue;
        };
        let tls = match mesh.mtls_enabled() {
            None => Ok(None),
            Some(mtls) => match identity.cas.ca_for(&mesh).await {
                Ok(ca) => {
                    if ca_errors.remove(&mesh.name).is_some() {
                        tracing::info!(mesh = %mesh.name, "the mesh CA is available again");
                    }
                    Ok(Some(MeshTls::new(mtls, &ca)))
                }
                Err(e) => {
                    let text = e.to_string();
                    if ca_errors.get(&mesh.name) != Some(&text) {
                        tracing::error!(
                            mesh = %mesh.name,
                            error = %text,
                            "the mesh CA cannot be loaded; its proxies keep their last config"
                        );
                        ca_errors.insert(mesh.name.clone(), text);
                    }
                    Err(())
                }
            },
        };
        resolved.insert(mesh.name, tls);
    }
    ca_errors.retain(|mesh, _| resolved.contains_key(mesh));
    Ok(resolved)
}

/// One mesh's Dataplanes, indexed once per pass so that compiling each
/// proxy's config costs what that proxy calls, not the size of the mesh.
struct MeshIndex<'a> {
    by_name: HashMap<&'a str, &'a Dataplane>,
    /// The Dataplanes with an inbound of each service.
    by_service: HashMap<&'a str, Vec<&'a Dataplane>>,
}

impl<'a> MeshIndex<'a> {
    fn new(dataplanes: &'a [Dataplane]) -> Self {
        let mut by_service: HashMap<&str, Vec<&Dataplane>> = HashMap::new();
        for dp in dataplanes {
            let mut services: Vec<&str> =
                dp.networking.inbound.iter().map(|i| i.service()).collect();
            services.sort_unstable();
            services.dedup();
            for service in services {
                by_service.entry(service).or_default().push(dp);
            }
        }
        Self {
            by_name: dataplanes.iter().map(|d| (d.name.as_str(), d)).collect(),
            by_service,
        }
    }

    /// The Dataplanes serving what `dataplane` calls: all that `compile`
    /// reads of the mesh (endpoints, protocols and destination tags of its
    /// outbounds' services), in store order.
    fn serving_callees(&self, dataplane: &Dataplane) -> Vec<Dataplane> {
        let mut callees: Vec<&str> = dataplane
            .networking
            .outbound
            .iter()
            .map(|o| o.service.as_str())
            .collect();
        callees.sort_unstable();
        callees.dedup();
        let mut serving: Vec<&Dataplane> = callees
            .iter()
            .filter_map(|s| self.by_service.get(s))
            .flatten()
            .copied()
            .collect();
        // A Dataplane serving two called services is listed once.
        serving.sort_unstable_by_key(|d| std::ptr::from_ref(*d));
        serving.dedup_by_key(|d| std::ptr::from_ref(*d));
        serving.into_iter().cloned().collect()
    }
}

/// Recompiles every connected proxy's config and pushes those that changed.
async fn pass(
    store: &dyn Store,
    sessions: &Sessions,
    versions: &Versions,
    identity: &Identity,
    state: &mut PassState,
) -> Result<Complete, StoreError> {
    let tls = mesh_tls(store, identity, &mut state.ca_errors).await?;
    let mut complete = Complete::Yes;
    let last_pushed = &mut state.last_pushed;
    let stored = store.list(Kind::Dataplane, None).await?;
    let mut by_mesh: HashMap<String, Vec<Dataplane>> = HashMap::new();
    for s in stored {
        if let Resource::Dataplane(dp) = s.resource {
            by_mesh.entry(dp.mesh.clone()).or_default().push(dp);
        }
    }
    let mut policies: HashMap<String, MeshPolicies> = HashMap::new();
    for kind in Kind::ALL.into_iter().filter(|k| k.is_policy()) {
        for s in store.list(kind, None).await? {
            let mesh = s.resource.mesh().unwrap_or_default().to_owned();
            policies.entry(mesh).or_default().add(s.resource);
        }
    }
    let transparent = transparent::load(store, &by_mesh).await?;
    let indexes: HashMap<&str, MeshIndex> = by_mesh
        .iter()
        .map(|(mesh, dps)| (mesh.as_str(), MeshIndex::new(dps)))
        .collect();
    let no_policies = MeshPolicies::default();
    let online = sessions.online_view();
    let connected = sessions.connected();
    for session in &connected {
        let mesh_dataplanes = by_mesh.get(&session.mesh).map_or(&[][..], Vec::as_slice);
        let index = indexes.get(session.mesh.as_str());
        let Some(dataplane) = index.and_then(|i| i.by_name.get(session.name.as_str())) else {
            // Deleted from the store while its proxy is connected: the proxy
            // keeps its last config until it reconnects and re-registers.
            continue;
        };
        let session_tls = match tls.get(&session.mesh) {
            Some(Ok(resolved)) => resolved.as_ref(),
            // The mesh's CA is broken: better the last config than one
            // that silently drops mTLS.
            Some(Err(())) => {
                complete = Complete::No;
                continue;
            }
            None => None,
        };
        let mesh_policies = policies.get(&session.mesh).unwrap_or(&no_policies);
        let is_online = |name: &str| online.is_online(&session.mesh, name);
        let called = index
            .map(|i| i.serving_callees(dataplane))
            .unwrap_or_default();
        let mut config = compile(dataplane, &called, session_tls, mesh_policies, is_online);
        if let Some(t) = transparent.get(&session.mesh) {
            config.transparent_proxy = compiler::transparent::compile(
                dataplane,
                t.settings.as_ref(),
                mesh_dataplanes,
                &t.virtual_ips,
                is_online,
            );
        }
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
    Ok(complete)
}
