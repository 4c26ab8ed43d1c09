//! Live taps: which proxies have their `Tap` stream open, and which API
//! clients (`weft tap`) watch each of them.
//!
//! A proxy keeps one `Tap` stream beside its config stream (a link); an
//! API client that asks to tap a Dataplane becomes a watcher of its link
//! with a tap id, and the proxy is told to start that tap. Events from the
//! proxy are routed to the watcher by tap id. Everything is bounded: a
//! watcher's queue drops (and counts) what its client does not read in
//! time, a link takes at most [`MAX_WATCHERS`] watchers, and a command that
//! does not fit the link's queue is refused rather than waited for.
//!
//! Dropping a [`Watch`] (the client went away) stops the tap on the proxy;
//! a link that ends (the proxy went away) ends its watchers with a reason.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::{mpsc, watch};
use weft_api::{
    proto::{TapCommand, TapStart, TapStop, tap_command, tap_event},
    rest::{TapLine, TapRequest},
};

/// How many clients may tap one Dataplane at once.
pub const MAX_WATCHERS: usize = 8;
/// Lines queued for one client before new ones are dropped (and counted).
const WATCHER_QUEUE: usize = 1024;
/// Commands queued for one proxy.
const COMMAND_QUEUE: usize = 32;

/// (mesh, name) of a Dataplane.
type Key = (String, String);

/// Why a tap cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapError {
    /// The proxy has no Tap stream open: offline, or too old to tap.
    #[error(
        "dataplane {mesh}/{name} has no tap stream: its proxy is offline or does not support tapping"
    )]
    NoStream { mesh: String, name: String },
    /// [`MAX_WATCHERS`] clients tap it already.
    #[error("dataplane {mesh}/{name} is already tapped by {MAX_WATCHERS} clients; try again later")]
    Busy { mesh: String, name: String },
}

/// The filter of one tap (empty strings match everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TapFilter {
    pub path_prefix: String,
    pub method: String,
}

struct Watcher {
    lines: mpsc::Sender<TapLine>,
    /// Lines dropped since the client was last told.
    dropped: u64,
}

struct Link {
    stream: u64,
    /// The config stream (session) it was opened beside: it ends with it.
    session: u64,
    commands: mpsc::Sender<TapCommand>,
    /// Dropped with the link: the stream's reader stops on it.
    _alive: watch::Sender<()>,
    watchers: HashMap<u64, Watcher>,
}

/// The registry; one per control plane.
#[derive(Default)]
pub struct Taps {
    links: Mutex<HashMap<Key, Link>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Taps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taps")
            .field("links", &self.lock().len())
            .finish()
    }
}

/// A proxy's side of a link: the commands to send it, and a signal that
/// the link was replaced or closed.
pub struct Connected {
    pub stream: u64,
    pub commands: mpsc::Receiver<TapCommand>,
    pub alive: watch::Receiver<()>,
}

/// One client's tap: read `lines` until it ends; dropping it stops the tap.
pub struct Watch {
    pub lines: mpsc::Receiver<TapLine>,
    _guard: WatchGuard,
}

struct WatchGuard {
    taps: Arc<Taps>,
    key: Key,
    tap_id: u64,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.taps.unwatch(&self.key, self.tap_id);
    }
}

impl Taps {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Link>> {
        // Updates under the lock are single map operations: consistent even
        // if a holder panicked.
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A proxy opened its Tap stream beside config stream `session`; an
    /// older one of the same Dataplane is replaced and its watchers end.
    pub fn connect(&self, mesh: &str, name: &str, session: u64) -> Connected {
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (alive_tx, alive) = watch::channel(());
        let stream = self.next();
        let link = Link {
            stream,
            session,
            commands: commands_tx,
            _alive: alive_tx,
            watchers: HashMap::new(),
        };
        let old = self.lock().insert((mesh.to_owned(), name.to_owned()), link);
        if let Some(old) = old {
            end_all(old, "the proxy reconnected its tap stream");
        }
        Connected {
            stream,
            commands,
            alive,
        }
    }

    /// The Tap stream `stream` ended; a no-op if a newer one replaced it.
    pub fn disconnect(&self, mesh: &str, name: &str, stream: u64) {
        let key = (mesh.to_owned(), name.to_owned());
        let mut links = self.lock();
        if links.get(&key).is_some_and(|l| l.stream == stream)
            && let Some(link) = links.remove(&key)
        {
            drop(links);
            end_all(link, "the proxy went away");
        }
    }

    /// Config stream `session` ended (offline, token revoked): its Tap
    /// stream ends too, so that a tap never outlives the proxy's right to
    /// be connected. A no-op if the link belongs to a newer session.
    pub fn end_session(&self, mesh: &str, name: &str, session: u64) {
        let key = (mesh.to_owned(), name.to_owned());
        let mut links = self.lock();
        if links.get(&key).is_some_and(|l| l.session == session)
            && let Some(link) = links.remove(&key)
        {
            drop(links);
            end_all(link, "the proxy's config stream ended");
        }
    }

    /// Ends every link and watcher (on shutdown: open streams would hold
    /// up a graceful stop).
    pub fn close_all(&self) {
        let links: Vec<Link> = self.lock().drain().map(|(_, l)| l).collect();
        for link in links {
            end_all(link, "the control plane is stopping");
        }
    }

    /// Starts tapping Dataplane `mesh/name` with `filter`.
    pub fn watch(
        self: &Arc<Self>,
        mesh: &str,
        name: &str,
        filter: TapFilter,
    ) -> Result<Watch, TapError> {
        let key = (mesh.to_owned(), name.to_owned());
        let mut links = self.lock();
        let Some(link) = links.get_mut(&key) else {
            return Err(TapError::NoStream {
                mesh: mesh.to_owned(),
                name: name.to_owned(),
            });
        };
        let busy = || TapError::Busy {
            mesh: mesh.to_owned(),
            name: name.to_owned(),
        };
        if link.watchers.len() >= MAX_WATCHERS {
            return Err(busy());
        }
        let tap_id = self.next();
        let start = TapCommand {
            kind: Some(tap_command::Kind::Start(TapStart {
                tap_id,
                path_prefix: filter.path_prefix,
                method: filter.method,
            })),
        };
        link.commands.try_send(start).map_err(|_| busy())?;
        let (lines_tx, lines) = mpsc::channel(WATCHER_QUEUE);
        link.watchers.insert(
            tap_id,
            Watcher {
                lines: lines_tx,
                dropped: 0,
            },
        );
        drop(links);
        Ok(Watch {
            lines,
            _guard: WatchGuard {
                taps: self.clone(),
                key,
                tap_id,
            },
        })
    }

    /// The client of `tap_id` went away: forget it and tell the proxy.
    fn unwatch(&self, key: &Key, tap_id: u64) {
        let mut links = self.lock();
        let Some(link) = links.get_mut(key) else {
            return;
        };
        if link.watchers.remove(&tap_id).is_some() {
            let stop = TapCommand {
                kind: Some(tap_command::Kind::Stop(TapStop { tap_id })),
            };
            // A full queue means the proxy is not reading: it will get a
            // stop for every tap when its stream is replaced anyway.
            let _ = link.commands.try_send(stop);
        }
    }

    /// Routes one event from stream `stream` of `mesh/name` to its watcher.
    pub fn deliver(&self, mesh: &str, name: &str, stream: u64, event: tap_event::Kind) {
        let Some((tap_id, line)) = to_line(name, event) else {
            return;
        };
        let key = (mesh.to_owned(), name.to_owned());
        let mut links = self.lock();
        let Some(link) = links.get_mut(&key).filter(|l| l.stream == stream) else {
            return;
        };
        let ended = matches!(line, TapLine::Ended { .. });
        if let Some(watcher) = link.watchers.get_mut(&tap_id) {
            send(watcher, line);
        }
        if ended {
            link.watchers.remove(&tap_id);
        }
    }
}

/// Queues `line` for a watcher, first telling it how many it missed.
fn send(watcher: &mut Watcher, line: TapLine) {
    if watcher.dropped > 0 {
        let dropped = TapLine::Dropped {
            count: watcher.dropped,
        };
        if watcher.lines.try_send(dropped).is_err() {
            watcher.dropped += 1;
            return;
        }
        watcher.dropped = 0;
    }
    if watcher.lines.try_send(line).is_err() {
        watcher.dropped += 1;
    }
}

/// Ends every watcher of a link that is going away.
fn end_all(mut link: Link, reason: &str) {
    for (_, watcher) in link.watchers.drain() {
        let _ = watcher.lines.try_send(TapLine::Ended {
            reason: reason.to_owned(),
        });
    }
}

/// The tap id and API line of a proxy's event (`None` for events that
/// belong to no tap).
pub fn to_line(dataplane: &str, event: tap_event::Kind) -> Option<(u64, TapLine)> {
    Some(match event {
        tap_event::Kind::Started(s) => (
            s.tap_id,
            TapLine::Started {
                dataplane: dataplane.to_owned(),
            },
        ),
        tap_event::Kind::Request(r) => (r.tap_id, TapLine::Request(Box::new(request(r)))),
        tap_event::Kind::Dropped(d) => (d.tap_id, TapLine::Dropped { count: d.count }),
        tap_event::Kind::Ended(e) => (e.tap_id, TapLine::Ended { reason: e.reason }),
        tap_event::Kind::Hello(_) | tap_event::Kind::WallClockUnixMs(_) => return None,
    })
}

fn request(r: weft_api::proto::TapRequest) -> TapRequest {
    let some = |s: String| (!s.is_empty()).then_some(s);
    TapRequest {
        start_unix_ms: r.start_unix_ms,
        direction: r.direction,
        source_service: r.source_service,
        destination_service: r.destination_service,
        method: r.method,
        authority: r.authority,
        path: r.path,
        // A status outside 0-65535 only comes from a broken proxy.
        status: u16::try_from(r.status).unwrap_or(0),
        head_latency_us: r.head_latency_us,
        duration_us: r.duration_us,
        bytes_in: r.bytes_in,
        bytes_out: r.bytes_out,
        upstream: some(r.upstream),
        trace_id: some(r.trace_id),
        route: some(r.route),
    }
}

#[cfg(test)]
mod tests;
