//! The Timeout policy's `idle`: a TCP connection through the outbound is
//! closed once no byte moved either way for that long, an HTTP connection
//! once no request was in flight for that long.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::debug;

use super::endpoints::Clock;

/// A stream that notes when bytes last moved through it.
struct Noted<S> {
    inner: S,
    last: Arc<AtomicU64>,
    clock: Clock,
}

impl<S: AsyncRead + Unpin> AsyncRead for Noted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.last.store(self.clock.now(), Ordering::Relaxed);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Noted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Copies both ways like [`crate::tcp::splice`], closing both ends once
/// nothing was read from either for `idle`.
pub async fn splice<A, B>(a: A, b: B, idle: Duration)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let clock = Clock::new();
    let last = Arc::new(AtomicU64::new(clock.now()));
    let a = Noted {
        inner: a,
        last: last.clone(),
        clock,
    };
    let b = Noted {
        inner: b,
        last: last.clone(),
        clock,
    };
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    let watch = async {
        loop {
            let quiet = clock.now().saturating_sub(last.load(Ordering::Relaxed));
            if quiet >= idle_ms {
                return;
            }
            tokio::time::sleep(Duration::from_millis(idle_ms - quiet)).await;
        }
    };
    tokio::select! {
        () = crate::tcp::splice(a, b) => {}
        () = watch => debug!(?idle, "connection idle for too long; closing it"),
    }
}

/// Requests in flight on one HTTP connection and when the last one ended:
/// the Timeout's `idle` closes an HTTP connection once no request was in
/// flight for that long.
#[derive(Debug)]
pub struct Activity {
    active: AtomicUsize,
    last: AtomicU64,
    clock: Clock,
}

/// One request in flight, until dropped (with its response body).
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Activity {
    pub fn new() -> Arc<Self> {
        let clock = Clock::new();
        Arc::new(Self {
            active: AtomicUsize::new(0),
            last: AtomicU64::new(clock.now()),
            clock,
        })
    }

    pub fn busy(self: &Arc<Self>) -> Busy {
        self.active.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Resolves once no request was in flight for `idle`.
    pub async fn idle(&self, idle: Duration) {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            let wait = if self.active.load(Ordering::Relaxed) == 0 {
                let quiet = self
                    .clock
                    .now()
                    .saturating_sub(self.last.load(Ordering::Relaxed));
                if quiet >= idle_ms {
                    return;
                }
                idle_ms - quiet
            } else {
                idle_ms
            };
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.last.store(self.0.clock.now(), Ordering::Relaxed);
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_requests_to_end() {
        let activity = Activity::new();
        let busy = activity.busy();
        let idle = Duration::from_secs(1);
        let waited = tokio::time::timeout(Duration::from_secs(3), activity.idle(idle)).await;
        assert!(waited.is_err(), "idle while a request is in flight");
        drop(busy);
        let start = tokio::time::Instant::now();
        activity.idle(idle).await;
        assert!(start.elapsed() >= idle);
    }
}
