//! Dataplane tokens over REST: issue, revoke, list revocations, rotate the
//! signing key. Revoking or rotating also ends the streams of the proxies
//! that registered with the tokens taken back.

use axum::{Json, body::Bytes, extract::State, http::StatusCode};
use weft_api::{
    name::name_problem,
    rest::{
        DataplaneTokenRequest, DataplaneTokenResponse, RevokeTokenRequest, SigningKeyInfo,
        TokenInfo, TokenList, now_unix, rfc3339,
    },
};

use super::{ApiError, ApiState, resources::require_mesh};
use crate::{
    identity::tokens::{DEFAULT_VALIDITY, KeyError, MAX_VALIDITY},
    store::StoredToken,
};

type ApiResult<T> = Result<T, ApiError>;

/// `POST /tokens/dataplane`.
pub async fn issue(
    State(state): State<ApiState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<DataplaneTokenResponse>)> {
    let request: DataplaneTokenRequest = parse(&body)?;
    let mut details = Vec::new();
    if let Some(p) = name_problem(&request.mesh) {
        details.push(format!("mesh: {p}"));
    }
    if request.services.is_empty() {
        details.push("services: at least one service is required".to_owned());
    }
    for (i, service) in request.services.iter().enumerate() {
        if let Some(p) = name_problem(service) {
            details.push(format!("services[{i}]: {p}"));
        }
    }
    let valid_for = match request.valid_for.as_deref() {
        None => DEFAULT_VALIDITY,
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() && d <= MAX_VALIDITY => d,
            Ok(_) => {
                details.push(format!("validFor: {text} is outside 1s-365d"));
                DEFAULT_VALIDITY
            }
            Err(_) => {
                details.push(format!(
                    "validFor: {text:?} is not a duration (e.g. 24h, 30d)"
                ));
                DEFAULT_VALIDITY
            }
        },
    };
    if !details.is_empty() {
        return Err(ApiError::bad_request("invalid token request").with_details(details));
    }
    require_mesh(&state, &request.mesh).await.map_err(|e| {
        // The mesh is a field of the body here, not a path: a 400.
        ApiError::bad_request(e.body.error)
    })?;
    let mut services = request.services;
    services.sort();
    services.dedup();
    let (token, record) = state
        .identity
        .tokens
        .issue(&request.mesh, services, valid_for, now_unix())
        .await
        .map_err(key_error)?;
    tracing::info!(
        mesh = %record.mesh,
        services = ?record.services,
        id = %record.jti,
        expires = %rfc3339(record.expires),
        "dataplane token issued"
    );
    Ok((
        StatusCode::CREATED,
        Json(DataplaneTokenResponse {
            token,
            id: record.jti,
            expires_at: rfc3339(record.expires),
        }),
    ))
}

/// `POST /tokens/revoke`.
pub async fn revoke(State(state): State<ApiState>, body: Bytes) -> ApiResult<Json<TokenInfo>> {
    let RevokeTokenRequest { id } = parse(&body)?;
    let Some(token) = state.identity.tokens.revoke(&id, now_unix()).await? else {
        return Err(ApiError::not_found(format!(
            "no dataplane token with id {id:?} was issued by this control plane"
        )));
    };
    let ended = state
        .sessions
        .end_streams(|auth| auth.jti == id, "dataplane token: revoked");
    tracing::info!(%id, mesh = %token.mesh, streams_ended = ended, "dataplane token revoked");
    Ok(Json(info(token)))
}

/// `GET /tokens/revoked`.
pub async fn revoked(State(state): State<ApiState>) -> ApiResult<Json<TokenList>> {
    let tokens = state.identity.tokens.revoked().await?;
    Ok(Json(TokenList {
        items: tokens.into_iter().map(info).collect(),
    }))
}

/// `POST /tokens/signing-key/rotate` (any body, or none, is ignored).
pub async fn rotate(State(state): State<ApiState>) -> ApiResult<Json<SigningKeyInfo>> {
    let (kid, created) = state
        .identity
        .tokens
        .rotate(now_unix())
        .await
        .map_err(key_error)?;
    let ended = state.sessions.end_streams(
        |auth| auth.kid != kid,
        "dataplane token: signed by a rotated key",
    );
    tracing::info!(%kid, streams_ended = ended, "token signing key rotated");
    Ok(Json(SigningKeyInfo {
        kid,
        created_at: rfc3339(created),
    }))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid_json(&e))
}

fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::Store(e) => e.into(),
        other => {
            tracing::error!(error = %other, "token signing key failure");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
        }
    }
}

fn info(t: StoredToken) -> TokenInfo {
    TokenInfo {
        id: t.jti,
        mesh: t.mesh,
        services: t.services,
        kid: t.kid,
        issued_at: rfc3339(t.issued),
        expires_at: rfc3339(t.expires),
        revoked_at: t.revoked.map(rfc3339),
    }
}
