//! `POST /apply`: all or nothing.

use super::*;

#[tokio::test]
async fn apply_writes_everything_in_order_of_meshes_first() {
    let app = app().await;
    let request = json!({"resources": [
        dataplane("m", "web", 20001),
        {"type": "Mesh", "name": "m"},
    ]});
    let (status, body) = call(&app, Method::POST, "/apply", Some(request.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revision"], 1);
    assert_eq!(
        body["results"],
        json!([
            {"kind": "Dataplane", "mesh": "m", "name": "web", "outcome": "created"},
            {"kind": "Mesh", "name": "m", "outcome": "created"},
        ]),
        "results in request order"
    );
    let (_, body) = call(&app, Method::POST, "/apply", Some(request)).await;
    assert_eq!(body["revision"], 1);
    assert_eq!(body["results"][0]["outcome"], "unchanged");
}

#[tokio::test]
async fn a_bad_apply_batch_stores_nothing() {
    let app = app().await;
    let mut bad = dataplane("m", "x", 20001);
    bad["networking"]["inbound"][0]["port"] = 70000.into();
    bad["networking"]["address"] = "nowhere".into();
    let request =
        json!({"resources": [{"type": "Mesh", "name": "m"}, bad, {"type": "Mesh", "name": "Bad"}]});
    let (status, body) = call(&app, Method::POST, "/apply", Some(request)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "resources[1] (Dataplane \"x\"), resources[2] (Mesh \"Bad\"): invalid"
    );
    let details: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert_eq!(
        details[0],
        "resources[1]: networking.inbound[0].port: 70000 is not a port (1-65535)"
    );
    assert!(
        details[1].starts_with("resources[2]: name: \"Bad\" is not a valid name"),
        "{details:?}"
    );

    // A valid batch that breaks a store rule: also nothing.
    let request =
        json!({"resources": [{"type": "Mesh", "name": "m"}, dataplane("nope", "x", 20001)]});
    let (status, body) = call(&app, Method::POST, "/apply", Some(request)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "resources[1] (Dataplane \"x\"): mesh \"nope\" does not exist"
    );

    let request =
        json!({"resources": [{"type": "Mesh", "name": "m"}, {"type": "Mesh", "name": "m"}]});
    let (status, body) = call(&app, Method::POST, "/apply", Some(request)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "resources[1] (Mesh \"m\"): the same resource as resources[0]"
    );

    for request in [json!({"resources": []}), json!({"items": []})] {
        let (status, _) = call(&app, Method::POST, "/apply", Some(request)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    let (_, meshes) = call(&app, Method::GET, "/meshes", None).await;
    assert_eq!(meshes["items"], json!([]));
    let (_, health) = call(&app, Method::GET, "/healthz", None).await;
    assert_eq!(health["revision"], 0);
}
