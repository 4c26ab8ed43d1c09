//! Ejection thresholds, the growing ejection time and the share cap.

use std::net::SocketAddr;

use weft_api::duration::PolicyDuration;

use super::*;
use crate::policy::endpoints::EndpointSet;

fn config(max_percent: u32) -> OutlierConfig {
    OutlierConfig {
        consecutive_5xx: Some(3),
        consecutive_gateway_errors: None,
        base_ejection_time: PolicyDuration::from_millis(1000),
        max_ejection_time: PolicyDuration::from_millis(2500),
        max_ejection_percent: max_percent,
    }
}

fn snapshot(n: u16) -> std::sync::Arc<Snapshot<()>> {
    let set = EndpointSet::new(false);
    set.update(
        (0..n).map(|i| {
            (
                SocketAddr::from(([127, 0, 0, 1], 1000 + i)),
                Default::default(),
            )
        }),
        |_| (),
    );
    set.load()
}

#[test]
fn ejects_after_consecutive_failures_for_growing_times() {
    let c = config(50);
    let s = snapshot(3);
    let e = &s.endpoints[0];
    record(&c, &s, e, Outcome::ServerError, 10);
    record(&c, &s, e, Outcome::ServerError, 10);
    record(&c, &s, e, Outcome::Success, 10);
    record(&c, &s, e, Outcome::ServerError, 10);
    record(&c, &s, e, Outcome::GatewayError, 10);
    assert!(!e.ejected(10), "a success resets the count");
    record(&c, &s, e, Outcome::ServerError, 10);
    assert!(e.ejected(10) && e.ejected(1009) && !e.ejected(1010));
    for _ in 0..3 {
        record(&c, &s, e, Outcome::ServerError, 2000);
    }
    assert!(
        e.ejected(3999) && !e.ejected(4000),
        "second ejection: 2 × base"
    );
    for _ in 0..3 {
        record(&c, &s, e, Outcome::ServerError, 5000);
    }
    assert!(e.ejected(7499) && !e.ejected(7500), "capped at the maximum");
}

#[test]
fn never_ejects_more_than_the_share() {
    let c = config(50);
    let s = snapshot(3);
    for e in &s.endpoints {
        for _ in 0..3 {
            record(&c, &s, e, Outcome::ServerError, 10);
        }
    }
    let out = s.endpoints.iter().filter(|e| e.ejected(10)).count();
    assert_eq!(out, 1, "50 % of 3 is one endpoint");
}
