//! Unknown kinds, paths and methods: JSON errors too.

use super::*;

#[tokio::test]
async fn unknown_kinds_paths_and_methods_get_json_errors() {
    let app = with_default_mesh().await;
    let (status, body) = call(&app, Method::GET, "/meshes/default/gateways", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"],
        "unknown resource kind \"gateways\" in a mesh (expected one of: dataplanes, traffic-permissions, timeouts, retries, circuit-breakers, health-checks, load-balancers, rate-limits, fault-injections, traffic-routes, tracings, access-logs)"
    );
    let (status, body) = call(&app, Method::GET, "/gateways", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"],
        "unknown resource kind \"gateways\" (expected one of: meshes, dataplanes, traffic-permissions, timeouts, retries, circuit-breakers, health-checks, load-balancers, rate-limits, fault-injections, traffic-routes, tracings, access-logs)"
    );
    let (status, _) = call(&app, Method::GET, "/meshes/default/meshes", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = call(&app, Method::GET, "/no/such/path/at/all", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no such API path");
    let (status, body) = call(&app, Method::PATCH, "/meshes/default", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = call(&app, Method::GET, "/status/dataplanes?mesh=a&mesh=b", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].is_string(), "{body}");
}
