//! One timer for a deadline that moves later on almost every request.
//!
//! A keep-alive connection has two limits that restart with each request:
//! how long it may wait for the next request head, and (plaintext) how
//! long it stays idle before it is taken apart. Resetting a tokio timer
//! takes it out of the timer wheel and puts it back, and hyper's own
//! header-read timeout even allocates a new one for every request. Here
//! the timer keeps the deadline it was armed with when the limit moves
//! later; when it fires, it compares with the limit of that moment and,
//! if that is still ahead, is armed once more for it. On a busy connection
//! that is one reset per limit's length instead of one per request.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

pin_project! {
    /// A timer that is only re-armed when it would otherwise be late.
    pub struct Deadline {
        #[pin]
        sleep: Sleep,
    }
}

impl Deadline {
    pub fn new(due: Instant) -> Self {
        Self {
            sleep: tokio::time::sleep_until(due),
        }
    }

    /// Ready once `due` has passed; `due` may differ on every call.
    pub fn poll_due(self: Pin<&mut Self>, cx: &mut Context<'_>, due: Instant) -> Poll<()> {
        let mut sleep = self.project().sleep;
        if due < sleep.deadline() {
            sleep.as_mut().reset(due);
        }
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // It fired at its deadline: if that was `due` or later, `due`
            // has passed; else `due` moved since it was armed.
            if sleep.deadline() >= due {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(due);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{future::poll_fn, time::Duration};

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn fires_at_a_deadline_that_moved_later_and_earlier() {
        let start = Instant::now();
        let deadline = Deadline::new(start + 100 * MS);
        tokio::pin!(deadline);
        // Moved later before the first deadline: still waits for the new one.
        poll_fn(|cx| deadline.as_mut().poll_due(cx, start + 250 * MS)).await;
        assert_eq!(Instant::now() - start, 250 * MS);
        // Moved earlier than it is armed for: fires then, not later.
        let now = Instant::now();
        let mut calls = 0;
        poll_fn(|cx| {
            calls += 1;
            let due = if calls == 1 {
                now + 500 * MS
            } else {
                now + 20 * MS
            };
            if calls == 1 {
                cx.waker().wake_by_ref();
            }
            deadline.as_mut().poll_due(cx, due)
        })
        .await;
        assert_eq!(Instant::now() - now, 20 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_in_the_past_is_ready_at_once() {
        let start = Instant::now();
        let deadline = Deadline::new(start + 100 * MS);
        tokio::pin!(deadline);
        tokio::time::sleep(200 * MS).await;
        let ready =
            poll_fn(|cx| Poll::Ready(deadline.as_mut().poll_due(cx, start + 150 * MS))).await;
        assert!(ready.is_ready());
    }
}
