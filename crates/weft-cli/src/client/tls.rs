//! HTTPS to the control plane's API: one connection per request (the CLI
//! makes a few), verified against the control plane's CA certificate only,
//! for the host name or IP in the URL.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to one https control plane.
pub(super) struct TlsTransport {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    host: String,
    port: u16,
}

impl TlsTransport {
    /// `uri` is the https API URL; `ca_pem` the CA certificate(s) to trust.
    pub(super) fn new(uri: &Uri, ca_pem: &str) -> anyhow::Result<Self> {
        let host = uri
            .host()
            .context("the control-plane URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.context("the control plane's CA file is not valid PEM")?;
            roots
                .add(cert)
                .context("the control plane's CA file holds an unusable certificate")?;
        }
        if roots.is_empty() {
            bail!("the control plane's CA file holds no certificate");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let server_name = ServerName::try_from(host.clone())
            .with_context(|| format!("{host:?} is not a valid host name or IP address"))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            host,
            port,
        })
    }

    /// Sends `req` (origin-form URI, Host header set) on a new connection.
    pub(super) async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> anyhow::Result<Response<Incoming>> {
        let connect = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            let _ = tcp.set_nodelay(true);
            let tls = self
                .connector
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "TLS: {} (is --cp-ca-file the control plane's CA?)",
                        tls_reason(&e)
                    )
                })?;
            Ok::<_, anyhow::Error>(tls)
        };
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| anyhow::anyhow!("connecting timed out after {CONNECT_TIMEOUT:?}"))??;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender.send_request(req).await?)
    }
}

/// What rustls said, without the io::Error wrapping.
fn tls_reason(e: &std::io::Error) -> String {
    match e.get_ref() {
        Some(inner) => inner.to_string(),
        None => e.to_string(),
    }
}
