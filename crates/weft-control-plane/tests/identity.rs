//! Workload identity through `weft_control_plane::run`: tokens issued and
//! revoked over REST, registration and certificates over gRPC, and what a
//! restart on the same SQLite file keeps (the CA, the signing key, the
//! revocations) without ever writing a private key in the clear.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{net::SocketAddr, path::Path, time::Duration};

use serde_json::{Value, json};
use support::{free_addr, http, wait_healthy};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};
use weft_api::proto::{
    CertificateRequest, Hello, ProxyConfig, ProxyMessage,
    dataplane_discovery_client::DataplaneDiscoveryClient, proxy_message,
};
use weft_control_plane::{CaKey, ControlPlaneConfig, DpAuth, StoreUrl};

/// A control plane running on loopback until dropped or stopped.
struct Running {
    api: SocketAddr,
    dp: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(store: &Path, ca_key: CaKey) -> Self {
        let (api, dp) = (free_addr().await, free_addr().await);
        let config = ControlPlaneConfig {
            admin_token_file: None,
            tls: Default::default(),
            store: StoreUrl::Sqlite(store.to_owned()),
            api_addr: api,
            dp_addr: dp,
            startup_grace: Duration::ZERO,
            dp_keepalive: (Duration::from_secs(10), Duration::from_secs(5)),
            ca_key: Some(ca_key),
            dp_auth: DpAuth::Token,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(weft_control_plane::run(config, async {
            let _ = stopped.await;
        }));
        wait_healthy(api).await;
        Self {
            api,
            dp,
            stop: Some(stop),
            task,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        http(self.api, method, path, &body).await
    }

    async fn token(&self, services: &[&str]) -> (String, String) {
        let (status, body) = self
            .call(
                "POST",
                "/tokens/dataplane",
                json!({"mesh": "default", "services": services}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["token"].as_str().unwrap().into(),
            body["id"].as_str().unwrap().into(),
        )
    }

    async fn client(&self) -> DataplaneDiscoveryClient<tonic::transport::Channel> {
        DataplaneDiscoveryClient::connect(format!("http://{}", self.dp))
            .await
            .unwrap()
    }

    /// Opens a stream for Dataplane `web-1` with `token`.
    async fn connect(
        &self,
        token: &str,
    ) -> Result<(mpsc::Sender<ProxyMessage>, Streaming<ProxyConfig>), tonic::Status> {
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
                token: token.into(),
                wall_clock_unix_ms: 0,
            })),
        })
        .await
        .unwrap();
        let configs = self
            .client()
            .await
            .stream(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok((tx, configs))
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap()
    }
}

fn csr() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fixed leading bytes of the PKCS#8 documents the control plane makes: a
/// P-256 key (rcgen) and an Ed25519 key (ring). Neither may be in the store.
const P256_PKCS8: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
const ED25519_PKCS8: &[u8] = &[
    0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn tokens_certificates_and_a_restart_on_the_same_store() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("weft-cp-identity-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let db = dir.0.join("store.db");
    let (ca_key, ca_key_text) = CaKey::generate().unwrap();
    let cp = Running::start(&db, ca_key.clone()).await;

    let (status, body) = cp
        .call(
            "PUT",
            "/meshes/default",
            json!({"mtls": {"mode": "strict", "ca": {"type": "builtin"}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, ca) = cp.call("GET", "/meshes/default/ca", Value::Null).await;
    assert_eq!(status, 200, "{ca}");

    // Registration: refused without a token or with a bad one.
    let err = cp.connect("").await.err().unwrap();
    assert_eq!(
        (err.code(), err.message()),
        (Code::Unauthenticated, "dataplane token: missing")
    );
    let err = cp.connect("weft1.e30.AAAA").await.err().unwrap();
    assert_eq!(err.code(), Code::Unauthenticated, "{}", err.message());
    let (api_only, _) = cp.token(&["api"]).await;
    assert_eq!(
        cp.connect(&api_only).await.err().unwrap().code(),
        Code::PermissionDenied
    );

    let (revoked, revoked_id) = cp.token(&["web"]).await;
    let (kept, _) = cp.token(&["web"]).await;
    let (_tx, mut configs) = cp.connect(&revoked).await.unwrap();
    let config = configs.message().await.unwrap().unwrap();
    let mtls = config.mtls.expect("mTLS settings");
    assert_eq!(
        mtls.trust_bundle_pem,
        ca["certificatePem"].as_str().unwrap()
    );

    let issued = cp
        .client()
        .await
        .issue_certificate(CertificateRequest {
            mesh: "default".into(),
            dataplane: "web-1".into(),
            csr_pem: csr(),
            token: revoked.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.trust_bundle_pem, mtls.trust_bundle_pem);
    let block = x509_parser::pem::parse_x509_pem(issued.certificate_chain_pem.as_bytes())
        .unwrap()
        .1;
    let leaf = block.parse_x509().unwrap();
    let sans = &leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert_eq!(format!("{sans:?}"), r#"[URI("spiffe://default/web")]"#);

    // Revocation over REST ends the open stream with the reason.
    let (status, body) = cp
        .call("POST", "/tokens/revoke", json!({"id": revoked_id}))
        .await;
    assert_eq!(status, 200, "{body}");
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match configs.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends");
    let status = end.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unauthenticated, "dataplane token: revoked")
    );
    drop(configs);
    cp.stop().await.unwrap();

    // Nothing secret in the clear in the store (WAL checkpointed on close).
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!contains(&bytes, b"PRIVATE KEY"));
        assert!(!contains(&bytes, P256_PKCS8), "a P-256 key in the clear");
        assert!(
            !contains(&bytes, ED25519_PKCS8),
            "an Ed25519 key in the clear"
        );
        assert!(!contains(&bytes, ca_key_text.as_bytes()));
    }

    // Same store, same key: same CA, same signing key, same revocations.
    let cp = Running::start(&db, ca_key).await;
    let (_, ca_again) = cp.call("GET", "/meshes/default/ca", Value::Null).await;
    assert_eq!(ca_again, ca);
    let err = cp.connect(&revoked).await.err().unwrap();
    assert_eq!(err.message(), "dataplane token: revoked");
    let (_tx, mut configs) = cp.connect(&kept).await.expect("tokens survive a restart");
    assert_eq!(
        configs
            .message()
            .await
            .unwrap()
            .unwrap()
            .mtls
            .unwrap()
            .issuer_id,
        mtls.issuer_id
    );
    let (_, list) = cp.call("GET", "/tokens/revoked", Value::Null).await;
    assert_eq!(list["items"][0]["id"], revoked_id.as_str());
    drop(configs);
    cp.stop().await.unwrap();

    // Another CA key cannot open what the first one sealed: a clear error.
    let (api, dp) = (free_addr().await, free_addr().await);
    let wrong = ControlPlaneConfig {
        admin_token_file: None,
        tls: Default::default(),
        store: StoreUrl::Sqlite(db.clone()),
        api_addr: api,
        dp_addr: dp,
        startup_grace: Duration::ZERO,
        dp_keepalive: (Duration::from_secs(10), Duration::from_secs(5)),
        ca_key: Some(CaKey::generate().unwrap().0),
        dp_auth: DpAuth::Token,
    };
    let err = weft_control_plane::run(wrong, std::future::pending())
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("wrong CA key"), "{text}");
}
