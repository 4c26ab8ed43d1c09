//! The tap registry: starting, routing, stopping and ending taps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use weft_api::{
    proto::{TapDropped, TapEnded, TapStarted, tap_command, tap_event},
    rest::TapLine,
};

use super::{MAX_WATCHERS, TapError, TapFilter, Taps};

fn filter(path: &str, method: &str) -> TapFilter {
    TapFilter {
        path_prefix: path.into(),
        method: method.into(),
    }
}

#[tokio::test]
async fn a_dataplane_without_a_tap_stream_cannot_be_tapped() {
    let taps = Arc::new(Taps::default());
    let err = taps.watch("default", "web-1", TapFilter::default()).err();
    assert!(matches!(err, Some(TapError::NoStream { .. })));
    let message = err.unwrap().to_string();
    assert!(message.contains("default/web-1"), "{message}");
}

#[tokio::test]
async fn a_watch_starts_the_tap_routes_its_events_and_stops_it_when_dropped() {
    let taps = Arc::new(Taps::default());
    let mut link = taps.connect("default", "web-1", 1);
    let mut watch = taps
        .watch("default", "web-1", filter("/api", "GET"))
        .unwrap();
    let Some(tap_command::Kind::Start(start)) = link.commands.recv().await.unwrap().kind else {
        panic!("expected a start");
    };
    assert_eq!(
        (start.path_prefix.as_str(), start.method.as_str()),
        ("/api", "GET")
    );

    let id = start.tap_id;
    taps.deliver(
        "default",
        "web-1",
        link.stream,
        tap_event::Kind::Started(TapStarted { tap_id: id }),
    );
    // An event for another tap goes nowhere.
    taps.deliver(
        "default",
        "web-1",
        link.stream,
        tap_event::Kind::Dropped(TapDropped {
            tap_id: id + 100,
            count: 1,
        }),
    );
    taps.deliver(
        "default",
        "web-1",
        link.stream,
        tap_event::Kind::Dropped(TapDropped {
            tap_id: id,
            count: 3,
        }),
    );
    assert_eq!(
        watch.lines.recv().await.unwrap(),
        TapLine::Started {
            dataplane: "web-1".into()
        }
    );
    assert_eq!(
        watch.lines.recv().await.unwrap(),
        TapLine::Dropped { count: 3 }
    );

    drop(watch);
    let Some(tap_command::Kind::Stop(stop)) = link.commands.recv().await.unwrap().kind else {
        panic!("expected a stop");
    };
    assert_eq!(stop.tap_id, id);
}

#[tokio::test]
async fn the_proxy_going_away_ends_its_watchers_and_a_stale_stream_changes_nothing() {
    let taps = Arc::new(Taps::default());
    let old = taps.connect("default", "web-1", 1);
    let mut first = taps
        .watch("default", "web-1", TapFilter::default())
        .unwrap();
    // The proxy reconnected: the old stream's watchers end.
    let new = taps.connect("default", "web-1", 1);
    assert!(matches!(
        first.lines.recv().await,
        Some(TapLine::Ended { .. })
    ));
    assert!(first.lines.recv().await.is_none());

    let mut second = taps
        .watch("default", "web-1", TapFilter::default())
        .unwrap();
    taps.disconnect("default", "web-1", old.stream);
    assert!(
        second.lines.try_recv().is_err(),
        "a stale disconnect ended a live tap"
    );
    taps.disconnect("default", "web-1", new.stream);
    let Some(TapLine::Ended { reason }) = second.lines.recv().await else {
        panic!("expected the tap to end");
    };
    assert!(reason.contains("went away"), "{reason}");
}

#[tokio::test]
async fn the_proxy_refusing_a_tap_ends_it() {
    let taps = Arc::new(Taps::default());
    let mut link = taps.connect("default", "web-1", 1);
    let mut watch = taps
        .watch("default", "web-1", TapFilter::default())
        .unwrap();
    let Some(tap_command::Kind::Start(start)) = link.commands.recv().await.unwrap().kind else {
        panic!("expected a start");
    };
    let ended = TapEnded {
        tap_id: start.tap_id,
        reason: "too many taps".into(),
    };
    taps.deliver(
        "default",
        "web-1",
        link.stream,
        tap_event::Kind::Ended(ended),
    );
    assert_eq!(
        watch.lines.recv().await.unwrap(),
        TapLine::Ended {
            reason: "too many taps".into()
        }
    );
    assert!(watch.lines.recv().await.is_none());
}

#[tokio::test]
async fn at_most_max_watchers_per_dataplane() {
    let taps = Arc::new(Taps::default());
    let _link = taps.connect("default", "web-1", 1);
    let watches: Vec<_> = (0..MAX_WATCHERS)
        .map(|_| {
            taps.watch("default", "web-1", TapFilter::default())
                .unwrap()
        })
        .collect();
    let err = taps.watch("default", "web-1", TapFilter::default()).err();
    assert!(matches!(err, Some(TapError::Busy { .. })));
    drop(watches);
    assert!(taps.watch("default", "web-1", TapFilter::default()).is_ok());
}

#[tokio::test]
async fn a_link_ends_with_its_config_session_but_not_with_an_older_one() {
    let taps = Arc::new(Taps::default());
    let _link = taps.connect("default", "web-1", 2);
    let mut watch = taps
        .watch("default", "web-1", TapFilter::default())
        .unwrap();
    taps.end_session("default", "web-1", 1);
    assert!(
        watch.lines.try_recv().is_err(),
        "an older session's end changed nothing"
    );
    taps.end_session("default", "web-1", 2);
    let Some(TapLine::Ended { reason }) = watch.lines.recv().await else {
        panic!("expected the tap to end");
    };
    assert!(reason.contains("config stream ended"), "{reason}");
    assert!(
        taps.watch("default", "web-1", TapFilter::default())
            .is_err()
    );
}
