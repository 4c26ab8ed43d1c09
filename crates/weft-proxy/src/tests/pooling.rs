//! Pooled upstream connections: dropped when idle before the upstream
//! drops them, and requests sent again when a pooled connection closed
//! under them anyway.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http::{Request, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use weft_api::Protocol;

use super::{
    ca::{TestCa, identity},
    support::*,
};
use crate::{config::MtlsMode, tls::server::server_config};

/// An HTTP/1.1 upstream that answers `ok` to every request, except the
/// second one on its first connection: it reads it and closes the
/// connection, as a server does when it times out an idle keep-alive
/// connection just as a request arrives on it.
struct ClosesUnderTheSecondRequest {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl ClosesUnderTheSecondRequest {
    async fn start() -> Self {
        Self::start_with(None).await
    }

    /// With `tls`, a peer's inbound that speaks mTLS and, like a process
    /// that exits or a proxy that drops a connection, closes the TCP
    /// connection without TLS's close_notify.
    async fn start_with(tls: Option<TlsAcceptor>) -> Self {
        let (listener, addr) = listen().await;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(stream, first).await,
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                serve(stream, first).await;
                            }
                        }
                    }
                });
            }
        });
        Self { addr, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Requests without a body: a head, then the next.
async fn serve(mut stream: impl AsyncRead + AsyncWrite + Unpin, close_on_second: bool) {
    let mut buf = Vec::new();
    for n in 1.. {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        buf.drain(..end);
        if close_on_second && n == 2 {
            return;
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_get_on_a_connection_closed_under_it_is_sent_again() {
    // An inbound has one upstream, the local service; an outbound here too.
    for listener in ["inbound", "outbound"] {
        let upstream = ClosesUnderTheSecondRequest::start().await;
        let (addr, _running) = match listener {
            "inbound" => start_inbound(Protocol::Http, upstream.addr).await,
            _ => start_outbound(Protocol::Http, &[upstream.addr]).await,
        };
        let mut client = h1_client(addr).await;
        for _ in 0..2 {
            let (status, _, body) = get(&mut client, "/").await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, "ok"),
                "{listener}"
            );
        }
        assert_eq!(
            upstream.connections(),
            2,
            "{listener}: again on a new connection"
        );
    }
}

#[tokio::test]
async fn a_get_on_an_mtls_connection_closed_without_close_notify_is_sent_again() {
    let ca = TestCa::new("mesh CA");
    let web = identity(&ca, "web", MtlsMode::Strict);
    let backend = identity(&ca, "backend", MtlsMode::Strict);
    let acceptor = TlsAcceptor::from(server_config(&backend).unwrap());
    let upstream = ClosesUnderTheSecondRequest::start_with(Some(acceptor)).await;
    let (outbound, _running) = start_outbound_with(Protocol::Http, &[upstream.addr], &web).await;
    let mut client = h1_client(outbound).await;
    for _ in 0..2 {
        let (status, _, body) = get(&mut client, "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    }
    assert_eq!(upstream.connections(), 2, "again on a new connection");
}

#[tokio::test]
async fn a_post_on_a_connection_closed_under_it_is_not_sent_again() {
    let upstream = ClosesUnderTheSecondRequest::start().await;
    let (inbound, _running) = start_inbound(Protocol::Http, upstream.addr).await;
    let mut client = h1_client(inbound).await;
    assert_eq!(get(&mut client, "/").await.0, StatusCode::OK);
    // The upstream may have acted on it: no retry, even without a body.
    let req = Request::post("/orders/1/cancel")
        .header("host", "backend")
        .body(empty())
        .unwrap();
    let (status, headers, body) = read(client.send_request(req).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["x-weft-error"], "upstream-failed");
    assert!(
        body.contains("the upstream closed the connection without answering"),
        "{body}"
    );
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn idle_connections_are_dropped_before_an_inbound_would_drop_them() {
    // The backend never closes idle connections: only the pool can.
    let backend = Backend::start("a").await;
    let (inbound, _running) = start_inbound(Protocol::Http, backend.addr).await;
    let mut client = h1_client(inbound).await;
    assert_eq!(get(&mut client, "/").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(get(&mut client, "/").await.0, StatusCode::OK);
    assert_eq!(backend.connections(), 1, "reused within 20 s");
    // Past the pool's 20 s, still short of hyper's 30 s on the far side.
    tokio::time::sleep(Duration::from_secs(21)).await;
    assert_eq!(get(&mut client, "/").await.0, StatusCode::OK);
    assert_eq!(backend.connections(), 2, "a new connection after 20 s idle");
}
