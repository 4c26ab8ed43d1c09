//! Where resources live: a small async trait, so callers hold an
//! `Arc<dyn Store>` and a PostgreSQL implementation can be added beside the
//! SQLite one without touching them.
//!
//! Every write goes through [`Store::apply`]: one batch, one transaction, one
//! new revision. The referential rules (a mesh-scoped resource needs its mesh;
//! a mesh with resources cannot be deleted) are checked inside that
//! transaction, so they hold with several concurrent writers.
//!
//! Beside resources the store keeps what workload identity needs to survive
//! a restart: each mesh's builtin CA (its private key sealed by the caller,
//! see [`crate::identity::secret`]), the token signing keys, and the
//! dataplane tokens issued and revoked (their claims, never the tokens).
//! The store only moves these bytes; it never decrypts them.

use std::{collections::BTreeMap, fmt, net::Ipv4Addr, sync::Arc};

use async_trait::async_trait;
use tokio::sync::watch;
use weft_api::{Kind, Resource, ResourceKey, rest::StoredResource};

use crate::config::StoreUrl;

pub mod sqlite;

pub use sqlite::SqliteStore;

/// Where services' virtual IPs come from: 240.0.0.0/4, reserved and never
/// routed, so a virtual IP cannot shadow a real host (the first and last
/// addresses are skipped).
pub const VIRTUAL_IP_RANGE: (Ipv4Addr, Ipv4Addr) = (
    Ipv4Addr::new(240, 0, 0, 1),
    Ipv4Addr::new(255, 255, 255, 254),
);

/// A boxed error from a storage backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One change in an [`Store::apply`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create the resource, or replace it if its content differs.
    Upsert(Resource),
    /// Create the resource; [`StoreError::Conflict`] if it exists.
    Create(Resource),
    /// Delete the resource; [`StoreError::NotFound`] if it does not exist.
    Delete(ResourceKey),
    /// Store a mesh's builtin CA unless it already has one of that name
    /// ([`ChangeOutcome::Unchanged`] then): put in the same batch as the
    /// Mesh that needs it, so a mesh never exists without its CA, and two
    /// concurrent applies cannot give it two.
    EnsureMeshCa(StoredMeshCa),
    /// Create the resource only if its mesh was created earlier in the same
    /// batch and the resource does not exist yet ([`ChangeOutcome::Unchanged`]
    /// otherwise): how a new mesh gets its default `allow-all`
    /// TrafficPermission without an update ever bringing it back.
    CreateWithNewMesh(Resource),
}

impl Change {
    /// The resource this change is about.
    pub fn key(&self) -> ResourceKey {
        match self {
            Change::Upsert(r) | Change::Create(r) | Change::CreateWithNewMesh(r) => r.key(),
            Change::Delete(key) => key.clone(),
            Change::EnsureMeshCa(ca) => ResourceKey::mesh(ca.mesh.clone()),
        }
    }
}

/// What one change of a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    Created,
    Updated,
    /// Identical content was already stored; nothing was written.
    Unchanged,
    Deleted,
}

impl ChangeOutcome {
    /// The REST outcome for writes (`None` for deletes, which `/apply` never does).
    pub fn as_apply_outcome(self) -> Option<weft_api::rest::ApplyOutcome> {
        use weft_api::rest::ApplyOutcome;
        match self {
            ChangeOutcome::Created => Some(ApplyOutcome::Created),
            ChangeOutcome::Updated => Some(ApplyOutcome::Updated),
            ChangeOutcome::Unchanged => Some(ApplyOutcome::Unchanged),
            ChangeOutcome::Deleted => None,
        }
    }
}

/// The result of a committed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// The store revision after the batch: a new one if anything changed,
    /// the current one otherwise.
    pub revision: u64,
    /// One outcome per change, in batch order.
    pub outcomes: Vec<ChangeOutcome>,
}

/// One of a mesh's builtin CAs: the certificate in the clear, the private
/// key sealed (PKCS#8, AES-256-GCM with the operator's CA key). A mesh
/// keeps every builtin CA it ever named until the mesh is deleted.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMeshCa {
    pub mesh: String,
    /// `mtls.ca.name` (`default` when unset).
    pub name: String,
    pub cert_pem: String,
    pub sealed_key: Vec<u8>,
    /// Unix seconds.
    pub created: u64,
}

impl fmt::Debug for StoredMeshCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredMeshCa")
            .field("mesh", &self.mesh)
            .field("name", &self.name)
            .field(
                "sealed_key",
                &format_args!("<{} bytes>", self.sealed_key.len()),
            )
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 key that signs dataplane tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    /// The raw 32-byte public key: kept after retirement, so that a token
    /// of a retired key can be told apart from a forged one.
    pub public_key: Vec<u8>,
    /// PKCS#8, sealed when `sealed`; erased (`None`) once retired.
    pub private_key: Option<Vec<u8>>,
    pub sealed: bool,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; `None` for the active key.
    pub retired: Option<u64>,
}

impl fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("sealed", &self.sealed)
            .field("created", &self.created)
            .field("retired", &self.retired)
            .finish_non_exhaustive()
    }
}

/// The control plane's own TLS material: a generated CA and the server
/// certificate it signed for the data-plane (and API) listeners. The keys
/// are PKCS#8 PEM, sealed with the operator's CA key when `sealed`.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCpTls {
    pub ca_cert_pem: String,
    pub ca_key: Vec<u8>,
    pub server_cert_pem: String,
    pub server_key: Vec<u8>,
    /// The server certificate's subject alternative names, comma-separated.
    pub server_sans: String,
    /// Unix seconds: when the server certificate expires.
    pub server_expires: u64,
    pub sealed: bool,
    /// Unix seconds.
    pub created: u64,
}

impl fmt::Debug for StoredCpTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCpTls")
            .field("server_sans", &self.server_sans)
            .field("server_expires", &self.server_expires)
            .field("sealed", &self.sealed)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// What is recorded about an issued dataplane token (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub jti: String,
    pub mesh: String,
    pub services: Vec<String>,
    pub kid: String,
    /// Unix seconds.
    pub issued: u64,
    /// Unix seconds.
    pub expires: u64,
    /// Unix seconds.
    pub revoked: Option<u64>,
}

/// Why a read or a batch failed. A failed batch wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(ResourceKey),
    #[error("{0} already exists")]
    Conflict(ResourceKey),
    /// `key` is the resource that needed the mesh.
    #[error("mesh {mesh:?} does not exist")]
    MeshNotFound { mesh: String, key: ResourceKey },
    #[error("mesh {mesh:?} still has {}; delete {} first", count_of(*.count, *.kind), if *.count == 1 { "it" } else { "them" })]
    MeshNotEmpty {
        mesh: String,
        kind: Kind,
        count: u64,
    },
    /// The backend failed (I/O, lock timeout, a corrupt row...).
    #[error("store: {context}: {source}")]
    Backend {
        context: String,
        #[source]
        source: BoxError,
    },
}

/// "1 Dataplane", "2 dataplanes".
fn count_of(count: u64, kind: Kind) -> String {
    if count == 1 {
        format!("1 {kind}")
    } else {
        format!("{count} {}", kind.plural())
    }
}

impl StoreError {
    /// Wraps a backend error with what the store was doing.
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            context: context.into(),
            source: source.into(),
        }
    }

    /// The resource of the batch this error is about, to name it to the user.
    pub fn key(&self) -> Option<ResourceKey> {
        match self {
            StoreError::NotFound(key) | StoreError::Conflict(key) => Some(key.clone()),
            StoreError::MeshNotFound { key, .. } => Some(key.clone()),
            StoreError::MeshNotEmpty { mesh, .. } => Some(ResourceKey::mesh(mesh.clone())),
            StoreError::Backend { .. } => None,
        }
    }
}

/// Storage for resources. Object safe: use it as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// One resource, or `None` if it does not exist.
    async fn get(&self, key: &ResourceKey) -> Result<Option<StoredResource>, StoreError>;

    /// Every resource of `kind` (in one mesh, if given), sorted by mesh then name.
    async fn list(&self, kind: Kind, mesh: Option<&str>)
    -> Result<Vec<StoredResource>, StoreError>;

    /// How many resources of each kind are stored (kinds without any are
    /// absent), without reading them: `/metrics` asks on every scrape.
    async fn count_by_kind(&self) -> Result<Vec<(Kind, u64)>, StoreError>;

    /// Writes `changes` in order, in one transaction with one new revision.
    /// Either every change is applied or none is. A batch that changes
    /// nothing leaves the revision as it is.
    async fn apply(&self, changes: Vec<Change>) -> Result<ApplyReport, StoreError>;

    /// The revision of the last committed write (0 for an empty store).
    async fn revision(&self) -> Result<u64, StoreError>;

    /// The current revision, updated after every committed write.
    fn subscribe(&self) -> watch::Receiver<u64>;

    /// The virtual IP of each of `services` in `mesh`. Services without one
    /// get the next free address of [`VIRTUAL_IP_RANGE`] now, stored, so a
    /// service keeps its IP for as long as its mesh exists.
    async fn virtual_ips(
        &self,
        mesh: &str,
        services: &[String],
    ) -> Result<BTreeMap<String, Ipv4Addr>, StoreError>;

    /// The builtin CA `name` of `mesh`, if one was stored.
    async fn mesh_ca(&self, mesh: &str, name: &str) -> Result<Option<StoredMeshCa>, StoreError>;

    /// Every token signing key, active and retired, oldest first.
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError>;

    /// Makes `key` the active signing key, in one transaction. With
    /// `retire_others` every other active key is retired and its private
    /// key erased (rotation); without, `key` is stored only if no key is
    /// active (first start; concurrent starts agree on one key). Returns
    /// the key that is active afterwards.
    async fn put_signing_key(
        &self,
        key: StoredSigningKey,
        retire_others: bool,
    ) -> Result<StoredSigningKey, StoreError>;

    /// Records an issued token.
    async fn record_token(&self, token: &StoredToken) -> Result<(), StoreError>;

    /// Marks token `jti` revoked at `at` (keeping an earlier revocation
    /// time). `None` if no such token was issued.
    async fn revoke_token(&self, jti: &str, at: u64) -> Result<Option<StoredToken>, StoreError>;

    /// Every revoked token, most recently revoked first.
    async fn revoked_tokens(&self) -> Result<Vec<StoredToken>, StoreError>;

    /// The SHA-256 of the API's admin token, if one was set.
    async fn admin_token_hash(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `hash` as the admin token's unless one is already stored
    /// (concurrent first starts agree on one). Returns the stored hash.
    async fn init_admin_token_hash(&self, hash: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// The control plane's own TLS material, if it was generated.
    async fn cp_tls(&self) -> Result<Option<StoredCpTls>, StoreError>;

    /// Stores `tls`: with `replace` it overwrites what is stored (a new
    /// server certificate), without it only when nothing is stored yet
    /// (concurrent first starts agree on one). Returns what is stored.
    async fn put_cp_tls(&self, tls: &StoredCpTls, replace: bool)
    -> Result<StoredCpTls, StoreError>;

    /// Releases connections and files; called once, on shutdown.
    async fn close(&self) {}
}

/// Opens the store `url` names, creating and migrating it if needed.
pub async fn open(url: &StoreUrl) -> Result<Arc<dyn Store>, StoreError> {
    let store = match url {
        StoreUrl::Sqlite(path) => SqliteStore::open_file(path).await?,
        StoreUrl::Memory => SqliteStore::open_memory().await?,
    };
    Ok(Arc::new(store))
}

#[cfg(test)]
pub(crate) mod tests;
