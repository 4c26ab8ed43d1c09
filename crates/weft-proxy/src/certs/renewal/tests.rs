//! The renewal schedule with paused time and a test CA behind a fake
//! `IssueCertificate`: when it renews, how it backs off, what it keeps.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{sync::mpsc, time::Instant};
use weft_api::proto::{CertificateRequest, CertificateResponse};

use super::*;
use crate::{
    certs::{BoxFuture, CertificateSource, Requester},
    config::MtlsMode,
    tests::ca::{MESH, TestCa, mtls},
};

const LIFETIME: Duration = Duration::from_secs(100);

/// Signs every request, except the next `fail` ones; reports each call's
/// (paused) time.
struct Source {
    ca: Arc<TestCa>,
    fail: AtomicUsize,
    calls: mpsc::UnboundedSender<Instant>,
}

impl CertificateSource for Source {
    fn issue(
        &self,
        request: CertificateRequest,
    ) -> BoxFuture<'_, Result<CertificateResponse, tonic::Status>> {
        let _ = self.calls.send(Instant::now());
        let failing = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let result = if failing {
            Err(tonic::Status::unavailable("control plane down"))
        } else {
            self.ca
                .sign(&request.csr_pem, LIFETIME, None)
                .map_err(tonic::Status::internal)
        };
        Box::pin(async move { result })
    }
}

struct Setup {
    certs: Arc<Certs>,
    source: Arc<Source>,
    calls: mpsc::UnboundedReceiver<Instant>,
    ca: Arc<TestCa>,
}

/// A proxy with mTLS strict and its first certificate, taken at the
/// returned time; the renewal task is running.
async fn setup() -> (Setup, Instant) {
    let ca = TestCa::new("renewal CA");
    let (calls_tx, calls) = mpsc::unbounded_channel();
    let source = Arc::new(Source {
        ca: ca.clone(),
        fail: AtomicUsize::new(0),
        calls: calls_tx,
    });
    let identity = Identity::new(MESH);
    let requester = Requester {
        mesh: MESH.into(),
        dataplane: "web-1".into(),
        token: "t".into(),
        services: vec!["web".into()],
    };
    let certs = Arc::new(Certs::new(source.clone(), identity.clone(), requester));
    let settings = mtls(MtlsMode::Strict, &ca);
    certs
        .ensure(&settings.issuer_id, &settings.trust_bundle)
        .await
        .unwrap();
    identity.apply(&settings);
    let mut setup = Setup {
        certs: certs.clone(),
        source,
        calls,
        ca,
    };
    let first = setup.calls.recv().await.unwrap();
    tokio::spawn(run(certs));
    (setup, first)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[test]
fn renews_between_60_and_80_percent_of_the_remaining_life() {
    let now = Instant::now();
    let mut rng = fastrand::Rng::with_seed(1);
    let at: Vec<f64> = (0..200)
        .map(|_| secs(renew_at(now, LIFETIME, &mut rng) - now))
        .collect();
    assert!(at.iter().all(|&s| (60.0..=80.0).contains(&s)), "{at:?}");
    let (min, max) = at
        .iter()
        .fold((f64::MAX, 0.0_f64), |(lo, hi), &s| (lo.min(s), hi.max(s)));
    assert!(max - min > 10.0, "jitter spreads renewals: {min}..{max}");
}

#[tokio::test(start_paused = true)]
async fn renews_before_expiry_and_swaps_the_certificate() {
    let (mut setup, first) = setup().await;
    let identity = setup.certs.identity().clone();
    let before = identity.credentials().unwrap();
    let renewed = setup.calls.recv().await.unwrap();
    let after = secs(renewed - first);
    assert!((59.0..=81.0).contains(&after), "renewed after {after}s");
    // The task stores the new certificate right after the call.
    let mut changed = identity.subscribe();
    while Arc::ptr_eq(&before, &identity.credentials().unwrap()) {
        changed.changed().await.unwrap();
    }
    assert!(identity.credentials().unwrap().not_after >= before.not_after);
    // And the next renewal is scheduled from the new certificate.
    let next = setup.calls.recv().await.unwrap();
    assert!((59.0..=81.0).contains(&secs(next - renewed)));
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_from_1s_and_keep_the_current_certificate() {
    let (mut setup, _) = setup().await;
    let identity = setup.certs.identity().clone();
    let before = identity.credentials().unwrap();
    setup.source.fail.store(5, Ordering::SeqCst);
    let mut calls = vec![setup.calls.recv().await.unwrap()];
    for _ in 0..4 {
        calls.push(setup.calls.recv().await.unwrap());
        assert!(
            Arc::ptr_eq(&before, &identity.credentials().unwrap()),
            "still serving with the current certificate"
        );
    }
    let gaps: Vec<f64> = calls.windows(2).map(|w| secs(w[1] - w[0])).collect();
    // Each step is jittered between half and all of 1, 2, 4, 8 seconds.
    for (gap, step) in gaps.iter().zip([1.0, 2.0, 4.0, 8.0]) {
        assert!(*gap >= step / 2.0 && *gap <= step + 0.01, "{gaps:?}");
    }
    // The sixth attempt succeeds.
    let mut changed = identity.subscribe();
    while Arc::ptr_eq(&before, &identity.credentials().unwrap()) {
        changed.changed().await.unwrap();
    }
    assert_eq!(
        identity
            .stats()
            .certificate_failures
            .load(Ordering::Relaxed),
        5
    );
}

#[tokio::test(start_paused = true)]
async fn the_backoff_is_capped_at_60s() {
    let (mut setup, _) = setup().await;
    setup.source.fail.store(20, Ordering::SeqCst);
    let mut last = setup.calls.recv().await.unwrap();
    let mut gaps = Vec::new();
    for _ in 0..10 {
        let call = setup.calls.recv().await.unwrap();
        gaps.push(secs(call - last));
        last = call;
    }
    assert!(gaps.iter().all(|&g| g <= 60.01), "{gaps:?}");
    assert!(gaps[7..].iter().all(|&g| g >= 30.0), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn a_new_issuer_is_renewed_at_once() {
    let (mut setup, first) = setup().await;
    let identity = setup.certs.identity().clone();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut settings = mtls(MtlsMode::Strict, &setup.ca);
    settings.issuer_id = "rotated".into();
    identity.apply(&settings);
    let call = setup.calls.recv().await.unwrap();
    assert!(secs(call - first) < 5.1, "at once, not at the schedule");
    let mut changed = identity.subscribe();
    while identity.credentials().unwrap().issuer_id != "rotated" {
        changed.changed().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_is_renewed_while_mtls_is_off() {
    let (mut setup, _) = setup().await;
    let identity = setup.certs.identity().clone();
    let mut settings = (*identity.settings()).clone();
    settings.mode = MtlsMode::Off;
    identity.apply(&settings);
    tokio::time::sleep(LIFETIME * 3).await;
    assert!(setup.calls.try_recv().is_err());
}
