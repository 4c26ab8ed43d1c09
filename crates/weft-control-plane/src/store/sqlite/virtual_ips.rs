//! The SQLite side of services' virtual IPs: one row per (mesh, service),
//! the address kept as a number so that the next free one is `MAX + 1`.

use std::{collections::BTreeMap, net::Ipv4Addr};

use sqlx::{Row, SqliteConnection};
use weft_api::rest::now_unix;

use super::rows::unix_i64;
use crate::store::{StoreError, VIRTUAL_IP_RANGE};

/// The IPs `services` of `mesh` have; those without one are left out.
pub(super) async fn read(
    conn: &mut SqliteConnection,
    mesh: &str,
    services: &[String],
) -> Result<BTreeMap<String, Ipv4Addr>, StoreError> {
    let context = || format!("reading virtual IPs in mesh {mesh:?}");
    let rows = sqlx::query("SELECT service, ip FROM virtual_ips WHERE mesh = ?")
        .bind(mesh)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| StoreError::backend(context(), e))?;
    let mut known = BTreeMap::new();
    for row in rows {
        let service: String = row
            .try_get("service")
            .map_err(|e| StoreError::backend(context(), e))?;
        let ip: i64 = row
            .try_get("ip")
            .map_err(|e| StoreError::backend(context(), e))?;
        let ip = u32::try_from(ip)
            .map(Ipv4Addr::from)
            .map_err(|_| StoreError::backend(context(), format!("stored IP {ip} is not IPv4")))?;
        if services.contains(&service) {
            known.insert(service, ip);
        }
    }
    Ok(known)
}

/// Reads the IPs of `services` in `mesh`, assigning the missing ones;
/// inside a write transaction, so two passes cannot hand out one address.
pub(super) async fn ensure(
    conn: &mut SqliteConnection,
    mesh: &str,
    services: &[String],
) -> Result<BTreeMap<String, Ipv4Addr>, StoreError> {
    let context = || format!("assigning virtual IPs in mesh {mesh:?}");
    let mut assigned = read(&mut *conn, mesh, services).await?;
    let (first, last) = (u32::from(VIRTUAL_IP_RANGE.0), u32::from(VIRTUAL_IP_RANGE.1));
    for service in services {
        if assigned.contains_key(service) {
            continue;
        }
        let highest: Option<i64> = sqlx::query_scalar("SELECT MAX(ip) FROM virtual_ips")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| StoreError::backend(context(), e))?;
        let next = highest
            .and_then(|h| u32::try_from(h).ok())
            .map_or(first, |h| h.saturating_add(1).max(first));
        if next > last {
            return Err(StoreError::backend(
                context(),
                "no virtual IP left in 240.0.0.0/4",
            ));
        }
        sqlx::query("INSERT INTO virtual_ips (mesh, service, ip, created_at) VALUES (?, ?, ?, ?)")
            .bind(mesh)
            .bind(service)
            .bind(i64::from(next))
            .bind(unix_i64(now_unix()))
            .execute(&mut *conn)
            .await
            .map_err(|e| StoreError::backend(context(), e))?;
        assigned.insert(service.clone(), Ipv4Addr::from(next));
    }
    Ok(assigned)
}

/// Forgets a deleted mesh's IPs; inside the deleting transaction.
pub(super) async fn delete_mesh(conn: &mut SqliteConnection, mesh: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM virtual_ips WHERE mesh = ?")
        .bind(mesh)
        .execute(conn)
        .await
        .map_err(|e| {
            StoreError::backend(format!("deleting the virtual IPs of mesh {mesh:?}"), e)
        })?;
    Ok(())
}
