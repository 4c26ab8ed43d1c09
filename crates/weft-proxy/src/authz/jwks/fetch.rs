//! One JWKS download: a small HTTP/1.1 GET over plain TCP (loopback only)
//! or TLS (Mozilla's roots), with a deadline and a cap on the body.
//!
//! A client of its own rather than a pooled one: a JWKS is fetched every
//! few minutes, so a fresh connection each time costs nothing, and the
//! loopback rule can be checked on the very address connected to.

use std::{net::IpAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{DecodingKey, jwk::JwkSet};
use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    task::JoinHandle,
};
use tokio_rustls::TlsConnector;

/// The largest JWKS accepted; real ones are a few KiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JWKS URL, checked: `https://` anywhere, `http://` only to loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksUrl {
    uri: Uri,
    tls: bool,
    host: String,
    port: u16,
}

impl JwksUrl {
    /// Parses `url`; the error says why it cannot be used.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{url:?} is not an http(s) URL")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{url:?} has no host"))?;
        // `Uri::host` keeps the brackets of an IPv6 literal.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !tls && !is_loopback_name(&host) {
            return Err(format!(
                "{url:?}: plaintext http is only allowed to a loopback address (127.0.0.0/8, ::1); use https"
            ));
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self {
            uri,
            tls,
            host,
            port,
        })
    }
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The TLS settings for `https://` JWKS URLs: Mozilla's roots, ring.
pub fn default_tls() -> Result<Arc<ClientConfig>, rustls::Error> {
    tls_with_roots(RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
}

/// TLS settings trusting `roots` (tests use their own CA).
pub fn tls_with_roots(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    Ok(Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Downloads and parses the JWKS at `url` within `deadline`. Non-200,
/// a body over [`MAX_BODY_BYTES`], bad JSON and a set without one usable
/// key are errors.
pub async fn fetch(
    url: &JwksUrl,
    tls: &Result<Arc<ClientConfig>, String>,
    deadline: Duration,
) -> Result<Arc<JwkSet>, String> {
    let body = tokio::time::timeout(deadline, get(url, tls))
        .await
        .map_err(|_| format!("no answer within {}s", deadline.as_secs_f32()))??;
    let set: JwkSet =
        serde_json::from_slice(&body).map_err(|e| format!("the response is not a JWKS: {e}"))?;
    if !set.keys.iter().any(|k| DecodingKey::from_jwk(k).is_ok()) {
        return Err("the JWKS has no usable key".into());
    }
    Ok(Arc::new(set))
}

async fn get(url: &JwksUrl, tls: &Result<Arc<ClientConfig>, String>) -> Result<Bytes, String> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    if url.tls {
        let tls = tls.as_ref().map_err(|e| format!("TLS settings: {e}"))?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| format!("bad server name {:?}: {e}", url.host))?;
        let stream = TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        request(stream, &url.uri).await
    } else {
        // `localhost` could resolve anywhere; plaintext stays on this host.
        let peer = tcp
            .peer_addr()
            .map_err(|e| format!("cannot connect: {e}"))?;
        if !peer.ip().is_loopback() {
            return Err(format!("{peer} is not a loopback address"));
        }
        request(tcp, &url.uri).await
    }
}

/// Stops the connection task when the fetch ends or is abandoned.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn request<S>(stream: S, uri: &Uri) -> Result<Bytes, String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or("", |a| a.as_str());
    let req = Request::get(path)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("HTTP: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    if resp.status() != StatusCode::OK {
        return Err(format!("HTTP status {}", resp.status()));
    }
    let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(body.to_bytes())
}
