//! Every API call but `/healthz` needs `Authorization: Bearer <admin token>`.

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::ApiError;
use crate::admin_token::AdminToken;

/// Paths a load balancer or a probe may call without credentials.
const OPEN_PATHS: [&str; 1] = ["/healthz"];

pub async fn require_admin(
    State(token): State<AdminToken>,
    request: Request,
    next: Next,
) -> Response {
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let message = match presented {
        Some(t) if token.verify(t) => return next.run(request).await,
        Some(_) => "invalid admin token",
        None => {
            "missing admin token: send `Authorization: Bearer <token>` (the CLI reads WEFT_TOKEN or the admin-token file)"
        }
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
