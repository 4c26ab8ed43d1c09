//! Graceful stop of a listener and of the connections it accepted.
//!
//! A [`Signal`] tells every [`Watch`] to stop taking new work, then waits
//! until all of them are dropped. Every accepted connection holds a `Watch`
//! for as long as it runs, so "all dropped" means "all connections done".

use std::future::Future;

use tokio::sync::watch;

/// A new signal and the first watch on it.
pub fn channel() -> (Signal, Watch) {
    let (tx, rx) = watch::channel(false);
    (Signal { tx }, Watch { rx })
}

/// The stopping side, held by whoever owns the listener.
#[derive(Debug)]
pub struct Signal {
    tx: watch::Sender<bool>,
}

/// Held by every task that must finish before the drain is complete.
#[derive(Debug, Clone)]
pub struct Watch {
    rx: watch::Receiver<bool>,
}

impl Signal {
    /// Starts draining at once and returns a future that resolves when every
    /// watch has been dropped.
    pub fn drain(self) -> impl Future<Output = ()> + Send + 'static {
        // `send_replace` stores the flag even with no watch left, and does so
        // now rather than on first poll: callers rely on the accept loop
        // seeing it before they await its end.
        self.tx.send_replace(true);
        async move { self.tx.closed().await }
    }
}

impl Watch {
    /// Resolves once draining has started.
    pub async fn signaled(&mut self) {
        // An error means the signal was dropped without draining: nobody can
        // ever wait for us, so stopping is as good as anything.
        let _ = self.rx.wait_for(|&draining| draining).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_every_watch() {
        let (signal, mut watch) = channel();
        let other = watch.clone();
        let drained = tokio::spawn(signal.drain());
        watch.signaled().await;
        drop(watch);
        assert!(!drained.is_finished());
        drop(other);
        drained.await.unwrap();
    }

    #[tokio::test]
    async fn dropped_signal_counts_as_signaled() {
        let (signal, mut watch) = channel();
        drop(signal);
        watch.signaled().await;
    }
}
