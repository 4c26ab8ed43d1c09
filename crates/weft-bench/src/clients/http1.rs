//! Just enough HTTP/1.1 over a raw socket for churn and held connections:
//! send a GET, read one response (Content-Length, chunked, or to EOF).

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The head of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes up to and including the blank line.
    pub len: usize,
    pub content_length: Option<usize>,
    pub chunked: bool,
}

/// Parses a response head from the start of `buf`; `None` until it is complete.
pub fn parse_head(buf: &[u8]) -> Option<Result<Head, String>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next().and_then(|s| s.parse().ok())) {
        (Some(v), Some(s)) if v.starts_with("HTTP/1.") => s,
        _ => return Some(Err(format!("bad status line {status_line:?}"))),
    };
    let mut head = Head {
        status,
        len: end,
        content_length: None,
        chunked: false,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    Some(Ok(head))
}

/// Writes `GET /` and reads the whole response; its size in bytes.
/// `close` asks for `Connection: close`.
pub async fn get(stream: &mut TcpStream, close: bool) -> Result<u64, String> {
    let req: &[u8] = if close {
        b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    } else {
        b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    };
    stream
        .write_all(req)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0_u8; 4096];
    let head = loop {
        if let Some(head) = parse_head(&buf) {
            break head?;
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before a response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head.status != 200 {
        return Err(format!("status {}", head.status));
    }
    loop {
        let body = &buf[head.len..];
        let done = match head.content_length {
            Some(n) => body.len() >= n,
            None if head.chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done {
            return Ok(buf.len() as u64);
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return if head.content_length.is_none() && !head.chunked {
                Ok(buf.len() as u64)
            } else {
                Err("connection closed mid-body".into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nX: y\r\n\r\nhello";
        let head = parse_head(r).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length, Some(12));
        assert!(!head.chunked);
        assert_eq!(&r[head.len..], b"hello");

        let chunked = parse_head(b"HTTP/1.1 503 x\r\nTransfer-Encoding: Chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(chunked.chunked);
        assert_eq!(chunked.status, 503);

        assert!(parse_head(b"HTTP/1.1 200 OK\r\nconte").is_none());
        assert!(parse_head(b"SSH-2.0\r\n\r\n").unwrap().is_err());
    }
}
