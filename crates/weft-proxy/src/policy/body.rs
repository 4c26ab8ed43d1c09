//! The response body of a request that went through the policy stack: it
//! holds the circuit-breaker permit and the endpoint's in-flight count until
//! the response ends, and enforces the request deadline and the stream idle
//! timeout on a body that is still streaming (the caller sees the stream
//! reset, since its head was already sent).

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::http::ResponseBody;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a response body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum Cut {
    #[error("the request timeout expired while the response was streaming")]
    Deadline,
    #[error("no response data for {0:?} (stream idle timeout)")]
    Idle(Duration),
}

/// Anything that must live as long as the response: permits, counters.
pub type Guard = Box<dyn Send + Sync>;

pub struct Guarded {
    inner: ResponseBody,
    deadline: Option<Pin<Box<Sleep>>>,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    _guards: Vec<Guard>,
}

impl Guarded {
    pub fn new(
        inner: ResponseBody,
        deadline: Option<Instant>,
        idle: Option<Duration>,
        guards: Vec<Guard>,
    ) -> Self {
        Self {
            inner,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            idle: idle.map(|d| (d, Box::pin(tokio::time::sleep(d)))),
            _guards: guards,
        }
    }
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(Cut::Deadline.into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some((duration, sleep)) = &mut this.idle {
                    sleep.as_mut().reset(Instant::now() + *duration);
                }
                Poll::Ready(frame)
            }
            Poll::Pending => {
                if let Some((duration, sleep)) = &mut this.idle
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Some(Err(Cut::Idle(*duration).into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Either, Full};

    use super::*;

    fn body(deadline: Instant) -> Guarded {
        Guarded::new(
            Either::Right(Full::new(Bytes::from_static(b"ok"))),
            Some(deadline),
            Some(Duration::from_secs(1)),
            vec![],
        )
    }

    #[tokio::test(start_paused = true)]
    async fn passes_bodies_in_time_and_cuts_expired_ones() {
        let in_time = body(Instant::now() + Duration::from_secs(1));
        assert_eq!(in_time.collect().await.unwrap().to_bytes(), "ok");
        let expired = body(Instant::now());
        let err = expired.collect().await.unwrap_err();
        assert!(err.to_string().contains("request timeout"), "{err}");
    }
}
