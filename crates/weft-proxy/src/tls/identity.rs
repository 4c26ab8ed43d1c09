//! This proxy's side of mTLS as the handshakes see it: the mesh's mTLS
//! settings of the running config, the certificate and key it presents,
//! and the roots it trusts. Each is an `ArcSwap`: a handshake loads them
//! without a lock, and a renewal or a new config swaps them without
//! touching connections already made.

use std::{fmt, sync::Arc, time::SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use rustls::{
    SignatureScheme,
    client::ResolvesClientCert,
    pki_types::{CertificateDer, TrustAnchor, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use serde::{Serialize, Serializer};
use tokio::{sync::watch, time::Instant};

use super::stats::TlsStats;
use crate::config::{MtlsConfig, MtlsMode};
use crate::{authz::stats::AuthzStats, policy::stats::PolicyStats};

/// A workload certificate with its key, as issued by the control plane.
pub struct Credentials {
    /// The chain (leaf first) and the signing key; the key never leaves
    /// this struct except into rustls.
    pub key: Arc<CertifiedKey>,
    /// The leaf's SPIFFE IDs.
    pub spiffe_ids: Vec<String>,
    pub not_after: SystemTime,
    /// The `issuer_id` of the config this certificate was requested for.
    pub issuer_id: String,
    /// The trust bundle that came with the certificate.
    pub bundle: Arc<TrustBundle>,
    /// When to renew it (jittered, see `certs::renewal`).
    pub renew_at: Instant,
}

/// Never prints the key.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("spiffe_ids", &self.spiffe_ids)
            .field("not_after", &self.not_after)
            .field("issuer_id", &self.issuer_id)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn is_valid(&self, now: SystemTime) -> bool {
        now < self.not_after
    }
}

/// Roots to verify peers against (two during a CA rotation).
#[derive(Default)]
pub struct TrustBundle {
    certs: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    subjects: Vec<String>,
}

/// Why a trust bundle was rejected.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a PEM certificate list: {0}")]
    Pem(String),
    #[error("no certificate in the PEM text")]
    Empty,
    #[error("certificate {index} is not a usable root: {reason}")]
    Anchor { index: usize, reason: String },
}

impl TrustBundle {
    /// Parses PEM roots; an empty (or blank) text is an empty bundle.
    pub fn from_pem(pem: &str) -> Result<Self, BundleError> {
        if pem.trim().is_empty() {
            return Ok(Self::default());
        }
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BundleError::Pem(e.to_string()))?;
        if certs.is_empty() {
            return Err(BundleError::Empty);
        }
        let mut anchors = Vec::with_capacity(certs.len());
        let mut subjects = Vec::with_capacity(certs.len());
        for (index, cert) in certs.iter().enumerate() {
            let anchor =
                webpki::anchor_from_trusted_cert(cert).map_err(|e| BundleError::Anchor {
                    index,
                    reason: e.to_string(),
                })?;
            anchors.push(anchor.to_owned());
            // Only for display; a root webpki accepted is parseable here too.
            let subject = x509_parser::parse_x509_certificate(cert)
                .map(|(_, c)| c.subject().to_string())
                .unwrap_or_default();
            subjects.push(subject);
        }
        Ok(Self {
            certs,
            anchors,
            subjects,
        })
    }

    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

impl PartialEq for TrustBundle {
    fn eq(&self, other: &Self) -> bool {
        self.certs == other.certs
    }
}

impl Eq for TrustBundle {}

impl fmt::Debug for TrustBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.subjects).finish()
    }
}

/// Shown in `/config` as the roots' subjects: enough to see which CA is
/// trusted without dumping PEM.
impl Serialize for TrustBundle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.subjects.serialize(serializer)
    }
}

/// The identity state shared by the listeners (readers) and the agent and
/// renewal task (writers).
#[derive(Debug)]
pub struct Identity {
    mesh: String,
    /// The mTLS settings of the running config.
    settings: ArcSwap<MtlsConfig>,
    credentials: ArcSwapOption<Credentials>,
    /// Bumped on every change of settings or credentials, for the renewal
    /// task.
    changed: watch::Sender<()>,
    stats: TlsStats,
    /// Denials by TrafficPermissions, beside the mTLS counters: both
    /// are per proxy and shown by `/metrics`.
    authz_stats: AuthzStats,
    /// What traffic policies did, shared by every stack of the proxy.
    policy_stats: Arc<PolicyStats>,
    /// What became of connections the transparent-proxy rules captured.
    redirect_stats: crate::redirect::RedirectStats,
    /// Where every stack reports its requests and connections.
    observer: Arc<crate::observe::Observer>,
    /// Span export and access log counters, kept across policy changes.
    trace_stats: Arc<crate::trace::TraceStats>,
    access_log_stats: Arc<crate::access_log::AccessLogStats>,
}

impl Identity {
    /// mTLS off, no certificate, for a proxy of `mesh`.
    pub fn new(mesh: &str) -> Arc<Self> {
        Arc::new(Self {
            mesh: mesh.to_owned(),
            settings: ArcSwap::from_pointee(MtlsConfig::default()),
            credentials: ArcSwapOption::empty(),
            changed: watch::channel(()).0,
            stats: TlsStats::default(),
            authz_stats: AuthzStats::default(),
            policy_stats: Arc::default(),
            redirect_stats: Default::default(),
            observer: Arc::default(),
            trace_stats: Arc::default(),
            access_log_stats: Arc::default(),
        })
    }

    pub fn mesh(&self) -> &str {
        &self.mesh
    }

    /// The mode new connections use.
    pub fn mode(&self) -> MtlsMode {
        self.settings.load().mode
    }

    pub fn settings(&self) -> Arc<MtlsConfig> {
        self.settings.load_full()
    }

    /// Makes the running config's mTLS settings current; connections
    /// already made keep the mode they started with.
    pub fn apply(&self, settings: &MtlsConfig) {
        self.settings.store(Arc::new(settings.clone()));
        self.changed.send_replace(());
    }

    pub fn credentials(&self) -> Option<Arc<Credentials>> {
        self.credentials.load_full()
    }

    /// Swaps in a new certificate: handshakes from now on present it, open
    /// connections are not affected.
    pub fn store_credentials(&self, credentials: Credentials) {
        self.credentials.store(Some(Arc::new(credentials)));
        self.changed.send_replace(());
    }

    /// Whether there is a certificate that has not expired.
    pub fn has_valid_certificate(&self) -> bool {
        self.credentials
            .load()
            .as_ref()
            .is_some_and(|c| c.is_valid(SystemTime::now()))
    }

    /// The roots to verify peers with: the running config's bundle, or,
    /// when the config carries none, the one that came with the
    /// certificate.
    pub fn roots(&self) -> Arc<TrustBundle> {
        let settings = self.settings.load();
        if !settings.trust_bundle.is_empty() {
            return settings.trust_bundle.clone();
        }
        match self.credentials.load().as_ref() {
            Some(credentials) => credentials.bundle.clone(),
            None => settings.trust_bundle.clone(),
        }
    }

    /// Notified on every change of settings or credentials.
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }

    pub fn stats(&self) -> &TlsStats {
        &self.stats
    }

    pub fn policy_stats(&self) -> &Arc<PolicyStats> {
        &self.policy_stats
    }

    pub fn authz_stats(&self) -> &AuthzStats {
        &self.authz_stats
    }

    pub fn redirect_stats(&self) -> &crate::redirect::RedirectStats {
        &self.redirect_stats
    }

    pub fn trace_stats(&self) -> &Arc<crate::trace::TraceStats> {
        &self.trace_stats
    }

    pub fn access_log_stats(&self) -> &Arc<crate::access_log::AccessLogStats> {
        &self.access_log_stats
    }

    pub fn observer(&self) -> &Arc<crate::observe::Observer> {
        &self.observer
    }

    fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        self.credentials.load().as_ref().map(|c| c.key.clone())
    }
}

/// Hands rustls the current certificate at each handshake, on both
/// sides, so a renewal applies to the next connection without rebuilding
/// any config.
#[derive(Debug)]
pub struct CurrentCertificate(pub Arc<Identity>);

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.certified_key()
    }
}

impl ResolvesClientCert for CurrentCertificate {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.certified_key()
    }

    fn has_certs(&self) -> bool {
        true
    }
}
