//! Protocol detection on a captured connection: a look at the first bytes
//! the client sends, without consuming them, so whichever stack takes the
//! connection reads it from the start.
//!
//! Clients that wait for the server to speak first would stall here, which
//! is why callers skip detection for the mesh's server-first ports and
//! bound it with a short timeout.

use std::{io, time::Duration};

use tokio::{net::TcpStream, time::Instant};

/// How long a captured connection may stay silent before it is taken as
/// whatever its destination declares.
pub const DETECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Enough for the HTTP/2 preface and any HTTP method with its space.
const PEEK_LEN: usize = 24;
/// Between two peeks that saw too little: peeking does not consume, so
/// waiting for readability again would return at once.
const PEEK_PAUSE: Duration = Duration::from_millis(5);
/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The longest standard method (`OPTIONS`, `CONNECT`) is 7; leave room
/// for extension methods.
const MAX_METHOD_LEN: usize = 20;

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    Http1,
    /// HTTP/2 with prior knowledge (the preface, no upgrade).
    Http2,
    /// A TLS handshake record.
    Tls,
    /// Bytes of something else.
    Opaque,
    /// Nothing within the timeout.
    Silent,
    /// The client closed before sending anything.
    Closed,
}

/// `None`: too few bytes to tell yet.
pub fn classify(bytes: &[u8]) -> Option<Detected> {
    let &first = bytes.first()?;
    if first == 0x16 {
        // A handshake record: content type 22, then version 3.x.
        return match bytes.get(1) {
            None => None,
            Some(3) => Some(Detected::Tls),
            Some(_) => Some(Detected::Opaque),
        };
    }
    let shared = bytes.len().min(H2_PREFACE.len());
    if bytes[..shared] == H2_PREFACE[..shared] {
        return (shared == H2_PREFACE.len()).then_some(Detected::Http2);
    }
    match bytes.iter().position(|b| !b.is_ascii_uppercase()) {
        Some(0) => Some(Detected::Opaque),
        Some(i) if bytes[i] == b' ' && i <= MAX_METHOD_LEN => Some(Detected::Http1),
        Some(_) => Some(Detected::Opaque),
        None if bytes.len() > MAX_METHOD_LEN => Some(Detected::Opaque),
        None => None,
    }
}

/// Peeks at `stream` until its first bytes tell the protocol, or `timeout`
/// passes.
pub async fn detect(stream: &TcpStream, timeout: Duration) -> io::Result<Detected> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; PEEK_LEN];
    let mut seen = 0;
    loop {
        let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await;
        let n = match peeked {
            Err(_) => return Ok(partial(seen)),
            Ok(result) => result?,
        };
        if n == 0 {
            return Ok(Detected::Closed);
        }
        if let Some(found) = classify(&buf[..n]) {
            return Ok(found);
        }
        if n == PEEK_LEN {
            return Ok(Detected::Opaque);
        }
        seen = n;
        if Instant::now() + PEEK_PAUSE >= deadline {
            return Ok(partial(seen));
        }
        tokio::time::sleep(PEEK_PAUSE).await;
    }
}

/// Some bytes came, but not enough to tell: not silence.
fn partial(seen: usize) -> Detected {
    if seen == 0 {
        Detected::Silent
    } else {
        Detected::Opaque
    }
}

#[cfg(test)]
mod tests;
