//! Secrets at rest: the operator's 32-byte CA key (a key-encryption key)
//! and the AES-256-GCM sealing of private keys with it before they are
//! written to the store.
//!
//! A sealed value is `1 || nonce (12 bytes) || ciphertext || tag (16)`.
//! Nonces are random: with one key and at most a few thousand seals over
//! its life (one per mesh CA and per signing key), a 96-bit random nonce
//! colliding is not a practical concern. The caller's `aad` (the mesh name
//! for a CA key) binds a sealed value to what it belongs to, so a row
//! copied to another mesh does not open.

use std::{fmt, path::Path, sync::Arc};

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use zeroize::Zeroizing;

/// Environment variable with the CA key (base64 of 32 bytes).
pub const CA_KEY_ENV: &str = "WEFT_CA_KEY";
/// Length of the CA key.
pub const CA_KEY_LEN: usize = 32;
/// Format byte in front of every sealed value, so the format can change.
const SEALED_V1: u8 = 1;

/// The operator's key that encrypts CA private keys (and the token signing
/// key) in the store. Only the AES key schedule is kept; its `Debug` never
/// shows anything of the key.
#[derive(Clone)]
pub struct CaKey(Arc<LessSafeKey>);

impl fmt::Debug for CaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaKey(<redacted>)")
    }
}

/// Why a CA key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaKeyError {
    #[error(
        "the CA key is not base64 (expected base64 of {CA_KEY_LEN} random bytes, e.g. from `openssl rand -base64 32`)"
    )]
    NotBase64,
    #[error(
        "the CA key is {0} bytes; it must be {CA_KEY_LEN} (base64 of {CA_KEY_LEN} random bytes)"
    )]
    Length(usize),
    #[error("cannot read the CA key file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A sealed value that did not open: wrong CA key, or a corrupt or moved row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decrypt {what}: wrong CA key, or the stored value is corrupt")]
pub struct OpenError {
    pub what: String,
}

impl CaKey {
    /// Reads base64 text (surrounding whitespace ignored), as in `WEFT_CA_KEY`.
    pub fn from_base64(text: &str) -> Result<Self, CaKeyError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| CaKeyError::NotBase64)?,
        );
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, CaKeyError> {
        if bytes.len() != CA_KEY_LEN {
            return Err(CaKeyError::Length(bytes.len()));
        }
        // ring accepts every 32-byte AES-256 key; the length was checked.
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CaKeyError::Length(bytes.len()))?;
        Ok(Self(Arc::new(LessSafeKey::new(unbound))))
    }

    /// Reads a file holding the same base64 text as `WEFT_CA_KEY`.
    pub fn from_file(path: &Path) -> Result<Self, CaKeyError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| CaKeyError::File {
                    path: path.display().to_string(),
                    source,
                })?,
            );
        Self::from_base64(&text)
    }

    /// A fresh random key, returned with its base64 form (what
    /// `WEFT_CA_KEY` holds), for tests and tooling. Never log the text.
    pub fn generate() -> Result<(Self, Zeroizing<String>), ring::error::Unspecified> {
        let mut bytes = Zeroizing::new([0u8; CA_KEY_LEN]);
        SystemRandom::new().fill(bytes.as_mut())?;
        let key = Self::from_bytes(bytes.as_ref()).map_err(|_| ring::error::Unspecified)?;
        Ok((key, Zeroizing::new(STANDARD.encode(bytes.as_ref()))))
    }

    /// Encrypts `plaintext`, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Result<Vec<u8>, ring::error::Unspecified> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce)?;
        let mut in_out = plaintext.to_vec();
        self.0.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut in_out,
        )?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        // The plaintext copy was encrypted in place: nothing to wipe.
        Ok(sealed)
    }

    /// Decrypts what [`CaKey::seal`] made with the same key and `aad`.
    /// `what` names the value in the error.
    pub fn open(
        &self,
        sealed: &[u8],
        aad: &str,
        what: &str,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let err = || OpenError {
            what: what.to_owned(),
        };
        let Some((&SEALED_V1, rest)) = sealed.split_first() else {
            return Err(err());
        };
        if rest.len() < NONCE_LEN {
            return Err(err());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| err())?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .0
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut in_out)
            .map_err(|_| err())?
            .len();
        in_out.truncate(len);
        Ok(in_out)
    }
}

#[cfg(test)]
mod tests;
