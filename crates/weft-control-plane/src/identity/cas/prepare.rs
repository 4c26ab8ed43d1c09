//! The checks a Mesh passes before it is written, and the builtin CAs that
//! are written with it: every builtin CA it names (`mtls.ca` and
//! `mtls.trustedCas`) that the mesh does not hold yet is generated now, in
//! the same batch as the Mesh.

use weft_api::{FieldError, Mesh, ValidationErrors, mesh::CaSource, rest::now_unix};

use super::{CA_KEY_HINT, CaRegistry};
use crate::{
    identity::ca::{builtin, provided, trusted},
    store::{Change, StoreError},
};

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

fn invalid(e: FieldError) -> PrepareError {
    PrepareError::Invalid(e.into())
}

impl CaRegistry {
    /// Checks a Mesh about to be applied and returns what must be written
    /// with it: the builtin CAs it names and the mesh does not hold yet. A
    /// builtin CA without a CA key, or a provided CA whose files are not a
    /// usable CA (a trusted one: whose `certFile` holds no CA certificate),
    /// is a validation error naming the field.
    pub async fn prepare(&self, mesh: &Mesh) -> Result<Vec<Change>, PrepareError> {
        let Some(mtls) = &mesh.mtls else {
            return Ok(Vec::new());
        };
        // Builtin CAs are only needed (and generated) once mTLS is on;
        // provided files are checked even with mTLS off: better to hear
        // about a wrong path now.
        let enabled = mesh.mtls_enabled().is_some();
        let mut changes = Vec::new();
        match mtls.ca.source() {
            CaSource::Builtin { name } if enabled => {
                changes.extend(self.prepare_builtin(&mesh.name, name, "mtls.ca").await?);
            }
            CaSource::Builtin { .. } => {}
            CaSource::Provided {
                cert_file,
                key_file,
            } => {
                if let Err(e) = provided::load(cert_file, key_file, now_unix()).await {
                    return Err(invalid(e.field_error()));
                }
            }
        }
        for (index, entry) in mtls.trusted_cas.iter().enumerate() {
            match entry.source() {
                CaSource::Builtin { name } if enabled => {
                    let path = format!("mtls.trustedCas[{index}]");
                    changes.extend(self.prepare_builtin(&mesh.name, name, &path).await?);
                }
                CaSource::Builtin { .. } => {}
                CaSource::Provided { cert_file, .. } => {
                    if let Err(e) = trusted::load_file(cert_file, now_unix()).await {
                        return Err(invalid(e.field_error(index)));
                    }
                }
            }
        }
        Ok(changes)
    }

    /// The builtin CA `name` of `mesh`: nothing to write if it is stored
    /// (and opens with the CA key, or issuing would fail later), else a new
    /// one. Errors are reported under `path`.
    async fn prepare_builtin(
        &self,
        mesh: &str,
        name: &str,
        path: &str,
    ) -> Result<Option<Change>, PrepareError> {
        let Some(ca_key) = &self.ca_key else {
            return Err(invalid(FieldError::new(
                path,
                format!("a builtin CA needs the control plane's CA key; {CA_KEY_HINT}"),
            )));
        };
        match self.store.mesh_ca(mesh, name).await? {
            Some(stored) => match builtin::load(&stored, ca_key, now_unix()) {
                Ok(_) => Ok(None),
                Err(e) => Err(invalid(FieldError::new(path, e.to_string()))),
            },
            None => {
                let created = builtin::create(mesh, name, ca_key, now_unix())
                    .map_err(|e| PrepareError::Internal(e.to_string()))?;
                Ok(Some(Change::EnsureMeshCa(created)))
            }
        }
    }
}
