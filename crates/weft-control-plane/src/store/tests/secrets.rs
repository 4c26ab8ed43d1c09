//! The identity tables: a mesh's CA written with the mesh and deleted with
//! it, signing keys kept to one active, token revocations.

use super::*;

fn ca(mesh: &str, cert: &str) -> StoredMeshCa {
    named_ca(mesh, "default", cert)
}

fn named_ca(mesh: &str, name: &str, cert: &str) -> StoredMeshCa {
    StoredMeshCa {
        mesh: mesh.into(),
        name: name.into(),
        cert_pem: cert.into(),
        sealed_key: vec![1, 2, 3],
        created: 10,
    }
}

fn key(kid: &str, created: u64) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.into(),
        public_key: vec![7; 32],
        private_key: Some(vec![9; 40]),
        sealed: true,
        created,
        retired: None,
    }
}

#[tokio::test]
async fn a_mesh_ca_is_written_once_with_its_mesh_and_deleted_with_it() {
    let store = memory().await;
    let err = store
        .apply(vec![Change::EnsureMeshCa(ca("default", "first"))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::MeshNotFound { .. }), "{err}");

    let report = store
        .apply(vec![
            Change::Upsert(mesh("default")),
            Change::EnsureMeshCa(ca("default", "first")),
        ])
        .await
        .unwrap();
    assert_eq!(report.outcomes, [ChangeOutcome::Created; 2]);
    // A second CA for the same mesh (a concurrent apply) changes nothing.
    let report = store
        .apply(vec![
            Change::Upsert(mesh("default")),
            Change::EnsureMeshCa(ca("default", "second")),
        ])
        .await
        .unwrap();
    assert_eq!(report.outcomes, [ChangeOutcome::Unchanged; 2]);
    assert_eq!(report.revision, 1);
    assert_eq!(
        store.mesh_ca("default", "default").await.unwrap(),
        Some(ca("default", "first"))
    );
    // Another name is another CA of the same mesh.
    let report = store
        .apply(vec![Change::EnsureMeshCa(named_ca(
            "default", "ca-2", "new",
        ))])
        .await
        .unwrap();
    assert_eq!(report.outcomes, [ChangeOutcome::Created]);
    assert_eq!(
        store.mesh_ca("default", "ca-2").await.unwrap(),
        Some(named_ca("default", "ca-2", "new"))
    );
    assert_eq!(store.mesh_ca("default", "ca-3").await.unwrap(), None);
    assert!(
        !format!("{:?}", ca("m", "c")).contains("[1, 2, 3]"),
        "no key bytes in Debug"
    );

    store
        .apply(vec![Change::Delete(ResourceKey::mesh("default"))])
        .await
        .unwrap();
    assert_eq!(store.mesh_ca("default", "default").await.unwrap(), None);
    assert_eq!(store.mesh_ca("default", "ca-2").await.unwrap(), None);
}

#[tokio::test]
async fn one_signing_key_is_active_and_rotation_erases_the_old_private_key() {
    let store = memory().await;
    assert_eq!(
        store.put_signing_key(key("a", 1), false).await.unwrap().kid,
        "a"
    );
    // Without rotation the active key stays (two first starts agree).
    assert_eq!(
        store.put_signing_key(key("b", 2), false).await.unwrap().kid,
        "a"
    );
    assert_eq!(
        store.put_signing_key(key("c", 3), true).await.unwrap().kid,
        "c"
    );
    let keys = store.signing_keys().await.unwrap();
    let summary: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.retired, k.private_key.is_some()))
        .collect();
    assert_eq!(summary, [("a", Some(3), false), ("c", None, true)]);
}

#[tokio::test]
async fn tokens_are_recorded_and_revoked_once() {
    let store = memory().await;
    let token = StoredToken {
        jti: "00ff".into(),
        mesh: "default".into(),
        services: vec!["web".into()],
        kid: "k".into(),
        issued: 1,
        expires: 100,
        revoked: None,
    };
    store.record_token(&token).await.unwrap();
    assert!(store.revoked_tokens().await.unwrap().is_empty());
    assert_eq!(store.revoke_token("nope", 5).await.unwrap(), None);
    let revoked = store.revoke_token("00ff", 5).await.unwrap().unwrap();
    assert_eq!(revoked.revoked, Some(5));
    assert_eq!(
        store
            .revoke_token("00ff", 9)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        Some(5)
    );
    assert_eq!(store.revoked_tokens().await.unwrap(), [revoked]);
}
