//! Who is connected: one entry per Dataplane whose proxy has opened a stream
//! since this control plane started, with what was sent to it and what it
//! answered. The distributor reads it to decide which endpoints are online;
//! the API reads it to serve `DataplaneStatus`.
//!
//! Every entry carries the id of the stream that created it, so a stream that
//! ends late (after its proxy already reconnected on a new one) cannot mark
//! the new session offline. Deregistration is tied to sessions the same way
//! (see `deregister`): it only forgets a Dataplane whose stream is over.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use tokio::sync::{Notify, watch};

use crate::telemetry::Telemetry;
use weft_api::{
    proto,
    rest::{InboundStatus, NackStatus, OutboundStatus, now_unix},
};

/// Identifies one stream, never reused within a process.
pub type SessionId = u64;

/// (mesh, name) of a Dataplane.
type Key = (String, String);

fn key(mesh: &str, name: &str) -> Key {
    (mesh.to_owned(), name.to_owned())
}

/// Sending half of a proxy's config channel: a `watch`, so a proxy that
/// reads slowly only ever gets the latest config and never blocks the sender.
pub type ConfigSender = watch::Sender<Option<proto::ProxyConfig>>;

/// The token a stream was opened with, so that revoking that token or
/// rotating its key can end the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAuth {
    /// The token's id.
    pub jti: String,
    /// Its signing key's id.
    pub kid: String,
}

/// Why a stream cannot take a Dataplane's slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The same Dataplane already has a live stream.
    #[error("dataplane {mesh}/{name} is already connected")]
    AlreadyConnected { mesh: String, name: String },
    /// Its Deregister is being carried out; trying again shortly works.
    #[error("dataplane {mesh}/{name} is being deregistered")]
    Deregistering { mesh: String, name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hello received, Dataplane not yet stored: not online yet, but the slot
    /// is taken so that a second stream is refused.
    Registering,
    Online,
    Offline,
}

#[derive(Debug)]
struct Entry {
    id: SessionId,
    state: State,
    connected_since: Option<u64>,
    disconnected_at: Option<u64>,
    proxy_version: Option<String>,
    sent_version: Option<u64>,
    /// When `sent_version` was handed to the stream, until it is answered.
    sent_at: Option<Instant>,
    sent_outbounds: Vec<OutboundStatus>,
    sent_inbounds: Vec<InboundStatus>,
    acked_version: Option<u64>,
    last_nack: Option<NackStatus>,
    /// `None` unless online; dropping it ends the proxy's response stream.
    push: Option<ConfigSender>,
    /// The token of the stream (`None` without token checks).
    auth: Option<StreamAuth>,
    /// Why the control plane ended the stream, told to the proxy as its
    /// stream's final status.
    ended: Option<String>,
    /// The proxy's clock minus ours (ms), from its last report.
    clock_skew_ms: Option<i64>,
    /// (issued at, not after) of the certificate last issued to it, in
    /// unix seconds; kept across its reconnections, since a proxy keeps its
    /// certificate when its stream breaks.
    certificate: Option<(u64, u64)>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Dataplanes presumed online during the startup grace; `None` after it.
    presumed: Option<HashSet<Key>>,
    /// Set on shutdown: no session may come online any more.
    closed: bool,
    /// Dataplanes whose Deregister is being carried out, with how many:
    /// no stream may claim them meanwhile.
    deregistering: HashMap<Key, usize>,
}

/// The registry of proxy sessions.
#[derive(Debug)]
pub struct Sessions {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    /// Bumped whenever the set of online Dataplanes changes.
    changes: watch::Sender<u64>,
    /// Woken whenever a stream ends, for Deregisters waiting on one.
    ended: Notify,
    /// Push latency, certificate counters and the proxies' traffic reports.
    telemetry: Arc<Telemetry>,
}

/// Which Dataplanes count as online, captured once per recompute.
#[derive(Debug, Clone, Default)]
pub struct OnlineView {
    online: HashSet<Key>,
    presumed: HashSet<Key>,
}

impl OnlineView {
    pub fn is_online(&self, mesh: &str, name: &str) -> bool {
        let k = key(mesh, name);
        self.online.contains(&k) || self.presumed.contains(&k)
    }
}

/// A session that can receive configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub mesh: String,
    pub name: String,
    pub id: SessionId,
}

impl Sessions {
    /// An empty registry. `presumed` lists (mesh, name) of the Dataplanes
    /// to treat as online until [`Sessions::end_grace`].
    pub fn new(presumed: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                presumed: Some(presumed.into_iter().collect()),
                closed: false,
                deregistering: HashMap::new(),
            }),
            next_id: AtomicU64::new(1),
            changes: watch::Sender::new(0),
            ended: Notify::new(),
            telemetry: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data stays consistent even if a holder panicked: every update
        // under the lock is a handful of field assignments.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Notified whenever the set of online Dataplanes changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Takes the slot of a Dataplane for a new stream.
    pub fn claim(
        &self,
        mesh: &str,
        name: &str,
        proxy_version: &str,
    ) -> Result<SessionId, ClaimError> {
        let mut inner = self.lock();
        let k = key(mesh, name);
        if inner.entries.get(&k).is_some_and(Entry::is_live) {
            return Err(ClaimError::AlreadyConnected {
                mesh: mesh.to_owned(),
                name: name.to_owned(),
            });
        }
        if inner.deregistering.contains_key(&k) {
            return Err(ClaimError::Deregistering {
                mesh: mesh.to_owned(),
                name: name.to_owned(),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let certificate = inner.entries.get(&k).and_then(|e| e.certificate);
        inner.entries.insert(
            k,
            Entry {
                id,
                state: State::Registering,
                connected_since: None,
                disconnected_at: None,
                proxy_version: (!proxy_version.is_empty()).then(|| proxy_version.to_owned()),
                sent_version: None,
                sent_at: None,
                sent_outbounds: Vec::new(),
                sent_inbounds: Vec::new(),
                acked_version: None,
                last_nack: None,
                push: None,
                auth: None,
                ended: None,
                clock_skew_ms: None,
                certificate,
            },
        );
        Ok(id)
    }

    /// Marks a claimed session online; configs for it go to `push`; `auth`
    /// is the token it presented. False if the session is gone or the
    /// registry is closed.
    pub fn activate(
        &self,
        mesh: &str,
        name: &str,
        id: SessionId,
        push: ConfigSender,
        auth: Option<StreamAuth>,
    ) -> bool {
        let mut inner = self.lock();
        if inner.closed {
            return false;
        }
        let Some(e) = inner
            .entries
            .get_mut(&key(mesh, name))
            .filter(|e| e.id == id)
        else {
            return false;
        };
        e.state = State::Online;
        e.connected_since = Some(now_unix());
        e.push = Some(push);
        e.auth = auth;
        drop(inner);
        self.changed();
        true
    }

    /// The stream `id` ended. A no-op if the entry belongs to another stream.
    pub fn disconnect(&self, mesh: &str, name: &str, id: SessionId) {
        let mut inner = self.lock();
        let k = key(mesh, name);
        let Some(e) = inner.entries.get_mut(&k).filter(|e| e.id == id) else {
            return;
        };
        self.telemetry.reports.forget(mesh, name, id);
        self.ended.notify_waiters();
        match e.state {
            // Registration failed: forget the attempt.
            State::Registering => {
                inner.entries.remove(&k);
            }
            State::Online => {
                e.state = State::Offline;
                e.disconnected_at = Some(now_unix());
                e.push = None;
                // Its proxy was here and left: no longer presumed online.
                if let Some(p) = inner.presumed.as_mut() {
                    p.remove(&k);
                }
                drop(inner);
                self.changed();
            }
            State::Offline => {}
        }
    }

    /// Stops presuming stored Dataplanes online.
    pub fn end_grace(&self) {
        let had = self.lock().presumed.take().is_some_and(|p| !p.is_empty());
        if had {
            self.changed();
        }
    }

    /// Ends every stream and refuses new ones (on shutdown).
    pub fn close_all(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        for e in inner.entries.values_mut() {
            e.push = None;
        }
    }

    /// Ends every open stream whose token `matches` (revoked, or signed by
    /// a rotated key), telling its proxy `reason`. Returns how many ended.
    pub fn end_streams(&self, matches: impl Fn(&StreamAuth) -> bool, reason: &str) -> usize {
        let mut inner = self.lock();
        let mut ended = 0;
        for e in inner.entries.values_mut() {
            if e.push.is_some() && e.auth.as_ref().is_some_and(&matches) {
                e.push = None;
                e.ended = Some(reason.to_owned());
                ended += 1;
            }
        }
        ended
    }

    /// Why the control plane ended stream `id`, if it did.
    pub fn end_reason(&self, mesh: &str, name: &str, id: SessionId) -> Option<String> {
        self.lock()
            .entries
            .get(&key(mesh, name))
            .filter(|e| e.id == id)
            .and_then(|e| e.ended.clone())
    }

    /// Drops offline entries of Dataplanes that no longer exist.
    pub fn retain_offline(&self, exists: impl Fn(&str, &str) -> bool) {
        self.lock()
            .entries
            .retain(|(mesh, name), e| e.state != State::Offline || exists(mesh, name));
    }

    /// Which Dataplanes count as online right now.
    pub fn online_view(&self) -> OnlineView {
        let inner = self.lock();
        let online = inner
            .entries
            .iter()
            .filter(|(_, e)| e.state == State::Online)
            .map(|(k, _)| k.clone())
            .collect();
        let presumed = inner.presumed.clone().unwrap_or_default();
        OnlineView { online, presumed }
    }

    /// Sessions that can receive configs.
    pub fn connected(&self) -> Vec<Connected> {
        self.lock()
            .entries
            .iter()
            .filter(|(_, e)| e.state == State::Online)
            .map(|((mesh, name), e)| Connected {
                mesh: mesh.clone(),
                name: name.clone(),
                id: e.id,
            })
            .collect()
    }

    /// Queues `config` for session `id`, replacing any config it has not
    /// read yet. False if that session is gone.
    pub fn push(&self, mesh: &str, name: &str, id: SessionId, config: proto::ProxyConfig) -> bool {
        let inner = self.lock();
        match inner.entries.get(&key(mesh, name)).filter(|e| e.id == id) {
            Some(Entry { push: Some(tx), .. }) => {
                tx.send_replace(Some(config));
                true
            }
            _ => false,
        }
    }

    /// Records the config the stream just handed to the proxy.
    pub fn record_sent(&self, id: SessionId, config: &proto::ProxyConfig) {
        self.update(&config.mesh, &config.dataplane, id, |e| {
            e.sent_version = Some(config.version);
            e.sent_at = Some(Instant::now());
            e.sent_outbounds = config
                .outbounds
                .iter()
                .map(status::outbound_status)
                .collect();
            e.sent_inbounds = config.inbounds.iter().map(status::inbound_status).collect();
        });
    }

    pub fn ack(&self, mesh: &str, name: &str, id: SessionId, version: u64) {
        self.update(mesh, name, id, |e| {
            e.acked_version = Some(version);
            self.answered(e, version);
        });
    }

    pub fn nack(&self, mesh: &str, name: &str, id: SessionId, version: u64, reason: String) {
        self.update(mesh, name, id, |e| {
            e.last_nack = Some(NackStatus { version, reason });
            self.answered(e, version);
        });
    }

    /// Records the proxy's wall clock (`proxy_unix_ms`, 0 = not reported)
    /// against ours.
    pub fn clock(&self, mesh: &str, name: &str, id: SessionId, proxy_unix_ms: i64) {
        if proxy_unix_ms == 0 {
            return;
        }
        let skew = proxy_unix_ms.saturating_sub(now_unix_ms());
        self.update(mesh, name, id, |e| e.clock_skew_ms = Some(skew));
    }

    /// Records a workload certificate issued to a Dataplane (whichever
    /// stream it has: the proxy asks for certificates on a channel of its
    /// own).
    pub fn certificate_issued(&self, mesh: &str, name: &str, issued_at: u64, not_after: u64) {
        if let Some(e) = self.lock().entries.get_mut(&key(mesh, name)) {
            e.certificate = Some((issued_at, not_after));
        }
    }

    /// The live session of a Dataplane, if it is online.
    pub fn online_session(&self, mesh: &str, name: &str) -> Option<SessionId> {
        self.lock()
            .entries
            .get(&key(mesh, name))
            .filter(|e| e.state == State::Online)
            .map(|e| e.id)
    }

    /// Observes the push latency of the config just answered (once: a
    /// retried config's later ACK is not a push).
    fn answered(&self, e: &mut Entry, version: u64) {
        if e.sent_version == Some(version)
            && let Some(at) = e.sent_at.take()
        {
            self.telemetry
                .push_seconds
                .observe(at.elapsed().as_secs_f64());
        }
    }

    fn update(&self, mesh: &str, name: &str, id: SessionId, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self
            .lock()
            .entries
            .get_mut(&key(mesh, name))
            .filter(|e| e.id == id)
        {
            f(e);
        }
    }
}

/// Our wall clock in unix milliseconds (0 before 1970, which no host runs).
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Entry {
    /// Registering or online: the slot is taken.
    fn is_live(&self) -> bool {
        self.state != State::Offline
    }
}

mod deregister;
mod status;
#[cfg(test)]
mod tests;
