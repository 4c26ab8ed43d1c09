//! `GET .../tap`: errors, and the NDJSON lines of a tap fed through the
//! registry as a proxy's stream would (the proxy side is tested with real
//! proxies in `weft-cli/tests/observability_views.rs`).

use futures_util::StreamExt;
use weft_api::proto::{TapStarted, tap_command, tap_event};

use super::*;

async fn with_web() -> (Router, ApiState) {
    let (app, state) = app_with(None).await;
    call(&app, Method::PUT, "/meshes/default", Some(json!({}))).await;
    let (status, _) = call(
        &app,
        Method::PUT,
        "/meshes/default/dataplanes/web",
        Some(dataplane("default", "web", 20001)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    (app, state)
}

#[tokio::test]
async fn tapping_needs_a_stored_connected_dataplane_and_a_sane_filter() {
    let (app, _state) = with_web().await;
    let (status, body) = call(
        &app,
        Method::GET,
        "/meshes/default/dataplanes/ghost/tap",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().unwrap().contains("\"ghost\""),
        "{body}"
    );

    let (status, body) = call(
        &app,
        Method::GET,
        "/meshes/default/dataplanes/web/tap",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"].as_str().unwrap().contains("offline"),
        "{body}"
    );

    let (status, body) = call(
        &app,
        Method::GET,
        "/meshes/default/dataplanes/web/tap?path=api",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("must start with '/'"),
        "{body}"
    );
    let (status, _) = call(
        &app,
        Method::GET,
        "/meshes/default/dataplanes/web/tap?method=G%20T",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&app, Method::GET, "/meshes/default/timeouts/web/tap", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_tap_streams_ndjson_lines_and_stops_when_the_client_goes_away() {
    let (app, state) = with_web().await;
    let mut link = state.taps.connect("default", "web", 1);
    let request = Request::get("/meshes/default/dataplanes/web/tap?path=/api&method=post")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-ndjson"
    );

    let Some(tap_command::Kind::Start(start)) = link.commands.recv().await.unwrap().kind else {
        panic!("expected a start");
    };
    assert_eq!(
        (start.path_prefix.as_str(), start.method.as_str()),
        ("/api", "POST")
    );
    let started = tap_event::Kind::Started(TapStarted {
        tap_id: start.tap_id,
    });
    state.taps.deliver("default", "web", link.stream, started);

    let mut body = response.into_body().into_data_stream();
    let frame = body.next().await.unwrap().unwrap();
    assert_eq!(
        &frame[..],
        b"{\"event\":\"started\",\"dataplane\":\"web\"}\n"
    );

    drop(body);
    let Some(tap_command::Kind::Stop(stop)) = link.commands.recv().await.unwrap().kind else {
        panic!("expected a stop once the client went away");
    };
    assert_eq!(stop.tap_id, start.tap_id);
}
