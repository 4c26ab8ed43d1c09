//! JWKS fetched from a local HTTP server: tokens signed by its keys pass
//! once fetched, a new `kid` is picked up, an outage keeps the last good
//! keys, and a URL that never answers says so.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::{RootCertStore, pki_types::PrivateKeyDer};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_rustls::TlsAcceptor;
use weft_api::{ValidationErrors, proto};

use super::{
    JwksRegistry, Keys, Timing,
    fetch::{self, JwksUrl, MAX_BODY_BYTES},
};
use crate::authz::{
    decide::{Denial, Reason},
    jwt::JwtError,
    tests::{Issuer, good_claims},
};

/// A JWKS endpoint whose answer the test sets.
struct JwksServer {
    addr: SocketAddr,
    answer: Arc<Mutex<(StatusCode, String)>>,
    task: JoinHandle<()>,
    tls: bool,
}

impl JwksServer {
    async fn start(body: String) -> Self {
        Self::serve(body, None).await
    }

    /// Serves over TLS as `localhost`, with a certificate from a new CA;
    /// returns the roots that trust it.
    async fn start_tls(body: String) -> (Self, RootCertStore) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let server = Self::serve(body, Some(TlsAcceptor::from(Arc::new(config)))).await;
        (server, roots)
    }

    async fn serve(body: String, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new((StatusCode::OK, body)));
        let tls_used = tls.is_some();
        let shared = answer.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let answer = shared.clone();
                let service = service_fn(move |_req| {
                    let (status, body) = answer.lock().unwrap().clone();
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    *resp.status_mut() = status;
                    async move { Ok::<_, Infallible>(resp) }
                });
                let tls = tls.clone();
                tokio::spawn(async move {
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            answer,
            task,
            tls: tls_used,
        }
    }

    fn url(&self) -> String {
        if self.tls {
            format!(
                "https://localhost:{}/.well-known/jwks.json",
                self.addr.port()
            )
        } else {
            format!("http://{}/.well-known/jwks.json", self.addr)
        }
    }

    fn set(&self, status: StatusCode, body: String) {
        *self.answer.lock().unwrap() = (status, body);
    }

    /// Closes the listener: new connections are refused.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn fast() -> JwksRegistry {
    let timing = Timing {
        refresh: Duration::from_secs(3600),
        min_interval: Duration::from_millis(50),
        fetch_timeout: Duration::from_secs(2),
        linger: Duration::ZERO,
    };
    JwksRegistry::with_settings(timing, fetch::default_tls().unwrap())
}

/// Polls `check` until it holds (fetches run on their own task).
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn verify(keys: &Keys, issuer: &Issuer) -> Result<(), JwtError> {
    keys.verify(&issuer.token(good_claims()), &issuer.config())
}

#[tokio::test]
async fn tokens_pass_once_the_keys_are_fetched_and_caches_are_shared() {
    let issuer = Issuer::new();
    let server = JwksServer::start(issuer.jwks.to_string()).await;
    let registry = fast();
    let keys = registry.keys(&server.url());
    assert!(eventually(|| verify(&keys, &issuer).is_ok()).await);
    // A second rule naming the URL shares the cache: no second fetch.
    let again = registry.keys(&server.url());
    assert_eq!(verify(&again, &issuer), Ok(()));
    assert_eq!(registry.counts().get(&server.url()), (1, 0));
    let counts = registry.counts().clone();
    let text = crate::metrics::encode::text_of(move |e| counts.encode(e));
    assert!(
        text.contains(&format!(
            "weft_authz_jwks_fetches_total{{url=\"{}\"}} 1",
            server.url()
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_new_kid_is_picked_up_by_an_early_refresh() {
    let old = Issuer::with_kid("k1");
    let new = Issuer::with_kid("k2");
    let server = JwksServer::start(old.jwks.to_string()).await;
    let registry = fast();
    let keys = registry.keys(&server.url());
    assert!(eventually(|| verify(&keys, &old).is_ok()).await);
    // The issuer rotates; the hour-long refresh is not what fetches again.
    server.set(StatusCode::OK, new.jwks.to_string());
    assert_eq!(verify(&keys, &new), Err(JwtError::UnknownKey));
    assert!(eventually(|| verify(&keys, &new).is_ok()).await);
    assert_eq!(verify(&keys, &old), Err(JwtError::UnknownKey));
}

#[tokio::test]
async fn an_outage_keeps_the_last_good_keys() {
    let issuer = Issuer::new();
    let server = JwksServer::start(issuer.jwks.to_string()).await;
    let url = server.url();
    let registry = fast();
    let keys = registry.keys(&url);
    assert!(eventually(|| verify(&keys, &issuer).is_ok()).await);
    server.stop().await;
    // An unknown kid asks for a refresh, which fails.
    let _ = verify(&keys, &Issuer::with_kid("k9"));
    assert!(eventually(|| registry.counts().get(&url).1 >= 1).await);
    assert_eq!(verify(&keys, &issuer), Ok(()));
}

#[tokio::test]
async fn bad_answers_keep_the_last_good_keys_too() {
    let issuer = Issuer::new();
    let server = JwksServer::start(issuer.jwks.to_string()).await;
    let registry = fast();
    let keys = registry.keys(&server.url());
    assert!(eventually(|| verify(&keys, &issuer).is_ok()).await);
    server.set(StatusCode::OK, r#"{"keys": []}"#.into());
    let _ = verify(&keys, &Issuer::with_kid("k9"));
    assert!(eventually(|| registry.counts().get(&server.url()).1 >= 1).await);
    assert_eq!(verify(&keys, &issuer), Ok(()));
}

#[tokio::test]
async fn before_the_first_fetch_tokens_are_refused_with_the_error() {
    // A port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}/jwks.json");
    let registry = fast();
    let keys = registry.keys(&url);
    let issuer = Issuer::new();
    assert!(
        eventually(
            || matches!(verify(&keys, &issuer), Err(JwtError::KeysNotYet(e)) if e.starts_with("cannot connect"))
        )
        .await
    );
    let denial = Denial {
        permission: Some("orders".into()),
        reason: Reason::Jwt(verify(&keys, &issuer).unwrap_err()),
    };
    let text = denial.describe("web", "backend");
    assert!(
        text.starts_with(
            "denied by TrafficPermission \"orders\": JWT: keys for the issuer are not available yet (cannot connect: "
        ),
        "{text}"
    );
    // Retried every `min_interval` until it works.
    assert!(eventually(|| registry.counts().get(&url).1 >= 2).await);
}

#[tokio::test]
async fn https_urls_are_fetched_over_verified_tls() {
    let issuer = Issuer::new();
    let (server, roots) = JwksServer::start_tls(issuer.jwks.to_string()).await;
    let url = JwksUrl::parse(&server.url()).unwrap();
    let trusted = Ok(fetch::tls_with_roots(roots).unwrap());
    let set = fetch::fetch(&url, &trusted, Duration::from_secs(2)).await;
    assert!(set.is_ok(), "{set:?}");
    // Mozilla's roots do not know the test CA.
    let mozilla = Ok(fetch::default_tls().unwrap());
    let error = fetch::fetch(&url, &mozilla, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(error.starts_with("TLS: "), "{error}");
}

#[tokio::test]
async fn fetch_errors_say_what_went_wrong() {
    let tls = Ok(fetch::default_tls().unwrap());
    let issuer = Issuer::new();
    let server = JwksServer::start(issuer.jwks.to_string()).await;
    let url = JwksUrl::parse(&server.url()).unwrap();
    let get = || fetch::fetch(&url, &tls, Duration::from_secs(2));
    assert!(get().await.is_ok());

    server.set(StatusCode::NOT_FOUND, issuer.jwks.to_string());
    assert_eq!(get().await.unwrap_err(), "HTTP status 404 Not Found");

    server.set(StatusCode::OK, "<html>".into());
    assert!(
        get()
            .await
            .unwrap_err()
            .starts_with("the response is not a JWKS")
    );

    server.set(StatusCode::OK, r#"{"keys": []}"#.into());
    assert_eq!(get().await.unwrap_err(), "the JWKS has no usable key");

    // Valid JSON, but over the cap.
    let padded = format!(
        r#"{{"keys": {}, "pad": "{}"}}"#,
        issuer.jwks["keys"],
        "x".repeat(MAX_BODY_BYTES)
    );
    server.set(StatusCode::OK, padded);
    let error = get().await.unwrap_err();
    assert!(error.starts_with("reading the body"), "{error}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepted by the kernel's backlog, never answered.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = JwksUrl::parse(&format!(
        "http://{}/jwks.json",
        listener.local_addr().unwrap()
    ))
    .unwrap();
    let tls = Ok(fetch::default_tls().unwrap());
    let error = fetch::fetch(&url, &tls, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(error, "no answer within 0.2s");
}

#[test]
fn plaintext_urls_must_be_loopback() {
    for ok in [
        "https://issuer.example/jwks.json",
        "https://10.0.0.1:8443/keys",
        "http://127.0.0.1:8080/jwks.json",
        "http://127.1.2.3/jwks.json",
        "http://[::1]:9000/jwks.json",
        "http://localhost/jwks.json",
    ] {
        assert!(JwksUrl::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://issuer.example/jwks.json",
        "http://10.0.0.1/jwks.json",
        "http://[::2]/jwks.json",
        "ftp://127.0.0.1/jwks.json",
        "/jwks.json",
        "not a url",
    ] {
        assert!(JwksUrl::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_plaintext_remote_url_is_a_config_error() {
    let permission = proto::Permission {
        name: "orders".into(),
        action: proto::PermissionAction::PermissionAllow.into(),
        rules: vec![proto::HttpRule {
            jwt: Some(proto::JwtRule {
                issuer: "https://issuer.example".into(),
                jwks_url: "http://issuer.example/jwks.json".into(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut errors = ValidationErrors::default();
    let parsed = crate::authz::config::parse("inbounds[0].permissions[0]", permission, &mut errors);
    assert!(parsed.is_none());
    let text = errors.to_string();
    assert!(
        text.contains("inbounds[0].permissions[0].rules[0].jwt.jwks_url"),
        "{text}"
    );
    assert!(text.contains("loopback"), "{text}");
}
