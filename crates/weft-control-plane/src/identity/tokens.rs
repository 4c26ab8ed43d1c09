//! Dataplane tokens: what a proxy presents to prove which mesh and services
//! it may register as (format in [`weft_api::token`]).
//!
//! Tokens are signed with an Ed25519 key of this control plane, kept in the
//! store: sealed with the CA key when one is configured, in the clear
//! otherwise (then anyone who can read the store can mint tokens; supply a
//! CA key in production). Two ways to take tokens back:
//!
//! * **Revocation** (`POST /tokens/revoke {id}`): one token, by its `jti`.
//!   Recorded in the store, so it survives restarts.
//! * **Rotation** (`POST /tokens/signing-key/rotate`): a new key; every token
//!   signed by an older one is refused from then on. The old private key is
//!   erased; its public half is kept only to tell "rotated" from "forged".
//!
//! Either one also ends the open streams of proxies that used those tokens
//! (the caller does that through [`crate::sessions::Sessions`]).
//!
//! The signing keys and the revoked ids are held in memory and changed only
//! through this type, so one control plane per store is assumed (several
//! replicas would need the PostgreSQL store to notify each other).

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use ring::{
    digest::{SHA256, digest},
    rand::{SecureRandom, SystemRandom},
    signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey},
};
use weft_api::token::{self, Claims, TokenFormatError};
use zeroize::Zeroizing;

use super::{ca::hex, secret::CaKey};
use crate::store::{Store, StoreError, StoredSigningKey, StoredToken};

/// Validity of a token when the request does not say.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Longest validity a token may be issued with.
pub const MAX_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a token does not authenticate its bearer (gRPC `Unauthenticated`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("dataplane token: missing")]
    Missing,
    #[error("dataplane token: malformed: {0}")]
    Malformed(#[from] TokenFormatError),
    #[error("dataplane token: signed by an unknown key")]
    UnknownKey,
    #[error("dataplane token: invalid signature")]
    BadSignature,
    #[error("dataplane token: signed by a rotated key")]
    RotatedKey,
    #[error("dataplane token: expired")]
    Expired,
    #[error("dataplane token: revoked")]
    Revoked,
}

/// A valid token that does not cover what it is used for (gRPC
/// `PermissionDenied`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("token for mesh {token_mesh} cannot be used in mesh {mesh}")]
    Mesh { token_mesh: String, mesh: String },
    #[error("token for mesh {mesh} allows services [{}], not {service}", allowed.join(", "))]
    Service {
        mesh: String,
        allowed: Vec<String>,
        service: String,
    },
}

/// Checks that `claims` allow a Dataplane of `mesh` serving `services`.
pub fn authorize<'a>(
    claims: &Claims,
    mesh: &str,
    services: impl IntoIterator<Item = &'a str>,
) -> Result<(), Denied> {
    if claims.mesh != mesh {
        return Err(Denied::Mesh {
            token_mesh: claims.mesh.clone(),
            mesh: mesh.to_owned(),
        });
    }
    for service in services {
        if !claims.services.iter().any(|s| s == service) {
            return Err(Denied::Service {
                mesh: claims.mesh.clone(),
                allowed: claims.services.clone(),
                service: service.to_owned(),
            });
        }
    }
    Ok(())
}

/// Why the signing keys could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the token signing key in the store is encrypted, but no CA key was given; \
         {}",
        super::cas::CA_KEY_HINT
    )]
    NeedCaKey,
    #[error(transparent)]
    Open(#[from] super::secret::OpenError),
    #[error("the token signing key {kid} in the store is unusable: {reason}")]
    Corrupt { kid: String, reason: String },
    #[error("cannot generate a token signing key")]
    Generate,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The active signing key.
struct Active {
    kid: String,
    pair: Ed25519KeyPair,
}

/// Public keys by kid, and whether each is retired.
#[derive(Default)]
struct Keys {
    active: Option<Arc<Active>>,
    public: HashMap<String, (Vec<u8>, bool)>,
}

/// Issues, verifies, revokes dataplane tokens and rotates their key.
pub struct Tokens {
    store: Arc<dyn Store>,
    ca_key: Option<CaKey>,
    keys: RwLock<Keys>,
    revoked: RwLock<HashSet<String>>,
    /// One rotation at a time in this process.
    rotating: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("active_kid", &self.active_kid())
            .field("sealed", &self.ca_key.is_some())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Loads the signing keys and revocations, creating the first key on
    /// the first start.
    pub async fn load(store: Arc<dyn Store>, ca_key: Option<CaKey>) -> Result<Self, KeyError> {
        let tokens = Self {
            store,
            ca_key,
            keys: RwLock::new(Keys::default()),
            revoked: RwLock::new(HashSet::new()),
            rotating: tokio::sync::Mutex::new(()),
        };
        if !tokens
            .store
            .signing_keys()
            .await?
            .iter()
            .any(|k| k.retired.is_none())
        {
            let first = tokens.generate(weft_api::rest::now_unix())?;
            tokens.store.put_signing_key(first, false).await?;
        }
        tokens.reload().await?;
        let revoked = tokens.store.revoked_tokens().await?;
        *tokens
            .revoked
            .write()
            .unwrap_or_else(PoisonError::into_inner) = revoked.into_iter().map(|t| t.jti).collect();
        Ok(tokens)
    }

    /// Whether the signing key is stored encrypted (a CA key is configured).
    pub fn sealed(&self) -> bool {
        self.ca_key.is_some()
    }

    /// Id of the key new tokens are signed with.
    pub fn active_kid(&self) -> Option<String> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .active
            .as_ref()
            .map(|a| a.kid.clone())
    }

    /// Signs a token for `mesh` and `services` (already validated), valid
    /// for `valid_for` from `now` (unix seconds), and records it.
    pub async fn issue(
        &self,
        mesh: &str,
        services: Vec<String>,
        valid_for: Duration,
        now: u64,
    ) -> Result<(String, StoredToken), KeyError> {
        let active = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .active
            .clone()
            .ok_or(KeyError::Generate)?;
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| KeyError::Generate)?;
        let claims = Claims {
            mesh: mesh.to_owned(),
            services,
            iat: now,
            exp: now.saturating_add(valid_for.as_secs()),
            jti: hex(&jti),
            kid: active.kid.clone(),
        };
        let signed = token::signed_part(&claims);
        let token = token::assemble(&signed, active.pair.sign(signed.as_bytes()).as_ref());
        let record = StoredToken {
            jti: claims.jti,
            mesh: claims.mesh,
            services: claims.services,
            kid: claims.kid,
            issued: claims.iat,
            expires: claims.exp,
            revoked: None,
        };
        self.store.record_token(&record).await?;
        Ok((token, record))
    }

    /// The claims of `token` if it is authentic, current and not revoked;
    /// `now` is unix seconds. Say what the claims allow with [`authorize`].
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.trim().is_empty() {
            return Err(TokenError::Missing);
        }
        let parsed = token::parse(token)?;
        let (public, retired) = {
            let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            keys.public
                .get(&parsed.claims.kid)
                .cloned()
                .ok_or(TokenError::UnknownKey)?
        };
        UnparsedPublicKey::new(&ED25519, &public)
            .verify(parsed.signed_part.as_bytes(), &parsed.signature)
            .map_err(|_| TokenError::BadSignature)?;
        if retired {
            return Err(TokenError::RotatedKey);
        }
        if now >= parsed.claims.exp {
            return Err(TokenError::Expired);
        }
        let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        if revoked.contains(&parsed.claims.jti) {
            return Err(TokenError::Revoked);
        }
        Ok(parsed.claims)
    }

    /// Revokes token `jti`; `None` if this control plane never issued it.
    pub async fn revoke(&self, jti: &str, now: u64) -> Result<Option<StoredToken>, StoreError> {
        let token = self.store.revoke_token(jti, now).await?;
        if token.is_some() {
            self.revoked
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(jti.to_owned());
        }
        Ok(token)
    }

    /// Every revoked token, most recent first.
    pub async fn revoked(&self) -> Result<Vec<StoredToken>, StoreError> {
        self.store.revoked_tokens().await
    }

    /// Replaces the signing key; returns the new key's id and creation time.
    pub async fn rotate(&self, now: u64) -> Result<(String, u64), KeyError> {
        let _one_at_a_time = self.rotating.lock().await;
        let new = self.generate(now)?;
        let active = self.store.put_signing_key(new, true).await?;
        self.reload().await?;
        Ok((active.kid, active.created))
    }

    /// A new key pair, its private key sealed if a CA key is configured.
    fn generate(&self, now: u64) -> Result<StoredSigningKey, KeyError> {
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::Generate)?;
        let public_key = pair.public_key().as_ref().to_vec();
        let kid = hex(&digest(&SHA256, &public_key).as_ref()[..8]);
        let private_key = match &self.ca_key {
            Some(ca_key) => ca_key
                .seal(&pkcs8, &aad(&kid))
                .map_err(|_| KeyError::Generate)?,
            None => pkcs8.to_vec(),
        };
        Ok(StoredSigningKey {
            sealed: self.ca_key.is_some(),
            kid,
            public_key,
            private_key: Some(private_key),
            created: now,
            retired: None,
        })
    }

    /// Reads every key from the store and opens the active one.
    async fn reload(&self) -> Result<(), KeyError> {
        let stored = self.store.signing_keys().await?;
        let mut keys = Keys::default();
        for key in &stored {
            keys.public.insert(
                key.kid.clone(),
                (key.public_key.clone(), key.retired.is_some()),
            );
        }
        // The newest unretired key; the store keeps exactly one.
        if let Some(key) = stored.iter().rev().find(|k| k.retired.is_none()) {
            keys.active = Some(Arc::new(self.open(key)?));
        }
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
        Ok(())
    }

    fn open(&self, key: &StoredSigningKey) -> Result<Active, KeyError> {
        let corrupt = |reason: &str| KeyError::Corrupt {
            kid: key.kid.clone(),
            reason: reason.to_owned(),
        };
        let stored = key
            .private_key
            .as_deref()
            .ok_or_else(|| corrupt("its private key was erased"))?;
        let pkcs8 = if key.sealed {
            let ca_key = self.ca_key.as_ref().ok_or(KeyError::NeedCaKey)?;
            ca_key.open(stored, &aad(&key.kid), "the token signing key")?
        } else {
            Zeroizing::new(stored.to_vec())
        };
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| corrupt("not an Ed25519 key"))?;
        if pair.public_key().as_ref() != key.public_key.as_slice() {
            return Err(corrupt("its public key does not match"));
        }
        Ok(Active {
            kid: key.kid.clone(),
            pair,
        })
    }
}

/// Binds a sealed signing key to its id.
fn aad(kid: &str) -> String {
    format!("weft token signing key {kid}")
}

#[cfg(test)]
mod tests;
