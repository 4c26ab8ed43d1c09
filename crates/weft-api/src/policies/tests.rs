//! Every policy kind from YAML: round trips, field-path errors, shared selector rules.

use crate::{Resource, document::parse_resources};

fn parse(yaml: &str) -> Result<Resource, String> {
    parse_resources(yaml)
        .map(|mut r| r.remove(0))
        .map_err(|e| e.to_string())
}

fn error(yaml: &str) -> String {
    parse(yaml).unwrap_err()
}

const HEAD: &str =
    "mesh: default\nname: p\nselector: { from: { service: web }, to: { service: backend } }\n";

fn doc(kind: &str, spec: &str) -> String {
    format!("type: {kind}\n{HEAD}spec: {spec}\n")
}

#[test]
fn every_kind_parses_and_round_trips() {
    let docs = [
        doc(
            "Timeout",
            "{ connect: 1s, request: 15s, idle: 1h, streamIdle: 5m }",
        ),
        doc(
            "Retry",
            "{ attempts: 3, perTryTimeout: 2s, retryOn: [5xx, reset], grpcStatusCodes: [unavailable, 8], \
             budget: { percent: 20 }, backoff: { base: 10ms, max: 100ms }, bufferLimitBytes: 1024 }",
        ),
        doc(
            "CircuitBreaker",
            "{ maxRequests: 10, outlierDetection: { consecutive5xx: 3, baseEjectionTime: 1s } }",
        ),
        doc(
            "HealthCheck",
            "{ interval: 1s, http: { path: /health, expectedStatuses: [200] } }",
        ),
        doc(
            "LoadBalancer",
            "{ type: ring-hash, hashOn: { header: x-user } }",
        ),
        doc("RateLimit", "{ requests: 100, interval: 1s }"),
        doc(
            "FaultInjection",
            "{ abort: { percentage: 12.5, httpStatus: 503 }, delay: { percentage: 50, value: 100ms } }",
        ),
        doc(
            "TrafficRoute",
            "{ rules: [ { match: { headers: [ { name: x-canary, exact: \"1\" } ] }, split: [ { weight: 1, tags: { version: v2 } } ] }, \
             { split: [ { weight: 90, tags: { version: v1 } }, { weight: 10, tags: { version: v2 } } ] } ] }",
        ),
    ];
    for text in docs {
        let resource = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let again = Resource::from_value(resource.to_value()).unwrap();
        assert_eq!(again, resource, "{text}");
    }
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (doc("Timeout", "{}"), "spec: at least one of connect"),
        (
            doc("Timeout", "{ request: 5 parsecs }"),
            "spec.request: \"5 parsecs\" is not a duration",
        ),
        (
            doc("Retry", "{ attempts: 11 }"),
            "spec.attempts: 11 is not 1-10",
        ),
        (
            doc("Retry", "{ attempts: 2, retryOn: [sometimes] }"),
            "spec.retryOn[0]: \"sometimes\" is not a retry condition",
        ),
        (
            doc("Retry", "{ attempts: 2, grpcStatusCodes: [bogus] }"),
            "is not a gRPC status code",
        ),
        (
            doc("Retry", "{ attempts: 2, backoff: { base: 1s, max: 10ms } }"),
            "spec.backoff.max: must not be less than backoff.base",
        ),
        (
            doc("CircuitBreaker", "{ maxRequests: 0 }"),
            "spec.maxRequests: must be at least 1",
        ),
        (
            doc(
                "CircuitBreaker",
                "{ outlierDetection: { maxEjectionPercent: 10 } }",
            ),
            "spec.outlierDetection: at least one of consecutive5xx",
        ),
        (
            doc("HealthCheck", "{ interval: 1s }"),
            "spec: exactly one of http, tcp, grpc",
        ),
        (
            doc("HealthCheck", "{ interval: 1s, http: { path: health } }"),
            "spec.http.path: \"health\" must start with '/'",
        ),
        (
            doc("LoadBalancer", "{ type: ring-hash }"),
            "spec.hashOn: required with type ring-hash",
        ),
        (
            doc("LoadBalancer", "{ type: fastest }"),
            "spec.type: \"fastest\" is not a load balancer type",
        ),
        (
            doc("RateLimit", "{ requests: 0 }"),
            "spec.requests: must be at least 1",
        ),
        (
            doc(
                "FaultInjection",
                "{ abort: { percentage: 150, httpStatus: 503 } }",
            ),
            "spec.abort.percentage: 150 is not a percentage",
        ),
        (
            doc(
                "FaultInjection",
                "{ abort: { percentage: 5, httpStatus: 42 } }",
            ),
            "spec.abort.httpStatus: 42 is not an HTTP status",
        ),
        (
            doc(
                "TrafficRoute",
                "{ rules: [ { split: [ { weight: 0, tags: {} } ] } ] }",
            ),
            "spec.rules[0].split: the weights must not all be 0",
        ),
        (
            doc(
                "TrafficRoute",
                "{ rules: [ { match: { method: get }, split: [ { weight: 1, tags: {} } ] } ] }",
            ),
            "spec.rules[0].match.method: \"get\" is not a method",
        ),
    ];
    for (text, expected) in cases {
        let err = error(&text);
        assert!(
            err.contains(expected),
            "{text}\nexpected {expected:?} in {err:?}"
        );
    }
}

#[test]
fn selector_rules_are_shared() {
    let text = "type: Retry\nmesh: default\nname: p\nselector: { from: { version: v1 } }\nspec: { attempts: 2 }\n";
    assert!(error(text).contains("selector.from.version: only the `service` tag"));
}

#[test]
fn observability_kinds_parse_with_defaults() {
    let text = "type: Tracing\nmesh: default\nname: t\nselector: { to: { service: web } }\n\
                spec: { backend: { type: otlp, url: \"http://127.0.0.1:4318/v1/traces\" }, tags: { env: prod } }\n";
    let Resource::Tracing(t) = parse(text).unwrap() else {
        panic!("not a Tracing")
    };
    assert_eq!(t.spec.sampling.ppm(), 1_000_000, "default sampling is 100%");
    assert_eq!(
        t.spec.max_queue_spans,
        super::tracing::DEFAULT_MAX_QUEUE_SPANS
    );
    assert_eq!(t.spec.tags["env"], "prod");
    let again = Resource::from_value(Resource::Tracing(t.clone()).to_value()).unwrap();
    assert_eq!(again, Resource::Tracing(t));

    let text = "type: AccessLog\nmesh: default\nname: a\nspec: { path: /var/log/weft.jsonl }\n";
    let Resource::AccessLog(a) = parse(text).unwrap() else {
        panic!("not an AccessLog")
    };
    assert_eq!(a.spec.path.as_deref(), Some("/var/log/weft.jsonl"));
    assert!(!a.spec.stdout);
    let again = Resource::from_value(Resource::AccessLog(a.clone()).to_value()).unwrap();
    assert_eq!(again, Resource::AccessLog(a));
}

#[test]
fn observability_errors_name_the_field() {
    let tracing = |spec: &str| format!("type: Tracing\nmesh: default\nname: t\nspec: {spec}\n");
    let cases = [
        (
            tracing("{ backend: { type: jaeger, url: \"http://c:1/\" } }"),
            "spec.backend.type: unknown variant `jaeger`",
        ),
        (
            tracing("{ backend: { type: otlp, url: \"https://c/v1/traces\" } }"),
            "spec.backend.url: \"https://c/v1/traces\" must start with http://",
        ),
        (
            tracing("{ backend: { type: zipkin, url: \"http://c:99999/\" } }"),
            "spec.backend.url: \"http://c:99999/\" has an invalid port",
        ),
        (
            tracing("{ backend: { type: otlp, url: \"http:///x\" } }"),
            "has no valid host",
        ),
        (
            tracing("{ backend: { type: otlp, url: \"http://c/\" }, sampling: 101 }"),
            "spec.sampling: 101 is not a percentage",
        ),
        (
            tracing("{ backend: { type: otlp, url: \"http://c/\" }, maxBatchSpans: 0 }"),
            "spec.maxBatchSpans: must be at least 1",
        ),
        (
            tracing("{ backend: { type: otlp, url: \"http://c/\" }, exportTimeout: 2h }"),
            "spec.exportTimeout:",
        ),
        (
            "type: Tracing\nmesh: default\nname: t\nselector: { from: { service: web } }\n\
             spec: { backend: { type: otlp, url: \"http://c/\" } }\n"
                .to_owned(),
            "selector.from: a Tracing applies to whole proxies",
        ),
        (
            doc("AccessLog", "{}"),
            "spec: exactly one of path, stdout: true",
        ),
        (
            doc("AccessLog", "{ path: /x, stdout: true }"),
            "spec: exactly one of path, stdout: true",
        ),
        (
            doc("AccessLog", "{ path: logs/a.jsonl }"),
            "spec.path: \"logs/a.jsonl\" must be an absolute path",
        ),
        (doc("AccessLog", "{ file: /x }"), "unknown field `file`"),
    ];
    for (text, expected) in cases {
        let err = error(&text);
        assert!(
            err.contains(expected),
            "{text}\nexpected {expected:?} in {err:?}"
        );
    }
}
