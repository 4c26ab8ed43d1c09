//! A config that is valid but cannot be applied yet, and when to try it
//! again: its workload certificate cannot be obtained (the control plane's
//! CA is unreachable), or one of its addresses cannot be bound (a port that
//! another process holds for a while). Either may clear up without anything
//! changing on the control plane, which does not push a config again until
//! something changes, so the agent retries on its own, with backoff.

use std::{fmt, time::Duration};

use tokio::time::Instant;
use weft_api::proto::ProxyConfig;

use crate::backoff::Backoff;

/// Delays between attempts to get the certificate a pending config needs.
const CERTIFICATE_RETRY_INITIAL: Duration = Duration::from_secs(1);
const CERTIFICATE_RETRY_MAX: Duration = Duration::from_secs(60);
/// Delays between attempts to bind a pending config's addresses: a port is
/// usually held briefly (a restarting process, a socket in its last state).
const BIND_RETRY_INITIAL: Duration = Duration::from_secs(1);
const BIND_RETRY_MAX: Duration = Duration::from_secs(30);

/// What a config that cannot be applied yet waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Certificate,
    Bind,
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wait::Certificate => "a workload certificate",
            Wait::Bind => "an address to bind",
        })
    }
}

/// The config to retry, and when.
pub struct Pending {
    pub config: ProxyConfig,
    backoff: Backoff,
    retry_at: Instant,
}

impl Pending {
    /// A config that just failed for the first time: it starts its own
    /// backoff, whatever the config it replaces was waiting for.
    pub fn new(config: ProxyConfig, wait: Wait) -> Self {
        let backoff = match wait {
            Wait::Certificate => Backoff::new(CERTIFICATE_RETRY_INITIAL, CERTIFICATE_RETRY_MAX),
            Wait::Bind => Backoff::new(BIND_RETRY_INITIAL, BIND_RETRY_MAX),
        };
        Self {
            config,
            backoff,
            retry_at: Instant::now(),
        }
    }

    /// Schedules the next attempt and returns how long until it.
    pub fn schedule(&mut self) -> Duration {
        let delay = self.backoff.next_delay();
        self.retry_at = Instant::now() + delay;
        delay
    }

    /// Resolves when the config is due again; never without one.
    pub async fn due(pending: Option<&Pending>) {
        match pending {
            Some(p) => tokio::time::sleep_until(p.retry_at).await,
            None => std::future::pending().await,
        }
    }
}
