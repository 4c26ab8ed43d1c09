//! What the proxy reports about itself on its admin server: the config it
//! runs (written by the agent after each apply), its workload identity,
//! its metrics, and whether it is shutting down.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use arc_swap::ArcSwapOption;

use crate::{config::Config, metrics::Metrics, tls::Identity};

/// `/ready` before the first config is applied.
pub const NOT_READY: &str = "not ready: no config from the control plane yet";
/// `/ready` once shutdown started.
pub const SHUTTING_DOWN: &str = "not ready: shutting down";
/// `/ready` with mTLS on and no unexpired certificate.
pub const NO_CERTIFICATE: &str = "not ready: no valid workload certificate";

#[derive(Debug)]
pub struct Status {
    config: ArcSwapOption<Config>,
    identity: Arc<Identity>,
    metrics: Arc<Metrics>,
    draining: AtomicBool,
}

impl Status {
    pub fn new(identity: Arc<Identity>) -> Self {
        Self {
            config: ArcSwapOption::empty(),
            metrics: Arc::new(Metrics::new(&identity)),
            identity,
            draining: AtomicBool::new(false),
        }
    }

    /// The proxy's metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Ready means: not shutting down, a config applied, and with mTLS on,
    /// a certificate that has not expired. Otherwise, why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if self.is_draining() {
            return Err(SHUTTING_DOWN);
        }
        let Some(config) = self.config() else {
            return Err(NOT_READY);
        };
        if config.mtls.is_on() && !self.identity.has_valid_certificate() {
            return Err(NO_CERTIFICATE);
        }
        Ok(())
    }

    /// The config being run; `None` until the first one is applied.
    pub fn config(&self) -> Option<Arc<Config>> {
        self.config.load_full()
    }

    pub fn set_config(&self, config: Arc<Config>) {
        self.metrics.set_config_version(config.version);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        config::MtlsMode,
        tests::ca::{TestCa, mtls},
    };

    fn config(mode: MtlsMode, ca: &TestCa) -> Arc<Config> {
        Arc::new(Config {
            version: 1,
            mesh: "default".into(),
            dataplane: "web-1".into(),
            inbounds: vec![],
            outbounds: vec![],
            mtls: mtls(mode, ca),
            transparent: None,
            tracing: None,
        })
    }

    #[test]
    fn ready_needs_a_config_and_with_mtls_a_certificate() {
        let ca = TestCa::new("status CA");
        let identity = Identity::new("default");
        let status = Status::new(identity.clone());
        assert_eq!(status.readiness(), Err(NOT_READY));
        status.set_config(config(MtlsMode::Off, &ca));
        assert_eq!(status.readiness(), Ok(()));
        status.set_config(config(MtlsMode::Permissive, &ca));
        assert_eq!(status.readiness(), Err(NO_CERTIFICATE));
        identity.store_credentials(ca.credentials("web", Duration::from_secs(60)));
        assert_eq!(status.readiness(), Ok(()));
        status.start_draining();
        assert_eq!(status.readiness(), Err(SHUTTING_DOWN));
    }
}
