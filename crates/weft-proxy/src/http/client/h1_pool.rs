//! The HTTP/1.1 connection pool of one upstream address.
//!
//! Every open connection stays in the pool, busy or not; a request takes
//! the most recently used one that is ready for a new request (its last
//! response is over), or opens a new one. A request is handed to its
//! connection synchronously and the connection goes straight back, so no
//! task, timer or channel per request is needed to return it: hyper marks
//! it ready again when its response ends.
//!
//! Closed connections (the upstream hung up, or a response said `close`)
//! are dropped on the next pass over the list. A connection idle for
//! [`IDLE_TIMEOUT`] is closed before the upstream closes it, and at most
//! [`MAX_IDLE`] idle ones are kept after a burst.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use http::{Request, Response};
use hyper::{body::Incoming, client::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tracing::debug;

use super::super::RequestBody;
use crate::tls::client::{PeerStream, PeerTls};

/// How long an idle connection is kept: less than the 30 s after which the
/// proxy's own inbounds close idle keep-alive connections, so the pool
/// rarely sends on a connection the upstream is closing.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// How many idle connections are kept: a burst opens as many as it needs,
/// and all but these are closed once idle rather than holding their
/// buffers (about 20 KB each) until the idle timeout.
pub const MAX_IDLE: usize = 64;

/// Why a request could not be handed to a connection.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made: nothing reached the upstream.
    #[error("cannot connect to the upstream: {0}")]
    Connect(#[source] io::Error),
    /// hyper refused or failed the exchange.
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// The pool: plaintext and mTLS connections are kept apart, so a change of
/// the mesh's mode never reuses a connection of the other kind.
#[derive(Debug)]
pub struct H1Pool {
    addr: SocketAddr,
    tls: Option<PeerTls>,
    connect_timeout: Option<Duration>,
    conns: Mutex<Lists>,
}

#[derive(Debug, Default)]
struct Lists {
    plain: Vec<Conn>,
    tls: Vec<Conn>,
}

impl Lists {
    fn of(&mut self, secure: bool) -> &mut Vec<Conn> {
        if secure {
            &mut self.tls
        } else {
            &mut self.plain
        }
    }
}

#[derive(Debug)]
struct Conn {
    sender: http1::SendRequest<RequestBody>,
    /// When a request was last handed to it.
    used: Instant,
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
            conns: Mutex::new(Lists::default()),
        })
    }

    /// Sends `req` (origin-form URI, Host set) and waits for the response
    /// head; over mTLS when `secure`. A request a pooled connection gives
    /// back unsent (it closed before writing it) goes on the next one, or
    /// a new one; a new connection's failure is final.
    pub async fn send(
        &self,
        mut req: Request<RequestBody>,
        secure: bool,
    ) -> Result<Response<Incoming>, SendError> {
        loop {
            let (mut sender, pooled) = match self.checkout(secure) {
                Some(sender) => (sender, true),
                // Boxed: the connect and TLS handshake state is large, and
                // would otherwise be part of (and moved with) every
                // request's future, though most requests never connect.
                None => (Box::pin(self.connect(secure)).await?, false),
            };
            let response = sender.try_send_request(req);
            self.give_back(sender, secure);
            match response.await {
                Ok(response) => return Ok(response),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if pooled => req = unsent,
                    _ => return Err(SendError::Http(e.into_error())),
                },
            }
        }
    }

    /// The most recently used ready connection, unless even that one has
    /// been idle past [`IDLE_TIMEOUT`]. Prunes closed connections, stale
    /// idle ones, and the oldest idle ones beyond [`MAX_IDLE`].
    fn checkout(&self, secure: bool) -> Option<http1::SendRequest<RequestBody>> {
        let mut lists = self.lock();
        let list = lists.of(secure);
        list.retain(|conn| !conn.sender.is_closed());
        // The list is in order of last use, newest last: if the newest
        // ready connection is stale, so is every older ready one.
        let chosen = match list.iter().rposition(|conn| conn.sender.is_ready()) {
            Some(i) if list[i].used.elapsed() <= IDLE_TIMEOUT => Some(list.remove(i).sender),
            Some(_) => {
                list.retain(|conn| !conn.sender.is_ready());
                None
            }
            None => None,
        };
        if list.len() > MAX_IDLE {
            let idle = list.iter().filter(|conn| conn.sender.is_ready()).count();
            let mut excess = idle.saturating_sub(MAX_IDLE);
            list.retain(|conn| {
                let drop = excess > 0 && conn.sender.is_ready();
                excess -= usize::from(drop);
                !drop
            });
        }
        chosen
    }

    fn give_back(&self, sender: http1::SendRequest<RequestBody>, secure: bool) {
        self.lock().of(secure).push(Conn {
            sender,
            used: Instant::now(),
        });
    }

    /// Dials the upstream (TCP, and the mTLS handshake when `secure`) and
    /// starts the connection's task.
    async fn connect(&self, secure: bool) -> Result<http1::SendRequest<RequestBody>, SendError> {
        let tls = super::tls_for(secure, self.tls.as_ref()).map_err(SendError::Connect)?;
        let stream = PeerStream::connect(self.addr, tls, self.connect_timeout)
            .await
            .map_err(SendError::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                debug!(upstream = %addr, error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Connections open now (busy or idle), plaintext and mTLS.
    #[cfg(test)]
    pub fn open_connections(&self) -> usize {
        let lists = self.lock();
        lists.plain.len() + lists.tls.len()
    }

    fn lock(&self) -> MutexGuard<'_, Lists> {
        // The lists stay consistent whatever a panicking holder did.
        self.conns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests;
