//! The SQLite store against the Store contract: batches, revisions, the
//! mesh rules, persistence and notifications.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

use serde_json::json;
use weft_api::{Kind, Resource, ResourceKey};

use super::*;

pub(crate) fn mesh(name: &str) -> Resource {
    Resource::from_value(json!({"type": "Mesh", "name": name})).unwrap()
}

pub(crate) fn dataplane(mesh: &str, name: &str, port: u16) -> Resource {
    Resource::from_value(json!({
        "type": "Dataplane", "mesh": mesh, "name": name,
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": port, "servicePort": 8080, "tags": {"service": name}}],
        },
    }))
    .unwrap()
}

fn dp_key(mesh: &str, name: &str) -> ResourceKey {
    ResourceKey::in_mesh(Kind::Dataplane, mesh, name)
}

/// A directory removed when dropped (no tempfile crate in the workspace).
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weft-cp-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn memory() -> SqliteStore {
    SqliteStore::open_memory().await.unwrap()
}

#[tokio::test]
async fn apply_get_list_delete() {
    let store = memory().await;
    assert_eq!(store.revision().await.unwrap(), 0);
    let report = store
        .apply(vec![
            Change::Upsert(mesh("default")),
            Change::Upsert(dataplane("default", "web", 20001)),
            Change::Create(dataplane("default", "api", 20002)),
        ])
        .await
        .unwrap();
    assert_eq!(report.revision, 1);
    assert_eq!(report.outcomes, [ChangeOutcome::Created; 3]);

    let got = store.get(&dp_key("default", "web")).await.unwrap().unwrap();
    assert_eq!(got.resource, dataplane("default", "web", 20001));
    assert_eq!(got.meta.revision, 1);
    assert!(got.meta.created > 0 && got.meta.created == got.meta.modified);
    assert!(
        store
            .get(&dp_key("default", "nope"))
            .await
            .unwrap()
            .is_none()
    );

    let names = |items: Vec<weft_api::rest::StoredResource>| {
        items
            .into_iter()
            .map(|s| s.resource.name().to_owned())
            .collect::<Vec<_>>()
    };
    let all = store.list(Kind::Dataplane, None).await.unwrap();
    assert_eq!(names(all), ["api", "web"], "sorted by name");
    let in_mesh = store.list(Kind::Dataplane, Some("default")).await.unwrap();
    assert_eq!(in_mesh.len(), 2);
    assert!(
        store
            .list(Kind::Dataplane, Some("other"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        names(store.list(Kind::Mesh, None).await.unwrap()),
        ["default"]
    );

    let report = store
        .apply(vec![Change::Delete(dp_key("default", "web"))])
        .await
        .unwrap();
    assert_eq!(report.revision, 2);
    assert_eq!(report.outcomes, [ChangeOutcome::Deleted]);
    assert!(
        store
            .get(&dp_key("default", "web"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn list_sorts_by_mesh_then_name() {
    let store = memory().await;
    store
        .apply(vec![
            Change::Upsert(mesh("b")),
            Change::Upsert(mesh("a")),
            Change::Upsert(dataplane("b", "x", 20001)),
            Change::Upsert(dataplane("a", "y", 20001)),
            Change::Upsert(dataplane("a", "x", 20001)),
        ])
        .await
        .unwrap();
    let keys: Vec<_> = store
        .list(Kind::Dataplane, None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| format!("{}/{}", s.resource.mesh().unwrap(), s.resource.name()))
        .collect();
    assert_eq!(keys, ["a/x", "a/y", "b/x"]);
    let mut counts = store.count_by_kind().await.unwrap();
    counts.sort_by_key(|(kind, _)| kind.as_str());
    assert_eq!(counts, [(Kind::Dataplane, 3), (Kind::Mesh, 2)]);
}

#[tokio::test]
async fn update_keeps_creation_time_and_bumps_revision() {
    let store = memory().await;
    store
        .apply(vec![
            Change::Upsert(mesh("m")),
            Change::Upsert(dataplane("m", "web", 20001)),
        ])
        .await
        .unwrap();
    let report = store
        .apply(vec![Change::Upsert(dataplane("m", "web", 20002))])
        .await
        .unwrap();
    assert_eq!(report.outcomes, [ChangeOutcome::Updated]);
    assert_eq!(report.revision, 2);
    let got = store.get(&dp_key("m", "web")).await.unwrap().unwrap();
    assert_eq!(got.resource, dataplane("m", "web", 20002));
    assert_eq!(got.meta.revision, 2);
    // The mesh was not touched by the second batch.
    let mesh = store.get(&ResourceKey::mesh("m")).await.unwrap().unwrap();
    assert_eq!(mesh.meta.revision, 1);
}

#[tokio::test]
async fn identical_reapply_is_unchanged_and_keeps_the_revision() {
    let store = memory().await;
    let batch = vec![
        Change::Upsert(mesh("m")),
        Change::Upsert(dataplane("m", "web", 20001)),
    ];
    store.apply(batch.clone()).await.unwrap();
    let mut rx = store.subscribe();
    rx.borrow_and_update();
    let report = store.apply(batch).await.unwrap();
    assert_eq!(report.revision, 1);
    assert_eq!(report.outcomes, [ChangeOutcome::Unchanged; 2]);
    assert!(!rx.has_changed().unwrap(), "no write, no notification");
    assert_eq!(store.revision().await.unwrap(), 1);
}

#[tokio::test]
async fn a_bad_item_writes_nothing() {
    let store = memory().await;
    store.apply(vec![Change::Upsert(mesh("m"))]).await.unwrap();
    let err = store
        .apply(vec![
            Change::Upsert(dataplane("m", "web", 20001)),
            Change::Upsert(mesh("other")),
            Change::Create(mesh("m")),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(k) if *k == ResourceKey::mesh("m")),
        "{err}"
    );
    assert_eq!(err.to_string(), "Mesh \"m\" already exists");
    assert!(store.get(&dp_key("m", "web")).await.unwrap().is_none());
    assert!(
        store
            .get(&ResourceKey::mesh("other"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.revision().await.unwrap(), 1);
}

#[tokio::test]
async fn mesh_scoped_resources_need_their_mesh() {
    let store = memory().await;
    let err = store
        .apply(vec![Change::Upsert(dataplane("nope", "web", 20001))])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "mesh \"nope\" does not exist");
    assert_eq!(err.key(), Some(dp_key("nope", "web")));

    // A mesh created earlier in the same batch counts...
    store
        .apply(vec![
            Change::Upsert(mesh("m")),
            Change::Upsert(dataplane("m", "web", 20001)),
        ])
        .await
        .unwrap();
    // ...and one deleted earlier in the batch does not.
    let err = store
        .apply(vec![
            Change::Delete(dp_key("m", "web")),
            Change::Delete(ResourceKey::mesh("m")),
            Change::Upsert(dataplane("m", "api", 20002)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::MeshNotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_mesh_with_resources_cannot_be_deleted() {
    let store = memory().await;
    store
        .apply(vec![
            Change::Upsert(mesh("m")),
            Change::Upsert(dataplane("m", "a", 20001)),
            Change::Upsert(dataplane("m", "b", 20002)),
        ])
        .await
        .unwrap();
    let err = store
        .apply(vec![Change::Delete(ResourceKey::mesh("m"))])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "mesh \"m\" still has 2 dataplanes; delete them first"
    );
    let err = store
        .apply(vec![
            Change::Delete(dp_key("m", "a")),
            Change::Delete(ResourceKey::mesh("m")),
        ])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "mesh \"m\" still has 1 Dataplane; delete it first"
    );
    assert!(
        store.get(&dp_key("m", "a")).await.unwrap().is_some(),
        "rolled back"
    );

    let report = store
        .apply(vec![
            Change::Delete(dp_key("m", "a")),
            Change::Delete(dp_key("m", "b")),
            Change::Delete(ResourceKey::mesh("m")),
        ])
        .await
        .unwrap();
    assert_eq!(report.outcomes, [ChangeOutcome::Deleted; 3]);
}

#[tokio::test]
async fn deleting_a_missing_resource_is_not_found() {
    let store = memory().await;
    let err = store
        .apply(vec![Change::Delete(ResourceKey::mesh("ghost"))])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Mesh \"ghost\" not found");
    assert_eq!(store.revision().await.unwrap(), 0);
}

#[tokio::test]
async fn subscribe_sees_every_write() {
    let store = memory().await;
    let mut rx = store.subscribe();
    assert_eq!(*rx.borrow_and_update(), 0);
    store.apply(vec![Change::Upsert(mesh("m"))]).await.unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 1);
    store
        .apply(vec![Change::Delete(ResourceKey::mesh("m"))])
        .await
        .unwrap();
    rx.changed().await.unwrap();
    assert_eq!(*rx.borrow_and_update(), 2);
}

#[tokio::test]
async fn a_reopened_file_keeps_everything() {
    let dir = TempDir::new();
    // Parent directories are created.
    let path = dir.0.join("nested/dir/store.db");
    {
        let store = SqliteStore::open_file(&path).await.unwrap();
        store
            .apply(vec![
                Change::Upsert(mesh("m")),
                Change::Upsert(dataplane("m", "web", 20001)),
            ])
            .await
            .unwrap();
        store
            .apply(vec![Change::Upsert(dataplane("m", "web", 20002))])
            .await
            .unwrap();
        store.close().await;
    }
    let store = open(&StoreUrl::Sqlite(path)).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), 2);
    assert_eq!(*store.subscribe().borrow(), 2);
    let got = store.get(&dp_key("m", "web")).await.unwrap().unwrap();
    assert_eq!(got.resource, dataplane("m", "web", 20002));
    assert_eq!(got.meta.revision, 2);
    assert_eq!(store.list(Kind::Mesh, None).await.unwrap().len(), 1);
    // The next write continues from the stored revision.
    let report = store.apply(vec![Change::Upsert(mesh("n"))]).await.unwrap();
    assert_eq!(report.revision, 3);
}

#[tokio::test]
async fn concurrent_writers_to_one_file_never_break_the_rules() {
    let dir = TempDir::new();
    let path = dir.0.join("store.db");
    let a = SqliteStore::open_file(&path).await.unwrap();
    let b = SqliteStore::open_file(&path).await.unwrap();
    a.apply(vec![Change::Upsert(mesh("m"))]).await.unwrap();
    // One writer adds dataplanes while the other deletes the mesh: whatever
    // the interleaving, no dataplane may end up in a missing mesh.
    let add = async {
        for i in 0..20u16 {
            let name = format!("dp-{i}");
            let _ = a
                .apply(vec![Change::Upsert(dataplane("m", &name, 20000 + i))])
                .await;
        }
    };
    let remove = async {
        for _ in 0..20 {
            let _ = b.apply(vec![Change::Delete(ResourceKey::mesh("m"))]).await;
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(add, remove);
    let meshes = a.list(Kind::Mesh, None).await.unwrap();
    let dps = a.list(Kind::Dataplane, None).await.unwrap();
    assert!(
        dps.is_empty() || meshes.len() == 1,
        "{} dataplanes in a deleted mesh",
        dps.len()
    );
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_not_a_panic() {
    let store = memory().await;
    store.apply(vec![Change::Upsert(mesh("m"))]).await.unwrap();
    sqlx::query("UPDATE resources SET body = '{\"type\": \"Mesh\", \"name\": 7}'")
        .execute(&store.pool)
        .await
        .unwrap();
    let err = store.get(&ResourceKey::mesh("m")).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }));
    assert!(err.to_string().contains("corrupt row for Mesh"), "{err}");
    assert!(store.list(Kind::Mesh, None).await.is_err());
    sqlx::query("UPDATE resources SET body = 'not json'")
        .execute(&store.pool)
        .await
        .unwrap();
    assert!(store.get(&ResourceKey::mesh("m")).await.is_err());
}

mod secrets;
mod virtual_ips;
