//! `weft_control_plane::run` end to end: real listeners, a plain HTTP
//! request, a proxy stream, and a graceful stop while that stream is open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{free_addr, http, wait_healthy};
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot},
};
use tokio_stream::wrappers::ReceiverStream;
use weft_api::proto::{
    Hello, ProxyMessage, dataplane_discovery_client::DataplaneDiscoveryClient, proxy_message,
};
use weft_control_plane::{ControlPlaneConfig, DpAuth, StoreUrl};

#[tokio::test]
async fn serves_and_stops_gracefully_with_a_proxy_connected() {
    let (api_addr, dp_addr) = (free_addr().await, free_addr().await);
    let config = ControlPlaneConfig {
        admin_token_file: None,
        tls: Default::default(),
        store: StoreUrl::Memory,
        api_addr,
        dp_addr,
        startup_grace: Duration::ZERO,
        dp_keepalive: (Duration::from_secs(10), Duration::from_secs(5)),
        // This test is about serving and stopping; tests/identity.rs has tokens.
        dp_auth: DpAuth::None,
        ca_key: None,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let cp = tokio::spawn(weft_control_plane::run(config, async {
        let _ = stopped.await;
    }));
    wait_healthy(api_addr).await;

    let (status, body) = http(api_addr, "GET", "/healthz", "").await;
    assert_eq!(
        (status, &body["status"], &body["revision"]),
        (200, &json!("ok"), &json!(0))
    );
    let (status, _) = http(api_addr, "PUT", "/meshes/default", "{}").await;
    assert_eq!(status, 200);

    let dataplane = json!({
        "type": "Dataplane", "mesh": "default", "name": "web-1",
        "networking": {"address": "127.0.0.1",
                       "inbound": [{"port": 20001, "servicePort": 8001, "tags": {"service": "web"}}]},
    });
    let (tx, rx) = mpsc::channel(1);
    tx.send(ProxyMessage {
        kind: Some(proxy_message::Kind::Hello(Hello {
            dataplane_json: dataplane.to_string(),
            proxy_version: "test".into(),
            running_version: 0,
            token: String::new(),
            wall_clock_unix_ms: 0,
        })),
    })
    .await
    .unwrap();
    let mut client = DataplaneDiscoveryClient::connect(format!("http://{dp_addr}"))
        .await
        .unwrap();
    let mut configs = client
        .stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let config = configs.message().await.unwrap().unwrap();
    assert_eq!(config.dataplane, "web-1");
    let (_, status) = http(
        api_addr,
        "GET",
        "/meshes/default/dataplanes/web-1/status",
        "",
    )
    .await;
    assert_eq!(status["online"], true);

    // Stop with the stream still open: it must not hold the shutdown up.
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(3), cp)
        .await
        .expect("stopped within 3 s")
        .unwrap();
    result.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(1), configs.message())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    drop(tx);
}

#[tokio::test]
async fn a_taken_address_is_an_error_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let config = ControlPlaneConfig {
        admin_token_file: None,
        tls: Default::default(),
        store: StoreUrl::Memory,
        api_addr: free_addr().await,
        dp_addr: addr,
        startup_grace: Duration::ZERO,
        ..ControlPlaneConfig::default()
    };
    let err = weft_control_plane::run(config, std::future::pending())
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&addr.to_string()), "{text}");
    assert!(text.contains("cannot listen for proxies"), "{text}");
}

#[tokio::test]
async fn a_store_in_a_new_directory_is_created() {
    let dir = std::env::temp_dir().join(format!("weft-cp-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("a/b/store.db");
    let api_addr = free_addr().await;
    let config = ControlPlaneConfig {
        admin_token_file: None,
        tls: Default::default(),
        store: StoreUrl::Sqlite(path.clone()),
        api_addr,
        dp_addr: free_addr().await,
        startup_grace: Duration::ZERO,
        ..ControlPlaneConfig::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let cp = tokio::spawn(weft_control_plane::run(config, async {
        let _ = stopped.await;
    }));
    wait_healthy(api_addr).await;
    let (status, _) = http(api_addr, "GET", "/healthz", "").await;
    assert_eq!(status, 200);
    stop.send(()).unwrap();
    cp.await.unwrap().unwrap();
    assert!(path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
