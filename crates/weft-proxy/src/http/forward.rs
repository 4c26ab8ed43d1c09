//! Forwards one request: to the first upstream that accepts a connection
//! (the others only while the request can still be replayed), then relays
//! the response, handing an agreed upgrade over to a byte splice.
//!
//! A request without a body is sent again when nothing reached the
//! upstream (no connection, or a pooled one closed before the request was
//! written), to the next endpoint; and, if its method is idempotent, once
//! when a pooled connection closed after the request was written but before
//! any answer (a clean close, a TLS close without close_notify, or a
//! reset), most likely because the upstream had just timed it out as idle
//! or was draining: to the next endpoint, or over a new connection to the
//! same one.
//! Other requests are never replayed: the upstream may have acted on them
//! (a proxy must not retry non-idempotent requests, RFC 9110 9.2.2).

use std::{error::Error as StdError, iter::Peekable};

use http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
    header::HOST,
    uri::{Authority, InvalidUriParts, PathAndQuery, Scheme},
};
use http_body::Body as _;
use http_body_util::Either;
use tracing::{debug, warn};

use super::{
    RequestBody, ResponseBody, UpstreamBody,
    buffered::Buffered,
    client::{
        Transport, Upstream,
        h1_pool::{SendError, is_upgrade},
    },
    errors, headers, upgrade,
};
use crate::{
    drain::Watch,
    observe::{CallerBody, UpstreamAddr},
};

/// Why a request could not be exchanged with one upstream.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// HTTP/2 (hyper-util's client).
    #[error(transparent)]
    Client(#[from] hyper_util::client::legacy::Error),
    /// HTTP/1.1 (the proxy's pool).
    #[error(transparent)]
    Pool(#[from] SendError),
    #[error("cannot build the upstream URI: {0}")]
    Uri(#[from] InvalidUriParts),
}

/// How far a failed request got, which says whether it may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// Not the upstream: no connection, or the pooled one closed before
    /// the request was written.
    Nothing,
    /// The upstream, on a connection it closed before answering.
    Unanswered,
    /// The upstream, which may have acted on it.
    Upstream,
}

impl ForwardError {
    /// No connection could be made.
    pub fn is_connect(&self) -> bool {
        match self {
            ForwardError::Client(e) => e.is_connect(),
            ForwardError::Pool(e) => matches!(e, SendError::Connect(_)),
            ForwardError::Uri(_) => false,
        }
    }

    pub fn reached(&self) -> Reached {
        let cause = match self {
            // A refused URI or a failed connect: nothing was sent.
            ForwardError::Uri(_) | ForwardError::Pool(SendError::Connect(_)) => {
                return Reached::Nothing;
            }
            ForwardError::Client(e) if e.is_connect() => return Reached::Nothing,
            ForwardError::Client(e) => hyper_cause(e),
            ForwardError::Pool(SendError::Http(h)) => Some(h),
            ForwardError::Pool(SendError::Exchange(e)) if e.nothing_sent() => {
                return Reached::Nothing;
            }
            ForwardError::Pool(SendError::Exchange(e)) if e.unanswered() => {
                return Reached::Unanswered;
            }
            ForwardError::Pool(SendError::Exchange(_)) => return Reached::Upstream,
        };
        match cause {
            Some(h) if h.is_canceled() => Reached::Nothing,
            Some(h) if h.is_incomplete_message() || closed_unanswered(h) => Reached::Unanswered,
            _ => Reached::Upstream,
        }
    }
}

/// A connection the upstream closed with no answer, in the ways hyper does
/// not count as an incomplete message: TLS ended without close_notify (a
/// peer proxy that dropped the connection, or exited), or a reset (the
/// upstream closed it with our request unread).
fn closed_unanswered(error: &hyper::Error) -> bool {
    let io = error
        .source()
        .and_then(|e| e.downcast_ref::<std::io::Error>());
    io.is_some_and(|e| {
        matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        )
    })
}

/// The first hyper error among `error` and its causes: the client wraps
/// it in its own.
fn hyper_cause<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a hyper::Error> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            return Some(h);
        }
        next = e.source();
    }
    None
}

/// Proxies `req` for `service` to the first of `candidates` that can be
/// reached; with none at all, answers 503.
pub async fn proxy<'a>(
    service: &str,
    candidates: impl Iterator<Item = &'a Upstream>,
    mut req: Request<CallerBody>,
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
    let may_replay = may_replay(&req, &mut candidates);
    let mut req = req.map(Either::Left);
    let mut resent_unanswered = false;
    loop {
        // A client that consumes what it could not send leaves nothing to
        // replay: a copy is kept for those only (the HTTP/1.1 pool hands a
        // bodiless request back).
        let copy = (may_replay && !hands_back(upstream, &req)).then(|| Head::of(&req));
        let (error, handed_back) = match send_or_return(upstream, req).await {
            Ok(response) => return relay(response, downstream_upgrade, drain),
            Err(unsent) => unsent,
        };
        let replay = may_replay
            .then(|| handed_back.or_else(|| copy.map(|head| head.request())))
            .flatten();
        let again = match (replay, error.reached()) {
            (Some(replay), Reached::Nothing) => candidates.next().map(|next| (next, replay)),
            // The closed connection has left the pool: the same upstream
            // gets a new one if there is no other. Once, so that an
            // upstream that closes every connection is not hammered.
            (Some(replay), Reached::Unanswered)
                if replay.method().is_idempotent() && !resent_unanswered =>
            {
                resent_unanswered = true;
                Some((candidates.next().unwrap_or(upstream), replay))
            }
            _ => None,
        };
        match again {
            Some((next, replay)) => {
                debug!(service, endpoint = %upstream.addr(), next = %next.addr(), error = %errors::chain(&error), "request did not reach the upstream or was not answered; sending it again");
                upstream = next;
                req = replay;
            }
            None if error.is_connect() => {
                warn!(service, endpoint = %upstream.addr(), error = %errors::chain(&error), "cannot connect to upstream");
                return errors::connect_failed(service, upstream.addr(), &error);
            }
            None => {
                warn!(service, endpoint = %upstream.addr(), error = %errors::chain(&error), "upstream request failed");
                return errors::upstream_failed(service, upstream.addr(), &error);
            }
        }
    }
}

/// Sends `req` to `upstream` and waits for the response head.
pub async fn send(
    upstream: &Upstream,
    req: Request<RequestBody>,
) -> Result<Response<UpstreamBody>, ForwardError> {
    send_or_return(upstream, req)
        .await
        .map_err(|(error, _)| error)
}

/// [`send`], which on failure also hands back the request when the client
/// could (see [`hands_back`]).
async fn send_or_return(
    upstream: &Upstream,
    mut req: Request<RequestBody>,
) -> Result<Response<UpstreamBody>, (ForwardError, Option<Request<RequestBody>>)> {
    let mut response = match upstream.transport() {
        Transport::Http1(pool) => {
            if let Err(e) = origin_form(&mut req, upstream) {
                return Err((e.into(), Some(req)));
            }
            pool.send(req, upstream.scheme() == Scheme::HTTPS)
                .await
                .map_err(|unserved| (unserved.error.into(), unserved.request))?
        }
        Transport::Http2(client) => {
            if let Err(e) = target(&mut req, upstream) {
                return Err((e.into(), Some(req)));
            }
            client
                .request(req)
                .await
                .map_err(|e| (e.into(), None))?
                .map(UpstreamBody::Hyper)
        }
    };
    response
        .extensions_mut()
        .insert(UpstreamAddr(upstream.addr()));
    Ok(response)
}

/// Whether `upstream`'s client gives back a bodiless request it got no
/// answer to: the proxy's HTTP/1.1 pool does; hyper's clients (HTTP/2,
/// and HTTP/1.1 upgrades) consume it.
fn hands_back(upstream: &Upstream, req: &Request<RequestBody>) -> bool {
    matches!(upstream.transport(), Transport::Http1(_)) && !is_upgrade(req)
}

/// Readies `req` for an HTTP/1.1 upstream: a Host header (the URI's
/// authority, or the upstream's, when the caller sent none: it came over
/// HTTP/2), the URI in origin form (authority form for CONNECT), and
/// HTTP/1.1 for an HTTP/2 request.
fn origin_form(req: &mut Request<RequestBody>, upstream: &Upstream) -> Result<(), InvalidUriParts> {
    if !req.headers().contains_key(HOST) {
        let authority = req
            .uri()
            .authority()
            .unwrap_or_else(|| upstream.authority());
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            req.headers_mut().insert(HOST, host);
        }
    }
    let connect = req.method() == Method::CONNECT;
    let in_form = if connect {
        req.uri().path_and_query().is_none() && req.uri().scheme().is_none()
    } else {
        req.uri().authority().is_none()
    };
    if !in_form {
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = None;
        if connect {
            parts.path_and_query = None;
        } else {
            parts.authority = None;
            if parts.path_and_query.is_none() {
                parts.path_and_query = Some(PathAndQuery::from_static("/"));
            }
        }
        *req.uri_mut() = Uri::from_parts(parts)?;
    }
    if req.version() == Version::HTTP_2 {
        *req.version_mut() = Version::HTTP_11;
    }
    Ok(())
}

/// Points `req` at an HTTP/2 `upstream`: an absolute URI (hyper-util's
/// client needs one) that keeps the app's authority.
fn target(req: &mut Request<RequestBody>, upstream: &Upstream) -> Result<(), InvalidUriParts> {
    let authority = match req.uri().authority() {
        Some(authority) => authority.clone(),
        // HTTP/2 carries the authority in `:authority`, which comes from
        // the URI; an HTTP/1 caller put it in Host.
        None => match req
            .headers_mut()
            .remove(HOST)
            .map(|host| Authority::try_from(host.as_bytes()))
        {
            Some(Ok(authority)) => authority,
            _ => upstream.authority().clone(),
        },
    };
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.scheme = Some(upstream.scheme());
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = Uri::from_parts(parts)?;
    *req.version_mut() = Version::HTTP_2;
    Ok(())
}

/// Hands the response to the caller; on an agreed upgrade, also starts
/// splicing the two connections once hyper releases them.
fn relay(
    mut response: Response<UpstreamBody>,
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

/// Whether a request that got no answer may be sent again: it has no body
/// (nothing of it is lost), and there is another endpoint to try or its
/// method is idempotent (a second try on the same one).
fn may_replay<'a>(
    req: &Request<CallerBody>,
    candidates: &mut Peekable<impl Iterator<Item = &'a Upstream>>,
) -> bool {
    req.body().is_end_stream() && (candidates.peek().is_some() || req.method().is_idempotent())
}

/// The head of a request without a body, copied before it goes to a client
/// that consumes what it cannot send. Copying the headers allocates, so
/// this is only done where needed (see [`hands_back`]).
struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Head {
    fn of(req: &Request<RequestBody>) -> Self {
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        }
    }

    fn request(self) -> Request<RequestBody> {
        let mut req = Request::new(Either::Right(Buffered::empty()));
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers;
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str, host: Option<&str>) -> Request<RequestBody> {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        builder.body(Either::Right(Buffered::empty())).unwrap()
    }

    fn upstream() -> Upstream {
        Upstream::new("127.0.0.1:8080".parse().unwrap(), false)
    }

    #[test]
    fn origin_form_keeps_an_origin_form_request_as_it_is() {
        let mut req = request(Method::GET, "/a?b=c", Some("app.mesh"));
        origin_form(&mut req, &upstream()).unwrap();
        assert_eq!(req.uri(), "/a?b=c");
        assert_eq!(req.headers()[HOST], "app.mesh");
    }

    #[test]
    fn origin_form_turns_an_http2_request_into_http1_with_a_host_header() {
        let mut req = request(Method::GET, "http://app.mesh:80/x", None);
        *req.version_mut() = Version::HTTP_2;
        origin_form(&mut req, &upstream()).unwrap();
        assert_eq!(req.uri(), "/x");
        assert_eq!(req.headers()[HOST], "app.mesh:80");
        assert_eq!(req.version(), Version::HTTP_11);
    }

    #[test]
    fn origin_form_falls_back_to_the_upstream_for_host_and_to_slash_for_the_path() {
        let mut req = request(Method::GET, "http://app.mesh", Some("caller.host"));
        origin_form(&mut req, &upstream()).unwrap();
        assert_eq!(req.uri(), "/");
        assert_eq!(req.headers()[HOST], "caller.host");

        let mut req = request(Method::GET, "/", None);
        origin_form(&mut req, &upstream()).unwrap();
        assert_eq!(req.headers()[HOST], "127.0.0.1:8080");
    }

    #[test]
    fn origin_form_keeps_connect_in_authority_form() {
        let mut req = request(Method::CONNECT, "db.mesh:5432", None);
        origin_form(&mut req, &upstream()).unwrap();
        assert_eq!(req.uri(), "db.mesh:5432");
        assert_eq!(req.headers()[HOST], "db.mesh:5432");
    }
}
