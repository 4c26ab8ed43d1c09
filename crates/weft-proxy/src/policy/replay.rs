//! Keeping a request so a retry can send it again: its head, and its body
//! when it fits in the Retry policy's buffer limit. A body is read until it
//! ends or passes the limit (at once when its declared length is too large);
//! one that passes it, or carries trailers, is sent once: the frames read so
//! far, then the rest as it streams in.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use http::{Request, request::Parts};
use http_body::{Body as _, Frame};
use http_body_util::{BodyExt, Either};

use crate::{
    config::policies::RetryConfig,
    http::{RequestBody, buffered::Buffered},
    observe::CallerBody,
};

/// A request body that can be sent again, or only once.
pub enum Body {
    Replayable(Bytes),
    Once(RequestBody),
}

/// Reads the body into memory when a retry may need it again.
pub async fn buffer(body: CallerBody, retry: Option<&RetryConfig>) -> Result<Body, hyper::Error> {
    if body.is_end_stream() {
        return Ok(Body::Replayable(Bytes::new()));
    }
    let limit = match retry {
        Some(r) if r.attempts > 1 => u64::from(r.buffer_limit_bytes),
        _ => return Ok(Body::Once(Either::Left(body))),
    };
    if body.size_hint().lower() > limit {
        return Ok(Body::Once(Either::Left(body)));
    }
    let mut body = body;
    let mut frames: VecDeque<Frame<Bytes>> = VecDeque::new();
    let mut held: u64 = 0;
    let mut trailers = false;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            held += u64::try_from(data.len()).unwrap_or(u64::MAX);
        } else {
            trailers = true;
        }
        frames.push_back(frame);
        if held > limit || trailers {
            let rest = (!body.is_end_stream()).then_some(body);
            return Ok(Body::Once(Either::Right(Buffered::resume(frames, rest))));
        }
    }
    let mut whole = BytesMut::with_capacity(usize::try_from(held).unwrap_or(0));
    for frame in frames {
        if let Ok(data) = frame.into_data() {
            whole.extend_from_slice(&data);
        }
    }
    Ok(Body::Replayable(whole.freeze()))
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
