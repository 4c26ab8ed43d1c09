//! Tracing and AccessLog settings from the control plane: parsed, shown
//! on `/config`, and rejected with the field's path.

use weft_api::proto::{self, access_log_policy::Target};

use crate::config::{Config, LogTarget, TracingBackend};

fn tracing() -> proto::TracingConfig {
    proto::TracingConfig {
        name: "otel".into(),
        backend: proto::TracingBackend::Zipkin.into(),
        url: "http://127.0.0.1:9411/api/v2/spans".into(),
        sampling_ppm: 250_000,
        tags: [("env".to_owned(), "prod".to_owned())].into(),
        max_queue_spans: 100,
        max_batch_spans: 10,
        flush_interval_ms: 500,
        export_timeout_ms: 1500,
    }
}

fn log(name: &str, from: &str, target: Target) -> proto::AccessLogPolicy {
    proto::AccessLogPolicy {
        name: name.into(),
        from_service: from.into(),
        target: Some(target),
    }
}

fn config(
    tracing: Option<proto::TracingConfig>,
    inbound_logs: Vec<proto::AccessLogPolicy>,
    outbound_log: Option<proto::AccessLogPolicy>,
) -> proto::ProxyConfig {
    proto::ProxyConfig {
        mesh: "default".into(),
        dataplane: "web-1".into(),
        inbounds: vec![proto::Inbound {
            address: "127.0.0.1".into(),
            port: 20001,
            service_port: 8001,
            protocol: proto::Protocol::Http.into(),
            tags: [("service".to_owned(), "web".to_owned())].into(),
            access_logs: inbound_logs,
            ..Default::default()
        }],
        outbounds: vec![proto::Outbound {
            port: 30001,
            service: "backend".into(),
            protocol: proto::Protocol::Http.into(),
            access_log: outbound_log,
            ..Default::default()
        }],
        tracing,
        ..Default::default()
    }
}

#[test]
fn tracing_and_access_logs_parse_and_show_on_config() {
    let config = Config::from_proto(config(
        Some(tracing()),
        vec![
            log("from-api", "api", Target::Stdout(true)),
            log("any", "", Target::Path("/var/log/in.jsonl".into())),
        ],
        Some(log("out", "", Target::Path("/var/log/out.jsonl".into()))),
    ))
    .unwrap();
    let t = config.tracing.as_ref().unwrap();
    assert_eq!(t.backend, TracingBackend::Zipkin);
    assert_eq!(t.url.to_string(), "http://127.0.0.1:9411/api/v2/spans");
    assert_eq!(t.sampling_ppm, 250_000);
    assert_eq!(t.export_timeout, std::time::Duration::from_millis(1500));
    let inbound = &config.inbounds[0].access_logs;
    assert_eq!(inbound[0].from_service.as_deref(), Some("api"));
    assert_eq!(inbound[0].target, LogTarget::Stdout);
    assert_eq!(inbound[1].from_service, None);
    let out = config.outbounds[0].access_log.as_ref().unwrap();
    assert_eq!(out.target, LogTarget::Path("/var/log/out.jsonl".into()));

    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["tracing"]["url"], "http://127.0.0.1:9411/api/v2/spans");
    assert_eq!(json["tracing"]["backend"], "zipkin");
    assert_eq!(json["outbounds"][0]["accessLog"]["name"], "out");
}

#[test]
fn bad_settings_name_their_field() {
    let mut bad = tracing();
    bad.backend = 9;
    bad.url = "https://collector/v1/traces".into();
    bad.max_batch_spans = 0;
    bad.export_timeout_ms = 0;
    let errors = Config::from_proto(config(
        Some(bad),
        vec![log("rel", "", Target::Path("logs/a.jsonl".into()))],
        Some(proto::AccessLogPolicy {
            name: "none".into(),
            from_service: String::new(),
            target: None,
        }),
    ))
    .unwrap_err()
    .lines();
    for expected in [
        "tracing.backend: 9 is not a tracing backend",
        "tracing.url: \"https://collector/v1/traces\" must start with http://",
        "tracing.max_batch_spans: must be at least 1",
        "tracing.export_timeout_ms: must be at least 1",
        "inbounds[0].access_logs[0].path: \"logs/a.jsonl\" is not an absolute path",
        "outbounds[0].access_log.target: required",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{expected:?} not in {errors:#?}"
        );
    }
}
