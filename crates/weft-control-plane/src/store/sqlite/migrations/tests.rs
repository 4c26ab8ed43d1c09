//! Migrations on a store written by an older weft: what was there survives.

use sqlx::{Row, sqlite::SqlitePoolOptions};

use super::*;

async fn memory_pool() -> SqlitePool {
    // One connection kept open: each `:memory:` connection is its own database.
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .unwrap()
}

#[tokio::test]
async fn the_ca_of_a_mesh_from_before_names_becomes_its_default_ca() {
    let pool = memory_pool().await;
    run_up_to(&pool, 3).await.unwrap();
    sqlx::query(
        "INSERT INTO mesh_cas (mesh, cert_pem, sealed_key, created_at) VALUES ('m', 'PEM', x'010203', 7)",
    )
    .execute(&pool)
    .await
    .unwrap();

    run(&pool).await.unwrap();
    let rows = sqlx::query("SELECT mesh, name, cert_pem, sealed_key, created_at FROM mesh_cas")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.get::<String, _>("mesh"), "m");
    assert_eq!(row.get::<String, _>("name"), "default");
    assert_eq!(row.get::<String, _>("cert_pem"), "PEM");
    assert_eq!(row.get::<Vec<u8>, _>("sealed_key"), [1, 2, 3]);
    assert_eq!(row.get::<i64, _>("created_at"), 7);

    // The mesh can now hold a second, named CA; running again is a no-op.
    sqlx::query(
        "INSERT INTO mesh_cas (mesh, name, cert_pem, sealed_key, created_at) VALUES ('m', 'ca-2', 'PEM2', x'04', 8)",
    )
    .execute(&pool)
    .await
    .unwrap();
    run(&pool).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mesh_cas")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 2);
}
