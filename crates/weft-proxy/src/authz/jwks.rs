//! The keys a JWT rule checks tokens against: a JWKS file read when the
//! inbound is built, or a JWKS URL fetched in the background.
//!
//! Each URL has one cache for the whole proxy, shared by every inbound
//! and rule naming it. A task fetches it at first use, then every
//! [`REFRESH`], and sooner (at most once per [`MIN_INTERVAL`]) when a
//! token names a `kid` the cached set lacks — the issuer rotated its keys.
//! A failed fetch keeps the last good keys; until one succeeds, tokens
//! are refused with the fetch error, and fetches are retried every
//! [`MIN_INTERVAL`]. The request path only loads an `ArcSwap`.

pub mod fetch;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::Duration,
};

use arc_swap::ArcSwap;
use rustls::ClientConfig;
use tokio::{
    sync::Notify,
    task::AbortHandle,
    time::{Instant, sleep, sleep_until},
};
use tracing::warn;

use self::fetch::JwksUrl;
use super::{
    config::JwtConfig,
    jwt::{self, JwtError, LoadedKeys},
    stats::FetchCounts,
};

/// How often keys from a URL are fetched again.
pub const REFRESH: Duration = Duration::from_secs(5 * 60);
/// The least time between two fetches of a URL.
pub const MIN_INTERVAL: Duration = Duration::from_secs(30);
/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a cache outlives its last inbound, so that rebuilding an
/// inbound for a new config keeps the keys instead of fetching anew.
pub const LINGER: Duration = Duration::from_secs(30);

/// The intervals above, as one value so tests can shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub refresh: Duration,
    pub min_interval: Duration,
    pub fetch_timeout: Duration,
    pub linger: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            refresh: REFRESH,
            min_interval: MIN_INTERVAL,
            fetch_timeout: FETCH_TIMEOUT,
            linger: LINGER,
        }
    }
}

type Tls = Result<Arc<ClientConfig>, String>;

/// The proxy's JWKS caches by URL, and their fetch counters.
#[derive(Debug, Default)]
pub struct JwksRegistry {
    caches: Mutex<HashMap<String, Weak<Cache>>>,
    counts: Arc<FetchCounts>,
    timing: Timing,
    tls: OnceLock<Tls>,
}

impl JwksRegistry {
    /// A registry with its own intervals and TLS roots.
    #[cfg(test)]
    pub fn with_settings(timing: Timing, tls: Arc<ClientConfig>) -> Self {
        Self {
            timing,
            tls: OnceLock::from(Ok(tls)),
            ..Self::default()
        }
    }

    pub fn counts(&self) -> &Arc<FetchCounts> {
        &self.counts
    }

    /// The keys at `url`, from the shared cache; the first user starts
    /// its fetch task (which needs a Tokio runtime).
    pub fn keys(&self, url: &str) -> Keys {
        // A poisoned lock only means a panic mid-insert; the map is fine.
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cache) = caches.get(url).and_then(Weak::upgrade) {
            return Keys::Fetched(Handle::new(cache, self.timing.linger));
        }
        caches.retain(|_, c| c.strong_count() > 0);
        let cache = Arc::new(self.start(url));
        caches.insert(url.to_owned(), Arc::downgrade(&cache));
        Keys::Fetched(Handle::new(cache, self.timing.linger))
    }

    fn start(&self, url: &str) -> Cache {
        let not_yet = |why: String| Arc::new(Err(JwtError::KeysNotYet(why)));
        let shared = Arc::new(Shared {
            url: url.to_owned(),
            keys: ArcSwap::new(not_yet("no fetch has finished yet".into())),
            wake: Notify::new(),
        });
        let parsed = match JwksUrl::parse(url) {
            Ok(u) => u,
            Err(e) => {
                // The config check refuses such URLs; this is a backstop.
                shared.keys.store(Arc::new(Err(JwtError::NoKeys(e))));
                return Cache { shared, task: None };
            }
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            shared
                .keys
                .store(not_yet("no runtime to fetch with".into()));
            return Cache { shared, task: None };
        };
        let tls = self
            .tls
            .get_or_init(|| fetch::default_tls().map_err(|e| e.to_string()))
            .clone();
        let task = runtime.spawn(refresh_loop(
            shared.clone(),
            parsed,
            tls,
            self.timing,
            self.counts.clone(),
        ));
        Cache {
            shared,
            task: Some(task.abort_handle()),
        }
    }
}

/// What the fetch task and the request path share.
#[derive(Debug)]
struct Shared {
    url: String,
    keys: ArcSwap<LoadedKeys>,
    /// A `kid` was missing: fetch again once [`MIN_INTERVAL`] allows.
    wake: Notify,
}

/// One URL's cache; its task stops when the last handle is gone.
#[derive(Debug)]
struct Cache {
    shared: Arc<Shared>,
    task: Option<AbortHandle>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// An inbound's reference to a URL's cache.
#[derive(Debug)]
pub struct Handle {
    cache: Option<Arc<Cache>>,
    linger: Duration,
}

impl Handle {
    fn new(cache: Arc<Cache>, linger: Duration) -> Self {
        Self {
            cache: Some(cache),
            linger,
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let (Some(cache), Ok(runtime)) = (self.cache.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let linger = self.linger;
        runtime.spawn(async move {
            sleep(linger).await;
            drop(cache);
        });
    }
}

/// The keys of one JWKS source, as the request path reads them.
#[derive(Debug)]
pub enum Keys {
    /// Read once (a file).
    Loaded(LoadedKeys),
    /// Fetched from a URL and kept fresh in the background.
    Fetched(Handle),
}

impl Keys {
    /// Checks `token` against `config`; a token whose `kid` is not in a
    /// fetched set asks for an early refresh.
    pub fn verify(&self, token: &str, config: &JwtConfig) -> Result<(), JwtError> {
        match self {
            Keys::Loaded(keys) => jwt::verify(token, config, keys),
            Keys::Fetched(Handle {
                cache: Some(cache), ..
            }) => {
                let result = jwt::verify(token, config, &cache.shared.keys.load());
                if result == Err(JwtError::UnknownKey) {
                    cache.shared.wake.notify_one();
                }
                result
            }
            Keys::Fetched(Handle { cache: None, .. }) => {
                Err(JwtError::NoKeys("the cache is gone".into()))
            }
        }
    }
}

async fn refresh_loop(
    shared: Arc<Shared>,
    url: JwksUrl,
    tls: Tls,
    timing: Timing,
    counts: Arc<FetchCounts>,
) {
    loop {
        let started = Instant::now();
        let result = fetch::fetch(&url, &tls, timing.fetch_timeout).await;
        counts.record(&shared.url, result.is_ok());
        let have_keys = match result {
            Ok(set) => {
                shared.keys.store(Arc::new(Ok(set)));
                true
            }
            Err(error) if shared.keys.load().is_ok() => {
                warn!(url = %shared.url, %error, "cannot refresh a JWKS; keeping the last good keys");
                true
            }
            Err(error) => {
                warn!(url = %shared.url, %error, "cannot fetch a JWKS; tokens checked against it are refused");
                shared
                    .keys
                    .store(Arc::new(Err(JwtError::KeysNotYet(error))));
                false
            }
        };
        let wait = if have_keys {
            timing.refresh
        } else {
            timing.min_interval
        };
        tokio::select! {
            () = sleep(wait) => {}
            () = shared.wake.notified() => sleep_until(started + timing.min_interval).await,
        }
    }
}

#[cfg(test)]
mod tests;
