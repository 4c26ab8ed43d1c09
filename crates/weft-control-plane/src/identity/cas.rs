//! Which CA each mesh has, loaded once and reused: the config distributor
//! asks on every pass, and opening a sealed key or parsing a chain each time
//! would be wasted work.
//!
//! A cached CA is reused while its source is unchanged: the stored
//! certificate for a builtin CA (a deleted and re-created mesh gets a new
//! one), the paths, sizes and modification times of a provided CA's files
//! (so replacing the files on disk takes effect without a restart).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use weft_api::{
    FieldError, Mesh, ValidationErrors,
    mesh::{CaSource, MeshMtls},
    rest::now_unix,
};

use super::{
    ca::{
        Ca,
        builtin::{self, BuiltinError},
        provided::{self, ProvidedError},
    },
    secret::CaKey,
};
use crate::store::{Change, Store, StoreError};

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
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a cached CA came from; a different source means reload.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Builtin {
        cert_pem: String,
    },
    Provided {
        cert_file: String,
        key_file: String,
        stamps: [Option<(u64, SystemTime)>; 2],
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

    /// Checks a Mesh about to be applied and returns what must be written
    /// with it: the new builtin CA it needs, if it has none yet. A builtin
    /// CA without a CA key, or a provided CA whose files are not a usable
    /// CA, is a validation error naming the field.
    pub async fn prepare(&self, mesh: &Mesh) -> Result<Option<Change>, PrepareError> {
        let Some(mtls) = &mesh.mtls else {
            return Ok(None);
        };
        let invalid = |e: FieldError| PrepareError::Invalid(e.into());
        match mtls.ca.source() {
            // A builtin CA is only needed (and generated) once mTLS is on.
            CaSource::Builtin if mesh.mtls_enabled().is_none() => Ok(None),
            CaSource::Builtin => {
                let Some(ca_key) = &self.ca_key else {
                    return Err(invalid(FieldError::new(
                        "mtls.ca",
                        format!("a builtin CA needs the control plane's CA key; {CA_KEY_HINT}"),
                    )));
                };
                match self.store.mesh_ca(&mesh.name).await? {
                    // It must open with this key, or issuing would fail later.
                    Some(stored) => match self.builtin(&stored, ca_key) {
                        Ok(_) => Ok(None),
                        Err(e) => Err(invalid(FieldError::new("mtls.ca", e.to_string()))),
                    },
                    None => {
                        let created = builtin::create(&mesh.name, ca_key, now_unix())
                            .map_err(|e| PrepareError::Internal(e.to_string()))?;
                        Ok(Some(Change::EnsureMeshCa(created)))
                    }
                }
            }
            // Checked even with mTLS off: better to hear about a wrong path now.
            CaSource::Provided {
                cert_file,
                key_file,
            } => match self.provided(&mesh.name, cert_file, key_file).await {
                Ok(_) => Ok(None),
                Err(e) => Err(PrepareError::Invalid(e.field_error().into())),
            },
        }
    }

    /// The CA that signs `mesh`'s workload certificates. A mesh with mTLS on
    /// and a builtin CA that has none yet (stored before it needed one) gets
    /// one now, race-free: the first writer's CA wins.
    pub async fn ca_for(&self, mesh: &Mesh) -> Result<Arc<Ca>, CaError> {
        let Some(mtls) = mesh.mtls_enabled() else {
            return Err(CaError::MtlsOff {
                mesh: mesh.name.clone(),
            });
        };
        self.resolve(&mesh.name, mtls).await
    }

    async fn resolve(&self, mesh: &str, mtls: &MeshMtls) -> Result<Arc<Ca>, CaError> {
        match mtls.ca.source() {
            CaSource::Builtin => {
                let ca_key = self.ca_key.as_ref().ok_or_else(|| CaError::NoCaKey {
                    mesh: mesh.to_owned(),
                })?;
                let stored = match self.store.mesh_ca(mesh).await? {
                    Some(stored) => stored,
                    None => {
                        let created = builtin::create(mesh, ca_key, now_unix())?;
                        self.store
                            .apply(vec![Change::EnsureMeshCa(created)])
                            .await?;
                        self.store.mesh_ca(mesh).await?.ok_or_else(|| {
                            StoreError::backend(
                                format!("storing the CA of mesh {mesh:?}"),
                                "the CA is missing right after it was stored",
                            )
                        })?
                    }
                };
                Ok(self.builtin(&stored, ca_key)?)
            }
            CaSource::Provided {
                cert_file,
                key_file,
            } => self
                .provided(mesh, cert_file, key_file)
                .await
                .map_err(|source| CaError::Provided {
                    mesh: mesh.to_owned(),
                    source,
                }),
        }
    }

    fn builtin(
        &self,
        stored: &crate::store::StoredMeshCa,
        ca_key: &CaKey,
    ) -> Result<Arc<Ca>, BuiltinError> {
        let source = Source::Builtin {
            cert_pem: stored.cert_pem.clone(),
        };
        if let Some(ca) = self.cached(&stored.mesh, &source) {
            return Ok(ca);
        }
        let ca = Arc::new(builtin::load(stored, ca_key, now_unix())?);
        self.remember(&stored.mesh, source, ca.clone());
        Ok(ca)
    }

    async fn provided(
        &self,
        mesh: &str,
        cert_file: &str,
        key_file: &str,
    ) -> Result<Arc<Ca>, ProvidedError> {
        let source = Source::Provided {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            stamps: [stamp(cert_file).await, stamp(key_file).await],
        };
        if let Some(ca) = self.cached(mesh, &source) {
            return Ok(ca);
        }
        let ca = Arc::new(provided::load(cert_file, key_file, now_unix()).await?);
        self.remember(mesh, source, ca.clone());
        Ok(ca)
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

/// Size and modification time of a file, `None` if it cannot be read (the
/// load that follows reports why).
async fn stamp(file: &str) -> Option<(u64, SystemTime)> {
    let meta = tokio::fs::metadata(file).await.ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Why a Mesh cannot be applied as it is.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The Mesh is wrong: 400, with the field.
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The control plane could not do its part (e.g. generate a key).
    #[error("{0}")]
    Internal(String),
}
