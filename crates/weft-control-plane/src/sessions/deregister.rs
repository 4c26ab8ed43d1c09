//! Deregistration tied to sessions: a `Deregister` forgets a Dataplane only
//! once no stream of it is live.
//!
//! A proxy closes its own stream before it deregisters, so a live stream
//! at that point is another instance of the Dataplane: one started under the
//! same name that registered before the old one's Deregister arrived. That
//! Deregister must not delete the new instance's Dataplane or end its
//! session. The old stream's end can reach the control plane a moment after
//! the Deregister, so the Deregister waits for it, briefly.

use std::time::Duration;

use tokio::time::Instant;

use super::{Key, Sessions, key};

/// A Dataplane being deregistered. While it is held no stream can claim the
/// Dataplane, so what is deleted from the store is not the registration of
/// a proxy that connected meanwhile (that proxy is refused and retries).
#[derive(Debug)]
pub struct Deregistration<'a> {
    sessions: &'a Sessions,
    key: Key,
}

impl Sessions {
    /// Waits up to `wait` until the Dataplane has no live stream, then
    /// starts deregistering it. `None` if a stream is still live: it belongs
    /// to another instance, which the Deregister must leave alone.
    pub async fn deregistration(
        &self,
        mesh: &str,
        name: &str,
        wait: Duration,
    ) -> Option<Deregistration<'_>> {
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so that an end in between is seen.
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if let Some(deregistration) = self.try_deregistration(mesh, name) {
                return Some(deregistration);
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return self.try_deregistration(mesh, name);
            }
        }
    }

    fn try_deregistration(&self, mesh: &str, name: &str) -> Option<Deregistration<'_>> {
        let mut inner = self.lock();
        let k = key(mesh, name);
        if inner.entries.get(&k).is_some_and(|e| e.is_live()) {
            return None;
        }
        *inner.deregistering.entry(k.clone()).or_default() += 1;
        Some(Deregistration {
            sessions: self,
            key: k,
        })
    }
}

impl Deregistration<'_> {
    /// The Dataplane is deleted: forgets its last session and stops
    /// presuming it online.
    pub fn finish(self) {
        let mut inner = self.sessions.lock();
        let removed = inner.entries.remove(&self.key).is_some();
        let unpresumed = inner.presumed.as_mut().is_some_and(|p| p.remove(&self.key));
        drop(inner);
        if removed || unpresumed {
            self.sessions.changed();
        }
    }
}

impl Drop for Deregistration<'_> {
    fn drop(&mut self) {
        let mut inner = self.sessions.lock();
        if let Some(count) = inner.deregistering.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                inner.deregistering.remove(&self.key);
            }
        }
    }
}
