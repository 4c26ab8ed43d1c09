//! Forwards one request: to the first upstream that accepts a connection
//! (the others only while the request can still be replayed), then relays
//! the response, handing an agreed upgrade over to a byte splice.

use std::iter::Peekable;

use http::{
    HeaderMap, Method, Request, Response, StatusCode, Uri, Version,
    header::HOST,
    uri::{Authority, InvalidUriParts, PathAndQuery},
};
use http_body::Body as _;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use tracing::{debug, warn};

use super::{RequestBody, ResponseBody, client::Upstream, errors, headers, upgrade};
use crate::drain::Watch;

/// Why a request could not be exchanged with one upstream.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Client(#[from] hyper_util::client::legacy::Error),
    #[error("cannot build the upstream URI: {0}")]
    Uri(#[from] InvalidUriParts),
}

impl ForwardError {
    /// Nothing reached the upstream, so another one may be tried.
    pub fn is_connect(&self) -> bool {
        matches!(self, ForwardError::Client(e) if e.is_connect())
    }
}

/// Proxies `req` for `service` to the first of `candidates` that can be
/// reached; with none at all, answers 503.
pub async fn proxy<'a>(
    service: &str,
    candidates: impl Iterator<Item = &'a Upstream>,
    mut req: Request<Incoming>,
    drain: &Watch,
) -> Response<ResponseBody> {
    let mut candidates = candidates.peekable();
    let Some(mut upstream) = candidates.next() else {
        return errors::no_endpoints(service);
    };
    // An HTTP/2 upstream cannot switch protocols; the request then goes as
    // a plain one and the upgrade headers are dropped as hop-by-hop.
    let downstream_upgrade = (!upstream.is_http2() && upgrade::is_upgrade_request(&req))
        .then(|| hyper::upgrade::on(&mut req));
    headers::strip_hop_by_hop(req.headers_mut(), downstream_upgrade.is_some());
    let replay = replay_head(&req, &mut candidates);
    let mut req = req.map(Either::Left);
    loop {
        let error = match send(upstream, req).await {
            Ok(response) => return relay(response, downstream_upgrade, drain),
            Err(e) => e,
        };
        match (error.is_connect(), &replay, candidates.next()) {
            (true, Some(head), Some(next)) => {
                debug!(service, endpoint = %upstream.addr(), error = %errors::chain(&error), "connect failed, trying the next endpoint");
                upstream = next;
                req = head.request();
            }
            (true, ..) => {
                warn!(service, endpoint = %upstream.addr(), error = %errors::chain(&error), "cannot connect to upstream");
                return errors::connect_failed(service, upstream.addr(), &error);
            }
            (false, ..) => {
                warn!(service, endpoint = %upstream.addr(), error = %errors::chain(&error), "upstream request failed");
                return errors::upstream_failed(service, upstream.addr(), &error);
            }
        }
    }
}

/// Sends `req` to `upstream` and waits for the response head.
pub async fn send(
    upstream: &Upstream,
    mut req: Request<RequestBody>,
) -> Result<Response<Incoming>, ForwardError> {
    target(&mut req, upstream)?;
    Ok(upstream.client().request(req).await?)
}

/// Points `req` at `upstream`: an absolute URI (the pooled client needs
/// one) that keeps the app's authority, and the upstream's HTTP version.
fn target(req: &mut Request<RequestBody>, upstream: &Upstream) -> Result<(), InvalidUriParts> {
    let authority = match req.uri().authority() {
        Some(authority) => authority.clone(),
        // HTTP/2 carries the authority in `:authority`, which comes from
        // the URI; an HTTP/1 caller put it in Host.
        None if upstream.is_http2() => match req
            .headers_mut()
            .remove(HOST)
            .map(|host| Authority::try_from(host.as_bytes()))
        {
            Some(Ok(authority)) => authority,
            _ => upstream.authority().clone(),
        },
        // HTTP/1 sends the Host header as it is; the URI authority only
        // picks the connection pool, which is per upstream anyway.
        None => upstream.authority().clone(),
    };
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.scheme = Some(upstream.scheme());
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = Uri::from_parts(parts)?;
    let version = match (upstream.is_http2(), req.version()) {
        (true, _) => Version::HTTP_2,
        (false, Version::HTTP_2) => Version::HTTP_11,
        (false, other) => other,
    };
    *req.version_mut() = version;
    Ok(())
}

/// Hands the response to the caller; on an agreed upgrade, also starts
/// splicing the two connections once hyper releases them.
fn relay(
    mut response: Response<Incoming>,
    downstream_upgrade: Option<hyper::upgrade::OnUpgrade>,
    drain: &Watch,
) -> Response<ResponseBody> {
    let upgraded = match downstream_upgrade {
        Some(downstream) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let upstream = hyper::upgrade::on(&mut response);
            tokio::spawn(upgrade::splice(downstream, upstream, drain.clone()));
            true
        }
        _ => false,
    };
    headers::strip_hop_by_hop(response.headers_mut(), upgraded);
    response.map(Either::Left)
}

/// The head of a request without a body, kept so the request can be sent
/// again to another endpoint: the client consumes a request it could not
/// send. Only taken when there is another endpoint to try, since copying
/// the headers costs an allocation.
fn replay_head<'a>(
    req: &Request<Incoming>,
    candidates: &mut Peekable<impl Iterator<Item = &'a Upstream>>,
) -> Option<Head> {
    if !req.body().is_end_stream() || candidates.peek().is_none() {
        return None;
    }
    Some(Head {
        method: req.method().clone(),
        uri: req.uri().clone(),
        version: req.version(),
        headers: req.headers().clone(),
    })
}

struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Head {
    fn request(&self) -> Request<RequestBody> {
        let mut req = Request::new(Either::Right(Empty::new()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}
