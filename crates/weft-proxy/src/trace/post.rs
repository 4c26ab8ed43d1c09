//! One HTTP POST to a collector, bounded by a timeout from connect to the
//! end of the response, so a collector that accepts and never answers
//! costs one batch, not the exporter.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri, header::CONTENT_TYPE};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Request(String),
    #[error("collector answered {0}")]
    Status(http::StatusCode),
}

/// A reusable client for one collector URL.
#[derive(Clone, Debug)]
pub struct Poster {
    uri: Uri,
    content_type: &'static str,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Poster {
    /// `url` was checked by the control plane and the config parser.
    pub fn new(uri: Uri, content_type: &'static str, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        Self {
            uri,
            content_type,
            timeout,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    pub async fn post(&self, body: Vec<u8>) -> Result<(), PostError> {
        tokio::time::timeout(self.timeout, self.send(body))
            .await
            .map_err(|_| PostError::Timeout(self.timeout))?
    }

    async fn send(&self, body: Vec<u8>) -> Result<(), PostError> {
        let request = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, self.content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PostError::Request(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| PostError::Request(format!("{e}")))?;
        let status = response.status();
        // Read the answer so the connection can be reused.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(PostError::Status(status))
        }
    }
}
