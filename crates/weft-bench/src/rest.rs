//! A small HTTP/1.1 client for the control plane's REST API and the
//! proxies' admin servers (not for load: oha and `clients` do that).

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request (with `Authorization: Bearer` if `bearer` is set);
/// the status and body text.
pub async fn request(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<String>,
) -> anyhow::Result<(u16, String)> {
    let mut req = http::Request::builder().method(method).uri(url);
    if let Some(token) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let call = async {
        let resp = client().request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(TIMEOUT, call)
        .await
        .with_context(|| format!("{method} {url} timed out"))?
        .with_context(|| format!("{method} {url}"))
}

/// GET; the status and body.
pub async fn get(url: &str) -> anyhow::Result<(u16, String)> {
    request("GET", url, None, None).await
}

/// GET a JSON document (fails on a non-2xx status).
pub async fn get_json(url: &str, bearer: Option<&str>) -> anyhow::Result<Value> {
    let (status, body) = request("GET", url, bearer, None).await?;
    anyhow::ensure!((200..300).contains(&status), "GET {url}: {status} {body}");
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON"))
}

/// `POST {api}/apply` with resources (JSON values), in one transaction.
pub async fn apply(api: &str, bearer: Option<&str>, resources: Vec<Value>) -> anyhow::Result<()> {
    let body = serde_json::json!({ "resources": resources }).to_string();
    let url = format!("{api}/apply");
    let (status, text) = request("POST", &url, bearer, Some(body)).await?;
    anyhow::ensure!((200..300).contains(&status), "POST {url}: {status} {text}");
    Ok(())
}

/// Polls `url` until it answers 200 or `timeout` passes.
pub async fn wait_ok(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok((200, _)) = get(url).await {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{url} did not answer 200 within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
