//! Reading a chunked response body (RFC 9112 §7.1) straight out of the
//! connection's read buffer.
//!
//! The decoder never copies body bytes: data comes back as slices split off
//! the buffer, so a chunk flows from the socket read to the downstream write
//! in the buffer it was read into. It is a state machine over whatever the
//! buffer holds, so reads may end anywhere, even inside a CRLF. Incomplete
//! size lines, CRLFs and trailer sections are left in the buffer until they
//! are whole; they are small and bounded, so scanning them again after the
//! next read costs little and keeps the state simple.
//!
//! Line endings are strict CRLF in size lines and after chunk data: a bare
//! LF is rejected rather than accepted, since disagreeing with another
//! parser on where a body ends is how responses get desynchronized. Inside
//! a trailer section httparse's rules apply (they tolerate bare LF).

use bytes::{Buf, Bytes, BytesMut};
use http::{
    HeaderMap, HeaderName,
    header::{CONNECTION, CONTENT_LENGTH, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE},
};

use super::codec::{CodecError, FieldSpan, MAX_HEADERS, build_header_map};

/// Longest chunk-size line accepted, extensions included, CRLF excluded.
/// Extensions carry nothing the proxy uses; the bound keeps a peer from
/// making every read rescan an endless line.
const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section accepted, final empty line included.
const MAX_TRAILER_BYTES: usize = 64 * 1024;
/// 16 hex digits are 64 bits; any more could not be a real size.
const MAX_SIZE_DIGITS: usize = 16;

/// Fields dropped from trailers: they frame or route a message, or belong
/// to one connection, so they would contradict the head already forwarded
/// and are invalid in the HTTP/2 trailers they may be forwarded as (RFC
/// 9110 6.5.1 lets a recipient discard what it cannot safely pass on).
const DROPPED_TRAILERS: &[HeaderName] = &[
    TRANSFER_ENCODING,
    CONTENT_LENGTH,
    TRAILER,
    CONNECTION,
    TE,
    UPGRADE,
    HOST,
];
/// Connection-specific fields without a constant in `http`.
const DROPPED_TRAILER_NAMES: &[&str] = &["keep-alive", "proxy-connection"];

/// Decodes a chunked response body incrementally from the front of a read
/// buffer. After an error the body cannot be delimited any more, so the
/// connection must be closed rather than decoded further.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes (never 0) still to come.
    Data { remaining: u64 },
    /// Expecting the CRLF that closes a chunk's data.
    DataCrlf,
    /// After the last chunk: expecting trailer fields or the final CRLF.
    Trailers,
    /// The trailers were handed out; `End` comes next.
    Ending,
    /// `End` was returned.
    Done,
}

/// One step of decoding.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// Bytes of the body (never empty).
    Data(Bytes),
    /// The trailer section (non-empty), after the last chunk. The next call returns `End`.
    Trailers(HeaderMap),
    /// The body is complete: the last chunk and the final CRLF (after any
    /// trailers) are consumed; nothing after them is touched.
    End,
    /// `buf` holds no further complete item; read more bytes into it and call again.
    NeedMore,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self { state: State::Size }
    }

    /// Decodes what it can from the front of `buf`, consuming exactly the
    /// bytes it used.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, CodecError> {
        loop {
            match self.state {
                State::Size => {
                    let Some((size, line_len)) = parse_size_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    buf.advance(line_len);
                    self.state = match size {
                        0 => State::Trailers,
                        remaining => State::Data { remaining },
                    };
                }
                State::Data { remaining } => return Ok(self.take_data(buf, remaining)),
                State::DataCrlf => {
                    if !take_crlf(buf)? {
                        return Ok(Decoded::NeedMore);
                    }
                    self.state = State::Size;
                }
                State::Trailers => return self.take_trailers(buf),
                State::Ending | State::Done => {
                    self.state = State::Done;
                    return Ok(Decoded::End);
                }
            }
        }
    }

    /// The body has ended (End was returned).
    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn take_data(&mut self, buf: &mut BytesMut, remaining: u64) -> Decoded {
        if buf.is_empty() {
            return Decoded::NeedMore;
        }
        let available = buf.len();
        let take = usize::try_from(remaining).map_or(available, |left| left.min(available));
        let left = remaining.saturating_sub(take as u64);
        self.state = if left == 0 {
            State::DataCrlf
        } else {
            State::Data { remaining: left }
        };
        Decoded::Data(buf.split_to(take).freeze())
    }

    fn take_trailers(&mut self, buf: &mut BytesMut) -> Result<Decoded, CodecError> {
        match (buf.first(), buf.get(1)) {
            (None, _) | (Some(b'\r'), None) => Ok(Decoded::NeedMore),
            (Some(b'\r'), Some(b'\n')) => {
                buf.advance(2);
                self.state = State::Done;
                Ok(Decoded::End)
            }
            // httparse would take a lone LF as the end of an empty section;
            // the body's end is kept to strict CRLF like the rest of it.
            (Some(b'\n'), _) => Err(CodecError::MalformedTrailers(httparse::Error::NewLine)),
            _ => {
                let Some(trailers) = parse_trailer_section(buf)? else {
                    return Ok(Decoded::NeedMore);
                };
                if trailers.is_empty() {
                    self.state = State::Done;
                    return Ok(Decoded::End);
                }
                self.state = State::Ending;
                Ok(Decoded::Trailers(trailers))
            }
        }
    }
}

/// Where the size line's parse is: the size's hex digits, whitespace
/// after them, or the extensions (skipped, their syntax unchecked since
/// nothing reads them).
#[derive(Clone, Copy)]
enum LinePart {
    Digits,
    Whitespace,
    Extensions,
}

/// Parses the chunk-size line at the front of `buf`: `Some((size, length
/// including the CRLF))` once it is complete, `None` while it may still be.
/// Errors as soon as a byte rules the line out, rather than waiting for
/// its end.
fn parse_size_line(buf: &[u8]) -> Result<Option<(u64, usize)>, CodecError> {
    let mut size = 0u64;
    let mut digits = 0usize;
    let mut part = LinePart::Digits;
    for (at, &byte) in buf.iter().enumerate() {
        if byte == b'\r' {
            return finish_size_line(buf.get(at + 1), digits, size, at + 2);
        }
        if at >= MAX_SIZE_LINE {
            return Err(CodecError::ChunkSizeLineTooLong);
        }
        part = match (part, hex_value(byte), byte) {
            (LinePart::Digits, Some(_), _) if digits == MAX_SIZE_DIGITS => {
                return Err(CodecError::ChunkSizeOverflow);
            }
            (LinePart::Digits, Some(value), _) => {
                size = (size << 4) | u64::from(value);
                digits += 1;
                LinePart::Digits
            }
            // The size must come first: no whitespace or `;` before it.
            (LinePart::Digits, None, _) if digits == 0 => {
                return Err(CodecError::InvalidChunkSize);
            }
            (LinePart::Digits | LinePart::Whitespace, None, b' ' | b'\t') => LinePart::Whitespace,
            (LinePart::Digits | LinePart::Whitespace, None, b';') => LinePart::Extensions,
            (LinePart::Extensions, _, byte) if byte != b'\n' => LinePart::Extensions,
            _ => return Err(CodecError::InvalidChunkSize),
        };
    }
    Ok(None)
}

/// The line's CR was found; `after_cr` is the byte after it, if read yet.
fn finish_size_line(
    after_cr: Option<&u8>,
    digits: usize,
    size: u64,
    line_len: usize,
) -> Result<Option<(u64, usize)>, CodecError> {
    if digits == 0 {
        return Err(CodecError::InvalidChunkSize);
    }
    match after_cr {
        Some(b'\n') => Ok(Some((size, line_len))),
        Some(_) => Err(CodecError::InvalidChunkSize),
        None => Ok(None),
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Consumes the CRLF closing a chunk's data: `false` if it has not fully
/// arrived, an error if something else is there (the chunk was longer
/// than its size said).
fn take_crlf(buf: &mut BytesMut) -> Result<bool, CodecError> {
    match (buf.first(), buf.get(1)) {
        (Some(b'\r'), Some(b'\n')) => {
            buf.advance(2);
            Ok(true)
        }
        (None, _) | (Some(b'\r'), None) => Ok(false),
        _ => Err(CodecError::MissingChunkCrlf),
    }
}

/// Parses a non-empty trailer section at the front of `buf`, consuming it
/// only once complete. Values share the buffer's memory, as in heads.
fn parse_trailer_section(buf: &mut BytesMut) -> Result<Option<HeaderMap>, CodecError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (len, spans) = match httparse::parse_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete((len, _))) if len > MAX_TRAILER_BYTES => {
            return Err(CodecError::TrailersTooLarge);
        }
        Ok(httparse::Status::Complete((len, parsed))) => (
            len,
            parsed
                .iter()
                .map(|field| FieldSpan::locate(&buf[..], field))
                .collect::<Vec<_>>(),
        ),
        Ok(httparse::Status::Partial) if buf.len() > MAX_TRAILER_BYTES => {
            return Err(CodecError::TrailersTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(CodecError::TooManyHeaders),
        Err(err) => return Err(CodecError::MalformedTrailers(err)),
    };
    let section = buf.split_to(len).freeze();
    let mut trailers = build_header_map(&section, &spans)?;
    for name in DROPPED_TRAILERS {
        trailers.remove(name);
    }
    for name in DROPPED_TRAILER_NAMES {
        trailers.remove(*name);
    }
    Ok(Some(trailers))
}

#[cfg(test)]
mod tests;
