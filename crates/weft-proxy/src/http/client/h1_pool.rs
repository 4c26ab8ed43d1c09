//! The HTTP/1.1 connection pool of one upstream address.
//!
//! The pool holds idle connections only. A request takes the most recently
//! used one the upstream has not closed (or dials a new one) and owns it
//! while the exchange lasts; the response body hands it back when the
//! response ends, if the upstream keeps it open. No task, timer or channel
//! per request or per connection: the request's own task does the I/O
//! ([`super::h1`]).
//!
//! An idle connection the upstream closed is found out when it is next
//! taken (that check costs no system call while the connection stays
//! quiet), or by the sweep that runs while connections are idle. One idle
//! for [`IDLE_TIMEOUT`] is closed before the upstream closes it, and at
//! most [`MAX_IDLE`] idle ones are kept after a burst.
//!
//! Requests that upgrade the connection (WebSocket, CONNECT) go over a
//! connection of their own through hyper's client, which hands over the
//! upgraded stream.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use http::{Method, Request, Response, header::UPGRADE};
use http_body::Body as _;
use hyper::{body::Incoming, client::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tracing::debug;

use super::h1::{self, Conn, ExchangeError, Home};
use crate::http::{RequestBody, UpstreamBody};
use crate::tls::client::{PeerStream, PeerTls};

/// How long an idle connection is kept: less than the 30 s after which the
/// proxy's own inbounds close idle keep-alive connections, so the pool
/// rarely sends on a connection the upstream is closing.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// How many idle connections are kept: a burst opens as many as it needs,
/// and all but these are closed once idle rather than holding their
/// buffers until the idle timeout.
pub const MAX_IDLE: usize = 64;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made: nothing reached the upstream.
    #[error("cannot connect to the upstream: {0}")]
    Connect(#[source] io::Error),
    /// The exchange on a connection failed.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// hyper refused or failed an upgrade request.
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// A request that got no response: why, and the request itself when it
/// can be sent again as it is (it had no body, and no answer came).
#[derive(Debug)]
pub struct Unserved {
    pub error: SendError,
    pub request: Option<Request<RequestBody>>,
}

/// The pool: plaintext and mTLS connections are kept apart, so a change of
/// the mesh's mode never reuses a connection of the other kind.
#[derive(Debug)]
pub struct H1Pool {
    addr: SocketAddr,
    tls: Option<PeerTls>,
    connect_timeout: Option<Duration>,
    idle: Mutex<Idle>,
}

// Boxed connections: a request takes and gives back the box, never the
// connection's buffers and state.
#[allow(clippy::vec_box)]
#[derive(Debug, Default)]
struct Idle {
    /// In the order they went idle, newest last.
    plain: Vec<Box<Conn>>,
    tls: Vec<Box<Conn>>,
    /// A sweep is scheduled.
    sweeping: bool,
}

impl Idle {
    #[allow(clippy::vec_box)]
    fn of(&mut self, secure: bool) -> &mut Vec<Box<Conn>> {
        if secure {
            &mut self.tls
        } else {
            &mut self.plain
        }
    }
}

impl H1Pool {
    pub fn new(
        addr: SocketAddr,
        tls: Option<PeerTls>,
        connect_timeout: Option<Duration>,
    ) -> Arc<Self> {
        Arc::new(Self {
            addr,
            tls,
            connect_timeout,
            idle: Mutex::new(Idle::default()),
        })
    }

    /// Sends `req` (origin-form URI, Host set) and waits for the response
    /// head; over mTLS when `secure`. A request without a body that a
    /// pooled connection could not take (it failed before any of the
    /// request was written) goes on the next one, or a new one; a new
    /// connection's failure is final, and hands such a request back.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<RequestBody>,
        secure: bool,
    ) -> Result<Response<UpstreamBody>, Unserved> {
        if is_upgrade(&req) {
            // Boxed: hyper's handshake state would otherwise make every
            // request's future (most never upgrade) 1 KB larger.
            return match Box::pin(self.send_upgrade(req, secure)).await {
                Ok(response) => Ok(response.map(UpstreamBody::Hyper)),
                Err(error) => Err(Unserved {
                    error,
                    request: None,
                }),
            };
        }
        let home = Home {
            pool: self.clone(),
            secure,
        };
        loop {
            let (conn, pooled) = match self.checkout(secure) {
                Some(conn) => (conn, true),
                // Boxed: the connect and TLS handshake state is large, and
                // would otherwise be part of (and moved with) every
                // request's future, though most requests never connect.
                None => match Box::pin(self.connect(secure)).await {
                    Ok(conn) => (conn, false),
                    Err(error) => {
                        let request = req.body().is_end_stream().then_some(req);
                        return Err(Unserved { error, request });
                    }
                },
            };
            match h1::send(conn, req, home.clone()).await {
                Ok(response) => return Ok(response.map(UpstreamBody::H1)),
                Err(failed) => match failed.request {
                    Some(again) if pooled && failed.error.nothing_sent() => req = again,
                    request => {
                        return Err(Unserved {
                            error: failed.error.into(),
                            request,
                        });
                    }
                },
            }
        }
    }

    /// The most recently used idle connection the upstream has not closed,
    /// unless even that one has been idle past [`IDLE_TIMEOUT`].
    fn checkout(&self, secure: bool) -> Option<Box<Conn>> {
        let mut idle = self.lock();
        let list = idle.of(secure);
        while let Some(mut conn) = list.pop() {
            // Older ones have been idle longer still.
            if conn.idle_since.elapsed() > IDLE_TIMEOUT {
                list.clear();
                return None;
            }
            if conn.is_usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Takes back a connection whose response is over.
    pub fn recycle(self: &Arc<Self>, mut conn: Box<Conn>, secure: bool) {
        conn.idle_since = Instant::now();
        let mut idle = self.lock();
        let list = idle.of(secure);
        list.push(conn);
        if list.len() > MAX_IDLE {
            list.remove(0);
        }
        if !idle.sweeping {
            idle.sweeping = true;
            tokio::spawn(sweep(Arc::downgrade(self)));
        }
    }

    /// Closes idle connections the upstream closed or that have been idle
    /// too long; `true` while some are left.
    fn sweep_once(&self) -> bool {
        let mut idle = self.lock();
        for secure in [false, true] {
            idle.of(secure)
                .retain_mut(|conn| conn.idle_since.elapsed() <= IDLE_TIMEOUT && conn.is_usable());
        }
        let left = !idle.plain.is_empty() || !idle.tls.is_empty();
        idle.sweeping = left;
        left
    }

    /// Dials the upstream (TCP, and the mTLS handshake when `secure`).
    async fn connect(&self, secure: bool) -> Result<Box<Conn>, SendError> {
        Ok(Conn::new(self.dial(secure).await?))
    }

    async fn dial(&self, secure: bool) -> Result<PeerStream, SendError> {
        let tls = super::tls_for(secure, self.tls.as_ref()).map_err(SendError::Connect)?;
        PeerStream::connect(self.addr, tls, self.connect_timeout)
            .await
            .map_err(SendError::Connect)
    }

    /// Sends an upgrade request through hyper, on a connection of its own:
    /// hyper hands the upgraded stream over when the upstream agrees.
    async fn send_upgrade(
        &self,
        req: Request<RequestBody>,
        secure: bool,
    ) -> Result<Response<Incoming>, SendError> {
        let stream = Box::pin(self.dial(secure)).await?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                debug!(upstream = %addr, error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender.send_request(req).await?)
    }

    /// Idle connections now, plaintext and mTLS.
    #[cfg(test)]
    pub fn idle_connections(&self) -> usize {
        let idle = self.lock();
        idle.plain.len() + idle.tls.len()
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        // The lists stay consistent whatever a panicking holder did.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Asks for a switch of protocols (WebSocket) or a tunnel (CONNECT).
pub fn is_upgrade(req: &Request<RequestBody>) -> bool {
    req.method() == Method::CONNECT || req.headers().contains_key(UPGRADE)
}

/// Sweeps the pool's idle connections every [`SWEEP_INTERVAL`] while it
/// has any; ends with the pool.
async fn sweep(pool: Weak<H1Pool>) {
    loop {
        tokio::time::sleep(SWEEP_INTERVAL).await;
        match pool.upgrade() {
            Some(pool) if pool.sweep_once() => {}
            _ => return,
        }
    }
}

/// How often idle connections are checked: a closed one is let go within
/// this, and a stale one at most this long after [`IDLE_TIMEOUT`].
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

#[cfg(test)]
mod exchanges;
#[cfg(test)]
mod tests;
