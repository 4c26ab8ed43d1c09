use std::time::Duration;

use super::*;

#[test]
fn one_exposition_with_every_family_and_an_eof() {
    let identity = Identity::new("default");
    let metrics = Metrics::new(&identity);
    let traffic = metrics.traffic();
    let key = ["outbound", "web", "backend", ""];
    traffic.request(key, 200, Duration::from_millis(3));
    traffic.request(key, 503, Duration::from_millis(3));
    traffic.connection_opened(["inbound", "", "db"]);
    metrics.control_plane_connected.set(1);
    metrics.set_config_version(42);
    identity
        .policy_stats()
        .count("backend", crate::policy::stats::Event::Retry);
    let text = metrics.encode();
    for line in [
        "# TYPE weft_requests counter",
        "weft_requests_total{direction=\"outbound\",source_service=\"web\",destination_service=\"backend\",route=\"\",status_code=\"200\"} 1",
        "weft_requests_total{direction=\"outbound\",source_service=\"web\",destination_service=\"backend\",route=\"\",status_code=\"503\"} 1",
        "# TYPE weft_request_duration_seconds histogram",
        "weft_request_duration_seconds_bucket{le=\"0.005\",direction=\"outbound\",source_service=\"web\",destination_service=\"backend\",route=\"\"} 2",
        "weft_request_duration_seconds_count{direction=\"outbound\",source_service=\"web\",destination_service=\"backend\",route=\"\"} 2",
        "weft_tcp_connections_opened_total{direction=\"inbound\",source_service=\"\",destination_service=\"db\"} 1",
        "weft_tcp_connections_active{direction=\"inbound\",source_service=\"\",destination_service=\"db\"} 1",
        "weft_control_plane_connected 1",
        "weft_config_version 42",
        "weft_tls_inbound_mtls_connections_total 0",
        "weft_policy_events_total{service=\"backend\",event=\"retry\"} 1",
        "# TYPE weft_authz_denied counter",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // Registry::register adds the full stop to help texts itself.
    assert!(!text.contains(".."), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
}
