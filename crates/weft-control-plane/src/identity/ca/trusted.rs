//! Roots a mesh's proxies trust besides the issuing CA's (`mtls.trustedCas`):
//! the CA a rotation moves to or away from. Only a certificate is needed,
//! never a key: these CAs sign nothing while they are merely trusted.

use std::path::Path;

use weft_api::FieldError;
use x509_parser::{certificate::X509Certificate, prelude::FromDer};

use super::{ChainError, pem_certificates, to_pem};

/// One trusted root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    der: Vec<u8>,
    not_after: u64,
}

impl TrustedRoot {
    /// The last certificate of a PEM text (a chain ends with its root),
    /// which must be an unexpired CA certificate. `now` is unix seconds.
    pub fn from_pem(text: &str, now: u64) -> Result<Self, ChainError> {
        let certs = pem_certificates(text)?;
        let index = certs.len().saturating_sub(1);
        let der = certs.into_iter().last().ok_or(ChainError::Empty)?;
        let (_, cert) = X509Certificate::from_der(&der).map_err(|e| ChainError::Unreadable {
            index,
            reason: e.to_string(),
        })?;
        if !cert.is_ca() {
            return Err(ChainError::NotCa);
        }
        let not_after = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
        if not_after <= now {
            return Err(ChainError::Expired(weft_api::rest::rfc3339(not_after)));
        }
        Ok(Self { der, not_after })
    }

    /// The root as DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The root as PEM.
    pub fn certificate_pem(&self) -> String {
        to_pem(&self.der)
    }

    /// Unix seconds.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }
}

/// Why a provided trusted CA cannot be used; [`TrustError::field_error`]
/// names the Mesh field (`mtls.trustedCas[i].certFile`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("{file} {source}")]
    Chain {
        file: String,
        #[source]
        source: ChainError,
    },
}

impl TrustError {
    /// The error as a validation error of entry `index` of `mtls.trustedCas`.
    pub fn field_error(&self, index: usize) -> FieldError {
        FieldError::new(
            format!("mtls.trustedCas[{index}].certFile"),
            self.to_string(),
        )
    }
}

/// Reads the root a provided trusted CA contributes from `cert_file`.
pub async fn load_file(cert_file: &str, now: u64) -> Result<TrustedRoot, TrustError> {
    let text = tokio::fs::read_to_string(Path::new(cert_file))
        .await
        .map_err(|e| TrustError::Read {
            file: cert_file.to_owned(),
            reason: e.to_string(),
        })?;
    TrustedRoot::from_pem(&text, now).map_err(|source| TrustError::Chain {
        file: cert_file.to_owned(),
        source,
    })
}
