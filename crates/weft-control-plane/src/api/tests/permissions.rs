//! The default `allow-all` TrafficPermission, and permissions through the
//! generic CRUD paths.

use super::*;

async fn permission_names(app: &Router, mesh: &str) -> Vec<String> {
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/meshes/{mesh}/traffic-permissions"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn creating_a_mesh_creates_allow_all_once() {
    let app = with_default_mesh().await;
    assert_eq!(permission_names(&app, "default").await, ["allow-all"]);
    let (_, body) = call(
        &app,
        Method::GET,
        "/meshes/default/traffic-permissions/allow-all",
        None,
    )
    .await;
    assert_eq!(body["spec"], json!({"action": "allow"}));
    assert_eq!(body.get("selector"), Some(&json!({})));

    // Deleting it is zero trust; updating the mesh does not bring it back.
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/meshes/default/traffic-permissions/allow-all",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &app,
        Method::PUT,
        "/meshes/default",
        Some(json!({"mtls": {"mode": "strict"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let apply = json!({"resources": [{"type": "Mesh", "name": "default"}]});
    let (status, _) = call(&app, Method::POST, "/apply", Some(apply)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(permission_names(&app, "default").await.is_empty());
}

#[tokio::test]
async fn post_and_apply_create_it_too_unless_skipped() {
    let app = app().await;
    let (status, _) = call(
        &app,
        Method::POST,
        "/meshes",
        Some(json!({"name": "posted"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(permission_names(&app, "posted").await, ["allow-all"]);

    let apply = json!({"resources": [
        {"type": "TrafficPermission", "mesh": "applied", "name": "web",
         "selector": {"from": {"service": "web"}}, "spec": {"action": "allow"}},
        {"type": "Mesh", "name": "applied"},
        {"type": "Mesh", "name": "zero", "skipDefaultPermission": true},
    ]});
    let (status, body) = call(&app, Method::POST, "/apply", Some(apply)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(
        permission_names(&app, "applied").await,
        ["allow-all", "web"]
    );
    assert!(permission_names(&app, "zero").await.is_empty());

    let (status, _) = call(
        &app,
        Method::PUT,
        "/meshes/skipped",
        Some(json!({"skipDefaultPermission": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(permission_names(&app, "skipped").await.is_empty());
}

#[tokio::test]
async fn a_file_may_declare_its_own_allow_all() {
    let app = app().await;
    let apply = json!({"resources": [
        {"type": "Mesh", "name": "m"},
        {"type": "TrafficPermission", "mesh": "m", "name": "allow-all", "spec": {"action": "deny"}},
    ]});
    let (status, _) = call(&app, Method::POST, "/apply", Some(apply)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = call(
        &app,
        Method::GET,
        "/meshes/m/traffic-permissions/allow-all",
        None,
    )
    .await;
    assert_eq!(body["spec"]["action"], "deny");
}

#[tokio::test]
async fn deleting_a_mesh_takes_its_permissions_along() {
    let app = with_default_mesh().await;
    let (status, body) = call(&app, Method::DELETE, "/meshes/default", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = call(&app, Method::GET, "/traffic-permissions", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn invalid_permissions_name_the_field() {
    let app = with_default_mesh().await;
    let bad = json!({"spec": {"action": "allow", "rules": [{"methods": ["get"]}]}});
    let (status, body) = call(
        &app,
        Method::PUT,
        "/meshes/default/traffic-permissions/p",
        Some(bad),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.to_string().contains("spec.rules[0].methods[0]"),
        "{body}"
    );
}
