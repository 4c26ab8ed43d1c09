//! Graceful stop of a listener and of the connections it accepted.
//!
//! A [`Signal`] tells every [`Watch`] to stop taking new work, then waits
//! until all of them are dropped. Every accepted connection holds a `Watch`
//! for as long as it runs, so "all dropped" means "all connections done".

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use atomic_waker::AtomicWaker;
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

/// A future polled from a loop that wakes for many other reasons (a
/// connection's I/O), polled again only once it woke the task itself.
/// Polling [`Watch::signaled`] locks the watch's waiter list each time, and
/// a busy connection polls its drain on every request.
pub struct OnWake<'a, F> {
    future: Pin<&'a mut F>,
    waker: Waker,
    wake: Arc<WakeFlag>,
    polled: bool,
    done: bool,
}

/// Wakes the task and notes that it was this future that did.
#[derive(Default)]
struct WakeFlag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<'a, F: Future<Output = ()>> OnWake<'a, F> {
    pub fn new(future: Pin<&'a mut F>) -> Self {
        let wake = Arc::new(WakeFlag::default());
        Self {
            future,
            waker: Waker::from(wake.clone()),
            wake,
            polled: false,
            done: false,
        }
    }

    /// Ready once the future is (and from then on).
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Ready(());
        }
        self.wake.task.register(cx.waker());
        if self.polled && !self.wake.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        self.polled = true;
        let ready = self
            .future
            .as_mut()
            .poll(&mut Context::from_waker(&self.waker));
        self.done = ready.is_ready();
        ready
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    /// Polls `future` once from inside a task.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
    }

    #[tokio::test]
    async fn on_wake_polls_the_watch_only_after_it_woke_the_task() {
        use std::sync::atomic::AtomicUsize;
        let (signal, mut watch) = channel();
        let watch_polls = Arc::new(AtomicUsize::new(0));
        let signaled = {
            let watch_polls = watch_polls.clone();
            let mut inner = Box::pin(async move { watch.signaled().await });
            poll_fn(move |cx| {
                watch_polls.fetch_add(1, Ordering::Relaxed);
                inner.as_mut().poll(cx)
            })
        };
        tokio::pin!(signaled);
        let mut on_wake = OnWake::new(signaled.as_mut());
        let mut waiting = poll_fn(|cx| on_wake.poll(cx));
        assert!(poll_once(&mut waiting).await.is_pending());
        assert!(poll_once(&mut waiting).await.is_pending());
        assert_eq!(watch_polls.load(Ordering::Relaxed), 1);
        let drained = tokio::spawn(signal.drain());
        tokio::time::timeout(std::time::Duration::from_secs(5), &mut waiting)
            .await
            .unwrap();
        assert_eq!(watch_polls.load(Ordering::Relaxed), 2);
        // Ready from then on, without asking the watch again.
        assert!(poll_once(&mut waiting).await.is_ready());
        assert_eq!(watch_polls.load(Ordering::Relaxed), 2);
        drop(waiting);
        drained.await.unwrap();
    }

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
