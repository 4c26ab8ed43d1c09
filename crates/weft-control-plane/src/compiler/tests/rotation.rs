//! The compiled `mtls` through the three steps of a CA rotation, with real
//! CAs resolved from a store: the bundle gains the new root, the issuer
//! changes only at step 2, the old root leaves at step 3.

use std::sync::Arc;

use weft_api::{Mesh, Resource, proto};

use crate::compiler::MeshPolicies;
use x509_parser::{pem::Pem, prelude::*};

use super::{MeshTls, caller, compile};
use crate::{
    identity::{CaKey, CaRegistry},
    store::{Change, Store, sqlite::SqliteStore},
};

fn mesh(ca: &str, trusted: &[&str]) -> Mesh {
    let trusted: Vec<_> = trusted
        .iter()
        .map(|name| serde_json::json!({"type": "builtin", "name": name}))
        .collect();
    match Resource::from_value(serde_json::json!({
        "type": "Mesh", "name": "default",
        "mtls": {"mode": "strict", "ca": {"type": "builtin", "name": ca}, "trustedCas": trusted},
    })) {
        Ok(Resource::Mesh(mesh)) => mesh,
        other => panic!("not a mesh: {other:?}"),
    }
}

/// Applies `mesh` as the REST API does and compiles a proxy's `mtls`.
async fn step(store: &Arc<SqliteStore>, cas: &CaRegistry, mesh: Mesh) -> proto::Mtls {
    let mut changes = vec![Change::Upsert(Resource::Mesh(mesh.clone()))];
    changes.extend(cas.prepare(&mesh).await.unwrap());
    store.apply(changes).await.unwrap();
    let ca = cas.ca_for(&mesh).await.unwrap();
    let tls = MeshTls::new(mesh.mtls_enabled().unwrap(), &ca);
    let web = caller(serde_json::json!([]));
    compile(
        &web,
        std::slice::from_ref(&web),
        Some(&tls),
        &MeshPolicies::default(),
        |_| true,
    )
    .mtls
    .unwrap()
}

/// The common names of the certificates of a bundle, in order.
fn names(bundle: &str) -> Vec<String> {
    Pem::iter_from_buffer(bundle.as_bytes())
        .map(|pem| {
            let pem = pem.unwrap();
            let (_, cert) = X509Certificate::from_der(&pem.contents).unwrap();
            let name = cert.subject().iter_common_name().next().unwrap();
            name.as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn each_step_compiles_its_bundle_and_issuer() {
    let store = Arc::new(SqliteStore::open_memory().await.unwrap());
    let cas = CaRegistry::new(store.clone(), Some(CaKey::generate().unwrap().0));

    let start = step(&store, &cas, mesh("ca-1", &[])).await;
    assert_eq!(names(&start.trust_bundle_pem), ["Weft default CA ca-1"]);

    // 1. Trust ca-2: the bundle grows, the issuer stays (no re-issue).
    let one = step(&store, &cas, mesh("ca-1", &["ca-2"])).await;
    assert_eq!(
        names(&one.trust_bundle_pem),
        ["Weft default CA ca-1", "Weft default CA ca-2"]
    );
    assert_eq!(one.issuer_id, start.issuer_id);

    // 2. Issue from ca-2: the same roots, a new issuer.
    let two = step(&store, &cas, mesh("ca-2", &["ca-1"])).await;
    assert_eq!(
        names(&two.trust_bundle_pem),
        ["Weft default CA ca-2", "Weft default CA ca-1"]
    );
    assert_ne!(two.issuer_id, one.issuer_id);

    // 3. Drop ca-1.
    let three = step(&store, &cas, mesh("ca-2", &[])).await;
    assert_eq!(names(&three.trust_bundle_pem), ["Weft default CA ca-2"]);
    assert_eq!(three.issuer_id, two.issuer_id);

    // Rotating back finds ca-1 still stored: its issuer id is the first one.
    let back = step(&store, &cas, mesh("ca-1", &["ca-2"])).await;
    assert_eq!(back.issuer_id, start.issuer_id);
}
