//! API errors: one type that turns into an `ErrorBody` response, the
//! mapping from store errors, and a layer that gives axum's own plain-text
//! rejections (bad path, wrong method, body too large) the same JSON shape.

use axum::{
    Json,
    body::{Body, to_bytes},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use weft_api::rest::ErrorBody;

use crate::store::StoreError;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                details: Vec::new(),
            },
        }
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error)
    }

    /// One line per problem, e.g. one per invalid field.
    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.body.details = details;
        self
    }

    /// A body that is not JSON at all.
    pub fn invalid_json(e: &serde_json::Error) -> Self {
        Self::bad_request(format!("the request body is not valid JSON: {e}"))
    }
}

/// The status code a store error deserves.
pub fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        StoreError::Conflict(_) | StoreError::MeshNotEmpty { .. } => StatusCode::CONFLICT,
        // The request names a mesh that is not there: the client must fix it.
        StoreError::MeshNotFound { .. } => StatusCode::BAD_REQUEST,
        StoreError::Backend { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = store_status(&e);
        if status.is_server_error() {
            tracing::error!(error = %e, "API request failed in the store");
        }
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// Longest plain-text error body worth keeping.
const MAX_TEXT_ERROR: usize = 16 * 1024;

/// Rewrites error responses that are not JSON (axum's extractor rejections,
/// 405s) into an `ErrorBody`, keeping the status and headers like `Allow`.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_TEXT_ERROR)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let error = match (text.is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::METHOD_NOT_ALLOWED) => "method not allowed for this path".to_owned(),
        (true, _) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let json = serde_json::to_vec(&ErrorBody {
        error,
        details: Vec::new(),
    })
    .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json))
}
