//! A mesh CA loaded and ready to sign: its certificate chain, its key, and
//! what proxies need to trust it.
//!
//! The chain is ordered issuing certificate first, each one signed by the
//! next, ending with a self-signed root. The builtin CA is a lone root; a
//! provided CA may be an intermediate followed by its chain. Workload
//! certificates are served with the certificates between them and the root
//! (not the root itself: peers have it in their trust bundle).
//!
//! During a CA rotation the CA also carries the roots of the mesh's
//! `trustedCas` ([`trusted`]): they join its root in the trust bundle but
//! never sign.

use std::fmt;

use rcgen::{Issuer, KeyPair, PublicKeyData};
use ring::digest::{SHA256, digest};
use x509_parser::{certificate::X509Certificate, pem::Pem, prelude::FromDer};

pub mod builtin;
mod issue;
pub mod provided;
pub mod trusted;

pub use issue::{CsrError, Issued};
pub use trusted::TrustedRoot;

/// A CA that can sign workload certificates. Its `Debug` shows no key.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// DER of the chain, issuing certificate first, root last.
    chain: Vec<Vec<u8>>,
    /// Unix seconds: the earliest expiry in the chain. No workload
    /// certificate outlives it.
    not_after: u64,
    issuer_id: String,
    /// Other roots in the trust bundle (`mtls.trustedCas`), in order.
    trusted: Vec<TrustedRoot>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("issuer_id", &self.issuer_id)
            .field("chain_len", &self.chain.len())
            .field("not_after", &self.not_after)
            .field("trusted", &self.trusted.len())
            .finish_non_exhaustive()
    }
}

/// Why a certificate chain and key do not make a usable CA. The messages
/// complete a sentence about the file ("mtls.ca.certFile: ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("holds no PEM certificate")]
    Empty,
    #[error("certificate {index} is not valid PEM or X.509: {reason}")]
    Unreadable { index: usize, reason: String },
    #[error("is not a CA certificate (it lacks basicConstraints CA:TRUE)")]
    NotCa,
    #[error("expired at {0}")]
    Expired(String),
    #[error(
        "certificate {index} is not signed by certificate {next}; list the issuing CA first, then each issuer up to the root"
    )]
    Order { index: usize, next: usize },
    #[error(
        "ends with a certificate that is not a self-signed root; append the chain up to the root"
    )]
    NoRoot,
    #[error("does not match the private key (keyFile)")]
    KeyMismatch,
    #[error("cannot be used to sign: {0}")]
    Unusable(String),
}

impl Ca {
    /// Builds a CA from a PEM chain (issuing certificate first) and its key,
    /// checking the chain as [`ChainError`] lists. `now` is unix seconds.
    pub fn new(chain_pem: &str, key: KeyPair, now: u64) -> Result<Self, ChainError> {
        let chain = pem_certificates(chain_pem)?;
        let parsed = chain
            .iter()
            .enumerate()
            .map(|(index, der)| {
                X509Certificate::from_der(der)
                    .map(|(_, cert)| cert)
                    .map_err(|e| ChainError::Unreadable {
                        index,
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let issuing = parsed.first().ok_or(ChainError::Empty)?;
        if !issuing.is_ca() {
            return Err(ChainError::NotCa);
        }
        if issuing.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(ChainError::KeyMismatch);
        }
        for (index, pair) in parsed.windows(2).enumerate() {
            if pair[0]
                .verify_signature(Some(pair[1].public_key()))
                .is_err()
            {
                return Err(ChainError::Order {
                    index,
                    next: index + 1,
                });
            }
        }
        let root = parsed.last().ok_or(ChainError::Empty)?;
        if root.subject() != root.issuer() || root.verify_signature(None).is_err() {
            return Err(ChainError::NoRoot);
        }
        let not_after = parsed
            .iter()
            .map(|c| u64::try_from(c.validity().not_after.timestamp()).unwrap_or(0))
            .min()
            .unwrap_or(0);
        if not_after <= now {
            return Err(ChainError::Expired(weft_api::rest::rfc3339(not_after)));
        }
        let issuer = Issuer::from_ca_cert_der(&chain[0].clone().into(), key)
            .map_err(|e| ChainError::Unusable(e.to_string()))?;
        let issuer_id = hex(digest(&SHA256, &chain[0]).as_ref());
        Ok(Self {
            issuer,
            chain,
            not_after,
            issuer_id,
            trusted: Vec::new(),
        })
    }

    /// The same CA, its proxies also trusting `roots` (the mesh's
    /// `trustedCas`). A root already in the bundle is listed once.
    pub fn with_trusted(mut self, roots: Vec<TrustedRoot>) -> Self {
        let mut trusted: Vec<TrustedRoot> = Vec::with_capacity(roots.len());
        for root in roots {
            let known = self.chain.last().is_some_and(|own| own == root.der())
                || trusted.iter().any(|t| t.der() == root.der());
            if !known {
                trusted.push(root);
            }
        }
        self.trusted = trusted;
        self
    }

    /// The other trusted roots (`GET /meshes/{mesh}/ca` lists them).
    pub fn trusted(&self) -> &[TrustedRoot] {
        &self.trusted
    }

    /// Changes exactly when the issuing certificate does (hex SHA-256 of
    /// its DER), so proxies know to request a new certificate.
    pub fn issuer_id(&self) -> &str {
        &self.issuer_id
    }

    /// Unix seconds; the earliest expiry in the chain.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// What peers trust: this CA's root, then every trusted root.
    pub fn trust_bundle_pem(&self) -> String {
        let own = self.chain.last().map(|der| to_pem(der)).unwrap_or_default();
        self.trusted
            .iter()
            .fold(own, |bundle, root| bundle + &root.certificate_pem())
    }

    /// The whole chain, issuing certificate first (public: `GET /meshes/{mesh}/ca`).
    pub fn certificate_pem(&self) -> String {
        self.chain.iter().map(|der| to_pem(der)).collect()
    }

    /// What follows a workload certificate on the wire: every certificate
    /// of the chain but the root (nothing for a root CA).
    fn intermediates_pem(&self) -> String {
        let below_root = self.chain.len().saturating_sub(1);
        self.chain[..below_root]
            .iter()
            .map(|der| to_pem(der))
            .collect()
    }
}

/// Every `CERTIFICATE` block of a PEM text, as DER.
fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, ChainError> {
    let mut certs = Vec::new();
    for (index, block) in Pem::iter_from_buffer(text.as_bytes()).enumerate() {
        let block = block.map_err(|e| ChainError::Unreadable {
            index,
            reason: e.to_string(),
        })?;
        if block.label == "CERTIFICATE" {
            certs.push(block.contents);
        }
    }
    if certs.is_empty() {
        return Err(ChainError::Empty);
    }
    Ok(certs)
}

/// PEM of one DER certificate, 64 columns, `\n` line ends.
pub(crate) fn to_pem(der: &[u8]) -> String {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let body = STANDARD.encode(der);
    let mut pem = String::with_capacity(body.len() + body.len() / 64 + 60);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Unix seconds to the `time` type rcgen takes; out-of-range values clamp
/// to the epoch, which only a broken clock could produce.
fn datetime(unix: u64) -> time::OffsetDateTime {
    i64::try_from(unix)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A random positive 128-bit serial number (RFC 5280 asks for at most 20
/// octets and unpredictability).
fn serial_number() -> Result<rcgen::SerialNumber, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    // Clear the sign bit so the DER integer stays positive; set the next one
    // so it keeps all 16 octets.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests;
