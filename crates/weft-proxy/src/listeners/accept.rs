//! The accept loop of one listener: every connection goes to the route's
//! stack in its own task; on drain the loop stops and hands the socket
//! back, so a listener whose stack changes keeps its port without a rebind.

use std::{future::Future, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};
use tracing::{debug, warn};

use super::route::{Route, Spec};
use crate::{
    drain::{self, Signal, Watch},
    tcp,
};

/// After an accept error such as "too many open files", wait a moment
/// rather than spin on a socket that keeps failing.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A listener and the stack it runs.
#[derive(Debug)]
pub struct Running {
    pub spec: Spec,
    pub route: Route,
    signal: Signal,
    accept: JoinHandle<TcpListener>,
}

/// Starts accepting on `listener` with `route`'s stack.
pub fn spawn(listener: TcpListener, spec: Spec, route: Route) -> Running {
    let (signal, watch) = drain::channel();
    let accept = tokio::spawn(accept_loop(listener, route.clone(), watch));
    Running {
        spec,
        route,
        signal,
        accept,
    }
}

impl Running {
    /// Stops accepting. Returns the socket, still bound (`None` only if
    /// the accept task died), and a future that resolves once the
    /// connections accepted so far have finished.
    pub async fn stop(
        self,
    ) -> (
        Option<TcpListener>,
        impl Future<Output = ()> + Send + 'static,
    ) {
        let drained = self.signal.drain();
        let listener = self.accept.await.ok();
        (listener, drained)
    }
}

async fn accept_loop(listener: TcpListener, route: Route, mut watch: Watch) -> TcpListener {
    loop {
        let accepted = tokio::select! {
            biased;
            () = watch.signaled() => return listener,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                debug!(%peer, "accepted connection");
                tcp::set_nodelay(&stream);
                tokio::spawn(route.clone().serve(stream, watch.clone()));
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}
