//! Responses the proxy makes itself when it cannot forward a request. They
//! carry `x-weft-error`, so a caller can tell the mesh's errors from the
//! service's own.

use std::{error::Error as StdError, fmt::Write as _, net::SocketAddr};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::{Either, Full};

use super::ResponseBody;

/// Header on every response the proxy generates; its value says why.
pub const ERROR_HEADER: &str = "x-weft-error";

/// The service has no endpoints at all: nothing was tried.
pub fn no_endpoints(service: &str) -> Response<ResponseBody> {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        "no-endpoints",
        format!("no healthy endpoints for service {service:?}\n"),
    )
}

/// No connection could be made to the endpoint(s) tried.
pub fn connect_failed(
    service: &str,
    endpoint: SocketAddr,
    error: &(dyn StdError + 'static),
) -> Response<ResponseBody> {
    respond(
        StatusCode::BAD_GATEWAY,
        "connect-failed",
        format!(
            "cannot connect to service {service:?} at endpoint {endpoint}: {}\n",
            chain(error)
        ),
    )
}

/// The request was sent (or could not be) and the exchange failed.
pub fn upstream_failed(
    service: &str,
    endpoint: SocketAddr,
    error: &(dyn StdError + 'static),
) -> Response<ResponseBody> {
    respond(
        StatusCode::BAD_GATEWAY,
        "upstream-failed",
        format!(
            "request to service {service:?} at endpoint {endpoint} failed: {}\n",
            chain(error)
        ),
    )
}

/// A TrafficPermission denied the request; `reason` says which and why.
pub fn denied(reason: String) -> Response<ResponseBody> {
    respond(StatusCode::FORBIDDEN, "denied", format!("{reason}\n"))
}

pub(crate) fn respond(
    status: StatusCode,
    reason: &'static str,
    body: String,
) -> Response<ResponseBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(ERROR_HEADER, HeaderValue::from_static(reason));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An error and its causes on one line: hyper's top-level messages
/// ("client error (Connect)") say little without them.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        // Wrappers often repeat their source's message; say it once.
        if !text.ends_with(&next) {
            let _ = write!(text, ": {next}");
        }
        source = e.source();
    }
    text
}
