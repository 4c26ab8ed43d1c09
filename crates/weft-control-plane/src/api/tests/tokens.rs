//! `/tokens/*`: issuing, revoking, listing revocations and rotating the key.

use super::*;

async fn issue(app: &Router, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, "/tokens/dataplane", Some(body)).await
}

#[tokio::test]
async fn a_token_is_issued_for_an_existing_mesh_and_valid_services() {
    let (app, state) = app_with(None).await;
    let (status, _) = call(&app, Method::PUT, "/meshes/default", Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = issue(
        &app,
        json!({"mesh": "default", "services": ["web", "api"], "validFor": "2h"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().unwrap();
    let claims = state
        .identity
        .tokens
        .verify(token, weft_api::rest::now_unix())
        .unwrap();
    assert_eq!(body["id"], claims.jti.as_str());
    assert_eq!(claims.services, ["api", "web"], "sorted");
    assert_eq!(claims.exp - claims.iat, 7200);
    assert_eq!(
        body["expiresAt"],
        weft_api::rest::rfc3339(claims.exp).as_str()
    );
    assert_eq!(body.as_object().unwrap().len(), 3);

    let (_, body) = issue(&app, json!({"mesh": "default", "services": ["web"]})).await;
    let claims = state
        .identity
        .tokens
        .verify(body["token"].as_str().unwrap(), 0)
        .unwrap();
    assert_eq!(claims.exp - claims.iat, 86400, "24h by default");
}

#[tokio::test]
async fn bad_token_requests_say_what_is_wrong() {
    let app = with_default_mesh().await;
    let (status, body) = issue(&app, json!({"mesh": "nope", "services": ["web"]})).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "mesh \"nope\" does not exist")
    );
    let (status, body) = issue(
        &app,
        json!({"mesh": "default", "services": ["Web", "ok"], "validFor": "2y"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["details"][0].as_str().unwrap().split(':').next(),
        Some("services[0]")
    );
    assert_eq!(body["details"][1], "validFor: 2y is outside 1s-365d");
    let (_, body) = issue(
        &app,
        json!({"mesh": "default", "services": [], "validFor": "soon"}),
    )
    .await;
    assert_eq!(
        body["details"],
        json!([
            "services: at least one service is required",
            "validFor: \"soon\" is not a duration (e.g. 24h, 30d)",
        ])
    );
    let (status, _) = issue(
        &app,
        json!({"mesh": "default", "services": ["web"], "extra": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn revoked_tokens_are_listed_and_refused() {
    let (app, state) = app_with(None).await;
    call(&app, Method::PUT, "/meshes/default", Some(json!({}))).await;
    let (_, body) = issue(&app, json!({"mesh": "default", "services": ["web"]})).await;
    let (token, id) = (
        body["token"].as_str().unwrap(),
        body["id"].as_str().unwrap(),
    );
    let (status, revoked) = call(
        &app,
        Method::POST,
        "/tokens/revoke",
        Some(json!({"id": id})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["id"], id);
    assert_eq!(revoked["mesh"], "default");
    assert_eq!(revoked["services"], json!(["web"]));
    assert!(revoked["revokedAt"].is_string());
    assert_eq!(
        state
            .identity
            .tokens
            .verify(token, weft_api::rest::now_unix()),
        Err(crate::identity::TokenError::Revoked)
    );
    let (status, list) = call(&app, Method::GET, "/tokens/revoked", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!({"items": [revoked]}));
    let (status, body) = call(
        &app,
        Method::POST,
        "/tokens/revoke",
        Some(json!({"id": "abc123"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"],
        "no dataplane token with id \"abc123\" was issued by this control plane"
    );
}

#[tokio::test]
async fn rotating_the_key_refuses_older_tokens() {
    let (app, state) = app_with(None).await;
    call(&app, Method::PUT, "/meshes/default", Some(json!({}))).await;
    let (_, body) = issue(&app, json!({"mesh": "default", "services": ["web"]})).await;
    let old = body["token"].as_str().unwrap().to_owned();
    let before = state.identity.tokens.active_kid().unwrap();
    // The CLI posts `{}`; an empty body works as well.
    let (status, key) = call(
        &app,
        Method::POST,
        "/tokens/signing-key/rotate",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert_ne!(key["kid"], before.as_str());
    assert!(key["createdAt"].is_string());
    let (status, _) = call_raw(&app, Method::POST, "/tokens/signing-key/rotate", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        state
            .identity
            .tokens
            .verify(&old, weft_api::rest::now_unix()),
        Err(crate::identity::TokenError::RotatedKey)
    );
}
