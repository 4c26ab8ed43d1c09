//! A CA rotation over REST: each step's Mesh is accepted, the new builtin
//! CA is generated with the step that first names it, `GET /meshes/{m}/ca`
//! serves the issuing CA and the trusted ones, and an old CA stays stored.

use super::*;

fn mesh(ca: &str, trusted: Value) -> Value {
    json!({"mtls": {
        "mode": "strict",
        "ca": {"type": "builtin", "name": ca},
        "trustedCas": trusted,
    }})
}

async fn put(app: &Router, body: Value) -> Value {
    let (status, body) = call(app, Method::PUT, "/meshes/default", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn served(app: &Router) -> (String, Vec<String>) {
    let (status, ca) = call(app, Method::GET, "/meshes/default/ca", None).await;
    assert_eq!(status, StatusCode::OK, "{ca}");
    let trusted = ca["trusted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert!(t["notAfter"].as_str().unwrap().ends_with('Z'));
            t["certificatePem"].as_str().unwrap().to_owned()
        })
        .collect();
    (ca["certificatePem"].as_str().unwrap().to_owned(), trusted)
}

#[tokio::test]
async fn the_three_steps_of_a_rotation() {
    let (app, state) = app_with(Some(CaKey::generate().unwrap().0)).await;
    put(&app, mesh("ca-1", json!([]))).await;
    let pem = |name: &'static str| {
        let store = state.store.clone();
        async move {
            store
                .mesh_ca("default", name)
                .await
                .unwrap()
                .map(|ca| ca.cert_pem)
        }
    };
    let one = pem("ca-1").await.expect("ca-1 stored with the mesh");
    assert_eq!(pem("ca-2").await, None);
    assert_eq!(served(&app).await, (one.clone(), vec![]));

    // 1. Trust ca-2: generated in the same transaction as the Mesh.
    let body = put(
        &app,
        mesh("ca-1", json!([{"type": "builtin", "name": "ca-2"}])),
    )
    .await;
    assert_eq!(body["revision"], 2);
    let two = pem("ca-2").await.expect("ca-2 stored with the step");
    assert_eq!(served(&app).await, (one.clone(), vec![two.clone()]));

    // 2. Issue from ca-2, still trusting ca-1.
    put(
        &app,
        mesh("ca-2", json!([{"type": "builtin", "name": "ca-1"}])),
    )
    .await;
    assert_eq!(served(&app).await, (two.clone(), vec![one.clone()]));
    assert_eq!(pem("ca-2").await, Some(two.clone()), "not generated again");

    // 3. Drop ca-1: no longer trusted, but kept to rotate back.
    put(&app, mesh("ca-2", json!([]))).await;
    assert_eq!(served(&app).await, (two, vec![]));
    assert_eq!(pem("ca-1").await, Some(one));
}

#[tokio::test]
async fn trusted_cas_are_checked_when_the_mesh_is_applied() {
    let (app, _state) = app_with(Some(CaKey::generate().unwrap().0)).await;
    let (status, body) = call(
        &app,
        Method::PUT,
        "/meshes/default",
        Some(mesh(
            "ca-1",
            json!([
                {"type": "builtin", "name": "ca-1"},
                {"type": "provided", "certFile": "/nonexistent/old.pem"},
            ]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["details"][0],
        "mtls.trustedCas[0]: builtin CA \"ca-1\" is already the issuing CA (mtls.ca)"
    );

    let (status, body) = call(
        &app,
        Method::PUT,
        "/meshes/default",
        Some(mesh(
            "ca-1",
            json!([{"type": "provided", "certFile": "/nonexistent/old.pem"}]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let detail = body["details"][0].as_str().unwrap();
    assert!(
        detail.starts_with("mtls.trustedCas[0].certFile: cannot read /nonexistent/old.pem: "),
        "{detail}"
    );

    // A file that holds no CA certificate is refused too.
    let dir = crate::store::tests::TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("not-a-ca.pem");
    std::fs::write(&file, "hello").unwrap();
    let file = file.to_str().unwrap().to_owned();
    let (status, body) = call(
        &app,
        Method::PUT,
        "/meshes/default",
        Some(mesh(
            "ca-1",
            json!([{"type": "provided", "certFile": file}]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["details"][0],
        format!("mtls.trustedCas[0].certFile: {file} holds no PEM certificate")
    );
}
