//! The embedded store: SQLite through `sqlx`, a file for real use or an
//! in-memory database for tests and demos.
//!
//! Writes take SQLite's write lock up front (`BEGIN IMMEDIATE`), so the
//! read-check-write of a batch cannot interleave with another writer, be it
//! another task or another process on the same file.
//!
//! [`Store::subscribe`] reports the writes of this process only: two
//! control planes sharing one file would not wake each other (several
//! replicas are what the PostgreSQL store, with LISTEN/NOTIFY, is for).

use std::{collections::BTreeMap, net::Ipv4Addr, path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use serde_json::Value;
use sqlx::{
    Sqlite, SqliteConnection, Transaction,
    pool::PoolConnection,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};
use tokio::sync::watch;
use weft_api::{
    Kind, Resource, ResourceKey,
    rest::{StoredResource, now_unix},
};

use super::{
    ApplyReport, Change, ChangeOutcome, Store, StoreError, StoredCpTls, StoredMeshCa,
    StoredSigningKey, StoredToken,
};

mod cp_tls;
mod migrations;
mod rows;
mod secrets;
mod virtual_ips;

use rows::{decode, parse_kind, read_revision, unix_i64};

/// How long a writer waits for another writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections to a SQLite file: WAL lets readers run beside the one writer.
const FILE_CONNECTIONS: u32 = 4;

/// A [`Store`] on SQLite.
#[derive(Debug)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    revision: watch::Sender<u64>,
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) and migrates
    /// a SQLite file.
    pub async fn open_file(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                StoreError::backend(format!("creating directory {}", parent.display()), e)
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode and
            // avoids an fsync per commit.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(FILE_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::backend(format!("opening {}", path.display()), e))?;
        Self::init(pool).await
    }

    /// Opens an empty in-memory database.
    pub async fn open_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| StoreError::backend("configuring an in-memory database", e))?
            .busy_timeout(BUSY_TIMEOUT);
        // Exactly one connection that is never closed: every connection to
        // `:memory:` would see its own empty database, and the database
        // vanishes with its last connection.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::backend("opening an in-memory database", e))?;
        Self::init(pool).await
    }

    async fn init(pool: SqlitePool) -> Result<Self, StoreError> {
        migrations::run(&pool).await?;
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| StoreError::backend("connecting", e))?;
        let revision = read_revision(&mut conn).await?;
        drop(conn);
        Ok(Self {
            pool,
            revision: watch::Sender::new(revision),
        })
    }
}

impl SqliteStore {
    async fn connection(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        self.pool
            .acquire()
            .await
            .map_err(|e| StoreError::backend("connecting", e))
    }

    /// Takes the write lock up front (see the module docs).
    async fn write_transaction(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| StoreError::backend("starting a write transaction", e))
    }
}

async fn commit(tx: Transaction<'static, Sqlite>) -> Result<(), StoreError> {
    tx.commit()
        .await
        .map_err(|e| StoreError::backend("committing", e))
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &ResourceKey) -> Result<Option<StoredResource>, StoreError> {
        let row = sqlx::query(
            "SELECT kind, mesh, name, body, revision, created_at, modified_at \
             FROM resources WHERE kind = ? AND mesh = ? AND name = ?",
        )
        .bind(key.kind.as_str())
        .bind(key.mesh.as_str())
        .bind(key.name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StoreError::backend(format!("reading {key}"), e))?;
        row.as_ref().map(decode).transpose()
    }

    async fn list(
        &self,
        kind: Kind,
        mesh: Option<&str>,
    ) -> Result<Vec<StoredResource>, StoreError> {
        let rows = match mesh {
            Some(mesh) => {
                sqlx::query(
                    "SELECT kind, mesh, name, body, revision, created_at, modified_at \
                     FROM resources WHERE kind = ? AND mesh = ? ORDER BY mesh, name",
                )
                .bind(kind.as_str())
                .bind(mesh)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(
                    "SELECT kind, mesh, name, body, revision, created_at, modified_at \
                     FROM resources WHERE kind = ? ORDER BY mesh, name",
                )
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(|e| StoreError::backend(format!("listing {}", kind.plural()), e))?;
        rows.iter().map(decode).collect()
    }

    async fn count_by_kind(&self) -> Result<Vec<(Kind, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, COUNT(*) FROM resources GROUP BY kind")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| StoreError::backend("counting resources", e))?;
        // A kind this binary does not know (a newer one wrote the store) is
        // left out rather than failing the scrape.
        Ok(rows
            .into_iter()
            .filter_map(|(kind, n)| {
                let kind = Kind::ALL.into_iter().find(|k| k.as_str() == kind)?;
                Some((kind, u64::try_from(n).ok()?))
            })
            .collect())
    }

    async fn apply(&self, changes: Vec<Change>) -> Result<ApplyReport, StoreError> {
        let mut tx = self.write_transaction().await?;
        let current = read_revision(&mut tx).await?;
        let next = current + 1;
        let now = unix_i64(now_unix());
        let mut outcomes = Vec::with_capacity(changes.len());
        let mut new_meshes = std::collections::HashSet::new();
        for change in &changes {
            // An error drops `tx`, which rolls the whole batch back.
            let outcome = match change {
                Change::CreateWithNewMesh(r) => {
                    let created_here = r.mesh().is_some_and(|m| new_meshes.contains(m));
                    if created_here && !exists(&mut tx, &r.key()).await? {
                        write(&mut tx, r, true, next, now).await?
                    } else {
                        ChangeOutcome::Unchanged
                    }
                }
                _ => apply_one(&mut tx, change, next, now).await?,
            };
            if let Change::Upsert(Resource::Mesh(m)) | Change::Create(Resource::Mesh(m)) = change
                && outcome == ChangeOutcome::Created
            {
                new_meshes.insert(m.name.clone());
            }
            outcomes.push(outcome);
        }
        if outcomes.iter().all(|o| *o == ChangeOutcome::Unchanged) {
            // Nothing was written: keep the revision, and wake no one.
            tx.rollback()
                .await
                .map_err(|e| StoreError::backend("ending a read-only transaction", e))?;
            return Ok(ApplyReport {
                revision: current,
                outcomes,
            });
        }
        sqlx::query("UPDATE store_revision SET revision = ? WHERE id = 1")
            .bind(unix_i64(next))
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::backend("bumping the store revision", e))?;
        commit(tx).await?;
        // Two commits can finish their notifications out of order; the
        // watched value only ever moves forward.
        self.revision.send_if_modified(|r| {
            let newer = next > *r;
            if newer {
                *r = next;
            }
            newer
        });
        Ok(ApplyReport {
            revision: next,
            outcomes,
        })
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        read_revision(&mut *self.connection().await?).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    async fn mesh_ca(&self, mesh: &str, name: &str) -> Result<Option<StoredMeshCa>, StoreError> {
        secrets::mesh_ca(&mut *self.connection().await?, mesh, name).await
    }

    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        secrets::signing_keys(&mut *self.connection().await?).await
    }

    async fn put_signing_key(
        &self,
        key: StoredSigningKey,
        retire_others: bool,
    ) -> Result<StoredSigningKey, StoreError> {
        let mut tx = self.write_transaction().await?;
        let active = secrets::put_signing_key(&mut tx, &key, retire_others).await?;
        commit(tx).await?;
        Ok(active)
    }

    async fn record_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        secrets::record_token(&mut *self.connection().await?, token).await
    }

    async fn revoke_token(&self, jti: &str, at: u64) -> Result<Option<StoredToken>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let token = secrets::revoke_token(&mut tx, jti, at).await?;
        commit(tx).await?;
        Ok(token)
    }

    async fn revoked_tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        secrets::revoked_tokens(&mut *self.connection().await?).await
    }

    async fn admin_token_hash(&self) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT token_hash FROM api_credentials WHERE name = 'admin'")
            .fetch_optional(&mut *self.connection().await?)
            .await
            .map_err(|e| StoreError::backend("reading the admin token hash", e))
    }

    async fn init_admin_token_hash(&self, hash: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let err = |e| StoreError::backend("storing the admin token hash", e);
        sqlx::query(
            "INSERT INTO api_credentials (name, token_hash, created_at) VALUES ('admin', ?, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(hash)
        .bind(rows::unix_i64(weft_api::rest::now_unix()))
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT token_hash FROM api_credentials WHERE name = 'admin'")
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
        commit(tx).await?;
        Ok(stored)
    }

    async fn cp_tls(&self) -> Result<Option<StoredCpTls>, StoreError> {
        cp_tls::get(&mut *self.connection().await?).await
    }

    async fn put_cp_tls(
        &self,
        tls: &StoredCpTls,
        replace: bool,
    ) -> Result<StoredCpTls, StoreError> {
        let mut tx = self.write_transaction().await?;
        cp_tls::put(&mut tx, tls, replace).await?;
        let stored = cp_tls::get(&mut tx).await?.ok_or_else(|| {
            StoreError::backend(
                "storing the control plane's TLS certificate",
                "row missing after insert",
            )
        })?;
        commit(tx).await?;
        Ok(stored)
    }

    async fn virtual_ips(
        &self,
        mesh: &str,
        services: &[String],
    ) -> Result<BTreeMap<String, Ipv4Addr>, StoreError> {
        // Every reconcile pass asks; almost always every service has its
        // IP already, and a read needs no write lock.
        let known = virtual_ips::read(&mut *self.connection().await?, mesh, services).await?;
        if known.len() == services.len() {
            return Ok(known);
        }
        let mut tx = self.write_transaction().await?;
        let assigned = virtual_ips::ensure(&mut tx, mesh, services).await?;
        commit(tx).await?;
        Ok(assigned)
    }

    /// Closes every connection; the last one checkpoints the WAL.
    async fn close(&self) {
        self.pool.close().await;
    }
}

async fn apply_one(
    conn: &mut SqliteConnection,
    change: &Change,
    revision: u64,
    now: i64,
) -> Result<ChangeOutcome, StoreError> {
    match change {
        Change::Upsert(resource) => write(conn, resource, false, revision, now).await,
        Change::Create(resource) => write(conn, resource, true, revision, now).await,
        Change::Delete(key) => delete(conn, key).await,
        Change::EnsureMeshCa(ca) => secrets::ensure_mesh_ca(conn, ca).await,
        // Needs the batch's state; `apply` handles it.
        Change::CreateWithNewMesh(_) => Ok(ChangeOutcome::Unchanged),
    }
}

async fn write(
    conn: &mut SqliteConnection,
    resource: &Resource,
    create_only: bool,
    revision: u64,
    now: i64,
) -> Result<ChangeOutcome, StoreError> {
    let key = resource.key();
    if let Some(mesh) = resource.mesh()
        && !exists(conn, &ResourceKey::mesh(mesh)).await?
    {
        return Err(StoreError::MeshNotFound {
            mesh: mesh.to_owned(),
            key,
        });
    }
    let value = resource.to_value();
    let existing: Option<String> =
        sqlx::query_scalar("SELECT body FROM resources WHERE kind = ? AND mesh = ? AND name = ?")
            .bind(key.kind.as_str())
            .bind(key.mesh.as_str())
            .bind(key.name.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| StoreError::backend(format!("reading {key}"), e))?;
    let body = value.to_string();
    let result = match existing {
        Some(_) if create_only => return Err(StoreError::Conflict(key)),
        Some(old) => {
            // Compare as JSON values, not text, so that key order or
            // formatting differences never count as a change.
            if serde_json::from_str::<Value>(&old).is_ok_and(|old| old == value) {
                return Ok(ChangeOutcome::Unchanged);
            }
            sqlx::query(
                "UPDATE resources SET body = ?, revision = ?, modified_at = ? \
                 WHERE kind = ? AND mesh = ? AND name = ?",
            )
            .bind(body)
            .bind(unix_i64(revision))
            .bind(now)
            .bind(key.kind.as_str())
            .bind(key.mesh.as_str())
            .bind(key.name.as_str())
            .execute(&mut *conn)
            .await
            .map(|_| ChangeOutcome::Updated)
        }
        None => sqlx::query(
            "INSERT INTO resources (kind, mesh, name, body, revision, created_at, modified_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(key.kind.as_str())
        .bind(key.mesh.as_str())
        .bind(key.name.as_str())
        .bind(body)
        .bind(unix_i64(revision))
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|_| ChangeOutcome::Created),
    };
    result.map_err(|e| StoreError::backend(format!("writing {key}"), e))
}

async fn delete(
    conn: &mut SqliteConnection,
    key: &ResourceKey,
) -> Result<ChangeOutcome, StoreError> {
    if key.kind == Kind::Mesh {
        // Policies are the mesh's own settings and go with it (every mesh
        // starts with one); workloads must be removed first.
        let inside: Option<(String, i64)> = sqlx::query_as(
            "SELECT kind, COUNT(*) FROM resources WHERE mesh = ? AND kind = ? \
             GROUP BY kind ORDER BY kind LIMIT 1",
        )
        .bind(key.name.as_str())
        .bind(Kind::Dataplane.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| {
            StoreError::backend(format!("counting resources in mesh {:?}", key.name), e)
        })?;
        if let Some((kind, count)) = inside {
            return Err(StoreError::MeshNotEmpty {
                mesh: key.name.clone(),
                kind: parse_kind(&kind)?,
                count: u64::try_from(count).unwrap_or(0),
            });
        }
    }
    let result = sqlx::query("DELETE FROM resources WHERE kind = ? AND mesh = ? AND name = ?")
        .bind(key.kind.as_str())
        .bind(key.mesh.as_str())
        .bind(key.name.as_str())
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::backend(format!("deleting {key}"), e))?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound(key.clone()));
    }
    if key.kind == Kind::Mesh {
        // Every kind but Mesh and Dataplane is a policy.
        sqlx::query("DELETE FROM resources WHERE mesh = ? AND kind != ? AND kind != ?")
            .bind(key.name.as_str())
            .bind(Kind::Mesh.as_str())
            .bind(Kind::Dataplane.as_str())
            .execute(&mut *conn)
            .await
            .map_err(|e| StoreError::backend(format!("deleting the policies of {key}"), e))?;
        secrets::delete_mesh_ca(conn, &key.name).await?;
        virtual_ips::delete_mesh(conn, &key.name).await?;
    }
    Ok(ChangeOutcome::Deleted)
}

pub(super) async fn exists(
    conn: &mut SqliteConnection,
    key: &ResourceKey,
) -> Result<bool, StoreError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM resources WHERE kind = ? AND mesh = ? AND name = ?")
            .bind(key.kind.as_str())
            .bind(key.mesh.as_str())
            .bind(key.name.as_str())
            .fetch_optional(conn)
            .await
            .map_err(|e| StoreError::backend(format!("reading {key}"), e))?;
    Ok(found.is_some())
}
