//! The proxy's own HTTP/1.1 client: one request at a time on a connection
//! the request's task owns while the exchange lasts.
//!
//! hyper's client runs every connection as a task of its own and hands it
//! requests, responses and body chunks through channels: four task wakes
//! and as many channel operations per request, a third of the proxy's work
//! on a small request. Here the task that forwards a request writes it and
//! reads the answer itself, and the response body reads straight from the
//! connection; the connection goes back to the pool when the body ends.
//! Upgrades (WebSocket, CONNECT) still go through hyper.

pub mod chunked;
pub mod codec;
mod conn;
mod exchange;

pub use self::conn::Conn;
pub use self::exchange::{BodyError, ExchangeError};

use std::{
    future::poll_fn,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use http_body_util::Either;

use super::h1_pool::H1Pool;
use crate::http::{RequestBody, buffered::Buffered};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a connection goes once its response is over: the pool it came
/// from, on the side (plaintext or mTLS) it belongs to.
#[derive(Debug, Clone)]
pub struct Home {
    pub pool: Arc<H1Pool>,
    pub secure: bool,
}

/// An exchange that produced no response.
#[derive(Debug)]
pub struct Failed {
    pub error: ExchangeError,
    /// The request, when it had no body and no answer came (none of it
    /// was written, or the connection closed before the upstream
    /// answered): it can be sent again as it is, without a copy kept
    /// beforehand.
    pub request: Option<Request<RequestBody>>,
}

/// Sends `req` (origin-form URI, Host set) on `conn` and reads the
/// response head. The response body reads the rest from the connection,
/// and hands it back to `home` at its end if the upstream keeps it open.
pub async fn send(
    mut conn: Box<Conn>,
    req: Request<RequestBody>,
    home: Home,
) -> Result<Response<Body>, Failed> {
    let (mut parts, body) = req.into_parts();
    let bodyless = http_body::Body::is_end_stream(&body);
    if let Err(error) = conn.begin(&mut parts, body) {
        return Err(Failed {
            error,
            request: None,
        });
    }
    match poll_fn(|cx| conn.poll_head(cx, &parts.method)).await {
        Ok(head) => {
            let complete = conn.expect_body(&head);
            let body = Body::new(conn, home, complete);
            Ok(Response::from_parts(head.parts, body))
        }
        Err(error) => {
            let request = (bodyless && (error.nothing_sent() || error.unanswered()))
                .then(|| Request::from_parts(parts, Either::Right(Buffered::empty())));
            Err(Failed { error, request })
        }
    }
}

/// A response body read straight from its connection.
#[derive(Debug)]
pub struct Body {
    /// `None` once the body is over (the connection went home or closed).
    conn: Option<Box<Conn>>,
    home: Home,
}

impl Body {
    fn new(conn: Box<Conn>, home: Home, complete: bool) -> Self {
        let mut body = Self {
            conn: Some(conn),
            home,
        };
        if complete {
            body.end();
        }
        body
    }

    /// The body is over: the connection goes home if it can take another
    /// request, and is closed otherwise.
    fn end(&mut self) {
        if let Some(conn) = self.conn.take()
            && conn.reusable()
        {
            self.home.pool.recycle(conn, self.home.secure);
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else {
            return Poll::Ready(None);
        };
        conn.poll_upload_alongside(cx);
        let frame = ready!(conn.poll_body(cx));
        match &frame {
            Some(Ok(_)) if conn.body_done() => this.end(),
            Some(Ok(_)) => {}
            None => this.end(),
            // The connection is in an unknown state: closed.
            Some(Err(_)) => this.conn = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.conn.as_ref().map_or(Some(0), |conn| conn.body_left()) {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
