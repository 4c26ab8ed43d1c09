//! Services' virtual IPs: assigned once, kept across calls and restarts,
//! unique across meshes, gone with their mesh.

use std::net::Ipv4Addr;

use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn ips_are_assigned_once_and_unique_across_meshes() {
    let store = memory().await;
    store
        .apply(vec![Change::Create(mesh("a")), Change::Create(mesh("b"))])
        .await
        .unwrap();
    let first = store
        .virtual_ips("a", &names(&["backend", "web"]))
        .await
        .unwrap();
    assert_eq!(first["backend"], Ipv4Addr::new(240, 0, 0, 1));
    assert_eq!(first["web"], Ipv4Addr::new(240, 0, 0, 2));

    let again = store
        .virtual_ips("a", &names(&["backend", "web", "store"]))
        .await
        .unwrap();
    assert_eq!(again["backend"], first["backend"]);
    assert_eq!(again["web"], first["web"]);
    assert_eq!(again["store"], Ipv4Addr::new(240, 0, 0, 3));

    // Only the services asked for come back.
    let one = store.virtual_ips("a", &names(&["web"])).await.unwrap();
    assert_eq!(one.len(), 1);

    let other = store.virtual_ips("b", &names(&["backend"])).await.unwrap();
    assert_eq!(other["backend"], Ipv4Addr::new(240, 0, 0, 4));
}

#[tokio::test]
async fn ips_survive_a_restart_and_leave_with_their_mesh() {
    let dir = TempDir::new();
    let path = dir.0.join("store.db");
    let store = SqliteStore::open_file(&path).await.unwrap();
    store.apply(vec![Change::Create(mesh("a"))]).await.unwrap();
    let before = store.virtual_ips("a", &names(&["backend"])).await.unwrap();
    store.close().await;

    let store = SqliteStore::open_file(&path).await.unwrap();
    let after = store.virtual_ips("a", &names(&["backend"])).await.unwrap();
    assert_eq!(before, after);

    store
        .apply(vec![Change::Delete(ResourceKey::mesh("a"))])
        .await
        .unwrap();
    store.apply(vec![Change::Create(mesh("a"))]).await.unwrap();
    let renewed = store.virtual_ips("a", &names(&["web"])).await.unwrap();
    // The deleted mesh's row is gone: `web` is the only one now.
    assert_eq!(renewed["web"], Ipv4Addr::new(240, 0, 0, 1));
}
