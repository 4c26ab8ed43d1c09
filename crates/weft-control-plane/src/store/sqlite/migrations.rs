//! The schema, as an ordered list of migrations. Each runs once, in its own
//! transaction, and is recorded in `schema_migrations`; add new ones at the
//! end and never edit a released one.

use sqlx::sqlite::SqlitePool;
use weft_api::rest::now_unix;

use crate::store::StoreError;

struct Migration {
    version: i64,
    name: &'static str,
    statements: &'static [&'static str],
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "resources and the store revision",
        statements: &[
            // `mesh` is '' for meshes, so the primary key works for every kind.
            "CREATE TABLE resources (
            kind        TEXT    NOT NULL,
            mesh        TEXT    NOT NULL,
            name        TEXT    NOT NULL,
            body        TEXT    NOT NULL,
            revision    INTEGER NOT NULL,
            created_at  INTEGER NOT NULL,
            modified_at INTEGER NOT NULL,
            PRIMARY KEY (kind, mesh, name)
        )",
            // Deleting a mesh counts what is left inside it.
            "CREATE INDEX resources_by_mesh ON resources (mesh, kind)",
            "CREATE TABLE store_revision (
            id       INTEGER PRIMARY KEY CHECK (id = 1),
            revision INTEGER NOT NULL
        )",
            "INSERT INTO store_revision (id, revision) VALUES (1, 0)",
        ],
    },
    Migration {
        version: 2,
        name: "mesh CAs, token signing keys and dataplane tokens",
        statements: &[
            // The private key is sealed by the caller; the store never sees it in the clear.
            "CREATE TABLE mesh_cas (
            mesh       TEXT    PRIMARY KEY,
            cert_pem   TEXT    NOT NULL,
            sealed_key BLOB    NOT NULL,
            created_at INTEGER NOT NULL
        )",
            // `private_key` is NULL once retired; `sealed` says whether it is encrypted.
            "CREATE TABLE signing_keys (
            kid         TEXT    PRIMARY KEY,
            public_key  BLOB    NOT NULL,
            private_key BLOB,
            sealed      INTEGER NOT NULL,
            created_at  INTEGER NOT NULL,
            retired_at  INTEGER
        )",
            // Claims of issued tokens (never the tokens), for revocation by id.
            "CREATE TABLE dataplane_tokens (
            jti        TEXT    PRIMARY KEY,
            mesh       TEXT    NOT NULL,
            services   TEXT    NOT NULL,
            kid        TEXT    NOT NULL,
            issued_at  INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            revoked_at INTEGER
        )",
            "CREATE INDEX dataplane_tokens_revoked ON dataplane_tokens (revoked_at) \
         WHERE revoked_at IS NOT NULL",
        ],
    },
    Migration {
        version: 3,
        name: "API credentials",
        statements: &[
            // Only a hash: the token itself lives in the operator's file.
            "CREATE TABLE api_credentials (
            name       TEXT    PRIMARY KEY,
            token_hash BLOB    NOT NULL,
            created_at INTEGER NOT NULL
        )",
        ],
    },
    Migration {
        version: 4,
        name: "several named builtin CAs per mesh",
        statements: &[
            // A mesh keeps every builtin CA it named, so a CA rotation can
            // go back; the CA stored before names existed is `default`.
            "CREATE TABLE mesh_cas_named (
            mesh       TEXT    NOT NULL,
            name       TEXT    NOT NULL,
            cert_pem   TEXT    NOT NULL,
            sealed_key BLOB    NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (mesh, name)
        )",
            "INSERT INTO mesh_cas_named (mesh, name, cert_pem, sealed_key, created_at) \
         SELECT mesh, 'default', cert_pem, sealed_key, created_at FROM mesh_cas",
            "DROP TABLE mesh_cas",
            "ALTER TABLE mesh_cas_named RENAME TO mesh_cas",
        ],
    },
    Migration {
        version: 5,
        name: "the control plane's own TLS certificate",
        statements: &[
            // One row (id 1): the generated CA and the server certificate it
            // signed. Keys are PKCS#8 PEM, sealed when `sealed` is 1.
            "CREATE TABLE cp_tls (
            id              INTEGER PRIMARY KEY CHECK (id = 1),
            ca_cert_pem     TEXT    NOT NULL,
            ca_key          BLOB    NOT NULL,
            server_cert_pem TEXT    NOT NULL,
            server_key      BLOB    NOT NULL,
            server_sans     TEXT    NOT NULL,
            server_expires  INTEGER NOT NULL,
            sealed          INTEGER NOT NULL,
            created_at      INTEGER NOT NULL
        )",
        ],
    },
    Migration {
        version: 6,
        name: "virtual IPs of mesh services",
        statements: &[
            // `ip` is the IPv4 address as a number, unique across meshes,
            // so the next free one is MAX + 1.
            "CREATE TABLE virtual_ips (
            mesh       TEXT    NOT NULL,
            service    TEXT    NOT NULL,
            ip         INTEGER NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (mesh, service)
        )",
        ],
    },
];

/// Brings the schema up to date.
pub(super) async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
    run_up_to(pool, i64::MAX).await
}

/// Runs the migrations up to and including `last` (tests start from an
/// older schema this way).
async fn run_up_to(pool: &SqlitePool, last: i64) -> Result<(), StoreError> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: sqlx::Error| StoreError::backend(what, e)
    };
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT    NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )
    .execute(pool)
    .await
    .map_err(err("creating schema_migrations"))?;

    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(pool)
        .await
        .map_err(err("reading schema_migrations"))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(newest) = newest.filter(|v| *v > known) {
        return Err(StoreError::backend(
            "checking the schema version",
            format!(
                "the store has schema version {newest} but this weft knows only up to {known}; \
                 run a newer weft"
            ),
        ));
    }

    for m in MIGRATIONS.iter().filter(|m| m.version <= last) {
        let context = format!("migration {} ({})", m.version, m.name);
        // IMMEDIATE: two processes opening the same file at once must not
        // both run a migration.
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(err(&context))?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(err(&context))?;
        if done.is_some() {
            continue;
        }
        for statement in m.statements {
            sqlx::query(*statement)
                .execute(&mut *tx)
                .await
                .map_err(err(&context))?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(i64::try_from(now_unix()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(err(&context))?;
        tx.commit().await.map_err(err(&context))?;
        tracing::debug!(
            version = m.version,
            name = m.name,
            "store migration applied"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
