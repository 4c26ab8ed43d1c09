//! The distributor over a real loopback gRPC connection.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming, transport::Channel};
use weft_api::{
    Kind, ResourceKey,
    proto::{
        Ack, DeregisterRequest, Hello, Nack, ProxyConfig, ProxyMessage,
        dataplane_discovery_client::DataplaneDiscoveryClient, proxy_message,
    },
};

use super::*;
use crate::{
    identity::{CaKey, DpAuth, Identity},
    store::{Change, SqliteStore, tests::mesh},
};

/// How long a test waits for something that should happen "promptly".
const PROMPTLY: Duration = Duration::from_secs(1);

struct Harness {
    store: Arc<dyn Store>,
    distributor: Distributor,
    identity: Arc<Identity>,
    addr: SocketAddr,
}

impl Harness {
    /// Without token checks: for what tokens have nothing to do with.
    async fn start(grace: Duration, seed: Vec<Change>) -> Self {
        Self::start_with(grace, seed, DpAuth::None).await
    }

    async fn start_with(grace: Duration, seed: Vec<Change>, dp_auth: DpAuth) -> Self {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().await.unwrap());
        let mut batch = vec![Change::Upsert(mesh("default"))];
        batch.extend(seed);
        store.apply(batch).await.unwrap();
        let ca_key = CaKey::generate().unwrap().0;
        let identity = Arc::new(
            Identity::load(store.clone(), Some(ca_key), dp_auth)
                .await
                .unwrap(),
        );
        let distributor = Distributor::start(store.clone(), grace, identity.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = distributor.service();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        Self {
            store,
            distributor,
            identity,
            addr,
        }
    }

    async fn client(&self) -> DataplaneDiscoveryClient<Channel> {
        DataplaneDiscoveryClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    /// Opens a stream and sends Hello with `dataplane`.
    async fn connect(&self, dataplane: serde_json::Value) -> Result<Proxy, tonic::Status> {
        self.connect_with(dataplane, "").await
    }

    /// Opens a stream and sends Hello with `dataplane` and `token`.
    async fn connect_with(
        &self,
        dataplane: serde_json::Value,
        token: &str,
    ) -> Result<Proxy, tonic::Status> {
        self.open(hello(dataplane, token)).await
    }

    /// Opens a stream whose first message is `hello`.
    async fn open(&self, hello: ProxyMessage) -> Result<Proxy, tonic::Status> {
        let (tx, rx) = mpsc::channel(8);
        tx.send(hello).await.unwrap();
        let configs = self
            .client()
            .await
            .stream(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Proxy { tx, configs })
    }
}

/// The proxy's side of one stream.
struct Proxy {
    tx: mpsc::Sender<ProxyMessage>,
    configs: Streaming<ProxyConfig>,
}

impl Proxy {
    async fn next_config(&mut self) -> ProxyConfig {
        tokio::time::timeout(PROMPTLY, self.configs.message())
            .await
            .expect("a config within a second")
            .unwrap()
            .expect("the stream is open")
    }

    /// Configs until one satisfies `want`, within a second.
    async fn config_where(&mut self, want: impl Fn(&ProxyConfig) -> bool) -> ProxyConfig {
        let deadline = tokio::time::Instant::now() + PROMPTLY;
        loop {
            let config = tokio::time::timeout_at(deadline, self.configs.message())
                .await
                .expect("the expected config within a second")
                .unwrap()
                .expect("the stream is open");
            if want(&config) {
                return config;
            }
        }
    }

    async fn send(&self, kind: proxy_message::Kind) {
        self.tx
            .send(ProxyMessage { kind: Some(kind) })
            .await
            .unwrap();
    }
}

fn hello(dataplane: serde_json::Value, token: &str) -> ProxyMessage {
    ProxyMessage {
        kind: Some(proxy_message::Kind::Hello(Hello {
            dataplane_json: dataplane.to_string(),
            proxy_version: "0.1.0-test".into(),
            running_version: 0,
            token: token.to_owned(),
            wall_clock_unix_ms: 0,
        })),
    }
}

fn backend(name: &str, port: u16) -> serde_json::Value {
    json!({
        "type": "Dataplane", "mesh": "default", "name": name,
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": port, "servicePort": 8080,
                         "tags": {"service": "backend", "protocol": "http"}}],
            "admin": {"port": port + 1000},
        },
    })
}

fn caller() -> serde_json::Value {
    json!({
        "type": "Dataplane", "mesh": "default", "name": "web-1",
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": 20001, "servicePort": 8001, "tags": {"service": "web"}}],
            "outbound": [{"port": 30001, "service": "backend"}],
            "admin": {"port": 9902},
        },
    })
}

fn endpoint_names(config: &ProxyConfig) -> Vec<String> {
    config.outbounds[0]
        .endpoints
        .iter()
        .map(|e| e.dataplane.clone())
        .collect()
}

fn resource(value: serde_json::Value) -> weft_api::Resource {
    weft_api::Resource::from_value(value).unwrap()
}

/// Polls `f` until it returns something, for at most a second.
async fn wait_for<T>(f: impl Fn() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

mod identity;
mod pushes;
mod streams;
mod tap;
