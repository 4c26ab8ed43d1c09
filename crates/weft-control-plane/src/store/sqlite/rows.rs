//! Turning rows back into typed values; a row that does not parse is a
//! backend error that names it, never a panic.

use serde_json::Value;
use sqlx::{Row, SqliteConnection, sqlite::SqliteRow};
use weft_api::{
    Kind, Resource,
    rest::{Meta, StoredResource},
};

use crate::store::StoreError;

pub(super) fn parse_kind(s: &str) -> Result<Kind, StoreError> {
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| StoreError::backend("corrupt row", format!("unknown kind {s:?}")))
}

/// Turns one row into a resource. A row that does not parse is reported as
/// a backend error naming the row, never a panic.
pub(super) fn decode(row: &SqliteRow) -> Result<StoredResource, StoreError> {
    let columns = || -> Result<_, sqlx::Error> {
        Ok((
            row.try_get::<String, _>("kind")?,
            row.try_get::<String, _>("mesh")?,
            row.try_get::<String, _>("name")?,
            row.try_get::<String, _>("body")?,
            row.try_get::<i64, _>("revision")?,
            row.try_get::<i64, _>("created_at")?,
            row.try_get::<i64, _>("modified_at")?,
        ))
    };
    let (kind, mesh, name, body, revision, created, modified) =
        columns().map_err(|e| StoreError::backend("reading a resource row", e))?;
    let corrupt =
        |why: String| StoreError::backend(format!("corrupt row for {kind} {mesh:?}/{name:?}"), why);
    let value: Value =
        serde_json::from_str(&body).map_err(|e| corrupt(format!("body is not JSON: {e}")))?;
    let resource =
        Resource::from_value(value).map_err(|e| corrupt(format!("body is not valid: {e}")))?;
    let key = resource.key();
    if key.kind.as_str() != kind || key.mesh != mesh || key.name != name {
        return Err(corrupt(format!("body describes {key}")));
    }
    let number = |what: &str, v: i64| {
        u64::try_from(v).map_err(|_| corrupt(format!("{what} {v} is negative")))
    };
    Ok(StoredResource {
        resource,
        meta: Meta {
            revision: number("revision", revision)?,
            created: number("created_at", created)?,
            modified: number("modified_at", modified)?,
        },
    })
}

pub(super) async fn read_revision(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    let revision: i64 = sqlx::query_scalar("SELECT revision FROM store_revision WHERE id = 1")
        .fetch_one(conn)
        .await
        .map_err(|e| StoreError::backend("reading the store revision", e))?;
    u64::try_from(revision)
        .map_err(|e| StoreError::backend(format!("corrupt store revision {revision}"), e))
}

/// SQLite integers are signed; revisions and unix seconds stay far below
/// `i64::MAX`, and saturating keeps this total.
pub(in crate::store) fn unix_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
