//! Keeping a request so a retry can send it again: its head, and its body
//! when it is small enough to hold (declared by its length, within the
//! Retry policy's buffer limit). A larger or unsized body streams once.

use bytes::Bytes;
use http::{Request, request::Parts};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::{config::policies::RetryConfig, http::RequestBody};

/// A request body that can be sent again, or only once.
pub enum Body {
    Replayable(Bytes),
    Once(Incoming),
}

/// Reads the body into memory when a retry may need it again: no body at
/// all, or a declared length within the Retry policy's buffer limit.
pub async fn buffer(
    body: Incoming,
    retry: Option<&RetryConfig>,
) -> Result<Body, Box<dyn std::error::Error + Send + Sync>> {
    if body.is_end_stream() {
        return Ok(Body::Replayable(Bytes::new()));
    }
    let limit = match retry {
        Some(r) if r.attempts > 1 => u64::from(r.buffer_limit_bytes),
        _ => return Ok(Body::Once(body)),
    };
    match body.size_hint().upper() {
        Some(len) if len <= limit => {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let collected = Limited::new(body, limit).collect().await?;
            Ok(Body::Replayable(collected.to_bytes()))
        }
        _ => Ok(Body::Once(body)),
    }
}

/// A request with `head`'s method, URI, version and headers.
pub fn rebuild(head: &Parts, body: RequestBody) -> Request<RequestBody> {
    let mut req = Request::new(body);
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = head.uri.clone();
    *req.version_mut() = head.version;
    *req.headers_mut() = head.headers.clone();
    req
}
