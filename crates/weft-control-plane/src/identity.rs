//! Workload identity, the control plane's half: each mesh's CA
//! ([`ca`], [`cas`]), private keys sealed at rest ([`secret`]), dataplane
//! tokens ([`tokens`]), and the checks the proxy service makes with them.
//!
//! A proxy presents a dataplane token on `Hello`, `Deregister` and
//! `IssueCertificate`; with `--dp-auth none` the checks are skipped (for
//! development only: anyone who reaches the gRPC port can then register any
//! Dataplane and obtain its certificate).

use std::{
    fmt,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use weft_api::token::Claims;

use crate::store::Store;

pub mod ca;
pub mod cas;
pub mod secret;
pub mod tokens;

pub use cas::CaRegistry;
pub use secret::CaKey;
pub use tokens::{Denied, TokenError, Tokens};

/// Whether proxies must present a dataplane token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpAuth {
    /// Every `Hello`, `Deregister` and `IssueCertificate` needs a valid token.
    #[default]
    Token,
    /// No check at all; a warning is logged at start.
    None,
}

impl FromStr for DpAuth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "token" => Ok(DpAuth::Token),
            "none" => Ok(DpAuth::None),
            other => Err(format!(
                "{other:?} is not a dataplane auth mode (token, none)"
            )),
        }
    }
}

impl fmt::Display for DpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DpAuth::Token => "token",
            DpAuth::None => "none",
        })
    }
}

/// A token that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a valid token at all: gRPC `Unauthenticated`.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Valid, but not for this: gRPC `PermissionDenied`.
    #[error(transparent)]
    Denied(#[from] Denied),
}

/// What the REST API and the proxy service share about identity.
#[derive(Debug)]
pub struct Identity {
    pub tokens: Tokens,
    pub cas: CaRegistry,
    pub dp_auth: DpAuth,
    issued: AtomicU64,
}

impl Identity {
    /// Loads (on first start: creates) the token signing key.
    pub async fn load(
        store: Arc<dyn Store>,
        ca_key: Option<CaKey>,
        dp_auth: DpAuth,
    ) -> Result<Self, tokens::KeyError> {
        Ok(Self {
            tokens: Tokens::load(store.clone(), ca_key.clone()).await?,
            cas: CaRegistry::new(store, ca_key),
            dp_auth,
            issued: AtomicU64::new(0),
        })
    }

    /// Checks `token` for a Dataplane of `mesh` serving `services`; `now`
    /// is unix seconds. `Ok(None)` when tokens are not required.
    pub fn check<'a>(
        &self,
        token: &str,
        mesh: &str,
        services: impl IntoIterator<Item = &'a str>,
        now: u64,
    ) -> Result<Option<Claims>, AuthError> {
        if self.dp_auth == DpAuth::None {
            return Ok(None);
        }
        let claims = self.tokens.verify(token, now)?;
        tokens::authorize(&claims, mesh, services)?;
        Ok(Some(claims))
    }

    /// Counts one issued workload certificate.
    pub fn count_issued(&self) {
        self.issued.fetch_add(1, Ordering::Relaxed);
    }

    /// Workload certificates issued since start.
    pub fn certificates_issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }
}
