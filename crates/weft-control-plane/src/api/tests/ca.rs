//! Meshes with mTLS: the builtin CA generated with its Mesh (or refused
//! without a CA key), provided CA files checked, and `GET /meshes/{m}/ca`.

use super::*;

fn strict(ca: Value) -> Value {
    json!({"mtls": {"mode": "strict", "ca": ca}})
}

#[tokio::test]
async fn a_builtin_ca_is_created_with_its_mesh_and_served_without_its_key() {
    let (app, state) = app_with(Some(CaKey::generate().unwrap().0)).await;
    let (status, body) = call(
        &app,
        Method::PUT,
        "/meshes/default",
        Some(strict(json!({"type": "builtin"}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(outcome(&body), "created");
    let stored = state
        .store
        .mesh_ca("default", "default")
        .await
        .unwrap()
        .expect("stored with the mesh");
    assert_eq!(
        body["revision"], 1,
        "one transaction for the mesh and its CA"
    );

    let (status, ca) = call(&app, Method::GET, "/meshes/default/ca", None).await;
    assert_eq!(status, StatusCode::OK, "{ca}");
    assert_eq!(ca["certificatePem"], stored.cert_pem);
    assert!(ca["notAfter"].as_str().unwrap().ends_with('Z'));
    assert!(!ca.to_string().contains("PRIVATE KEY"));
    assert_eq!(ca["trusted"], json!([]));
    assert_eq!(ca.as_object().unwrap().len(), 3);

    // Applying again keeps the CA and changes nothing.
    let (status, body) = call(
        &app,
        Method::PUT,
        "/meshes/default",
        Some(strict(json!({"type": "builtin"}))),
    )
    .await;
    assert_eq!((status, outcome(&body)), (StatusCode::OK, "unchanged"));
    assert_eq!(
        state
            .store
            .mesh_ca("default", "default")
            .await
            .unwrap()
            .unwrap(),
        stored
    );
    let (status, body) = call(
        &app,
        Method::POST,
        "/apply",
        Some(json!({"resources": [
            {"type": "Mesh", "name": "second", "mtls": {"mode": "permissive"}},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        state
            .store
            .mesh_ca("second", "default")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_builtin_ca_without_a_ca_key_is_refused_naming_the_setting() {
    let (app, state) = app_with(None).await;
    for (method, path, body) in [
        (
            Method::PUT,
            "/meshes/default",
            strict(json!({"type": "builtin"})),
        ),
        (
            Method::POST,
            "/meshes",
            json!({"name": "default", "mtls": {"mode": "permissive"}}),
        ),
    ] {
        let (status, body) = call(&app, method, path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "Mesh \"default\" is invalid");
        let detail = body["details"][0].as_str().unwrap();
        assert!(
            detail.starts_with("mtls.ca: a builtin CA needs the control plane's CA key; "),
            "{detail}"
        );
        assert!(
            detail.contains("--ca-key-file") && detail.contains("WEFT_CA_KEY"),
            "{detail}"
        );
    }
    let (status, body) = call(
        &app,
        Method::POST,
        "/apply",
        Some(json!({"resources": [
            {"type": "Mesh", "name": "default", "mtls": {"mode": "strict"}},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "resources[0] (Mesh \"default\") is invalid");
    assert!(
        state
            .store
            .get(&weft_api::ResourceKey::mesh("default"))
            .await
            .unwrap()
            .is_none()
    );
    // mTLS off needs no CA, and so no key.
    let (status, _) = call(
        &app,
        Method::PUT,
        "/meshes/default",
        Some(json!({"mtls": {"mode": "off"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&app, Method::GET, "/meshes/default/ca", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn provided_ca_files_are_checked_when_the_mesh_is_applied() {
    let app = app().await;
    let missing = json!({"type": "provided", "certFile": "/nonexistent/ca.pem", "keyFile": "/nonexistent/ca.key"});
    let (status, body) = call(&app, Method::PUT, "/meshes/default", Some(strict(missing))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let detail = body["details"][0].as_str().unwrap();
    assert!(
        detail.starts_with("mtls.ca.certFile: cannot read /nonexistent/ca.pem: "),
        "{detail}"
    );
}

#[tokio::test]
async fn invalid_mtls_settings_name_their_field() {
    let app = app().await;
    let (status, body) = call(
        &app,
        Method::PUT,
        "/meshes/default",
        Some(json!({"mtls": {"mode": "strictly"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["details"][0],
        "mtls.mode: \"strictly\" is not a mode (off, permissive, strict)"
    );
}
