//! CRUD on meshes and dataplanes, and what makes a write a 400.

use super::*;

#[tokio::test]
async fn meshes_create_get_list_replace_delete() {
    let app = app().await;
    let (status, body) = call(
        &app,
        Method::POST,
        "/meshes",
        Some(json!({"type": "Mesh", "name": "a"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["results"][0],
        json!({"kind": "Mesh", "name": "a", "outcome": "created"})
    );
    assert_eq!(body["revision"], 1);

    let (status, body) = call(
        &app,
        Method::POST,
        "/meshes",
        Some(json!({"type": "Mesh", "name": "a"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "Mesh \"a\" already exists");

    let (status, body) = call(&app, Method::GET, "/meshes/a", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["type"].as_str(), body["name"].as_str()),
        (Some("Mesh"), Some("a"))
    );
    assert_eq!(body["revision"], 1);
    assert!(body["creationTime"].as_str().unwrap().ends_with('Z'));

    // PUT fills type and name from the path; the same content is unchanged.
    let (status, body) = call(&app, Method::PUT, "/meshes/a", Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(outcome(&body), "unchanged");
    assert_eq!(body["revision"], 1);
    let (_, body) = call(&app, Method::PUT, "/meshes/b", Some(json!({"name": "b"}))).await;
    assert_eq!(outcome(&body), "created");

    let (status, body) = call(&app, Method::GET, "/meshes", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, ["a", "b"]);

    let (status, body) = call(&app, Method::DELETE, "/meshes/a", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = call(&app, Method::GET, "/meshes/a", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "Mesh \"a\" not found");
    let (status, _) = call(&app, Method::DELETE, "/meshes/a", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dataplanes_in_a_mesh() {
    let app = with_default_mesh().await;
    let (status, body) = call(
        &app,
        Method::POST,
        "/meshes/default/dataplanes",
        Some(dataplane("default", "web", 20001)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["results"][0]["mesh"], "default");

    let path = "/meshes/default/dataplanes/api";
    let (_, body) = call(
        &app,
        Method::PUT,
        path,
        Some(dataplane("default", "api", 20002)),
    )
    .await;
    assert_eq!(outcome(&body), "created");
    let (_, body) = call(
        &app,
        Method::PUT,
        path,
        Some(dataplane("default", "api", 20003)),
    )
    .await;
    assert_eq!(outcome(&body), "updated");

    let (status, body) = call(&app, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["networking"]["inbound"][0]["port"], 20003);

    let (_, listed) = call(&app, Method::GET, "/meshes/default/dataplanes", None).await;
    let (_, everywhere) = call(&app, Method::GET, "/dataplanes", None).await;
    assert_eq!(listed, everywhere);
    let names: Vec<_> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].clone())
        .collect();
    assert_eq!(names, ["api", "web"]);

    let (status, body) = call(&app, Method::DELETE, "/meshes/default", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["error"],
        "mesh \"default\" still has 2 dataplanes; delete them first"
    );

    let (status, _) = call(&app, Method::DELETE, path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(&app, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"],
        "Dataplane \"api\" in mesh \"default\" not found"
    );
}

#[tokio::test]
async fn invalid_resources_are_400_with_field_paths() {
    let app = with_default_mesh().await;
    let mut bad = dataplane("default", "x", 20001);
    bad["networking"]["inbound"][0]["port"] = 70000.into();
    let (status, body) = call(&app, Method::PUT, "/meshes/default/dataplanes/x", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "Dataplane \"x\" is invalid");
    assert_eq!(
        body["details"],
        json!(["networking.inbound[0].port: 70000 is not a port (1-65535)"])
    );

    let (status, body) = call(
        &app,
        Method::PUT,
        "/meshes/default/dataplanes/y",
        Some(dataplane("default", "x", 20001)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "name \"x\" in the body does not match \"y\" in the path"
    );
    let (status, body) = call(
        &app,
        Method::PUT,
        "/meshes/other/dataplanes/x",
        Some(dataplane("default", "x", 20001)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "mesh \"default\" in the body does not match \"other\" in the path"
    );
    let (status, body) = call(
        &app,
        Method::PUT,
        "/meshes/x",
        Some(json!({"type": "Dataplane"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "type \"Dataplane\" in the body does not match \"Mesh\" in the path"
    );

    let (status, body) = call_raw(&app, Method::POST, "/meshes", Some("{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("the request body is not valid JSON"),
        "{body}"
    );
    let (status, _) = call(&app, Method::POST, "/meshes", Some(json!([1]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, listed) = call(&app, Method::GET, "/dataplanes", None).await;
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn a_dataplane_in_a_missing_mesh_is_rejected() {
    let app = app().await;
    let (status, body) = call(
        &app,
        Method::POST,
        "/meshes/nope/dataplanes",
        Some(dataplane("nope", "web", 20001)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "mesh \"nope\" does not exist");
    let (status, body) = call(&app, Method::GET, "/meshes/nope/dataplanes", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "mesh \"nope\" does not exist");
}
