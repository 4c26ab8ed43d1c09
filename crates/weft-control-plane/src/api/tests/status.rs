//! Proxy status and health.

use super::*;

#[tokio::test]
async fn dataplane_status() {
    let app = with_default_mesh().await;
    call(
        &app,
        Method::PUT,
        "/meshes/default/dataplanes/web",
        Some(dataplane("default", "web", 20001)),
    )
    .await;
    let (status, body) = call(&app, Method::GET, "/status/dataplanes", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([{"mesh": "default", "name": "web", "online": false, "outbounds": [], "inbounds": []}])
    );
    let (_, body) = call(&app, Method::GET, "/status/dataplanes?mesh=default", None).await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    let (status, _) = call(&app, Method::GET, "/status/dataplanes?mesh=nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = call(
        &app,
        Method::GET,
        "/meshes/default/dataplanes/web/status",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["online"], false);
    let (status, body) = call(
        &app,
        Method::GET,
        "/meshes/default/dataplanes/ghost/status",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"],
        "Dataplane \"ghost\" in mesh \"default\" not found"
    );
}

#[tokio::test]
async fn healthz_reports_the_revision() {
    let app = with_default_mesh().await;
    let (status, body) = call(&app, Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["status"], &body["revision"]),
        (&json!("ok"), &json!(1))
    );
    assert_eq!(body["version"], weft_api::VERSION);
    // The clock is ours: within a day of the test's is plenty to tell it
    // from a missing or zero field.
    let ms = body["timeUnixMs"].as_i64().unwrap();
    assert!(
        (ms - crate::sessions::now_unix_ms()).abs() < 86_400_000,
        "{body}"
    );
}
