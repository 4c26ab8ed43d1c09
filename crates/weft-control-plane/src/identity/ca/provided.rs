//! A provided CA: the operator's root or intermediate, read from the files
//! the Mesh names (`mtls.ca.certFile`, `mtls.ca.keyFile`) on the control
//! plane's host. Its key stays in the operator's file; nothing of it is
//! copied into the store.

use std::path::Path;

use rcgen::KeyPair;
use weft_api::FieldError;
use zeroize::Zeroizing;

use super::{Ca, ChainError};

/// Field paths errors are reported under.
pub const CERT_FILE_PATH: &str = "mtls.ca.certFile";
pub const KEY_FILE_PATH: &str = "mtls.ca.keyFile";

/// Why a provided CA cannot be used. [`ProvidedError::field_error`] names
/// the Mesh field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvidedError {
    #[error("{path}: cannot read {file}: {reason}")]
    Read {
        path: &'static str,
        file: String,
        reason: String,
    },
    #[error(
        "{KEY_FILE_PATH}: {file} is not a PKCS#8 private key in PEM (-----BEGIN PRIVATE KEY-----) of a supported type (ECDSA P-256/P-384, Ed25519, RSA)"
    )]
    Key { file: String },
    #[error("{CERT_FILE_PATH}: {file} {source}")]
    Chain {
        file: String,
        #[source]
        source: ChainError,
    },
}

impl ProvidedError {
    /// The error as a validation error of the Mesh.
    pub fn field_error(&self) -> FieldError {
        let text = self.to_string();
        let path: &'static str = match self {
            ProvidedError::Read { path, .. } => path,
            ProvidedError::Key { .. } => KEY_FILE_PATH,
            ProvidedError::Chain { .. } => CERT_FILE_PATH,
        };
        let message = text
            .strip_prefix(path)
            .and_then(|m| m.strip_prefix(": "))
            .unwrap_or(&text);
        FieldError::new(path, message)
    }
}

/// Reads and checks a provided CA. `now` is unix seconds.
pub async fn load(cert_file: &str, key_file: &str, now: u64) -> Result<Ca, ProvidedError> {
    let chain_pem = read(cert_file, CERT_FILE_PATH).await?;
    let key_pem = Zeroizing::new(read(key_file, KEY_FILE_PATH).await?);
    let key = KeyPair::from_pem(&key_pem).map_err(|_| ProvidedError::Key {
        file: key_file.to_owned(),
    })?;
    Ca::new(&chain_pem, key, now).map_err(|source| ProvidedError::Chain {
        file: cert_file.to_owned(),
        source,
    })
}

async fn read(file: &str, path: &'static str) -> Result<String, ProvidedError> {
    tokio::fs::read_to_string(Path::new(file))
        .await
        .map_err(|e| ProvidedError::Read {
            path,
            file: file.to_owned(),
            reason: e.to_string(),
        })
}
