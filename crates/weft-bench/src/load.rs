//! Load drivers shared by the harness's own clients: open loop at a fixed
//! rate (latency from the intended send time, see [`crate::pacing`]) and
//! closed loop (a fixed number of workers, each sending its next request
//! when the previous one completes, for maximum throughput).

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{sync::Semaphore, task::JoinSet, time::Instant};

use crate::{
    pacing::{Schedule, corrected_latency, wait_until},
    stats::{LatencySummary, Samples},
};

/// Longest an open-loop run waits for its last requests after the schedule ends.
const DRAIN: Duration = Duration::from_secs(5);
/// Open-loop requests in flight at most; beyond that sends wait (still
/// charged from their intended time).
const MAX_IN_FLIGHT: usize = 20_000;

/// What one operation reports: bytes moved, or why it failed.
pub type OpResult = Result<u64, String>;

/// The outcome of one load run, as every client prints it (JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadResult {
    pub ok: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub duration_s: f64,
    /// Successful operations per second.
    pub rate: f64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySummary>,
}

#[derive(Default)]
struct Tally {
    samples: Samples,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, result: OpResult, latency: Duration) {
        match result {
            Ok(bytes) => {
                self.ok += 1;
                self.bytes += bytes;
                self.samples.record(latency);
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn finish(self, elapsed: Duration) -> LoadResult {
        let secs = elapsed.as_secs_f64().max(1e-9);
        LoadResult {
            ok: self.ok,
            errors: self.errors,
            first_error: self.first_error,
            duration_s: secs,
            rate: self.ok as f64 / secs,
            bytes: self.bytes,
            latency: self.samples.summary(),
        }
    }
}

fn lock(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends `rate` operations per second for `duration`, each started by `op`
/// as its own task; latency is charged from the intended send time.
pub async fn open_loop<F, Fut>(rate: f64, duration: Duration, op: F) -> LoadResult
where
    F: Fn() -> Fut,
    Fut: Future<Output = OpResult> + Send + 'static,
{
    let tally = Arc::new(Mutex::new(Tally::default()));
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let start = Instant::now() + Duration::from_millis(5);
    let schedule = Schedule::new(start, rate, duration);
    let mut tasks = JoinSet::new();
    for i in 0..schedule.count() {
        let intended = schedule.intended(i);
        wait_until(intended).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let fut = op();
        let tally = tally.clone();
        tasks.spawn(async move {
            let result = fut.await;
            let latency = corrected_latency(intended, Instant::now());
            lock(&tally).add(result, latency);
            drop(permit);
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let drained = tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} });
    let timed_out = drained.await.is_err();
    let unfinished = tasks.len() as u64;
    tasks.abort_all();
    let elapsed = start.elapsed();
    let mut t = std::mem::take(&mut *lock(&tally));
    if timed_out {
        t.errors += unfinished;
        t.first_error
            .get_or_insert_with(|| format!("{unfinished} requests unanswered after {DRAIN:?}"));
    }
    // From the first intended send to the last completion.
    t.finish(elapsed)
}

/// `concurrency` workers, each running `op` back to back for `duration`.
pub async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, op: F) -> LoadResult
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = OpResult> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let end = start + duration;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let op = op.clone();
        workers.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < end {
                let t0 = Instant::now();
                let result = op().await;
                tally.add(result, t0.elapsed());
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(joined) = workers.join_next().await {
        if let Ok(t) = joined {
            total.ok += t.ok;
            total.errors += t.errors;
            total.bytes += t.bytes;
            total.samples.extend(t.samples);
            if total.first_error.is_none() {
                total.first_error = t.first_error;
            }
        }
    }
    total.finish(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_loop_sends_the_scheduled_count_and_tallies_errors() {
        let n = std::sync::atomic::AtomicU64::new(0);
        let r = open_loop(500.0, Duration::from_millis(100), || {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                if i.is_multiple_of(10) {
                    Err("boom".to_owned())
                } else {
                    Ok(3)
                }
            }
        })
        .await;
        assert_eq!(r.ok + r.errors, 50);
        assert_eq!(r.errors, 5);
        assert_eq!(r.bytes, 45 * 3);
        assert_eq!(r.first_error.as_deref(), Some("boom"));
        assert_eq!(r.latency.unwrap().count, 45);
    }

    #[tokio::test]
    async fn closed_loop_runs_workers_until_the_deadline() {
        let r = closed_loop(4, Duration::from_millis(50), || async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(1)
        })
        .await;
        assert!(r.ok >= 8, "{r:?}");
        assert_eq!(r.errors, 0);
        assert!(r.latency.unwrap().p50_us >= 5_000.0);
    }
}
