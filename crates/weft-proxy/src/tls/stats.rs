//! Counters of what happened to mTLS, for `/metrics`: refused plaintext,
//! failed handshakes, certificate issuance. Plain atomics, bumped on the
//! connection path without a lock.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct TlsStats {
    /// Inbound connections that completed an mTLS handshake.
    pub inbound_mtls: AtomicU64,
    /// Inbound connections served in plaintext (mode off or permissive).
    pub inbound_plaintext: AtomicU64,
    /// Plaintext connections closed because the mode is strict.
    pub plaintext_refused: AtomicU64,
    /// Inbound handshakes that failed (bad or missing peer certificate,
    /// timeout, garbage).
    pub inbound_handshake_failures: AtomicU64,
    /// Outbound handshakes that failed (untrusted peer, wrong service).
    pub outbound_handshake_failures: AtomicU64,
    /// Certificates obtained from the control plane.
    pub certificates_issued: AtomicU64,
    /// Certificate requests that failed.
    pub certificate_failures: AtomicU64,
}

impl TlsStats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
