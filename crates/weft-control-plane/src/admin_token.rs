//! The REST API's admin token. Generated on the first start, written to a
//! file (mode 0600) where the CLI finds it; the store keeps only its
//! SHA-256, so reading the store does not grant API access.

use std::{io::Write, path::Path};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{digest, rand::SecureRandom};

use crate::store::{Store, StoreError};

/// Every admin token starts with this, so a leaked one is recognisable.
pub const ADMIN_TOKEN_PREFIX: &str = "weft-admin-";

#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot generate an admin token: no randomness")]
    Random,
    #[error("cannot write the admin token to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Checks presented tokens against the stored hash.
#[derive(Clone)]
pub struct AdminToken {
    hash: Vec<u8>,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<hash>)")
    }
}

impl AdminToken {
    /// Loads the token's hash, or on the very first start generates a
    /// token, stores its hash and writes the token to `file`.
    pub async fn ensure(store: &dyn Store, file: &Path) -> Result<Self, AdminTokenError> {
        if let Some(hash) = store.admin_token_hash().await? {
            let matches = std::fs::read_to_string(file).is_ok_and(|t| sha256(t.trim()) == hash);
            if !matches {
                tracing::warn!(
                    file = %file.display(),
                    "the admin token file is missing or holds another token; \
                     the token generated at this store's first start is still the one required"
                );
            }
            return Ok(Self { hash });
        }
        let token = generate()?;
        let hash = store.init_admin_token_hash(&sha256(&token)).await?;
        if hash == sha256(&token) {
            write_private(file, &token)?;
            tracing::info!(file = %file.display(), "admin token generated");
        }
        Ok(Self { hash })
    }

    /// Whether `presented` is the admin token.
    pub fn verify(&self, presented: &str) -> bool {
        let presented = sha256(presented);
        // Compare every byte: the time taken says nothing about where the
        // hashes differ.
        presented.len() == self.hash.len()
            && presented
                .iter()
                .zip(&self.hash)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

fn sha256(text: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

fn generate() -> Result<String, AdminTokenError> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AdminTokenError::Random)?;
    Ok(format!(
        "{ADMIN_TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Writes `token` readable by its owner only, creating parent directories.
fn write_private(path: &Path, token: &str) -> Result<(), AdminTokenError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| AdminTokenError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    file.write_all(format!("{token}\n").as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn first_start_writes_a_token_later_starts_keep_it() {
        let dir = std::env::temp_dir().join(format!("weft-admin-token-{}", std::process::id()));
        let file = dir.join("nested").join("admin-token");
        let store = SqliteStore::open_memory().await.unwrap();
        let first = AdminToken::ensure(&store, &file).await.unwrap();
        let token = std::fs::read_to_string(&file).unwrap();
        assert!(token.starts_with(ADMIN_TOKEN_PREFIX));
        assert!(first.verify(token.trim()));
        assert!(!first.verify("weft-admin-guess"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );

        std::fs::remove_file(&file).unwrap();
        let again = AdminToken::ensure(&store, &file).await.unwrap();
        assert!(again.verify(token.trim()), "the stored hash still rules");
        assert!(!file.exists(), "a later start does not mint a second token");
        let _ = std::fs::remove_dir_all(dir);
    }
}
