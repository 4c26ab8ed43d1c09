//! The last two `StatsReport`s of each proxy stream: rates need the
//! difference between two. A new stream (a restarted proxy, whose counters
//! start again from zero) starts over.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use weft_api::proto::StatsReport;

use crate::sessions::SessionId;

/// (mesh, dataplane name).
type Key = (String, String);

#[derive(Debug, Clone)]
pub struct Reported {
    pub session: SessionId,
    pub previous: Option<StatsReport>,
    pub latest: StatsReport,
}

#[derive(Debug, Default)]
pub struct Reports {
    by_dataplane: Mutex<HashMap<Key, Reported>>,
}

impl Reports {
    pub fn record(&self, mesh: &str, name: &str, session: SessionId, report: StatsReport) {
        let mut map = self
            .by_dataplane
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (mesh.to_owned(), name.to_owned());
        let previous = match map.remove(&key) {
            Some(r) if r.session == session && r.latest.taken_at_ms < report.taken_at_ms => {
                Some(r.latest)
            }
            _ => None,
        };
        map.insert(
            key,
            Reported {
                session,
                previous,
                latest: report,
            },
        );
    }

    /// Drops the reports of stream `session`, which ended.
    pub fn forget(&self, mesh: &str, name: &str, session: SessionId) {
        let mut map = self
            .by_dataplane
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (mesh.to_owned(), name.to_owned());
        if map.get(&key).is_some_and(|r| r.session == session) {
            map.remove(&key);
        }
    }

    /// The reports of the streams `live` lists (mesh, name, session): a
    /// proxy that went away no longer counts.
    pub fn of(&self, live: impl IntoIterator<Item = (String, String, SessionId)>) -> Vec<Reported> {
        let map = self
            .by_dataplane
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        live.into_iter()
            .filter_map(|(mesh, name, session)| {
                map.get(&(mesh, name))
                    .filter(|r| r.session == session)
                    .cloned()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(taken_at_ms: u64) -> StatsReport {
        StatsReport {
            taken_at_ms,
            ..StatsReport::default()
        }
    }

    fn live(session: SessionId) -> [(String, String, SessionId); 1] {
        [("default".into(), "web-1".into(), session)]
    }

    #[test]
    fn two_reports_per_stream_and_a_new_stream_starts_over() {
        let reports = Reports::default();
        reports.record("default", "web-1", 1, report(1_000));
        reports.record("default", "web-1", 1, report(2_000));
        reports.record("default", "web-1", 1, report(3_000));
        let [r] = reports.of(live(1)).try_into().unwrap();
        assert_eq!(r.previous.map(|p| p.taken_at_ms), Some(2_000));
        assert_eq!(r.latest.taken_at_ms, 3_000);
        // A stale session sees nothing; a new one starts without a previous.
        assert!(reports.of(live(2)).is_empty());
        reports.record("default", "web-1", 2, report(10));
        let [r] = reports.of(live(2)).try_into().unwrap();
        assert!(r.previous.is_none());
        // Only the stream that owns them forgets them.
        reports.forget("default", "web-1", 1);
        assert_eq!(reports.of(live(2)).len(), 1);
        reports.forget("default", "web-1", 2);
        assert!(reports.of(live(2)).is_empty());
    }
}
