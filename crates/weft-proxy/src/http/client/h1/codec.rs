//! The HTTP/1.1 wire format as the proxy's upstream client speaks it:
//! writing request heads and chunked framing, reading response heads.
//!
//! Everything here is pure (bytes in, bytes or values out) so that the
//! exchange code owns all I/O and these rules can be tested exhaustively
//! without sockets. Response heads are parsed with `httparse` and their
//! header values are cut out of the read buffer without copying.

use std::mem::MaybeUninit;

use bytes::{BufMut, Bytes, BytesMut};
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version,
    header::{CONNECTION, CONTENT_LENGTH, Entry, TRANSFER_ENCODING},
    response,
};

/// Largest response head accepted (status line + headers).
pub const MAX_HEAD_BYTES: usize = 256 * 1024;
/// Most header fields in a response head or trailer section.
pub const MAX_HEADERS: usize = 128;

/// What was wrong with a message the codec was asked to write or read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("malformed response head: {0}")]
    MalformedHead(httparse::Error),
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    #[error("invalid status code {0}")]
    InvalidStatus(u16),
    #[error("invalid header field name {0:?}")]
    InvalidHeaderName(String),
    #[error("invalid value in header field {0}")]
    InvalidHeaderValue(HeaderName),
    #[error("invalid Content-Length: not a decimal number of bytes")]
    InvalidContentLength,
    #[error("invalid Content-Length: the header carries differing lengths")]
    ConflictingContentLength,
    #[error("invalid chunk size line")]
    InvalidChunkSize,
    #[error("chunk size does not fit in 64 bits (more than 16 hex digits)")]
    ChunkSizeOverflow,
    #[error("chunk size line too long")]
    ChunkSizeLineTooLong,
    #[error("missing CRLF after chunk data")]
    MissingChunkCrlf,
    #[error("trailer section too large")]
    TrailersTooLarge,
    #[error("malformed trailer section: {0}")]
    MalformedTrailers(httparse::Error),
    #[error("an HTTP/1.0 request cannot carry a body of unknown length")]
    Http10UnknownLength,
}

/// How a request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestFraming {
    #[default]
    Empty,
    Length(u64),
    Chunked,
}

/// Decides how the request body is framed, fixing `headers` up to match.
///
/// `body_is_empty` means the body has no bytes at all; `body_exact_len` is
/// the body's length when it is known before it is sent. Every method gets
/// the same rules: unlike hyper, a GET or HEAD with a body of unknown
/// length is sent chunked rather than silently emptied.
pub fn request_framing(
    version: Version,
    headers: &mut HeaderMap,
    body_is_empty: bool,
    body_exact_len: Option<u64>,
) -> Result<RequestFraming, CodecError> {
    if body_is_empty {
        drop_body_headers(headers);
        return Ok(RequestFraming::Empty);
    }
    if version == Version::HTTP_10 {
        return http10_framing(headers, body_exact_len);
    }
    http11_framing(headers, body_exact_len)
}

/// A request without body bytes must not announce any: a stale
/// `Content-Length` or `Transfer-Encoding` would make the upstream wait for
/// bytes that never come. A lone `Content-Length: 0` is accurate, so it stays.
fn drop_body_headers(headers: &mut HeaderMap) {
    // Most bodiless requests have neither field: one pass finds that.
    let present = Present::survey(headers);
    if present.transfer_encoding {
        headers.remove(TRANSFER_ENCODING);
    }
    if !present.content_length {
        return;
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let exactly_zero = matches!(
        (lengths.next(), lengths.next()),
        (Some(value), None) if value.as_bytes() == b"0"
    );
    if !exactly_zero {
        headers.remove(CONTENT_LENGTH);
    }
}

/// HTTP/1.0 has no chunked coding: the body must be announced by length.
fn http10_framing(
    headers: &mut HeaderMap,
    body_exact_len: Option<u64>,
) -> Result<RequestFraming, CodecError> {
    headers.remove(TRANSFER_ENCODING);
    let declared = content_length(headers);
    if let Ok(Some(len)) = declared {
        normalize_content_length(headers, len);
        return Ok(RequestFraming::Length(len));
    }
    if let Some(len) = body_exact_len {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        return Ok(RequestFraming::Length(len));
    }
    // An unusable Content-Length is the more precise complaint when present.
    declared?;
    Err(CodecError::Http10UnknownLength)
}

fn http11_framing(
    headers: &mut HeaderMap,
    body_exact_len: Option<u64>,
) -> Result<RequestFraming, CodecError> {
    if headers.contains_key(TRANSFER_ENCODING) {
        // Both headers together is the classic request-smuggling shape; the
        // transfer coding wins (RFC 9112 §6.3), so the length must go.
        headers.remove(CONTENT_LENGTH);
        ensure_chunked_last(headers);
        return Ok(RequestFraming::Chunked);
    }
    if let Some(len) = content_length(headers)? {
        normalize_content_length(headers, len);
        return Ok(RequestFraming::Length(len));
    }
    if let Some(len) = body_exact_len {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        return Ok(RequestFraming::Length(len));
    }
    headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    Ok(RequestFraming::Chunked)
}

/// Repeated or comma-joined lengths that agree are legal but some servers
/// reject them; one plain value is what every server understands.
fn normalize_content_length(headers: &mut HeaderMap, len: u64) {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let single = matches!(
        (values.next(), values.next()),
        (Some(value), None) if !value.as_bytes().contains(&b',')
    );
    if !single {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
}

/// Without `chunked` as the final coding the body would end only when the
/// connection closes, which a request cannot do; so `chunked` is added.
fn ensure_chunked_last(headers: &mut HeaderMap) {
    if last_list_token(headers.get_all(TRANSFER_ENCODING).iter())
        .is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"))
    {
        return;
    }
    if let Entry::Occupied(mut entry) = headers.entry(TRANSFER_ENCODING)
        && let Some(last) = entry.iter_mut().next_back()
    {
        *last = with_chunked_appended(last);
    }
}

fn with_chunked_appended(value: &HeaderValue) -> HeaderValue {
    let existing = trim_list_separators(value.as_bytes());
    if existing.is_empty() {
        return HeaderValue::from_static("chunked");
    }
    let mut joined = Vec::with_capacity(existing.len() + b", chunked".len());
    joined.extend_from_slice(existing);
    joined.extend_from_slice(b", chunked");
    // The existing bytes already formed a valid value and the suffix is
    // plain ASCII, so this cannot fail; if it somehow did, `chunked` alone
    // still frames the body correctly.
    HeaderValue::from_bytes(&joined).unwrap_or_else(|_| HeaderValue::from_static("chunked"))
}

/// Appends "METHOD TARGET HTTP/1.x\r\n", every header as "name: value\r\n"
/// (in `HeaderMap` iteration order, repeated names once per value), then the
/// empty line.
///
/// Any version other than HTTP/1.0 is written as HTTP/1.1: this is the
/// HTTP/1 codec, and a request that came in over HTTP/2 leaves as 1.1.
///
/// The encoders take any [`BufMut`] so the exchange can write into the
/// connection's own write buffer (`BytesMut`) as readily as into a `Vec`.
pub fn encode_request_head(
    method: &Method,
    target: &str,
    version: Version,
    headers: &HeaderMap,
    out: &mut impl BufMut,
) {
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(if version == Version::HTTP_10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    encode_fields(headers, out);
    out.put_slice(b"\r\n");
}

fn encode_fields(headers: &HeaderMap, out: &mut impl BufMut) {
    for (name, value) in headers {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
}

/// Appends a chunk-size line: `len` in uppercase hex, then CRLF.
///
/// A zero `len` writes nothing: "0\r\n" is the last-chunk marker, and
/// emitting it for an empty data frame would end the body early and leave
/// the rest of it to be read as the next request. With nothing written the
/// upstream sees a malformed body instead, which fails loudly. Callers
/// should skip empty frames.
pub fn encode_chunk_prefix(len: usize, out: &mut impl BufMut) {
    if len == 0 {
        return;
    }
    push_hex(len, out);
    out.put_slice(b"\r\n");
}

fn push_hex(value: usize, out: &mut impl BufMut) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let significant_bits = usize::BITS - value.leading_zeros();
    let nibbles = significant_bits.div_ceil(4).max(1);
    for nibble in (0..nibbles).rev() {
        let digit = (value >> (nibble * 4)) & 0xF;
        if let Some(&byte) = DIGITS.get(digit) {
            out.put_u8(byte);
        }
    }
}

/// The CRLF after each chunk's data.
pub const CHUNK_SUFFIX: &[u8] = b"\r\n";

/// Appends the last chunk "0\r\n", the trailer fields if any
/// ("name: value\r\n" each), and the final "\r\n".
pub fn encode_last_chunk(trailers: Option<&HeaderMap>, out: &mut impl BufMut) {
    out.put_slice(b"0\r\n");
    if let Some(trailers) = trailers {
        encode_fields(trailers, out);
    }
    out.put_slice(b"\r\n");
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A parsed response head and what it says about the body and connection.
#[derive(Debug)]
pub struct ResponseHead {
    pub parts: response::Parts,
    pub body: BodyKind,
    /// The connection may carry another request once this response's body is read.
    pub keep_alive: bool,
}

/// Parses a complete response head at the start of `buf`, removing exactly
/// the head's bytes from `buf`.
///
/// `Ok(None)`: the head is not complete yet (read more and call again), and
/// `buf` is untouched. Errors once `buf` holds more than [`MAX_HEAD_BYTES`]
/// without a complete head.
///
/// 1xx heads come back like any other, with [`BodyKind::Empty`]; the caller
/// skips them and parses again for the final response. (The request never
/// asks to close: `Connection` is hop-by-hop, removed before it is sent.)
pub fn parse_response_head(
    buf: &mut BytesMut,
    request_method: &Method,
) -> Result<Option<ResponseHead>, CodecError> {
    let Some(raw) = scan_response_head(buf)? else {
        return Ok(None);
    };
    let head = buf.split_to(raw.len).freeze();
    let mut headers = build_header_map(&head, &raw.spans)?;
    let present = Present::survey(&headers);
    // Both framings at once is how response splitting starts; whatever the
    // upstream meant, the connection's framing can't be trusted after it.
    let had_both_framings = present.transfer_encoding && present.content_length;
    let version = if raw.minor_version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let status = StatusCode::from_u16(raw.code).map_err(|_| CodecError::InvalidStatus(raw.code))?;

    let body = response_body_kind(request_method, status, &present, &mut headers)?;
    let keep_alive = version == Version::HTTP_11
        && body != BodyKind::UntilClose
        && !(present.connection && has_close_token(&headers))
        && !had_both_framings;

    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(ResponseHead {
        parts,
        body,
        keep_alive,
    }))
}

/// Where a header field's name and value lie within the head's bytes;
/// `None` if httparse handed out a slice from elsewhere, which it never
/// should, but which must not turn into a silently wrong field.
#[derive(Clone, Copy)]
pub(super) struct FieldSpan {
    name: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
}

impl FieldSpan {
    /// Locates `field`, which httparse borrowed from `base`, as offsets
    /// into `base`, so the values can later be cut from the frozen bytes.
    pub(super) fn locate(base: &[u8], field: &httparse::Header<'_>) -> Self {
        Self {
            name: offsets_within(base, field.name.as_bytes()),
            value: offsets_within(base, field.value),
        }
    }
}

/// The offsets of `part` within `base`. An empty part may be a static
/// empty slice rather than one into `base`; any empty range will do for it.
fn offsets_within(base: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    if part.is_empty() {
        return Some((0, 0));
    }
    let start = part.as_ptr().addr().checked_sub(base.as_ptr().addr())?;
    let end = start.checked_add(part.len())?;
    (end <= base.len()).then_some((start, end))
}

/// What scanning a complete head found, before the buffer is split.
struct RawHead {
    len: usize,
    minor_version: u8,
    code: u16,
    spans: Vec<FieldSpan>,
}

/// Runs httparse over `buf` without consuming anything, recording where
/// the fields lie so they can be cut from the buffer once it is split.
/// httparse's field array is left uninitialised (it is 4 KiB, and most
/// heads use a few entries) and only the found fields are kept.
fn scan_response_head(buf: &[u8]) -> Result<Option<RawHead>, CodecError> {
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut fields,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(CodecError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(CodecError::TooManyHeaders),
        Err(err) => return Err(CodecError::MalformedHead(err)),
    };
    // The whole head may arrive in one read; the limit holds all the same.
    if len > MAX_HEAD_BYTES {
        return Err(CodecError::HeadTooLarge);
    }
    Ok(Some(RawHead {
        len,
        minor_version: response.version.unwrap_or(1),
        code: response.code.unwrap_or(0),
        spans: response
            .headers
            .iter()
            .map(|field| FieldSpan::locate(buf, field))
            .collect(),
    }))
}

/// Builds the header map from `block`, the frozen bytes the spans point
/// into: names are interned or copied, values share `block`'s memory.
pub(super) fn build_header_map(
    block: &Bytes,
    spans: &[FieldSpan],
) -> Result<HeaderMap, CodecError> {
    let mut headers = HeaderMap::with_capacity(spans.len());
    for span in spans {
        let name_bytes = span
            .name
            .and_then(|(start, end)| block.get(start..end))
            .ok_or_else(|| CodecError::InvalidHeaderName("(not within the parsed bytes)".into()))?;
        let name = HeaderName::from_bytes(name_bytes).map_err(|_| {
            CodecError::InvalidHeaderName(String::from_utf8_lossy(name_bytes).into_owned())
        })?;
        let value = slice_value(block, span.value)
            .ok_or_else(|| CodecError::InvalidHeaderValue(name.clone()))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn slice_value(block: &Bytes, span: Option<(usize, usize)>) -> Option<HeaderValue> {
    let (start, end) = span?;
    if start > end || end > block.len() {
        return None;
    }
    HeaderValue::from_maybe_shared(block.slice(start..end)).ok()
}

/// Decides how the body is delimited, per RFC 9112 §6.3. When both
/// `Transfer-Encoding` and `Content-Length` came, the length is removed:
/// it is wrong by definition and must not be forwarded.
fn response_body_kind(
    request_method: &Method,
    status: StatusCode,
    present: &Present,
    headers: &mut HeaderMap,
) -> Result<BodyKind, CodecError> {
    if *request_method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(BodyKind::Empty);
    }
    if present.transfer_encoding {
        headers.remove(CONTENT_LENGTH);
        let chunked = last_list_token(headers.get_all(TRANSFER_ENCODING).iter())
            .is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"));
        return Ok(if chunked {
            BodyKind::Chunked
        } else {
            BodyKind::UntilClose
        });
    }
    if !present.content_length {
        return Ok(BodyKind::UntilClose);
    }
    Ok(match content_length(headers)? {
        Some(len) => BodyKind::Length(len),
        None => BodyKind::UntilClose,
    })
}

/// The single length all `Content-Length` values state, `None` without
/// the header. Values may repeat, in several fields or comma-joined, but
/// only if they agree (RFC 9110 §8.6).
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, CodecError> {
    let mut agreed = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for element in value.as_bytes().split(|&byte| byte == b',') {
            let len =
                parse_decimal(element.trim_ascii()).ok_or(CodecError::InvalidContentLength)?;
            if agreed.is_some_and(|earlier| earlier != len) {
                return Err(CodecError::ConflictingContentLength);
            }
            agreed = Some(len);
        }
    }
    Ok(agreed)
}

/// Which of the fields that frame a response or end its connection it
/// has: found in one pass over its few fields, where looking each up would
/// hash every name again.
#[derive(Debug, Default)]
struct Present {
    transfer_encoding: bool,
    content_length: bool,
    connection: bool,
}

impl Present {
    fn survey(headers: &HeaderMap) -> Self {
        let mut present = Self::default();
        for name in headers.keys() {
            if name == TRANSFER_ENCODING {
                present.transfer_encoding = true;
            } else if name == CONTENT_LENGTH {
                present.content_length = true;
            } else if name == CONNECTION {
                present.connection = true;
            }
        }
        present
    }
}

/// Only plain digits: `u64::from_str` would also take a leading `+`, which
/// other parsers along the path may not.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |total, &byte| {
        let digit = byte.checked_sub(b'0').filter(|digit| *digit <= 9)?;
        total.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Whether `Connection` lists `close`, in any of its fields.
fn has_close_token(headers: &HeaderMap) -> bool {
    headers.get_all(CONNECTION).iter().any(|value| {
        value
            .as_bytes()
            .split(|&byte| byte == b',')
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

/// The last non-empty element of a comma-separated list spread over
/// `values` (empty elements are legal and ignored, RFC 9110 §5.6.1).
fn last_list_token<'a>(
    values: impl DoubleEndedIterator<Item = &'a HeaderValue>,
) -> Option<&'a [u8]> {
    values.rev().find_map(|value| {
        value
            .as_bytes()
            .rsplit(|&byte| byte == b',')
            .map(<[u8]>::trim_ascii)
            .find(|token| !token.is_empty())
    })
}

/// Drops the whitespace and empty list elements at the end of a value, so
/// appending ", chunked" never produces an empty element.
fn trim_list_separators(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|byte| !matches!(byte, b' ' | b'\t' | b','))
        .map_or(0, |last| last + 1);
    bytes.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests;
