//! The DNS server on real sockets: mesh names answered, the rest forwarded
//! to a resolver (a fake one here), over UDP and TCP.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{Name, RData, RecordType, rdata::A},
};
use tokio::net::{TcpStream, UdpSocket};

use super::*;
use crate::config::{MeshServiceConfig, TransparentConfig};

/// A transparent config with `services` and the default suffix, `mesh`.
pub(crate) fn transparent_config(services: Vec<MeshServiceConfig>) -> TransparentConfig {
    TransparentConfig {
        inbound_port: 15006,
        outbound_port: 15001,
        dns_port: Some(15053),
        dns_suffix: "mesh".into(),
        outside_mesh: Default::default(),
        server_first_ports: Default::default(),
        services,
    }
}

/// A service of protocol http with `ip`, no endpoints.
pub(crate) fn service(name: &str, ip: Option<&str>) -> MeshServiceConfig {
    MeshServiceConfig {
        name: name.into(),
        virtual_ip: ip.map(|i| i.parse::<IpAddr>().unwrap()),
        protocol: weft_api::Protocol::Http,
        endpoints: vec![],
        instance_addresses: vec![],
    }
}

fn names() -> Names {
    Names::new(&transparent_config(vec![service(
        "backend",
        Some("240.0.0.7"),
    )]))
}

fn query(name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

/// A resolver that answers every A query with 192.0.2.1, over UDP.
async fn fake_resolver() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.unwrap();
            let request = Message::from_vec(&buf[..n]).unwrap();
            let mut answer = Message::response(request.metadata.id, request.metadata.op_code);
            let q = request.queries[0].clone();
            answer.add_answer(hickory_proto::rr::Record::from_rdata(
                q.name().clone(),
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
            ));
            answer.add_query(q);
            socket
                .send_to(&answer.to_vec().unwrap(), from)
                .await
                .unwrap();
        }
    });
    addr
}

fn first_a(bytes: &[u8]) -> (ResponseCode, Option<Ipv4Addr>) {
    let m = Message::from_vec(bytes).unwrap();
    let ip = m.answers.iter().find_map(|r| match r.data {
        RData::A(A(ip)) => Some(ip),
        _ => None,
    });
    (m.metadata.response_code, ip)
}

/// `Bound::bind` on port 0 gives UDP and TCP different ports; tests look
/// both up.
async fn bound_pair() -> (Server, SocketAddr, SocketAddr, Arc<DnsStats>) {
    let bound = Bound::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let udp = bound.sockets[0].0.local_addr().unwrap();
    let tcp = bound.sockets[0].1.local_addr().unwrap();
    let stats = Arc::new(DnsStats::default());
    let server = bound.start_with(names(), vec![fake_resolver().await], stats.clone());
    (server, udp, tcp, stats)
}

#[tokio::test]
async fn udp_mesh_names_are_local_and_others_forwarded() {
    let (_server, udp, _, stats) = bound_pair().await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(udp).await.unwrap();
    let mut buf = [0u8; 512];

    client.send(&query("backend.mesh.")).await.unwrap();
    let n = client.recv(&mut buf).await.unwrap();
    assert_eq!(
        first_a(&buf[..n]),
        (ResponseCode::NoError, Some(Ipv4Addr::new(240, 0, 0, 7)))
    );

    client.send(&query("example.com.")).await.unwrap();
    let n = client.recv(&mut buf).await.unwrap();
    assert_eq!(
        first_a(&buf[..n]),
        (ResponseCode::NoError, Some(Ipv4Addr::new(192, 0, 2, 1)))
    );
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        (
            count(&stats.local),
            count(&stats.forwarded),
            count(&stats.failed)
        ),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn tcp_queries_are_answered_in_order_on_one_connection() {
    let (_server, _, tcp, _) = bound_pair().await;
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    upstream::write_framed(&mut stream, &query("backend.mesh."))
        .await
        .unwrap();
    upstream::write_framed(&mut stream, &query("missing.mesh."))
        .await
        .unwrap();
    let first = upstream::read_framed(&mut stream).await.unwrap().unwrap();
    assert_eq!(first_a(&first).1, Some(Ipv4Addr::new(240, 0, 0, 7)));
    let second = upstream::read_framed(&mut stream).await.unwrap().unwrap();
    assert_eq!(first_a(&second).0, ResponseCode::NXDomain);
}

#[tokio::test]
async fn a_resolver_that_does_not_answer_means_no_answer_not_a_hang() {
    // A socket that never replies.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let started = tokio::time::Instant::now();
    let result =
        upstream::forward_udp(&[silent.local_addr().unwrap()], &query("example.com.")).await;
    assert!(result.is_err());
    assert!(started.elapsed() < upstream::QUERY_TIMEOUT * 2);
}
