//! Authorization of inbound traffic by TrafficPermissions: one small layer
//! between identifying the caller (mTLS) and forwarding to the local
//! service.
//!
//! * `config` — the permissions as the control plane sends them, ranked;
//! * `decide` — the pure decision for an HTTP request or a TCP connection;
//! * `jwt` — token checks for rules that require one;
//! * `jwks` — the keys for them, from a file or fetched from a URL;
//! * `stats` — the proxy-wide counters for `/metrics` and JWKS caches.
//!
//! Enforced only while the mesh's mTLS mode is not `off`: without mTLS no
//! caller has an identity to check. In `permissive` mode a plaintext
//! caller has none and matches only permissions for any caller.

pub mod config;
pub mod decide;
pub mod jwks;
pub mod jwt;
pub mod stats;

use std::sync::Arc;

use http::Request;
use tracing::info;

pub use self::config::PermissionConfig;
use self::decide::{Decision, Denial, Permissions, RequestView, decide_http, decide_tcp};
use self::{config::JwksSource, jwks::Keys};
use crate::{
    config::{InboundConfig, MtlsMode},
    tls::{Identity, PeerIdentity},
};

/// The authorization layer of one inbound.
#[derive(Debug)]
pub struct Authz {
    service: String,
    permissions: Permissions,
    identity: Arc<Identity>,
}

impl Authz {
    /// Loads the JWKS files the rules name (a file that cannot be read is
    /// logged, and tokens checked against it are refused) and takes the
    /// proxy's shared caches of the URLs they name.
    pub fn new(config: &InboundConfig, identity: &Arc<Identity>) -> Self {
        let mut permissions = Permissions {
            list: config.permissions.clone(),
            keys: Default::default(),
        };
        let sources = config
            .permissions
            .iter()
            .flat_map(|p| &p.rules)
            .filter_map(|r| r.jwt.as_ref())
            .map(|j| j.jwks.clone());
        for source in sources {
            if permissions.keys.contains_key(&source) {
                continue;
            }
            let keys = match &source {
                JwksSource::File(path) => {
                    let keys = jwt::load_file(path);
                    if let Err(e) = &keys {
                        tracing::warn!(service = %config.service, error = %e, "JWKS unavailable; tokens checked against it are refused");
                    }
                    Keys::Loaded(keys)
                }
                JwksSource::Url(url) => identity.authz_stats().jwks().keys(url),
            };
            permissions.keys.insert(source, keys);
        }
        Self {
            service: config.service.clone(),
            permissions,
            identity: identity.clone(),
        }
    }

    fn enforced(&self) -> bool {
        self.identity.mode() != MtlsMode::Off
    }

    /// The services `peer` proves it is, in this mesh: worked out once per
    /// connection and passed to the checks below.
    pub fn services_of(&self, peer: &PeerIdentity) -> Vec<String> {
        caller_services(peer, self.identity.mesh())
    }

    /// `Err(reason)` if `req` from `peer` (proving `services`) is denied
    /// (logged and counted).
    pub fn check_http<B>(
        &self,
        peer: &PeerIdentity,
        services: &[String],
        req: &Request<B>,
    ) -> Result<(), String> {
        if !self.enforced() {
            return Ok(());
        }
        let view = RequestView {
            method: req.method().as_str(),
            path: req.uri().path(),
            headers: req.headers(),
        };
        match decide_http(&self.permissions, services, &view) {
            Decision::Allow => Ok(()),
            Decision::Deny(denial) => Err(self.denied(peer, services, &denial)),
        }
    }

    /// Whether a TCP connection from `peer` (proving `services`) may
    /// proceed (a denial is logged and counted).
    pub fn check_tcp(&self, peer: &PeerIdentity, services: &[String]) -> bool {
        if !self.enforced() {
            return true;
        }
        match decide_tcp(&self.permissions, services) {
            Decision::Allow => true,
            Decision::Deny(denial) => {
                self.denied(peer, services, &denial);
                false
            }
        }
    }

    /// The caller's services as policies see them: none without mTLS.
    pub fn policy_services<'a>(&self, services: &'a [String]) -> &'a [String] {
        if self.enforced() { services } else { &[] }
    }

    fn denied(&self, peer: &PeerIdentity, services: &[String], denial: &Denial) -> String {
        let caller = if services.is_empty() {
            "an unidentified caller".to_owned()
        } else {
            services.join(",")
        };
        let text = denial.describe(&caller, &self.service);
        info!(
            caller = %peer,
            service = %self.service,
            reason = %text,
            "denied by authorization"
        );
        self.identity
            .authz_stats()
            .count_denial(&self.service, denial.reason.label());
        text
    }
}

/// The services a peer's SPIFFE IDs (`spiffe://<mesh>/<service>`, already
/// limited to this mesh) name; none for plaintext.
fn caller_services(peer: &PeerIdentity, mesh: &str) -> Vec<String> {
    let PeerIdentity::Mtls(ids) = peer else {
        return Vec::new();
    };
    let prefix = format!("spiffe://{mesh}/");
    ids.iter()
        .filter_map(|id| id.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests;
