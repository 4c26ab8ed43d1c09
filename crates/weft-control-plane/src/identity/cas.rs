//! Which CA each mesh has, loaded once and reused: the config distributor
//! asks on every pass, and opening a sealed key or parsing a chain each time
//! would be wasted work.
//!
//! A cached CA is reused while its sources are unchanged: the stored
//! certificate for a builtin CA (a deleted and re-created mesh gets a new
//! one), the paths, sizes and modification times of a provided CA's files
//! (so replacing the files on disk takes effect without a restart); the
//! same for each of the mesh's `trustedCas`, whose roots the CA carries
//! into the trust bundle.

mod prepare;

pub use prepare::PrepareError;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use weft_api::{
    Mesh,
    mesh::{CaSource, MeshMtls},
    rest::now_unix,
};

use super::{
    ca::{
        Ca,
        builtin::{self, BuiltinError},
        provided::{self, ProvidedError},
        trusted::{self, TrustedRoot},
    },
    secret::CaKey,
};
use crate::store::{Change, Store, StoreError, StoredMeshCa};

/// How the control plane tells an operator to supply the CA key.
pub const CA_KEY_HINT: &str =
    "start the control plane with --ca-key-file FILE or WEFT_CA_KEY (base64 of 32 random bytes)";

/// Why a mesh's CA is not available.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("mesh {mesh:?} has mTLS off")]
    MtlsOff { mesh: String },
    #[error("mesh {mesh:?} uses a builtin CA but the control plane has no CA key; {CA_KEY_HINT}")]
    NoCaKey { mesh: String },
    #[error(transparent)]
    Builtin(#[from] BuiltinError),
    #[error("mesh {mesh:?}: {source}")]
    Provided {
        mesh: String,
        #[source]
        source: ProvidedError,
    },
    #[error("mesh {mesh:?}: a trusted CA is unusable: {reason}")]
    Trusted { mesh: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a cached CA came from; a different source means reload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    issuer: IssuerSource,
    /// One per `mtls.trustedCas` entry, in order.
    trusted: Vec<TrustSource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum IssuerSource {
    /// The stored row (its key still sealed).
    Builtin(StoredMeshCa),
    Provided {
        cert_file: String,
        key_file: String,
        stamps: [Option<(u64, SystemTime)>; 2],
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TrustSource {
    Builtin {
        cert_pem: String,
    },
    Provided {
        cert_file: String,
        stamp: Option<(u64, SystemTime)>,
    },
}

/// The CAs of every mesh.
#[derive(Debug)]
pub struct CaRegistry {
    store: Arc<dyn Store>,
    ca_key: Option<CaKey>,
    cache: Mutex<HashMap<String, (Source, Arc<Ca>)>>,
}

impl CaRegistry {
    pub fn new(store: Arc<dyn Store>, ca_key: Option<CaKey>) -> Self {
        Self {
            store,
            ca_key,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The CA that signs `mesh`'s workload certificates, carrying the roots
    /// of the mesh's `trustedCas`. A builtin CA the mesh names but does not
    /// hold yet (a Mesh stored before it needed one) is generated now,
    /// race-free: the first writer's CA wins.
    pub async fn ca_for(&self, mesh: &Mesh) -> Result<Arc<Ca>, CaError> {
        let Some(mtls) = mesh.mtls_enabled() else {
            return Err(CaError::MtlsOff {
                mesh: mesh.name.clone(),
            });
        };
        self.resolve(&mesh.name, mtls).await
    }

    async fn resolve(&self, mesh: &str, mtls: &MeshMtls) -> Result<Arc<Ca>, CaError> {
        let issuer = match mtls.ca.source() {
            CaSource::Builtin { name } => {
                let ca_key = self.ca_key.as_ref().ok_or_else(|| CaError::NoCaKey {
                    mesh: mesh.to_owned(),
                })?;
                IssuerSource::Builtin(self.stored_builtin(mesh, name, ca_key).await?)
            }
            CaSource::Provided {
                cert_file,
                key_file,
            } => IssuerSource::Provided {
                cert_file: cert_file.to_owned(),
                key_file: key_file.to_owned(),
                stamps: [stamp(cert_file).await, stamp(key_file).await],
            },
        };
        let mut trusted = Vec::with_capacity(mtls.trusted_cas.len());
        for entry in &mtls.trusted_cas {
            trusted.push(match entry.source() {
                CaSource::Builtin { name } => {
                    let stored = match self.store.mesh_ca(mesh, name).await? {
                        Some(stored) => stored,
                        None => {
                            let ca_key = self.ca_key.as_ref().ok_or_else(|| CaError::NoCaKey {
                                mesh: mesh.to_owned(),
                            })?;
                            self.stored_builtin(mesh, name, ca_key).await?
                        }
                    };
                    TrustSource::Builtin {
                        cert_pem: stored.cert_pem,
                    }
                }
                CaSource::Provided { cert_file, .. } => TrustSource::Provided {
                    cert_file: cert_file.to_owned(),
                    stamp: stamp(cert_file).await,
                },
            });
        }
        let source = Source { issuer, trusted };
        if let Some(ca) = self.cached(mesh, &source) {
            return Ok(ca);
        }
        let ca = self.load(mesh, &source).await?;
        let ca = Arc::new(ca.with_trusted(trusted_roots(mesh, &source.trusted).await?));
        self.remember(mesh, source, ca.clone());
        Ok(ca)
    }

    /// The stored builtin CA `name` of `mesh`; one is generated if there is
    /// none yet (a Mesh stored before it needed it), race-free: the first
    /// writer's CA wins.
    async fn stored_builtin(
        &self,
        mesh: &str,
        name: &str,
        ca_key: &CaKey,
    ) -> Result<StoredMeshCa, CaError> {
        if let Some(stored) = self.store.mesh_ca(mesh, name).await? {
            return Ok(stored);
        }
        let created = builtin::create(mesh, name, ca_key, now_unix())?;
        self.store
            .apply(vec![Change::EnsureMeshCa(created)])
            .await?;
        Ok(self.store.mesh_ca(mesh, name).await?.ok_or_else(|| {
            StoreError::backend(
                format!("storing the CA {name:?} of mesh {mesh:?}"),
                "the CA is missing right after it was stored",
            )
        })?)
    }

    /// Opens the issuing CA of `source`.
    async fn load(&self, mesh: &str, source: &Source) -> Result<Ca, CaError> {
        match &source.issuer {
            IssuerSource::Builtin(stored) => {
                let ca_key = self.ca_key.as_ref().ok_or_else(|| CaError::NoCaKey {
                    mesh: mesh.to_owned(),
                })?;
                Ok(builtin::load(stored, ca_key, now_unix())?)
            }
            IssuerSource::Provided {
                cert_file,
                key_file,
                ..
            } => provided::load(cert_file, key_file, now_unix())
                .await
                .map_err(|source| CaError::Provided {
                    mesh: mesh.to_owned(),
                    source,
                }),
        }
    }

    fn cached(&self, mesh: &str, source: &Source) -> Option<Arc<Ca>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(mesh)
            .filter(|(s, ca)| s == source && ca.not_after() > now_unix())
            .map(|(_, ca)| ca.clone())
    }

    fn remember(&self, mesh: &str, source: Source, ca: Arc<Ca>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(mesh.to_owned(), (source, ca));
    }
}

/// The roots of a mesh's trusted CAs, read from their sources.
async fn trusted_roots(mesh: &str, sources: &[TrustSource]) -> Result<Vec<TrustedRoot>, CaError> {
    let fail = |reason: String| CaError::Trusted {
        mesh: mesh.to_owned(),
        reason,
    };
    let mut roots = Vec::with_capacity(sources.len());
    for source in sources {
        roots.push(match source {
            TrustSource::Builtin { cert_pem } => TrustedRoot::from_pem(cert_pem, now_unix())
                .map_err(|e| fail(format!("a stored builtin CA {e}")))?,
            TrustSource::Provided { cert_file, .. } => trusted::load_file(cert_file, now_unix())
                .await
                .map_err(|e| fail(e.to_string()))?,
        });
    }
    Ok(roots)
}

/// Size and modification time of a file, `None` if it cannot be read (the
/// load that follows reports why).
async fn stamp(file: &str) -> Option<(u64, SystemTime)> {
    let meta = tokio::fs::metadata(file).await.ok()?;
    Some((meta.len(), meta.modified().ok()?))
}
