//! A request body held in memory, whole or in part: empty for a bodiless
//! request sent again, the whole body of a request a Retry policy may send
//! again, or the frames read while trying to hold a body that turned out
//! too large, followed by the rest of it as it streams in.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::observe::CallerBody;

#[derive(Debug, Default)]
pub struct Buffered {
    frames: VecDeque<Frame<Bytes>>,
    rest: Option<CallerBody>,
}

impl Buffered {
    pub fn empty() -> Self {
        Self::default()
    }

    /// `bytes` as the whole body.
    pub fn full(bytes: Bytes) -> Self {
        let mut frames = VecDeque::new();
        if !bytes.is_empty() {
            frames.push_back(Frame::data(bytes));
        }
        Self { frames, rest: None }
    }

    /// `frames` already read, then whatever `rest` still brings.
    pub fn resume(frames: VecDeque<Frame<Bytes>>, rest: Option<CallerBody>) -> Self {
        Self { frames, rest }
    }
}

impl Body for Buffered {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match &mut self.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let held: usize = self
            .frames
            .iter()
            .filter_map(|f| f.data_ref().map(Bytes::len))
            .sum();
        let held = u64::try_from(held).unwrap_or(u64::MAX);
        match &self.rest {
            None => SizeHint::with_exact(held),
            Some(rest) => {
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(held.saturating_add(rest.lower()));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(held.saturating_add(upper));
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn held_bodies_replay_whole() {
        assert!(Buffered::empty().is_end_stream());
        let body = Buffered::full(Bytes::from_static(b"hello"));
        assert_eq!(body.size_hint().exact(), Some(5));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        let frames = VecDeque::from([
            Frame::data(Bytes::from_static(b"a")),
            Frame::data(Bytes::from_static(b"b")),
        ]);
        let resumed = Buffered::resume(frames, None);
        assert_eq!(resumed.collect().await.unwrap().to_bytes(), "ab");
    }
}
