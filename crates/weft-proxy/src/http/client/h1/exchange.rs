//! One request and its response on a connection: writing the request
//! (head, then the body as it streams in), reading the response head, and
//! decoding the response body.
//!
//! The request body keeps streaming while the response is read: an
//! upstream may answer early (an error) or stream its answer as the request
//! comes in (an echo), and must not wait on a proxy that stopped sending.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, request};
use http_body::{Body as _, Frame};

use super::{
    BoxError,
    chunked::{ChunkedDecoder, Decoded},
    codec::{self, BodyKind, CodecError, RequestFraming, ResponseHead},
    conn::Conn,
};
use crate::http::RequestBody;

/// Request bytes queued beyond this wait until the connection takes some:
/// a fast caller cannot fill the proxy's memory with a slow upstream's
/// share.
const HIGH_WATER: usize = 64 * 1024;

/// Why an exchange produced no response.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("cannot frame the request: {0}")]
    Request(#[source] CodecError),
    #[error("the connection failed before the request was written: {0}")]
    Unsent(#[source] io::Error),
    #[error("the upstream closed the connection without answering")]
    Closed,
    #[error("the connection failed before the upstream answered: {0}")]
    Unanswered(#[source] io::Error),
    #[error("the upstream closed the connection in the middle of the response head")]
    Truncated,
    #[error("reading the response failed: {0}")]
    Read(#[source] io::Error),
    #[error("malformed response from the upstream: {0}")]
    Response(#[source] CodecError),
    #[error("the upstream switched protocols though the request asked for no upgrade")]
    UnaskedSwitch,
    #[error("the request body failed: {0}")]
    RequestBody(#[source] BoxError),
    #[error(transparent)]
    Length(#[from] LengthMismatch),
}

/// A request body that does not match its Content-Length.
#[derive(Debug, thiserror::Error)]
pub enum LengthMismatch {
    #[error("the request body is longer than its Content-Length")]
    Longer,
    #[error("the request body is shorter than its Content-Length")]
    Shorter,
}

impl ExchangeError {
    /// Nothing of the request reached the upstream.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, ExchangeError::Request(_) | ExchangeError::Unsent(_))
    }

    /// The request (or part of it) was written, and the connection closed
    /// with not a byte of an answer: most likely an idle connection the
    /// upstream was closing as the request went out.
    pub fn unanswered(&self) -> bool {
        matches!(self, ExchangeError::Closed | ExchangeError::Unanswered(_))
    }
}

/// Why a response body ended early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the upstream closed the connection before the end of the response body")]
    Truncated,
    #[error("reading the response body failed: {0}")]
    Read(#[source] io::Error),
    #[error("malformed response body: {0}")]
    Malformed(#[source] CodecError),
}

/// What failed while sending the request.
enum UploadError {
    /// The caller's body.
    Body(BoxError),
    /// Its length, against its Content-Length.
    Framing(LengthMismatch),
    /// The connection.
    Io(io::Error),
}

/// The state of the exchange in progress on a connection.
#[derive(Debug, Default)]
pub struct Exchange {
    /// The request body still streaming; `None` once it has all been
    /// queued (or the exchange has none).
    upload: Option<RequestBody>,
    uploading: bool,
    /// How the request body goes; a length counts down as it is queued.
    framing: RequestFraming,
    /// Trailers of a chunked request, written after its last chunk.
    trailers: Option<HeaderMap>,
    /// A byte of this request has been written.
    wrote: bool,
    /// A byte of the answer has been read.
    received: bool,
    /// Sending the request failed after the answer began.
    upload_failed: bool,
    /// The response head let the connection carry another request.
    keep_alive: bool,
    reading: Reading,
}

#[derive(Debug, Default)]
enum Reading {
    #[default]
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

impl Conn {
    /// Starts an exchange: frames the request and queues its head.
    pub(super) fn begin(
        &mut self,
        parts: &mut request::Parts,
        body: RequestBody,
    ) -> Result<(), ExchangeError> {
        let empty = body.is_end_stream();
        let framing = codec::request_framing(
            parts.version,
            &mut parts.headers,
            empty,
            body.size_hint().exact(),
        )
        .map_err(ExchangeError::Request)?;
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        codec::encode_request_head(
            &parts.method,
            target,
            parts.version,
            &parts.headers,
            &mut self.scratch,
        );
        self.exchange = Exchange {
            uploading: true,
            upload: (!empty).then_some(body),
            framing,
            ..Exchange::default()
        };
        if empty {
            self.finish_request()?;
        }
        Ok(())
    }

    /// Sends the request and reads up to the response head, skipping
    /// interim (1xx) responses.
    pub(super) fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        method: &Method,
    ) -> Poll<Result<ResponseHead, ExchangeError>> {
        let mut write_error = None;
        if self.exchange.uploading {
            match self.poll_upload(cx) {
                Poll::Ready(Ok(())) => self.exchange.uploading = false,
                Poll::Ready(Err(UploadError::Io(e))) if !self.exchange.wrote => {
                    return Poll::Ready(Err(ExchangeError::Unsent(e)));
                }
                // The upstream may have answered and closed (a 413, say):
                // its answer is still read.
                Poll::Ready(Err(UploadError::Io(e))) => {
                    self.abandon_upload();
                    write_error = Some(e);
                }
                Poll::Ready(Err(UploadError::Body(e))) => {
                    return Poll::Ready(Err(ExchangeError::RequestBody(e)));
                }
                Poll::Ready(Err(UploadError::Framing(e))) => {
                    return Poll::Ready(Err(ExchangeError::Length(e)));
                }
                Poll::Pending => {}
            }
        }
        let head = ready!(self.poll_read_head(cx, method));
        Poll::Ready(match (head, write_error) {
            (Err(e), Some(write)) if e.unanswered() => Err(ExchangeError::Unanswered(write)),
            (head, _) => head,
        })
    }

    fn poll_read_head(
        &mut self,
        cx: &mut Context<'_>,
        method: &Method,
    ) -> Poll<Result<ResponseHead, ExchangeError>> {
        loop {
            if !self.read.is_empty() {
                match codec::parse_response_head(&mut self.read, method) {
                    Ok(Some(head)) if head.parts.status == StatusCode::SWITCHING_PROTOCOLS => {
                        return Poll::Ready(Err(ExchangeError::UnaskedSwitch));
                    }
                    Ok(Some(head)) if head.parts.status.is_informational() => continue,
                    Ok(Some(head)) => return Poll::Ready(Ok(head)),
                    Ok(None) => {}
                    Err(e) => return Poll::Ready(Err(ExchangeError::Response(e))),
                }
            }
            let received = self.exchange.received;
            match ready!(self.poll_fill(cx)) {
                Ok(0) if received => return Poll::Ready(Err(ExchangeError::Truncated)),
                Ok(0) => return Poll::Ready(Err(ExchangeError::Closed)),
                Ok(_) => self.exchange.received = true,
                Err(e) if !received && is_close(&e) => {
                    return Poll::Ready(Err(ExchangeError::Unanswered(e)));
                }
                Err(e) => return Poll::Ready(Err(ExchangeError::Read(e))),
            }
        }
    }

    /// Readies the connection to deliver the body `head` announces.
    /// `true`: the body is already complete (none, or empty).
    pub(super) fn expect_body(&mut self, head: &ResponseHead) -> bool {
        self.exchange.keep_alive = head.keep_alive;
        self.exchange.reading = match head.body {
            BodyKind::Empty | BodyKind::Length(0) => Reading::Done,
            BodyKind::Length(n) => Reading::Length(n),
            BodyKind::Chunked => Reading::Chunked(ChunkedDecoder::new()),
            BodyKind::UntilClose => Reading::UntilClose,
        };
        matches!(self.exchange.reading, Reading::Done)
    }

    /// The response is over: whether the connection may take another
    /// request (all of this one written, nothing unasked read).
    pub(super) fn reusable(&self) -> bool {
        self.exchange.keep_alive
            && !self.exchange.upload_failed
            && !self.exchange.uploading
            && matches!(self.exchange.reading, Reading::Done)
            && self.read.is_empty()
    }

    pub(super) fn body_done(&self) -> bool {
        matches!(self.exchange.reading, Reading::Done)
    }

    pub(super) fn body_left(&self) -> Option<u64> {
        match self.exchange.reading {
            Reading::Length(n) => Some(n),
            Reading::Done => Some(0),
            _ => None,
        }
    }

    /// Keeps the request body streaming while the response is read; a
    /// failure there makes the connection unfit for another request, but
    /// leaves the answer to be read to its end.
    pub(super) fn poll_upload_alongside(&mut self, cx: &mut Context<'_>) {
        if !self.exchange.uploading {
            return;
        }
        match self.poll_upload(cx) {
            Poll::Ready(Ok(())) => self.exchange.uploading = false,
            Poll::Ready(Err(_)) => self.abandon_upload(),
            Poll::Pending => {}
        }
    }

    fn abandon_upload(&mut self) {
        self.exchange.uploading = false;
        self.exchange.upload = None;
        self.exchange.upload_failed = true;
    }

    /// Moves the request body onto the connection; `Ready(Ok)` once all of
    /// it is written and flushed.
    fn poll_upload(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), UploadError>> {
        loop {
            if self.pending() < HIGH_WATER
                && let Some(body) = self.exchange.upload.as_mut()
            {
                match Pin::new(body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        self.queue_frame(frame).map_err(UploadError::Framing)?;
                        continue;
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(UploadError::Body(e))),
                    Poll::Ready(None) => {
                        self.exchange.upload = None;
                        self.finish_request().map_err(UploadError::Framing)?;
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            match ready!(self.poll_write_some(cx)) {
                Ok(false) => self.exchange.wrote = true,
                Ok(true) if self.exchange.upload.is_none() => return Poll::Ready(Ok(())),
                // Everything queued is out; the body will wake the task.
                Ok(true) => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(UploadError::Io(e))),
            }
        }
    }

    fn queue_frame(&mut self, frame: Frame<Bytes>) -> Result<(), LengthMismatch> {
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    self.exchange.trailers = Some(trailers);
                }
                return Ok(());
            }
        };
        if data.is_empty() {
            return Ok(());
        }
        match &mut self.exchange.framing {
            RequestFraming::Length(left) => {
                *left = left
                    .checked_sub(data.len() as u64)
                    .ok_or(LengthMismatch::Longer)?;
                self.push(data);
            }
            RequestFraming::Chunked => {
                codec::encode_chunk_prefix(data.len(), &mut self.scratch);
                self.push(data);
                self.scratch.extend_from_slice(codec::CHUNK_SUFFIX);
            }
            RequestFraming::Empty => return Err(LengthMismatch::Longer),
        }
        Ok(())
    }

    /// The request body has ended: checks its length, or ends its chunks.
    fn finish_request(&mut self) -> Result<(), LengthMismatch> {
        match self.exchange.framing {
            RequestFraming::Length(0) | RequestFraming::Empty => Ok(()),
            RequestFraming::Length(_) => Err(LengthMismatch::Shorter),
            RequestFraming::Chunked => {
                let trailers = self.exchange.trailers.take();
                codec::encode_last_chunk(trailers.as_ref(), &mut self.scratch);
                Ok(())
            }
        }
    }

    /// The next frame of the response body; `None` at its end.
    pub(super) fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            let frame = match &mut self.exchange.reading {
                Reading::Head | Reading::Done => return Poll::Ready(None),
                Reading::Length(left) if !self.read.is_empty() => {
                    let n = self
                        .read
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= n as u64;
                    if *left == 0 {
                        self.exchange.reading = Reading::Done;
                    }
                    Some(Frame::data(self.read.split_to(n).freeze()))
                }
                Reading::Chunked(decoder) => match decoder.decode(&mut self.read) {
                    Ok(Decoded::Data(data)) => Some(Frame::data(data)),
                    Ok(Decoded::Trailers(trailers)) => Some(Frame::trailers(trailers)),
                    Ok(Decoded::End) => {
                        self.exchange.reading = Reading::Done;
                        return Poll::Ready(None);
                    }
                    Ok(Decoded::NeedMore) => None,
                    Err(e) => return Poll::Ready(Some(Err(BodyError::Malformed(e)))),
                },
                Reading::UntilClose if !self.read.is_empty() => {
                    Some(Frame::data(self.read.split().freeze()))
                }
                Reading::Length(_) | Reading::UntilClose => None,
            };
            if let Some(frame) = frame {
                return Poll::Ready(Some(Ok(frame)));
            }
            match ready!(self.poll_fill(cx)) {
                Ok(0) if matches!(self.exchange.reading, Reading::UntilClose) => {
                    self.exchange.reading = Reading::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => return Poll::Ready(Some(Err(BodyError::Truncated))),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(BodyError::Read(e)))),
            }
        }
    }
}

/// A connection closed under the exchange (a reset, or TLS ended without
/// close_notify), as opposed to one that failed (a TLS alert, say).
fn is_close(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}
