//! The listeners mutator against real sockets: binds, swaps, hand-overs, drains.

use std::time::Duration;

use http::StatusCode;
use tokio::{io::AsyncWriteExt, net::TcpStream};
use weft_api::Protocol;

use super::*;
use crate::tests::support::*;

fn new_listeners() -> Listeners {
    Listeners::new(Identity::new("default"))
}

fn config(version: u64, outbounds: Vec<OutboundConfig>) -> Config {
    Config {
        version,
        mesh: "default".into(),
        dataplane: "web-1".into(),
        inbounds: vec![],
        outbounds,
        mtls: Default::default(),
        transparent: None,
        tracing: None,
    }
}

async fn echo_round_trip(stream: &mut TcpStream, text: &str) {
    stream.write_all(text.as_bytes()).await.unwrap();
    assert_eq!(read_text(stream, text.len()).await, text);
}

#[tokio::test]
async fn a_failed_bind_changes_nothing() {
    let (_taken, busy) = listen().await;
    let free = free_addr();
    let mut listeners = new_listeners();
    let error = listeners
        .apply(&config(
            1,
            vec![
                outbound_config(free, Protocol::Tcp, &[]),
                outbound_config(busy, Protocol::Tcp, &[]),
            ],
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("cannot bind {busy}: Address already in use")),
        "{error}"
    );
    assert!(
        TcpStream::connect(free).await.is_err(),
        "the listener bound first was dropped"
    );
    assert!(listeners.running.is_empty());
}

#[tokio::test]
async fn an_unchanged_listener_keeps_running_with_new_endpoints() {
    let (a, b) = (tcp_backend("a").await, tcp_backend("b").await);
    let addr = free_addr();
    let mut listeners = new_listeners();
    listeners
        .apply(&config(1, vec![outbound_config(addr, Protocol::Tcp, &[a])]))
        .await
        .unwrap();
    let mut before = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_text(&mut before, 1).await, "a");

    listeners
        .apply(&config(2, vec![outbound_config(addr, Protocol::Tcp, &[b])]))
        .await
        .unwrap();
    let mut after = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_text(&mut after, 1).await, "b");
    echo_round_trip(&mut before, "still on a").await;
}

#[tokio::test]
async fn a_changed_stack_takes_over_the_same_port() {
    let a = tcp_backend("a").await;
    let addr = free_addr();
    let mut listeners = new_listeners();
    listeners
        .apply(&config(1, vec![outbound_config(addr, Protocol::Tcp, &[a])]))
        .await
        .unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_text(&mut tcp, 1).await, "a");

    listeners
        .apply(&config(2, vec![outbound_config(addr, Protocol::Http, &[])]))
        .await
        .unwrap();
    let mut client = h1_client(addr).await;
    let (status, _, _) = get(&mut client, "/").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "now an HTTP outbound"
    );
    echo_round_trip(&mut tcp, "the old connection finishes").await;
}

#[tokio::test]
async fn a_removed_listener_stops_accepting_but_its_connections_finish() {
    let a = tcp_backend("a").await;
    let addr = free_addr();
    let mut listeners = new_listeners();
    listeners
        .apply(&config(1, vec![outbound_config(addr, Protocol::Tcp, &[a])]))
        .await
        .unwrap();
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_text(&mut open, 1).await, "a");

    listeners.apply(&config(2, vec![])).await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
    echo_round_trip(&mut open, "still here").await;
}

#[tokio::test]
async fn shutdown_waits_for_open_connections_up_to_its_deadline() {
    let a = tcp_backend("a").await;
    let addr = free_addr();
    let mut listeners = new_listeners();
    listeners
        .apply(&config(1, vec![outbound_config(addr, Protocol::Tcp, &[a])]))
        .await
        .unwrap();
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_text(&mut open, 1).await, "a");
    assert!(
        !listeners.shutdown(Duration::from_millis(100)).await,
        "a connection was still open"
    );

    let mut listeners = new_listeners();
    listeners
        .apply(&config(1, vec![outbound_config(addr, Protocol::Tcp, &[a])]))
        .await
        .unwrap();
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_text(&mut open, 1).await, "a");
    let shutdown = tokio::spawn(listeners.shutdown(Duration::from_secs(10)));
    echo_round_trip(&mut open, "in flight during shutdown").await;
    drop(open);
    assert!(shutdown.await.unwrap(), "every connection finished");
}

#[tokio::test]
async fn http_connections_close_gracefully_on_shutdown() {
    let backend = Backend::start("a").await;
    let inbound = free_addr();
    let outbound = free_addr();
    let mut listeners = new_listeners();
    let mut cfg = config(
        1,
        vec![outbound_config(outbound, Protocol::Http, &[inbound])],
    );
    cfg.inbounds = vec![inbound_config(inbound, backend.addr, Protocol::Http)];
    listeners.apply(&cfg).await.unwrap();
    let mut client = h1_client(outbound).await;
    assert_eq!(get(&mut client, "/").await.0, StatusCode::OK);
    // Idle keep-alive connections (client → outbound → inbound → backend)
    // are closed by the drain rather than waited for.
    assert!(listeners.shutdown(Duration::from_secs(10)).await);
}

#[tokio::test]
async fn a_dead_accept_task_keeps_its_port_and_is_restarted() {
    let a = tcp_backend("a").await;
    let (addr, other) = (free_addr(), free_addr());
    let tcp = |version| {
        config(
            version,
            vec![
                outbound_config(addr, Protocol::Tcp, &[a]),
                outbound_config(other, Protocol::Tcp, &[a]),
            ],
        )
    };
    let mut listeners = new_listeners();
    listeners.apply(&tcp(1)).await.unwrap();
    listeners
        .running
        .get_mut(&addr)
        .unwrap()
        .kill_accept_task()
        .await;
    // The socket outlived its task: no bind is needed to go on, so none can
    // fail halfway through a config.
    assert!(
        std::net::TcpListener::bind(addr).is_err(),
        "the port stayed bound"
    );

    // The same config again restarts accepting.
    listeners.apply(&tcp(2)).await.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_text(&mut stream, 1).await, "a");

    // A new stack takes the socket over, beside a removal.
    listeners
        .running
        .get_mut(&addr)
        .unwrap()
        .kill_accept_task()
        .await;
    listeners
        .apply(&config(3, vec![outbound_config(addr, Protocol::Http, &[])]))
        .await
        .unwrap();
    let mut client = h1_client(addr).await;
    assert_eq!(
        get(&mut client, "/").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(TcpStream::connect(other).await.is_err(), "removed");
    echo_round_trip(&mut stream, "the old connection finishes").await;
}

/// `addr`'s port on another IP.
fn on_ip(ip: [u8; 4], addr: std::net::SocketAddr) -> std::net::SocketAddr {
    (ip, addr.port()).into()
}

#[tokio::test]
async fn a_port_moves_to_the_wildcard_address() {
    let (a, b) = (tcp_backend("a").await, tcp_backend("b").await);
    let addr = free_addr();
    let mut listeners = new_listeners();
    listeners
        .apply(&config(1, vec![outbound_config(addr, Protocol::Tcp, &[a])]))
        .await
        .unwrap();
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_text(&mut open, 1).await, "a");

    // 0.0.0.0:P cannot be bound while 127.0.0.1:P listens, and the
    // listener holding it is the one this config removes.
    let wildcard = on_ip([0, 0, 0, 0], addr);
    listeners
        .apply(&config(
            2,
            vec![outbound_config(wildcard, Protocol::Tcp, &[b])],
        ))
        .await
        .unwrap();
    let mut moved = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_text(&mut moved, 1).await, "b");
    assert_eq!(listeners.running.keys().collect::<Vec<_>>(), [&wildcard]);
    echo_round_trip(&mut open, "the old connection finishes").await;
}

#[tokio::test]
async fn a_port_that_cannot_move_is_bound_back_where_it_was() {
    let a = tcp_backend("a").await;
    let addr = free_addr();
    let mut listeners = new_listeners();
    listeners
        .apply(&config(1, vec![outbound_config(addr, Protocol::Tcp, &[a])]))
        .await
        .unwrap();
    // Another process holds the port on another address too.
    let squatter = std::net::TcpListener::bind(on_ip([127, 0, 0, 2], addr)).unwrap();

    let wildcard = on_ip([0, 0, 0, 0], addr);
    let moved = config(2, vec![outbound_config(wildcard, Protocol::Tcp, &[a])]);
    let error = listeners.apply(&moved).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("cannot bind {wildcard}: Address already in use")),
        "{error}"
    );
    assert_eq!(listeners.running.keys().collect::<Vec<_>>(), [&addr]);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_text(&mut stream, 1).await, "a");

    drop(squatter);
    listeners.apply(&moved).await.unwrap();
    assert_eq!(listeners.running.keys().collect::<Vec<_>>(), [&wildcard]);
}
