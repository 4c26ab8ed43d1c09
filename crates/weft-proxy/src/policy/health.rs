//! Active health checks: every interval, each endpoint is probed (HTTP,
//! TCP or gRPC) through the same mTLS its requests use. After
//! `unhealthyThreshold` failures in a row it leaves rotation; after
//! `healthyThreshold` passes in a row it comes back. Endpoints start
//! healthy, so a new endpoint takes traffic before its first probe.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Weak, atomic::Ordering},
};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Either};
use tokio::{task::JoinSet, time::MissedTickBehavior};
use tracing::info;

use super::{
    endpoints::{Endpoint, EndpointSet},
    stats::{Event, PolicyStats},
};
use crate::{
    config::policies::{HealthCheckConfig, Probe},
    http::{buffered::Buffered, client::Upstream, forward},
    tls::client::{PeerStream, PeerTls},
};

/// The most of an HTTP probe's answer that is read (and thrown away).
const PROBE_BODY_LIMIT: usize = 64 * 1024;

/// A running checker; dropping it stops the probes.
#[derive(Debug)]
pub struct Checker(tokio::task::AbortHandle);

impl Drop for Checker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Probes one endpoint: `true` when it passed.
pub type ProbeFn<T> =
    Arc<dyn Fn(Arc<Endpoint<T>>) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Starts probing the endpoints of `set` until the returned checker drops
/// (or the set does).
pub fn spawn<T: Send + Sync + 'static>(
    config: HealthCheckConfig,
    set: Weak<EndpointSet<T>>,
    probe: ProbeFn<T>,
    (stats, service): (Arc<PolicyStats>, String),
) -> Checker {
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(config.interval.get());
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(snapshot) = set.upgrade().map(|s| s.load()) else {
                return;
            };
            let mut probes = JoinSet::new();
            for endpoint in &snapshot.endpoints {
                let (endpoint, probe) = (endpoint.clone(), probe.clone());
                let timeout = config.timeout.get();
                probes.spawn(async move {
                    let passed = tokio::time::timeout(timeout, probe(endpoint.clone()))
                        .await
                        .unwrap_or(false);
                    (endpoint, passed)
                });
            }
            while let Some(joined) = probes.join_next().await {
                if let Ok((endpoint, passed)) = joined
                    && apply(&config, &endpoint, passed) == Some(false)
                {
                    stats.count(&service, Event::Unhealthy);
                }
            }
        }
    });
    Checker(task.abort_handle())
}

/// Counts one probe result and flips the endpoint at a threshold; returns
/// its new health when it flipped.
fn apply<T>(config: &HealthCheckConfig, endpoint: &Endpoint<T>, passed: bool) -> Option<bool> {
    let state = &endpoint.state;
    let (streak, other) = if passed {
        (&state.probe_successes, &state.probe_failures)
    } else {
        (&state.probe_failures, &state.probe_successes)
    };
    other.store(0, Ordering::Relaxed);
    let count = streak.fetch_add(1, Ordering::Relaxed).saturating_add(1);
    let healthy = state.healthy.load(Ordering::Relaxed);
    if passed && !healthy && count >= config.healthy_threshold {
        state.healthy.store(true, Ordering::Relaxed);
        info!(endpoint = %endpoint.addr, check = %config.name, "endpoint passed its health checks; back in rotation");
        return Some(true);
    }
    if !passed && healthy && count >= config.unhealthy_threshold {
        state.healthy.store(false, Ordering::Relaxed);
        info!(endpoint = %endpoint.addr, check = %config.name, "endpoint failed its health checks; out of rotation");
        return Some(false);
    }
    None
}

/// The probe for endpoints reached through pooled HTTP clients.
pub fn http_prober(config: &HealthCheckConfig, tls: PeerTls) -> ProbeFn<Upstream> {
    let probe = config.probe.clone();
    Arc::new(move |endpoint: Arc<Endpoint<Upstream>>| {
        let (probe, tls) = (probe.clone(), tls.clone());
        Box::pin(async move {
            match &probe {
                Probe::Http {
                    path,
                    expected_statuses,
                } => http_probe(&endpoint.target, path, expected_statuses).await,
                Probe::Grpc { service } => grpc_probe(&endpoint.target, service).await,
                Probe::Tcp => tcp_probe(endpoint.addr, &tls).await,
            }
        })
    })
}

/// The probe for TCP outbounds: whatever the kind, a connection (TCP
/// destinations are not spoken to).
pub fn tcp_prober(tls: PeerTls) -> ProbeFn<()> {
    Arc::new(move |endpoint: Arc<Endpoint<()>>| {
        let tls = tls.clone();
        Box::pin(async move { tcp_probe(endpoint.addr, &tls).await })
    })
}

async fn tcp_probe(addr: std::net::SocketAddr, tls: &PeerTls) -> bool {
    PeerStream::connect(addr, tls.enabled().then_some(tls), None)
        .await
        .is_ok()
}

async fn http_probe(upstream: &Upstream, path: &str, expected: &[u16]) -> bool {
    let Ok(mut req) = Request::get(path).body(Either::Right(Buffered::empty())) else {
        return false;
    };
    req.headers_mut().insert(
        header::USER_AGENT,
        HeaderValue::from_static("weft-health-check"),
    );
    match forward::send(upstream, req).await {
        Ok(response) => {
            let status = response.status().as_u16();
            // Reading the (small) answer lets the pool reuse the
            // connection for the next probe; a large one is not waited for.
            let _ = http_body_util::Limited::new(response.into_body(), PROBE_BODY_LIMIT)
                .collect()
                .await;
            if expected.is_empty() {
                (200..300).contains(&status)
            } else {
                expected.contains(&status)
            }
        }
        Err(_) => false,
    }
}

/// `grpc.health.v1.Health/Check`: healthy when the answer is SERVING (1)
/// with grpc-status 0.
async fn grpc_probe(upstream: &Upstream, service: &str) -> bool {
    if !upstream.is_http2() {
        return false;
    }
    let Ok(req) = Request::builder()
        .method(Method::POST)
        .uri("/grpc.health.v1.Health/Check")
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .body(Either::Right(Buffered::full(health_request(service))))
    else {
        return false;
    };
    let Ok(response) = forward::send(upstream, req).await else {
        return false;
    };
    let head_status = response.headers().get("grpc-status").cloned();
    // A health answer is a few bytes; a peer sending more is not healthy.
    let body = http_body_util::Limited::new(response.into_body(), PROBE_BODY_LIMIT);
    let Ok(collected) = body.collect().await else {
        return false;
    };
    let status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status").cloned())
        .or(head_status);
    status.is_some_and(|s| s == "0") && serving(&collected.to_bytes())
}

/// A gRPC frame holding `HealthCheckRequest { service }`.
fn health_request(service: &str) -> Bytes {
    let mut message = BytesMut::new();
    if !service.is_empty() {
        message.put_u8(0x0a); // field 1, length-delimited
        put_varint(&mut message, service.len() as u64);
        message.put_slice(service.as_bytes());
    }
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.len()).unwrap_or(0));
    frame.put_slice(&message);
    frame.freeze()
}

fn put_varint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Whether a framed `HealthCheckResponse` says SERVING (field 1 = 1).
fn serving(frame: &[u8]) -> bool {
    // 1 flag byte, 4 length bytes, then the message; SERVING is `08 01`.
    frame
        .get(5..)
        .is_some_and(|m| m.windows(2).any(|w| w == [0x08, 0x01]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages() {
        assert_eq!(&health_request("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &health_request("ab")[..],
            &[0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']
        );
        assert!(serving(&[0, 0, 0, 0, 2, 0x08, 0x01]));
        assert!(!serving(&[0, 0, 0, 0, 2, 0x08, 0x02]));
        assert!(!serving(&[0, 0, 0, 0, 0]));
    }
}
