//! A small JSON client for the control plane's REST API, over http or
//! over https verified against the control plane's CA.

mod tls;

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::{Serialize, de::DeserializeOwned};
use weft_api::rest::ErrorBody;

/// How long one API call may take before the CLI gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Talks JSON to one control plane.
pub struct ApiClient {
    base: String,
    /// `Bearer <admin token>`, when one is known.
    authorization: Option<String>,
    transport: Transport,
}

enum Transport {
    Plain(Box<Client<HttpConnector, Full<Bytes>>>),
    Tls(tls::TlsTransport),
}

impl ApiClient {
    /// `base` is the API URL, e.g. `https://127.0.0.1:5681`; an https one
    /// is verified against `cp_ca_pem`, which it then requires.
    pub fn new(
        base: &str,
        admin_token: Option<String>,
        cp_ca_pem: Option<&str>,
    ) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .with_context(|| format!("control-plane URL {base:?} is not a URL"))?;
        let transport = match (uri.scheme_str(), cp_ca_pem) {
            (Some("http"), _) => {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(Duration::from_secs(5)));
                connector.set_nodelay(true);
                Transport::Plain(Box::new(
                    Client::builder(TokioExecutor::new()).build(connector),
                ))
            }
            (Some("https"), Some(pem)) => Transport::Tls(
                tls::TlsTransport::new(&uri, pem)
                    .with_context(|| format!("control-plane URL {base:?}"))?,
            ),
            (Some("https"), None) => bail!(
                "control-plane URL {base:?} is https but there is no CA certificate to verify \
                 it: give --cp-ca-file (or WEFT_CP_CA_FILE)"
            ),
            (Some(other), _) => bail!(
                "control-plane URL {base:?}: scheme {other:?} is not supported (use https:// or http://)"
            ),
            (None, _) => {
                bail!("control-plane URL {base:?} needs a scheme, e.g. https://127.0.0.1:5681")
            }
        };
        let authorization = admin_token.map(|t| format!("Bearer {t}"));
        Ok(Self {
            base,
            authorization,
            transport,
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.send(Method::GET, path, None).await?;
        decode(path, &body)
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let json = serde_json::to_vec(body).context("cannot encode the request")?;
        let body = self.send(Method::POST, path, Some(json)).await?;
        decode(path, &body)
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.send(Method::DELETE, path, None).await.map(drop)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Bytes> {
        let call = async {
            let resp = self.request(method.clone(), path, body).await?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, bytes))
        };
        let (status, bytes) = self.within(&method, path, call).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(api_error(status, &bytes))
    }

    /// `call` within [`REQUEST_TIMEOUT`], its failure to reach the control
    /// plane named with `method` and `path`.
    async fn within<T, E>(
        &self,
        method: &Method,
        path: &str,
        call: impl Future<Output = Result<T, E>>,
    ) -> anyhow::Result<T>
    where
        E: Into<anyhow::Error>,
    {
        tokio::time::timeout(REQUEST_TIMEOUT, call)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the control plane at {} did not answer {method} {path} within {REQUEST_TIMEOUT:?}",
                    self.base
                )
            })?
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the control plane at {}: {}",
                    self.base,
                    reason(&e.into())
                )
            })
    }

    /// A GET that tells "not reached" (the outer error: refused, timed
    /// out, TLS) from "answered with an error" (the inner one).
    pub async fn probe<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<anyhow::Result<T>> {
        let call = async {
            let resp = self.request(Method::GET, path, None).await?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, bytes))
        };
        let (status, bytes) = self.within(&Method::GET, path, call).await?;
        if status.is_success() {
            return Ok(decode(path, &bytes));
        }
        Ok(Err(api_error(status, &bytes)))
    }

    /// A GET whose body is read as it arrives (a tap): the response once
    /// its head says success, else the API's error.
    pub async fn get_streaming(&self, path: &str) -> anyhow::Result<Response<Incoming>> {
        let resp = self
            .within(&Method::GET, path, self.request(Method::GET, path, None))
            .await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT, resp.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(api_error(status, &bytes))
    }

    /// Sends one request and returns the response once its head arrived.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Response<Incoming>> {
        let uri = format!("{}{}", self.base, path);
        let mut req = Request::builder().method(method);
        req = match &self.transport {
            Transport::Plain(_) => req.uri(&uri),
            // A connection of its own: origin-form target and a Host header.
            Transport::Tls(_) => {
                let parsed: Uri = uri
                    .parse()
                    .with_context(|| format!("{uri:?} is not a URL"))?;
                let host = parsed
                    .authority()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                req.uri(path).header(header::HOST, host)
            }
        };
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(auth) = &self.authorization {
            req = req.header(header::AUTHORIZATION, auth);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .with_context(|| format!("cannot build a request for {uri}"))?;
        Ok(match &self.transport {
            Transport::Plain(http) => http.request(req).await?,
            Transport::Tls(tls) => tls.send(req).await?,
        })
    }

    /// The API's base URL, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }
}

fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body)
        .with_context(|| format!("unexpected response from the control plane for {path}"))
}

/// Turns an error response into a message with one line per detail.
fn api_error(status: StatusCode, body: &[u8]) -> anyhow::Error {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) if e.details.is_empty() => anyhow::anyhow!("{}", e.error),
        Ok(e) => anyhow::anyhow!("{}\n  {}", e.error, e.details.join("\n  ")),
        Err(_) => anyhow::anyhow!(
            "control plane answered {status}: {}",
            String::from_utf8_lossy(body).trim()
        ),
    }
}

/// What went wrong: our own message when there is one (TLS failures),
/// else the innermost error ("Connection refused").
fn reason(e: &anyhow::Error) -> String {
    if e.to_string().starts_with("TLS: ") {
        return e.to_string();
    }
    root_cause(&**e)
}

/// The innermost error, which for connection failures says what happened ("Connection refused").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A plain GET for readiness checks and demo traffic: status and body text.
pub async fn get_text(url: &str) -> anyhow::Result<(StatusCode, String)> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    let http: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let uri: Uri = url
        .parse()
        .with_context(|| format!("{url:?} is not a URL"))?;
    let call = async {
        let resp = http.get(uri).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .map_err(|_| anyhow::anyhow!("GET {url} timed out"))?
}
