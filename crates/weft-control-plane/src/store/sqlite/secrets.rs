//! The SQLite side of workload identity: mesh CAs, token signing keys and
//! dataplane tokens (see the `Store` methods they implement for the rules).

use sqlx::{Row, SqliteConnection, sqlite::SqliteRow};
use weft_api::ResourceKey;

use super::{exists, rows::unix_i64};
use crate::store::{ChangeOutcome, StoreError, StoredMeshCa, StoredSigningKey, StoredToken};

/// Inserts `ca` unless its mesh already has a CA of that name; inside a batch.
pub(super) async fn ensure_mesh_ca(
    conn: &mut SqliteConnection,
    ca: &StoredMeshCa,
) -> Result<ChangeOutcome, StoreError> {
    let key = ResourceKey::mesh(ca.mesh.clone());
    if !exists(conn, &key).await? {
        return Err(StoreError::MeshNotFound {
            mesh: ca.mesh.clone(),
            key,
        });
    }
    let result = sqlx::query(
        "INSERT INTO mesh_cas (mesh, name, cert_pem, sealed_key, created_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (mesh, name) DO NOTHING",
    )
    .bind(&ca.mesh)
    .bind(&ca.name)
    .bind(&ca.cert_pem)
    .bind(&ca.sealed_key)
    .bind(unix_i64(ca.created))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        StoreError::backend(
            format!("storing the CA {:?} of mesh {:?}", ca.name, ca.mesh),
            e,
        )
    })?;
    Ok(if result.rows_affected() == 0 {
        ChangeOutcome::Unchanged
    } else {
        ChangeOutcome::Created
    })
}

/// A deleted mesh takes its CAs along (every name): a new mesh of the same
/// name must not trust certificates of the old one.
pub(super) async fn delete_mesh_ca(
    conn: &mut SqliteConnection,
    mesh: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM mesh_cas WHERE mesh = ?")
        .bind(mesh)
        .execute(conn)
        .await
        .map_err(|e| StoreError::backend(format!("deleting the CAs of mesh {mesh:?}"), e))?;
    Ok(())
}

pub(super) async fn mesh_ca(
    conn: &mut SqliteConnection,
    mesh: &str,
    name: &str,
) -> Result<Option<StoredMeshCa>, StoreError> {
    let context = || format!("reading the CA {name:?} of mesh {mesh:?}");
    let row = sqlx::query(
        "SELECT mesh, name, cert_pem, sealed_key, created_at FROM mesh_cas \
         WHERE mesh = ? AND name = ?",
    )
    .bind(mesh)
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(|e| StoreError::backend(context(), e))?;
    let Some(row) = row else { return Ok(None) };
    let decode = || -> Result<StoredMeshCa, sqlx::Error> {
        Ok(StoredMeshCa {
            mesh: row.try_get("mesh")?,
            name: row.try_get("name")?,
            cert_pem: row.try_get("cert_pem")?,
            sealed_key: row.try_get("sealed_key")?,
            created: unsigned(row.try_get("created_at")?),
        })
    };
    decode()
        .map(Some)
        .map_err(|e| StoreError::backend(context(), e))
}

pub(super) async fn signing_keys(
    conn: &mut SqliteConnection,
) -> Result<Vec<StoredSigningKey>, StoreError> {
    let rows = sqlx::query("SELECT kid, public_key, private_key, sealed, created_at, retired_at FROM signing_keys ORDER BY created_at, kid")
    .fetch_all(conn)
    .await
    .map_err(|e| StoreError::backend("reading the token signing keys", e))?;
    rows.iter().map(decode_key).collect()
}

pub(super) async fn put_signing_key(
    conn: &mut SqliteConnection,
    key: &StoredSigningKey,
    retire_others: bool,
) -> Result<StoredSigningKey, StoreError> {
    let err = |e| StoreError::backend("storing a token signing key", e);
    if retire_others {
        sqlx::query(
            "UPDATE signing_keys SET retired_at = ?, private_key = NULL WHERE retired_at IS NULL",
        )
        .bind(unix_i64(key.created))
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    } else if let Some(active) = active_key(conn).await? {
        return Ok(active);
    }
    sqlx::query("INSERT INTO signing_keys (kid, public_key, private_key, sealed, created_at, retired_at) VALUES (?, ?, ?, ?, ?, NULL)")
    .bind(&key.kid)
    .bind(&key.public_key)
    .bind(&key.private_key)
    .bind(key.sealed)
    .bind(unix_i64(key.created))
    .execute(&mut *conn)
    .await
    .map_err(err)?;
    active_key(conn).await?.ok_or_else(|| {
        StoreError::backend(
            "storing a token signing key",
            "no active key after the write",
        )
    })
}

async fn active_key(conn: &mut SqliteConnection) -> Result<Option<StoredSigningKey>, StoreError> {
    let row = sqlx::query(
        "SELECT kid, public_key, private_key, sealed, created_at, retired_at FROM signing_keys \
         WHERE retired_at IS NULL ORDER BY created_at DESC, kid LIMIT 1",
    )
    .fetch_optional(conn)
    .await
    .map_err(|e| StoreError::backend("reading the active token signing key", e))?;
    row.as_ref().map(decode_key).transpose()
}

fn decode_key(row: &SqliteRow) -> Result<StoredSigningKey, StoreError> {
    let decode = || -> Result<StoredSigningKey, sqlx::Error> {
        Ok(StoredSigningKey {
            kid: row.try_get("kid")?,
            public_key: row.try_get("public_key")?,
            private_key: row.try_get("private_key")?,
            sealed: row.try_get("sealed")?,
            created: unsigned(row.try_get("created_at")?),
            retired: row.try_get::<Option<i64>, _>("retired_at")?.map(unsigned),
        })
    };
    decode().map_err(|e| StoreError::backend("reading a token signing key row", e))
}

pub(super) async fn record_token(
    conn: &mut SqliteConnection,
    t: &StoredToken,
) -> Result<(), StoreError> {
    let services = serde_json::to_string(&t.services).unwrap_or_default();
    sqlx::query(
        "INSERT INTO dataplane_tokens (jti, mesh, services, kid, issued_at, expires_at, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.jti)
    .bind(&t.mesh)
    .bind(services)
    .bind(&t.kid)
    .bind(unix_i64(t.issued))
    .bind(unix_i64(t.expires))
    .bind(t.revoked.map(unix_i64))
    .execute(conn)
    .await
    .map_err(|e| StoreError::backend(format!("recording token {}", t.jti), e))?;
    Ok(())
}

pub(super) async fn revoke_token(
    conn: &mut SqliteConnection,
    jti: &str,
    at: u64,
) -> Result<Option<StoredToken>, StoreError> {
    sqlx::query("UPDATE dataplane_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE jti = ?")
        .bind(unix_i64(at))
        .bind(jti)
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::backend(format!("revoking token {jti}"), e))?;
    let row = sqlx::query("SELECT jti, mesh, services, kid, issued_at, expires_at, revoked_at FROM dataplane_tokens WHERE jti = ?")
        .bind(jti)
        .fetch_optional(conn)
        .await
        .map_err(|e| StoreError::backend(format!("reading token {jti}"), e))?;
    row.as_ref().map(decode_token).transpose()
}

pub(super) async fn revoked_tokens(
    conn: &mut SqliteConnection,
) -> Result<Vec<StoredToken>, StoreError> {
    let rows = sqlx::query(
        "SELECT jti, mesh, services, kid, issued_at, expires_at, revoked_at FROM dataplane_tokens \
         WHERE revoked_at IS NOT NULL ORDER BY revoked_at DESC, jti",
    )
    .fetch_all(conn)
    .await
    .map_err(|e| StoreError::backend("listing revoked tokens", e))?;
    rows.iter().map(decode_token).collect()
}

fn decode_token(row: &SqliteRow) -> Result<StoredToken, StoreError> {
    let decode = || -> Result<(StoredToken, String), sqlx::Error> {
        Ok((
            StoredToken {
                jti: row.try_get("jti")?,
                mesh: row.try_get("mesh")?,
                services: Vec::new(),
                kid: row.try_get("kid")?,
                issued: unsigned(row.try_get("issued_at")?),
                expires: unsigned(row.try_get("expires_at")?),
                revoked: row.try_get::<Option<i64>, _>("revoked_at")?.map(unsigned),
            },
            row.try_get("services")?,
        ))
    };
    let (mut token, services) =
        decode().map_err(|e| StoreError::backend("reading a dataplane token row", e))?;
    token.services = serde_json::from_str(&services)
        .map_err(|e| StoreError::backend(format!("corrupt services of token {}", token.jti), e))?;
    Ok(token)
}

/// Times are written from `u64`s; a negative one could only come from a
/// hand-edited row and reads as 0.
fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
