//! Keeps the workload certificate fresh while mTLS is on: renews at about
//! 70 % of its remaining life (±10 % of it, so a fleet issued together does
//! not renew together), re-issues at once when the running config names
//! another issuer, and retries failures with jittered exponential backoff
//! from 1 s to 60 s — through control-plane outages — while the current
//! certificate keeps serving.

use std::{convert::Infallible, sync::Arc, time::Duration};

use tokio::time::Instant;
use tracing::warn;

use super::Certs;
use crate::{backoff::Backoff, tls::Identity};

/// Renew after this share of the remaining lifetime...
const RENEW_AT: f64 = 0.7;
/// ...give or take this share, at random.
const JITTER: f64 = 0.1;
/// First and longest delays between failed attempts.
pub const RETRY_INITIAL: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// When a certificate received at `received`, valid for `remaining` more,
/// is due for renewal: between 60 % and 80 % of the way.
pub fn renew_at(received: Instant, remaining: Duration, rng: &mut fastrand::Rng) -> Instant {
    let fraction = RENEW_AT - JITTER + rng.f64() * 2.0 * JITTER;
    received + remaining.mul_f64(fraction)
}

/// When the next renewal is due; `None` while mTLS is off.
fn next_due(identity: &Identity) -> Option<Instant> {
    let settings = identity.settings();
    if !settings.is_on() {
        return None;
    }
    match identity.credentials() {
        Some(current) if current.issuer_id == settings.issuer_id => Some(current.renew_at),
        // No certificate, or one from the issuer the config moved away
        // from: now.
        _ => Some(Instant::now()),
    }
}

/// Runs forever; wakes when a renewal is due or the identity changed.
pub async fn run(certs: Arc<Certs>) -> Infallible {
    let identity = certs.identity().clone();
    let mut changed = identity.subscribe();
    let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    let mut retry_at: Option<Instant> = None;
    loop {
        changed.borrow_and_update();
        // After a failure, not before the backoff says so, even if the
        // certificate is overdue.
        let due = next_due(&identity).map(|due| retry_at.map_or(due, |retry| retry.max(due)));
        let wake = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wake => match certs.renew_if_due().await {
                Ok(_) => {
                    retry_at = None;
                    backoff.reset();
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    retry_at = Some(Instant::now() + delay);
                    warn!(
                        error = %e,
                        retry_in = ?delay,
                        "cannot renew the workload certificate; still serving with the current one"
                    );
                }
            },
            changed = changed.changed() => {
                // The identity holds the sender and outlives this task;
                // should it not, there is nothing left to renew for.
                if changed.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
