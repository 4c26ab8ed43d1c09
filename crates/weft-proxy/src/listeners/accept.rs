//! The accept loop of one listener: every connection goes to the route's
//! stack in its own task; on drain the loop stops and the socket, still
//! bound, goes back to the owner, so a listener whose stack changes keeps
//! its port without a rebind.
//!
//! The socket is shared with the loop rather than moved into it: if the
//! loop's task died (a panic), the socket would otherwise go with it and the
//! port would have to be bound again, which can fail once the config is
//! half-applied.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};
use tracing::{debug, error, warn};

use super::route::{Route, Spec};
use crate::{
    drain::{self, Signal, Watch},
    tcp,
};

/// After an accept error such as "too many open files", wait a moment
/// rather than spin on a socket that keeps failing.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A listener and the stack it runs.
#[derive(Debug)]
pub struct Running {
    pub spec: Spec,
    pub route: Route,
    listener: Arc<TcpListener>,
    signal: Signal,
    accept: JoinHandle<()>,
}

/// Starts accepting on `listener` with `route`'s stack.
pub fn spawn(listener: impl Into<Arc<TcpListener>>, spec: Spec, route: Route) -> Running {
    let listener = listener.into();
    let (signal, watch) = drain::channel();
    let accept = tokio::spawn(accept_loop(listener.clone(), route.clone(), watch));
    Running {
        spec,
        route,
        listener,
        signal,
        accept,
    }
}

impl Running {
    /// Whether the accept loop is gone although nobody stopped it: its
    /// task panicked (or the runtime is shutting down).
    pub fn is_dead(&self) -> bool {
        self.accept.is_finished()
    }

    /// Stops accepting. Returns the socket, still bound even if the accept
    /// task died, and a future that resolves once the connections accepted
    /// so far have finished.
    pub async fn stop(self) -> (Arc<TcpListener>, impl Future<Output = ()> + Send + 'static) {
        let drained = self.signal.drain();
        if let Err(e) = self.accept.await
            && e.is_panic()
        {
            error!(error = %e, "a listener's accept task panicked");
        }
        (self.listener, drained)
    }

    /// Ends the accept task as a panic would, for tests.
    #[cfg(test)]
    pub async fn kill_accept_task(&mut self) {
        self.accept.abort();
        // Not awaited: `stop` awaits the handle, which may only be done once.
        while !self.accept.is_finished() {
            tokio::task::yield_now().await;
        }
    }
}

async fn accept_loop(listener: Arc<TcpListener>, route: Route, mut watch: Watch) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = watch.signaled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                debug!(%peer, "accepted connection");
                tcp::set_nodelay(&stream);
                route.spawn(stream, watch.clone());
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}
