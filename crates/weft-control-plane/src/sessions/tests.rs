//! The session registry on its own, without a network.

use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::watch;
use weft_api::proto;

use super::*;

fn presumed(keys: &[(&str, &str)]) -> Vec<(String, String)> {
    keys.iter()
        .map(|(m, n)| (m.to_string(), n.to_string()))
        .collect()
}

fn connect(s: &Sessions, name: &str) -> (SessionId, watch::Receiver<Option<proto::ProxyConfig>>) {
    let id = s.claim("default", name, "0.1.0").unwrap();
    let (tx, rx) = watch::channel(None);
    assert!(s.activate("default", name, id, tx, None));
    (id, rx)
}

#[test]
fn a_second_stream_for_the_same_dataplane_is_refused() {
    let s = Sessions::new([]);
    let id = s.claim("default", "web", "v").unwrap();
    let err = s.claim("default", "web", "v").unwrap_err();
    assert_eq!(
        err.to_string(),
        "dataplane default/web is already connected"
    );
    let (tx, _rx) = watch::channel(None);
    s.activate("default", "web", id, tx, None);
    assert!(s.claim("default", "web", "v").is_err());
    s.disconnect("default", "web", id);
    assert!(
        s.claim("default", "web", "v").is_ok(),
        "free again once offline"
    );
}

#[test]
fn online_and_offline_follow_the_stream() {
    let s = Sessions::new([]);
    let mut changes = s.subscribe();
    changes.borrow_and_update();
    assert!(!s.online_view().is_online("default", "web"));
    let (id, _rx) = connect(&s, "web");
    assert!(changes.has_changed().unwrap());
    assert!(s.online_view().is_online("default", "web"));
    assert!(s.status("default", "web").online);
    assert_eq!(s.connected().len(), 1);

    s.disconnect("default", "web", id);
    assert!(!s.online_view().is_online("default", "web"));
    let status = s.status("default", "web");
    assert!(!status.online);
    assert!(status.disconnected_at.is_some() && status.connected_since.is_some());
    assert!(s.connected().is_empty());
}

#[test]
fn a_late_end_of_an_old_stream_does_not_touch_the_new_one() {
    let s = Sessions::new([]);
    let (old, _rx) = connect(&s, "web");
    s.disconnect("default", "web", old);
    let (new, _rx2) = connect(&s, "web");
    s.disconnect("default", "web", old);
    assert!(s.status("default", "web").online);
    s.ack("default", "web", old, 7);
    assert_eq!(s.status("default", "web").config_version_acked, None);
    s.ack("default", "web", new, 7);
    assert_eq!(s.status("default", "web").config_version_acked, Some(7));
}

#[test]
fn a_failed_registration_frees_the_slot() {
    let s = Sessions::new([]);
    let id = s.claim("default", "web", "v").unwrap();
    s.disconnect("default", "web", id);
    assert!(s.claim("default", "web", "v").is_ok());
}

#[test]
fn stored_dataplanes_are_presumed_online_until_the_grace_ends() {
    let s = Sessions::new(presumed(&[("default", "a"), ("default", "b")]));
    let view = s.online_view();
    assert!(view.is_online("default", "a") && view.is_online("default", "b"));
    assert!(
        !s.status("default", "a").online,
        "status reports real connections only"
    );

    // b reconnects and leaves again: its proxy is gone, not presumed anymore.
    let (id, _rx) = connect(&s, "b");
    s.disconnect("default", "b", id);
    assert!(!s.online_view().is_online("default", "b"));
    assert!(s.online_view().is_online("default", "a"));

    let mut changes = s.subscribe();
    changes.borrow_and_update();
    s.end_grace();
    assert!(changes.has_changed().unwrap());
    assert!(!s.online_view().is_online("default", "a"));
}

#[test]
fn push_replaces_what_the_proxy_has_not_read() {
    let s = Sessions::new([]);
    let (id, mut rx) = connect(&s, "web");
    for version in [1, 2, 3] {
        let config = proto::ProxyConfig {
            mtls: None,
            version,
            ..Default::default()
        };
        assert!(s.push("default", "web", id, config));
    }
    assert_eq!(rx.borrow_and_update().as_ref().map(|c| c.version), Some(3));
    assert!(!s.push("default", "web", id + 1, proto::ProxyConfig::default()));
}

#[tokio::test]
async fn a_deregistration_waits_for_the_stream_to_end_and_holds_off_new_ones() {
    let s = Sessions::new(presumed(&[("default", "web")]));
    let (id, _rx) = connect(&s, "web");
    let deregistering = s.deregistration("default", "web", Duration::from_secs(5));
    tokio::pin!(deregistering);
    assert!(
        deregistering.as_mut().now_or_never().is_none(),
        "the stream is live"
    );

    // The proxy's stream end, seen just after its Deregister arrived.
    s.disconnect("default", "web", id);
    let deregistration = deregistering.await.expect("the stream is over");
    assert_eq!(
        s.claim("default", "web", "v").unwrap_err().to_string(),
        "dataplane default/web is being deregistered"
    );
    deregistration.finish();
    assert!(
        s.status("default", "web").disconnected_at.is_none(),
        "forgotten"
    );
    assert!(!s.online_view().is_online("default", "web"), "not presumed");
    assert!(s.claim("default", "web", "v").is_ok(), "free again");
}

#[tokio::test]
async fn a_live_stream_is_not_deregistered() {
    let s = Sessions::new([]);
    let (_id, rx) = connect(&s, "web");
    let wait = Duration::from_millis(50);
    assert!(s.deregistration("default", "web", wait).await.is_none());
    assert!(s.status("default", "web").online);
    assert!(rx.has_changed().is_ok(), "its stream is open");
    assert_eq!(
        s.claim("default", "web", "v").unwrap_err().to_string(),
        "dataplane default/web is already connected",
        "and nothing held off"
    );
}

#[test]
fn status_shows_what_was_sent_acked_and_rejected() {
    let s = Sessions::new([]);
    let (id, _rx) = connect(&s, "web");
    let config = proto::ProxyConfig {
        mtls: None,
        transparent_proxy: None,
        version: 42,
        mesh: "default".into(),
        dataplane: "web".into(),
        inbounds: vec![],
        outbounds: vec![proto::Outbound {
            address: "127.0.0.1".into(),
            port: 30001,
            service: "backend".into(),
            protocol: proto::Protocol::Http.into(),
            policies: None,
            endpoints: vec![proto::Endpoint {
                address: "10.0.0.1".into(),
                port: 20001,
                dataplane: "backend-1".into(),
                tags: Default::default(),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    s.record_sent(id, &config);
    s.ack("default", "web", id, 42);
    s.nack("default", "web", id, 43, "bad".into());
    // One push timed: the answer to what was sent, not the NACK of a
    // version this stream never carried.
    let text = s.telemetry().encode(&Default::default());
    assert!(
        text.contains("weft_cp_config_push_seconds_count 1\n"),
        "{text}"
    );
    let status = s.status("default", "web");
    assert_eq!(status.proxy_version.as_deref(), Some("0.1.0"));
    assert_eq!(status.config_version_sent, Some(42));
    assert_eq!(status.config_version_acked, Some(42));
    assert_eq!(
        status.last_nack.as_ref().map(|n| n.reason.as_str()),
        Some("bad")
    );
    let out = &status.outbounds[0];
    assert_eq!((out.port, out.service.as_str()), (30001, "backend"));
    assert_eq!(out.protocol, weft_api::Protocol::Http);
    assert_eq!(out.endpoints[0].dataplane, "backend-1");
}

#[test]
fn offline_entries_of_deleted_dataplanes_are_pruned() {
    let s = Sessions::new([]);
    let (a, _ra) = connect(&s, "a");
    let (_b, _rb) = connect(&s, "b");
    s.disconnect("default", "a", a);
    s.retain_offline(|_, _| false);
    assert!(s.status("default", "a").disconnected_at.is_none(), "pruned");
    assert!(s.status("default", "b").online, "online entries stay");
}

#[test]
fn streams_of_a_revoked_token_or_rotated_key_end_with_the_reason() {
    let s = Sessions::new([]);
    let with_token = |name: &str, jti: &str, kid: &str| {
        let id = s.claim("default", name, "v").unwrap();
        let (tx, rx) = watch::channel(None);
        let auth = StreamAuth {
            jti: jti.into(),
            kid: kid.into(),
        };
        assert!(s.activate("default", name, id, tx, Some(auth)));
        (id, rx)
    };
    let (a, mut a_rx) = with_token("a", "t1", "k1");
    let (b, mut b_rx) = with_token("b", "t2", "k1");
    let (_untokened, mut c_rx) = connect(&s, "c");

    assert_eq!(
        s.end_streams(|t| t.jti == "t1", "dataplane token: revoked"),
        1
    );
    assert!(
        a_rx.changed().now_or_never().unwrap().is_err(),
        "a's channel closed"
    );
    assert_eq!(
        s.end_reason("default", "a", a).as_deref(),
        Some("dataplane token: revoked")
    );
    assert_eq!(s.end_reason("default", "b", b), None);
    assert_eq!(
        s.end_reason("default", "a", a + 100),
        None,
        "another stream"
    );

    assert_eq!(
        s.end_streams(
            |t| t.kid != "k2",
            "dataplane token: signed by a rotated key"
        ),
        1,
        "a already ended; c has no token"
    );
    assert!(b_rx.changed().now_or_never().unwrap().is_err());
    assert!(c_rx.changed().now_or_never().is_none(), "c is still open");
}

#[test]
fn clock_skew_and_the_issued_certificate_show_in_the_status() {
    let s = Sessions::new([]);
    let (id, _rx) = connect(&s, "web");
    s.clock("default", "web", id, 0);
    assert_eq!(
        s.status("default", "web").clock_skew_ms,
        None,
        "0 means not reported"
    );
    s.clock("default", "web", id, now_unix_ms() - 3_000);
    let skew = s.status("default", "web").clock_skew_ms.unwrap();
    assert!((-3_500..=-3_000).contains(&skew), "{skew}");

    s.certificate_issued("default", "web", 1_000, 87_400);
    s.disconnect("default", "web", id);
    // The proxy keeps its certificate when it reconnects, and so does the entry.
    let (_id, _rx) = connect(&s, "web");
    let status = s.status("default", "web");
    let cert = status.certificate.unwrap();
    assert_eq!(
        (cert.issued_at.as_str(), cert.not_after.as_str()),
        ("1970-01-01T00:16:40Z", "1970-01-02T00:16:40Z")
    );
    assert_eq!(
        status.clock_skew_ms, None,
        "a new stream reports its own clock"
    );
}
