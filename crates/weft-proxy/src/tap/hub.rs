//! The running taps, read on the request path without locks.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use arc_swap::ArcSwap;
use http::Method;
use tokio::sync::mpsc;
use weft_api::proto::{TapEvent, TapRequest, tap_event};

use super::TapFilter;

/// How many taps may run on one proxy at once.
pub const MAX_TAPS: usize = 8;

/// One running tap.
#[derive(Debug)]
struct Tap {
    id: u64,
    filter: TapFilter,
    /// The Tap stream's outgoing queue (bounded, shared by its taps).
    out: mpsc::Sender<TapEvent>,
    /// Matching requests dropped because `out` was full, not yet reported.
    dropped: AtomicU64,
}

/// The running taps of this proxy.
#[derive(Debug, Default)]
pub struct TapHub {
    /// Whether any tap runs: the only thing a request reads when none does.
    any: AtomicBool,
    taps: ArcSwap<Vec<Arc<Tap>>>,
    /// Serializes changes (start, stop, clear), which are rare.
    edit: Mutex<()>,
}

impl TapHub {
    /// Starts tap `id`, whose events go to `out`. Refused (with the reason
    /// for the operator) when [`MAX_TAPS`] run already or the id is taken.
    pub fn start(
        &self,
        id: u64,
        filter: TapFilter,
        out: mpsc::Sender<TapEvent>,
    ) -> Result<(), String> {
        let _edit = self.edit.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.taps.load_full();
        if current.len() >= MAX_TAPS {
            return Err(format!(
                "this proxy already runs {MAX_TAPS} taps, the most it allows; stop one and try again"
            ));
        }
        if current.iter().any(|t| t.id == id) {
            return Err(format!("tap {id} is already running"));
        }
        let mut next = current.as_ref().clone();
        next.push(Arc::new(Tap {
            id,
            filter,
            out,
            dropped: AtomicU64::new(0),
        }));
        self.taps.store(Arc::new(next));
        self.any.store(true, Ordering::Release);
        Ok(())
    }

    /// Stops tap `id`; true if it ran.
    pub fn stop(&self, id: u64) -> bool {
        self.retain(|t| t.id != id)
    }

    /// Stops every tap whose events go to `out` (its stream ended).
    pub fn stop_stream(&self, out: &mpsc::Sender<TapEvent>) {
        self.retain(|t| !t.out.same_channel(out));
    }

    fn retain(&self, keep: impl Fn(&Tap) -> bool) -> bool {
        let _edit = self.edit.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.taps.load_full();
        let next: Vec<Arc<Tap>> = current.iter().filter(|t| keep(t)).cloned().collect();
        let removed = next.len() != current.len();
        self.any.store(!next.is_empty(), Ordering::Release);
        self.taps.store(Arc::new(next));
        removed
    }

    /// How many taps run.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.taps.load().len()
    }

    /// Offers one finished request to every running tap; `build` makes its
    /// event (called only for a tap it matches, with that tap's id).
    pub fn offer(&self, method: &Method, path: &str, build: impl Fn(u64) -> TapRequest) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        for tap in self.taps.load().iter() {
            if !tap.filter.matches(method, path) {
                continue;
            }
            let event = TapEvent {
                kind: Some(tap_event::Kind::Request(build(tap.id))),
            };
            if tap.out.try_send(event).is_err() {
                tap.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The drops not yet reported, per tap id, as they are taken (zeroed).
    pub fn take_dropped(&self) -> Vec<(u64, u64)> {
        self.taps
            .load()
            .iter()
            .filter_map(|t| {
                let n = t.dropped.swap(0, Ordering::Relaxed);
                (n > 0).then_some((t.id, n))
            })
            .collect()
    }
}
