//! Bounded bursts of HTTP requests for policy tests: how many, how many at
//! once, and what each got (status, which app answered, how long it took,
//! the proxy's `x-weft-error`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tokio::sync::Semaphore;

use crate::servers::http_client;

/// What one request got.
#[derive(Debug, Clone)]
pub struct Answer {
    /// 0 when the request failed without a response.
    pub status: u16,
    /// The first line of the body: the app's name for test apps.
    pub body: String,
    /// `x-weft-error`, when the proxy answered itself.
    pub weft_error: Option<String>,
    pub retry_after: Option<String>,
    /// When the request was sent, from the start of the burst.
    pub sent_at: Duration,
    pub elapsed: Duration,
}

/// How many answers satisfy `f`.
pub fn count(answers: &[Answer], f: impl Fn(&Answer) -> bool) -> usize {
    answers.iter().filter(|a| f(a)).count()
}

/// Sends `total` GETs to `url`, at most `concurrency` at a time, each with
/// `headers(i)`; a request may take at most 10 s.
pub async fn burst(
    url: &str,
    total: usize,
    concurrency: usize,
    headers: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Vec<Answer> {
    burst_with(url, total, concurrency, headers, None).await
}

/// [`burst`] sending POSTs with `body` (and its Content-Length) when given.
pub async fn burst_with(
    url: &str,
    total: usize,
    concurrency: usize,
    headers: impl Fn(usize) -> Vec<(&'static str, String)>,
    body: Option<Bytes>,
) -> Vec<Answer> {
    let client = http_client();
    let limit = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let (client, url, headers, body) =
            (client.clone(), url.to_owned(), headers(i), body.clone());
        tasks.push(tokio::spawn(async move {
            let answer = get(&client, &url, &headers, body, start).await;
            drop(permit);
            answer
        }));
    }
    let mut answers = Vec::with_capacity(total);
    for task in tasks {
        if let Ok(answer) = task.await {
            answers.push(answer);
        }
    }
    answers
}

/// Sends GETs to `url` at `per_second` for `duration`, never more than
/// 64 in flight.
pub async fn paced(url: &str, per_second: u32, duration: Duration) -> Vec<Answer> {
    let client = http_client();
    let limit = Arc::new(Semaphore::new(64));
    let start = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
    let mut tasks = Vec::new();
    while start.elapsed() < duration {
        ticks.tick().await;
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let answer = get(&client, &url, &[], None, start).await;
            drop(permit);
            answer
        }));
    }
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(answer) = task.await {
            answers.push(answer);
        }
    }
    answers
}

async fn get(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    url: &str,
    headers: &[(&'static str, String)],
    body: Option<Bytes>,
    start: Instant,
) -> Answer {
    let sent = Instant::now();
    let sent_at = sent.duration_since(start);
    let call = async {
        let mut request = match &body {
            Some(_) => Request::post(url),
            None => Request::get(url),
        };
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = client
            .request(request.body(Full::new(body.unwrap_or_default()))?)
            .await?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (weft_error, retry_after) = (header("x-weft-error"), header("retry-after"));
        let body = response.into_body().collect().await?.to_bytes();
        let body = String::from_utf8_lossy(&body)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok::<_, anyhow::Error>((status, body, weft_error, retry_after))
    };
    let (status, body, weft_error, retry_after) =
        match tokio::time::timeout(Duration::from_secs(10), call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => (0, e.to_string(), None, None),
            Err(_) => (0, "timed out".to_owned(), None, None),
        };
    Answer {
        status,
        body,
        weft_error,
        retry_after,
        sent_at,
        elapsed: sent.elapsed(),
    }
}
