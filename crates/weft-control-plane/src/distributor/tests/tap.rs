//! The Tap RPC on the real gRPC service: who may open it, the clock it
//! reports, and commands and events relayed between it and a watcher.

use weft_api::{
    proto::{TapCommand, TapEvent, TapHello, TapStarted, tap_command, tap_event},
    rest::{TapLine, now_unix},
};

use super::*;
use crate::{sessions::now_unix_ms, taps::TapFilter};

async fn token(h: &Harness, services: &[&str]) -> String {
    let services = services.iter().map(|s| s.to_string()).collect();
    let (token, _) = h
        .identity
        .tokens
        .issue("default", services, Duration::from_secs(3600), now_unix())
        .await
        .unwrap();
    token
}

/// Opens a Tap stream for `backend-1` with `token`, saying the proxy's
/// clock is `clock_ms`.
async fn open_tap(
    h: &Harness,
    token: &str,
    clock_ms: i64,
) -> Result<(mpsc::Sender<TapEvent>, Streaming<TapCommand>), tonic::Status> {
    let (tx, rx) = mpsc::channel(8);
    let hello = TapHello {
        mesh: "default".into(),
        dataplane: "backend-1".into(),
        token: token.into(),
        wall_clock_unix_ms: clock_ms,
    };
    tx.send(TapEvent {
        kind: Some(tap_event::Kind::Hello(hello)),
    })
    .await
    .unwrap();
    let commands = h
        .client()
        .await
        .tap(ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, commands))
}

#[tokio::test]
async fn a_tap_stream_needs_a_connected_dataplane_and_its_token() {
    let h = Harness::start_with(Duration::ZERO, vec![], DpAuth::Token).await;
    let good = token(&h, &["backend"]).await;
    let err = open_tap(&h, &good, 0).await.err().unwrap();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("not registered"), "{err:?}");

    let _proxy = h
        .connect_with(backend("backend-1", 20001), &good)
        .await
        .unwrap();
    let web = token(&h, &["web"]).await;
    let err = open_tap(&h, &web, 0).await.err().unwrap();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = open_tap(&h, "", 0).await.err().unwrap();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(open_tap(&h, &good, 0).await.is_ok());
}

#[tokio::test]
async fn a_watcher_starts_a_tap_on_the_proxy_and_gets_its_events() {
    let h = Harness::start(Duration::ZERO, vec![]).await;
    let mut proxy = h.connect(backend("backend-1", 20001)).await.unwrap();
    proxy.next_config().await;
    // The proxy's clock runs 5 s ahead.
    let (events, mut commands) = open_tap(&h, "", now_unix_ms() + 5_000).await.unwrap();
    let skew = h
        .distributor
        .sessions()
        .status("default", "backend-1")
        .clock_skew_ms
        .unwrap();
    assert!((4_000..=5_000).contains(&skew), "{skew}");

    let taps = h.distributor.taps().clone();
    let mut watch = wait_for(|| {
        taps.watch("default", "backend-1", TapFilter::default())
            .ok()
    })
    .await;
    let command = tokio::time::timeout(PROMPTLY, commands.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Some(tap_command::Kind::Start(start)) = command.kind else {
        panic!("expected a start, got {command:?}");
    };
    events
        .send(TapEvent {
            kind: Some(tap_event::Kind::Started(TapStarted {
                tap_id: start.tap_id,
            })),
        })
        .await
        .unwrap();
    let line = tokio::time::timeout(PROMPTLY, watch.lines.recv())
        .await
        .unwrap();
    assert_eq!(
        line,
        Some(TapLine::Started {
            dataplane: "backend-1".into()
        })
    );

    // The proxy going away ends the watcher with the reason.
    drop(events);
    drop(commands);
    let line = tokio::time::timeout(PROMPTLY, watch.lines.recv())
        .await
        .unwrap();
    assert!(matches!(line, Some(TapLine::Ended { .. })), "{line:?}");
}
