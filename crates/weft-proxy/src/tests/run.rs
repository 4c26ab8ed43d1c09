//! The whole proxy through [`crate::run`], against a fake control plane:
//! registration, ACK/NACK, readiness, reconnects and shutdown.

use std::{net::SocketAddr, time::Duration};

use http::StatusCode;
use tokio::{sync::oneshot, task::JoinHandle};
use weft_api::{
    Dataplane, Port, Resource,
    dataplane::{Admin, Inbound, Networking},
    proto::{self, proxy_message::Kind},
};

use super::{control_plane::FakeControlPlane, support::*};
use crate::{ProxyOptions, run};

fn dataplane(name: &str, admin: SocketAddr) -> Dataplane {
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
                tags: [("service".to_owned(), "web".to_owned())].into(),
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

/// A config for `web-1` with one TCP outbound on `listen`.
fn config(version: u64, listen: SocketAddr) -> proto::ProxyConfig {
    proto::ProxyConfig {
        mtls: None,
        transparent_proxy: None,
        version,
        mesh: "default".into(),
        dataplane: "web-1".into(),
        inbounds: vec![],
        outbounds: vec![proto::Outbound {
            address: listen.ip().to_string(),
            port: u32::from(listen.port()),
            service: "backend".into(),
            protocol: proto::Protocol::Tcp.into(),
            endpoints: vec![],
            policies: None,
            ..Default::default()
        }],
        ..Default::default()
    }
}

struct Running {
    admin: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn start(name: &str, cp: &FakeControlPlane) -> Running {
    start_reporting(name, cp, crate::DEFAULT_STATS_INTERVAL)
}

fn start_reporting(name: &str, cp: &FakeControlPlane, stats_interval: Duration) -> Running {
    let admin = free_addr();
    let options = ProxyOptions {
        dataplane: dataplane(name, admin),
        control_plane: cp.url.clone(),
        cp_ca_pem: None,
        drain_time: Duration::from_millis(20),
        token: None,
        stats_interval,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(options, async move {
        let _ = stopped.await;
    }));
    Running { admin, stop, task }
}

async fn admin_get(admin: SocketAddr, path: &str) -> (StatusCode, String) {
    let mut client = h1_client(admin).await;
    let (status, _, body) = get(&mut client, path).await;
    (status, body)
}

#[tokio::test]
async fn registers_applies_reports_and_deregisters() {
    let mut cp = FakeControlPlane::start().await;
    let proxy = start("web-1", &cp);
    let mut session = cp.session().await;
    assert_eq!(session.hello.proxy_version, weft_api::VERSION);
    assert_eq!(session.hello.running_version, 0);
    let sent: serde_json::Value = serde_json::from_str(&session.hello.dataplane_json).unwrap();
    let Resource::Dataplane(sent) = Resource::from_value(sent).unwrap() else {
        panic!("not a Dataplane")
    };
    assert_eq!(sent, dataplane("web-1", proxy.admin));

    assert_eq!(
        admin_get(proxy.admin, "/ready").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no config from the control plane yet".into()
        )
    );

    let outbound = free_addr();
    session.push(config(1, outbound)).await;
    assert_eq!(session.reply().await, Kind::Ack(proto::Ack { version: 1 }));
    assert_eq!(
        admin_get(proxy.admin, "/ready").await,
        (StatusCode::OK, "ready".into())
    );
    let (status, body) = admin_get(proxy.admin, "/config").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["dataplane"], "web-1");
    assert_eq!(json["outbounds"][0]["listen"], outbound.to_string());
    assert_eq!(
        admin_get(proxy.admin, "/nope").await.0,
        StatusCode::NOT_FOUND
    );

    // A bad config is refused with the reason; the good one keeps running.
    let mut bad = config(2, outbound);
    bad.outbounds[0].port = 0;
    let Kind::Nack(nack) = session.reply_to(bad).await else {
        panic!("expected a NACK")
    };
    assert_eq!(nack.version, 2);
    assert_eq!(nack.reason, "outbounds[0].port: 0 is not a port (1-65535)");
    let mut other = config(3, outbound);
    other.dataplane = "web-2".into();
    let Kind::Nack(nack) = session.reply_to(other).await else {
        panic!("expected a NACK")
    };
    assert_eq!(
        nack.reason,
        "config is for dataplane default/web-2, this proxy runs default/web-1"
    );
    let json: serde_json::Value =
        serde_json::from_str(&admin_get(proxy.admin, "/config").await.1).unwrap();
    assert_eq!(json["version"], 1);
    tokio::net::TcpStream::connect(outbound)
        .await
        .expect("the outbound of version 1 still listens");

    proxy.stop.send(()).unwrap();
    let deregistered = cp.deregistered().await;
    assert_eq!(
        (deregistered.mesh.as_str(), deregistered.name.as_str()),
        ("default", "web-1")
    );
    proxy.task.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(outbound).await.is_err(),
        "listeners are closed"
    );
}

#[tokio::test]
async fn a_config_that_cannot_bind_is_nacked_then_retried_until_it_applies() {
    let mut cp = FakeControlPlane::start().await;
    let proxy = start("web-1", &cp);
    let mut session = cp.session().await;
    let (taken, busy) = listen().await;
    let Kind::Nack(nack) = session.reply_to(config(1, busy)).await else {
        panic!("expected a NACK")
    };
    assert!(
        nack.reason
            .starts_with(&format!("cannot bind {busy}: Address already in use")),
        "{}",
        nack.reason
    );
    assert_eq!(
        admin_get(proxy.admin, "/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // The control plane pushes nothing new: the agent retries on its own
    // (after 0.5-1 s, then longer) and ACKs once the port is free.
    drop(taken);
    let reply = tokio::time::timeout(Duration::from_secs(5), session.reply())
        .await
        .expect("an answer without a new push");
    assert_eq!(reply, Kind::Ack(proto::Ack { version: 1 }));
    assert_eq!(admin_get(proxy.admin, "/ready").await.0, StatusCode::OK);
    tokio::net::TcpStream::connect(busy)
        .await
        .expect("the outbound listens");
}

#[tokio::test]
async fn a_newer_config_replaces_one_waiting_for_its_port() {
    let mut cp = FakeControlPlane::start().await;
    let proxy = start("web-1", &cp);
    let mut session = cp.session().await;
    let (taken, busy) = listen().await;
    let reply = session.reply_to(config(1, busy)).await;
    assert!(matches!(reply, Kind::Nack(_)), "{reply:?}");
    let free = free_addr();
    assert_eq!(
        session.reply_to(config(2, free)).await,
        Kind::Ack(proto::Ack { version: 2 })
    );

    // Past the first retry of version 1, had it still been pending.
    drop(taken);
    let late = tokio::time::timeout(Duration::from_millis(1500), session.reply()).await;
    assert!(late.is_err(), "unexpected answer: {late:?}");
    let json: serde_json::Value =
        serde_json::from_str(&admin_get(proxy.admin, "/config").await.1).unwrap();
    assert_eq!(json["version"], 2);
    assert!(tokio::net::TcpStream::connect(busy).await.is_err());
}

#[tokio::test]
async fn reconnects_with_its_running_version_and_keeps_serving() {
    let mut cp = FakeControlPlane::start().await;
    let proxy = start("web-1", &cp);
    let mut session = cp.session().await;
    let outbound = free_addr();
    session.push(config(4, outbound)).await;
    assert_eq!(session.reply().await, Kind::Ack(proto::Ack { version: 4 }));

    session
        .fail(tonic::Status::unavailable("control plane restarting"))
        .await;
    let session = cp.session().await;
    assert_eq!(session.hello.running_version, 4);
    assert_eq!(admin_get(proxy.admin, "/ready").await.0, StatusCode::OK);
    tokio::net::TcpStream::connect(outbound)
        .await
        .expect("still serving");

    // A stream that simply ends is reconnected too.
    drop(session);
    assert_eq!(cp.session().await.hello.running_version, 4);
}

#[tokio::test]
async fn already_connected_is_a_warning_and_retried() {
    let (logs, _guard) = super::logs::Logs::capture();
    let cp = FakeControlPlane::start().await;
    // The fake control plane answers ALREADY_EXISTS to this name.
    let _proxy = start("refused", &cp);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while logs
        .lines_with(&["still has a stream for this dataplane"])
        .len()
        < 2
    {
        assert!(tokio::time::Instant::now() < deadline, "{}", logs.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines = logs.lines_with(&["still has a stream for this dataplane"]);
    assert!(lines.iter().all(|l| l.contains(" WARN ")), "{lines:?}");
    assert!(logs.lines_with(&[" ERROR "]).is_empty(), "{}", logs.text());
}

#[tokio::test]
async fn admin_bind_failure_names_the_address() {
    let cp = FakeControlPlane::start().await;
    let (_taken, busy) = listen().await;
    let options = ProxyOptions {
        dataplane: dataplane("web-1", busy),
        control_plane: cp.url.clone(),
        cp_ca_pem: None,
        drain_time: crate::DEFAULT_DRAIN_TIME,
        token: None,
        stats_interval: crate::DEFAULT_STATS_INTERVAL,
    };
    let error = run(options, std::future::pending()).await.unwrap_err();
    assert!(
        format!("{error:#}").starts_with(&format!("cannot bind the admin server to {busy}: ")),
        "{error:#}"
    );
}

/// The value of an unlabelled series on `/metrics`.
async fn gauge(admin: SocketAddr, name: &str) -> Option<i64> {
    let (_, text) = admin_get(admin, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn reports_traffic_every_interval_and_shows_the_stream_state() {
    let mut cp = FakeControlPlane::start().await;
    let proxy = start_reporting("web-1", &cp, Duration::from_millis(50));
    let mut session = cp.session().await;
    let reply = session.reply_to(config(7, free_addr())).await;
    assert!(matches!(reply, Kind::Ack(_)), "{reply:?}");
    assert_eq!(
        gauge(proxy.admin, "weft_control_plane_connected").await,
        Some(1)
    );
    assert_eq!(gauge(proxy.admin, "weft_config_version").await, Some(7));
    let first = session.report().await;
    let second = session.report().await;
    assert!(second.taken_at_ms > first.taken_at_ms);
    assert!(!first.latency_bounds_seconds.is_empty());

    session.fail(tonic::Status::unavailable("going away")).await;
    let mut connected = Some(1);
    for _ in 0..100 {
        connected = gauge(proxy.admin, "weft_control_plane_connected").await;
        if connected == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(connected, Some(0));
    proxy.stop.send(()).unwrap();
}
