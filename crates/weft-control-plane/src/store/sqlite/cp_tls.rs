//! The SQLite side of the control plane's own TLS material: one row in
//! `cp_tls` (see [`crate::store::Store::put_cp_tls`] for the rules).

use sqlx::{Row, SqliteConnection};

use super::rows::unix_i64;
use crate::store::{StoreError, StoredCpTls};

/// The stored row, if any.
pub(super) async fn get(conn: &mut SqliteConnection) -> Result<Option<StoredCpTls>, StoreError> {
    let context = "reading the control plane's TLS certificate";
    let row = sqlx::query(
        "SELECT ca_cert_pem, ca_key, server_cert_pem, server_key, server_sans, \
         server_expires, sealed, created_at FROM cp_tls WHERE id = 1",
    )
    .fetch_optional(conn)
    .await
    .map_err(|e| StoreError::backend(context, e))?;
    let Some(row) = row else { return Ok(None) };
    let decode = || -> Result<StoredCpTls, sqlx::Error> {
        Ok(StoredCpTls {
            ca_cert_pem: row.try_get("ca_cert_pem")?,
            ca_key: row.try_get("ca_key")?,
            server_cert_pem: row.try_get("server_cert_pem")?,
            server_key: row.try_get("server_key")?,
            server_sans: row.try_get("server_sans")?,
            server_expires: u64::try_from(row.try_get::<i64, _>("server_expires")?)
                .unwrap_or_default(),
            sealed: row.try_get::<i64, _>("sealed")? != 0,
            created: u64::try_from(row.try_get::<i64, _>("created_at")?).unwrap_or_default(),
        })
    };
    decode()
        .map(Some)
        .map_err(|e| StoreError::backend(context, e))
}

macro_rules! insert {
    ($conflict:literal) => {
        concat!(
            "INSERT INTO cp_tls (id, ca_cert_pem, ca_key, server_cert_pem, server_key, ",
            "server_sans, server_expires, sealed, created_at) ",
            "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?) ",
            $conflict
        )
    };
}
const INSERT_NEW: &str = insert!("ON CONFLICT (id) DO NOTHING");
const INSERT_OR_REPLACE: &str = insert!(
    "ON CONFLICT (id) DO UPDATE SET ca_cert_pem = excluded.ca_cert_pem, \
     ca_key = excluded.ca_key, server_cert_pem = excluded.server_cert_pem, \
     server_key = excluded.server_key, server_sans = excluded.server_sans, \
     server_expires = excluded.server_expires, sealed = excluded.sealed"
);

/// Inserts `tls`, or with `replace` overwrites the stored row; inside a transaction.
pub(super) async fn put(
    conn: &mut SqliteConnection,
    tls: &StoredCpTls,
    replace: bool,
) -> Result<(), StoreError> {
    let sql = if replace {
        INSERT_OR_REPLACE
    } else {
        INSERT_NEW
    };
    sqlx::query(sql)
        .bind(&tls.ca_cert_pem)
        .bind(&tls.ca_key)
        .bind(&tls.server_cert_pem)
        .bind(&tls.server_key)
        .bind(&tls.server_sans)
        .bind(unix_i64(tls.server_expires))
        .bind(i64::from(tls.sealed))
        .bind(unix_i64(tls.created))
        .execute(conn)
        .await
        .map_err(|e| StoreError::backend("storing the control plane's TLS certificate", e))?;
    Ok(())
}
