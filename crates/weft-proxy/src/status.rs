//! What the proxy reports about itself on its admin server: the config it
//! runs (written by the agent after each apply) and whether it is
//! shutting down.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use arc_swap::ArcSwapOption;

use crate::config::Config;

#[derive(Debug, Default)]
pub struct Status {
    config: ArcSwapOption<Config>,
    draining: AtomicBool,
}

impl Status {
    /// The config being run; `None` until the first one is applied.
    pub fn config(&self) -> Option<Arc<Config>> {
        self.config.load_full()
    }

    pub fn set_config(&self, config: Arc<Config>) {
        self.config.store(Some(config));
    }

    /// The version of the config being run, 0 when there is none (what
    /// `Hello.running_version` expects).
    pub fn running_version(&self) -> u64 {
        self.config.load().as_ref().map_or(0, |c| c.version)
    }

    /// From now on the proxy reports not ready, so that whatever routes to
    /// it stops before it closes its listeners.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}
