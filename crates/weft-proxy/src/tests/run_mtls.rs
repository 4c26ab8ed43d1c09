//! mTLS through [`crate::run`] against the fake control plane and its test
//! CA: the token, the first certificate before the ACK, NACK and retry
//! when none can be had, re-issue on a new issuer, and renewal under open
//! connections.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use http::{Request, StatusCode};
use rcgen::{CertificateSigningRequestParams, SanType};
use tokio::{io::AsyncWriteExt, net::TcpStream, sync::oneshot, task::JoinHandle};
use weft_api::{
    Dataplane, Port,
    dataplane::{Admin, Inbound, Networking},
    proto::{self, proxy_message::Kind},
};

use super::{control_plane::FakeControlPlane, support::*};
use crate::{ProxyOptions, run};

const TOKEN: &str = "dataplane-token";

fn dataplane(name: &str, service: &str, admin: SocketAddr) -> Dataplane {
    Dataplane {
        mesh: "default".into(),
        name: name.into(),
        networking: Networking {
            address: "127.0.0.1".into(),
            inbound: vec![Inbound {
                port: Port(20001),
                service_port: Port(8001),
                service_address: None,
                address: None,
                tags: [("service".to_owned(), service.to_owned())].into(),
            }],
            outbound: vec![],
            admin: Some(Admin {
                port: Port(admin.port()),
                address: None,
            }),
            transparent_proxying: None,
        },
    }
}

struct Proxy {
    admin: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn start(cp: &FakeControlPlane, name: &str, service: &str) -> Proxy {
    let admin = free_addr();
    let options = ProxyOptions {
        dataplane: dataplane(name, service, admin),
        control_plane: cp.url.clone(),
        cp_ca_pem: None,
        drain_time: Duration::from_millis(20),
        token: Some(TOKEN.into()),
        stats_interval: crate::DEFAULT_STATS_INTERVAL,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(options, async move {
        let _ = stopped.await;
    }));
    Proxy { admin, stop, task }
}

fn mtls(cp: &FakeControlPlane, mode: proto::MtlsMode, issuer: &str) -> Option<proto::Mtls> {
    Some(proto::Mtls {
        mode: mode.into(),
        trust_bundle_pem: cp.ca.pem().to_owned(),
        certificate_lifetime_seconds: 3600,
        issuer_id: issuer.into(),
    })
}

fn config(name: &str, version: u64, mtls: Option<proto::Mtls>) -> proto::ProxyConfig {
    proto::ProxyConfig {
        version,
        mesh: "default".into(),
        dataplane: name.into(),
        inbounds: vec![],
        outbounds: vec![],
        mtls,
        transparent_proxy: None,
        ..Default::default()
    }
}

fn outbound(
    listen: SocketAddr,
    protocol: proto::Protocol,
    endpoint: SocketAddr,
) -> proto::Outbound {
    proto::Outbound {
        address: listen.ip().to_string(),
        port: listen.port().into(),
        service: "backend".into(),
        protocol: protocol.into(),
        endpoints: vec![proto::Endpoint {
            address: endpoint.ip().to_string(),
            port: endpoint.port().into(),
            dataplane: "backend-1".into(),
            tags: Default::default(),
        }],
        policies: None,
        ..Default::default()
    }
}

fn inbound(listen: SocketAddr, protocol: proto::Protocol, app: SocketAddr) -> proto::Inbound {
    proto::Inbound {
        address: listen.ip().to_string(),
        port: listen.port().into(),
        service_address: app.ip().to_string(),
        service_port: app.port().into(),
        protocol: protocol.into(),
        tags: [("service".to_owned(), "backend".to_owned())].into(),
        // What a new mesh starts with; these tests are about mTLS.
        permissions: vec![proto::Permission {
            name: "allow-all".into(),
            action: proto::PermissionAction::PermissionAllow.into(),
            ..Default::default()
        }],
        rate_limits: vec![],
        ..Default::default()
    }
}

async fn admin_get(admin: SocketAddr, path: &str) -> (StatusCode, String) {
    let mut client = h1_client(admin).await;
    let (status, _, body) = get(&mut client, path).await;
    (status, body)
}

/// The value of a metric in `/metrics`.
async fn metric(admin: SocketAddr, name: &str) -> u64 {
    let (_, text) = admin_get(admin, "/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn csr_uris(csr_pem: &str) -> Vec<String> {
    CertificateSigningRequestParams::from_pem(csr_pem)
        .unwrap()
        .params
        .subject_alt_names
        .into_iter()
        .filter_map(|san| match san {
            SanType::URI(uri) => Some(uri.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn gets_a_certificate_before_acking_and_sends_its_token_everywhere() {
    let mut cp = FakeControlPlane::start().await;
    let proxy = start(&cp, "web-1", "web");
    let mut session = cp.session().await;
    assert_eq!(session.hello.token, TOKEN);

    session
        .push(config(
            "web-1",
            1,
            mtls(&cp, proto::MtlsMode::MtlsStrict, "ca-1"),
        ))
        .await;
    let request = cp.certificate_request().await;
    assert_eq!(
        (
            request.mesh.as_str(),
            request.dataplane.as_str(),
            request.token.as_str()
        ),
        ("default", "web-1", TOKEN)
    );
    assert_eq!(csr_uris(&request.csr_pem), ["spiffe://default/web"]);
    assert_eq!(session.reply().await, Kind::Ack(proto::Ack { version: 1 }));
    assert_eq!(
        admin_get(proxy.admin, "/ready").await,
        (StatusCode::OK, "ready".into())
    );

    let (_, body) = admin_get(proxy.admin, "/config").await;
    assert!(!body.contains("PRIVATE KEY"), "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["mtls"]["mode"], "strict");
    assert_eq!(json["mtls"]["issuerId"], "ca-1");
    assert_eq!(json["mtls"]["trustBundle"][0], "CN=weft test CA");
    assert_eq!(
        metric(proxy.admin, "weft_tls_certificates_issued_total").await,
        1
    );

    // The same issuer again: the certificate is still good.
    session
        .push(config(
            "web-1",
            2,
            mtls(&cp, proto::MtlsMode::MtlsPermissive, "ca-1"),
        ))
        .await;
    assert_eq!(session.reply().await, Kind::Ack(proto::Ack { version: 2 }));
    assert!(!cp.has_certificate_request());

    proxy.stop.send(()).unwrap();
    assert_eq!(cp.deregistered().await.token, TOKEN);
    proxy.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn no_certificate_is_a_nack_then_the_agent_retries_and_acks() {
    let mut cp = FakeControlPlane::start().await;
    let proxy = start(&cp, "web-1", "web");
    let mut session = cp.session().await;
    let mut plain = config("web-1", 1, None);
    let listen = free_addr();
    plain.outbounds = vec![outbound(listen, proto::Protocol::Tcp, free_addr())];
    assert_eq!(
        session.reply_to(plain.clone()).await,
        Kind::Ack(proto::Ack { version: 1 })
    );

    cp.set_failing(true);
    let mut strict = plain;
    strict.version = 2;
    strict.mtls = mtls(&cp, proto::MtlsMode::MtlsStrict, "ca-1");
    let Kind::Nack(nack) = session.reply_to(strict).await else {
        panic!("expected a NACK")
    };
    assert_eq!(nack.version, 2);
    assert_eq!(
        nack.reason,
        "cannot obtain a workload certificate: IssueCertificate failed (Unavailable): CA offline"
    );
    cp.certificate_request().await;
    let (_, body) = admin_get(proxy.admin, "/config").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["version"], 1, "the last good config runs");
    assert_eq!(json["mtls"]["mode"], "off");
    assert_eq!(admin_get(proxy.admin, "/ready").await.0, StatusCode::OK);
    TcpStream::connect(listen).await.expect("still serving");

    // The agent retries on its own: one more failure (no second NACK),
    // then a certificate and the ACK.
    let failed_at = Instant::now();
    cp.certificate_request().await;
    let waited = failed_at.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "backoff, not a tight loop: {waited:?}"
    );
    cp.set_failing(false);
    assert_eq!(session.reply().await, Kind::Ack(proto::Ack { version: 2 }));
    let (_, body) = admin_get(proxy.admin, "/config").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(
        metric(proxy.admin, "weft_tls_certificate_failures_total").await,
        2
    );
}

#[tokio::test]
async fn a_first_config_without_a_certificate_leaves_the_proxy_not_ready() {
    let mut cp = FakeControlPlane::start().await;
    cp.set_failing(true);
    let proxy = start(&cp, "web-1", "web");
    let mut session = cp.session().await;
    let reply = session
        .reply_to(config(
            "web-1",
            1,
            mtls(&cp, proto::MtlsMode::MtlsPermissive, "ca-1"),
        ))
        .await;
    assert!(matches!(reply, Kind::Nack(_)), "{reply:?}");
    cp.certificate_request().await;
    assert_eq!(
        admin_get(proxy.admin, "/ready").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no config from the control plane yet".into()
        )
    );
}

#[tokio::test]
async fn a_new_issuer_gets_a_new_certificate_before_the_ack() {
    let mut cp = FakeControlPlane::start().await;
    let _proxy = start(&cp, "web-1", "web");
    let mut session = cp.session().await;
    let reply = session
        .reply_to(config(
            "web-1",
            1,
            mtls(&cp, proto::MtlsMode::MtlsStrict, "ca-1"),
        ))
        .await;
    assert_eq!(reply, Kind::Ack(proto::Ack { version: 1 }));
    cp.certificate_request().await;

    session
        .push(config(
            "web-1",
            2,
            mtls(&cp, proto::MtlsMode::MtlsStrict, "ca-2"),
        ))
        .await;
    cp.certificate_request().await;
    assert_eq!(session.reply().await, Kind::Ack(proto::Ack { version: 2 }));
    assert!(!cp.has_certificate_request(), "one request per issuer");
}

#[tokio::test]
async fn renewal_keeps_open_connections_and_serves_new_ones() {
    let (backend_app, tcp_app) = (Backend::start("a").await, tcp_backend("t").await);
    let mut cp = FakeControlPlane::start().await;
    let lifetime = Duration::from_secs(4);
    cp.set_lifetime(lifetime);
    let strict = mtls(&cp, proto::MtlsMode::MtlsStrict, "ca-1");

    let backend = start(&cp, "backend-1", "backend");
    let mut backend_session = cp.session().await;
    let (grpc_in, tcp_in) = (free_addr(), free_addr());
    let mut backend_config = config("backend-1", 1, strict.clone());
    backend_config.inbounds = vec![
        inbound(grpc_in, proto::Protocol::Grpc, backend_app.addr),
        inbound(tcp_in, proto::Protocol::Tcp, tcp_app),
    ];
    backend_session.push(backend_config).await;
    let issued_at = Instant::now();
    cp.certificate_request().await;
    assert_eq!(
        backend_session.reply().await,
        Kind::Ack(proto::Ack { version: 1 })
    );

    let web = start(&cp, "web-1", "web");
    let mut web_session = cp.session().await;
    let (grpc_out, tcp_out) = (free_addr(), free_addr());
    let mut web_config = config("web-1", 1, strict);
    web_config.outbounds = vec![
        outbound(grpc_out, proto::Protocol::Grpc, grpc_in),
        outbound(tcp_out, proto::Protocol::Tcp, tcp_in),
    ];
    web_session.push(web_config).await;
    cp.certificate_request().await;
    assert_eq!(
        web_session.reply().await,
        Kind::Ack(proto::Ack { version: 1 })
    );

    // Opened before any renewal.
    let mut h2 = h2_client(grpc_out).await;
    let call = |path: &'static str| {
        Request::post(format!("http://backend.mesh{path}"))
            .header("content-type", "application/grpc")
            .body(empty())
            .unwrap()
    };
    let (status, _, body) = read(h2.send_request(call("/before")).await.unwrap()).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "a POST /before host=backend.mesh")
    );
    let mut tcp = TcpStream::connect(tcp_out).await.unwrap();
    assert_eq!(read_text(&mut tcp, 1).await, "t");

    // Both proxies renew at 60-80 % of the lifetime, then the first
    // certificates expire.
    let mut renewed = [
        cp.certificate_request().await.dataplane,
        cp.certificate_request().await.dataplane,
    ];
    renewed.sort();
    assert_eq!(renewed, ["backend-1", "web-1"]);
    let renewed_after = issued_at.elapsed();
    assert!(
        renewed_after < lifetime,
        "renewed {renewed_after:?} after the first issue"
    );
    tokio::time::sleep_until((issued_at + lifetime + Duration::from_millis(500)).into()).await;

    let (status, _, body) = read(h2.send_request(call("/after")).await.unwrap()).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "a POST /after host=backend.mesh")
    );
    tcp.write_all(b"still here").await.unwrap();
    assert_eq!(read_text(&mut tcp, 10).await, "still here");
    assert_eq!(
        backend_app.connections(),
        1,
        "one pooled connection all along"
    );

    // A new mTLS connection needs the renewed certificates: the first ones
    // have expired.
    let mut fresh = TcpStream::connect(tcp_out).await.unwrap();
    assert_eq!(read_text(&mut fresh, 1).await, "t");
    for admin in [web.admin, backend.admin] {
        assert!(metric(admin, "weft_tls_certificates_issued_total").await >= 2);
        assert_eq!(admin_get(admin, "/ready").await.0, StatusCode::OK);
    }
}
