//! Tracing picked per proxy by its own services; AccessLogs per outbound
//! and ranked per inbound.

use weft_api::document::parse_resources;

use super::*;
use crate::compiler::MeshPolicies;

fn policies(yaml: &str) -> MeshPolicies {
    let mut mesh = MeshPolicies::default();
    for resource in parse_resources(yaml).unwrap() {
        mesh.add(resource);
    }
    mesh
}

const POLICIES: &str = "\
type: Tracing\nmesh: default\nname: everyone\n\
spec: { backend: { type: zipkin, url: \"http://z:9411/api/v2/spans\" }, sampling: 10 }\n---\n\
type: Tracing\nmesh: default\nname: web-only\nselector: { to: { service: web } }\n\
spec: { backend: { type: otlp, url: \"http://o:4318/v1/traces\" }, tags: { team: a } }\n---\n\
type: AccessLog\nmesh: default\nname: web-to-backend\n\
selector: { from: { service: web }, to: { service: backend } }\nspec: { path: /tmp/a.jsonl }\n---\n\
type: AccessLog\nmesh: default\nname: into-backend\nselector: { to: { service: backend } }\n\
spec: { stdout: true }\n";

#[test]
fn the_most_specific_tracing_selecting_the_proxys_services_wins() {
    let web = caller(json!([{"port": 30001, "service": "backend"}]));
    let backend = server("backend-1", "10.0.0.2", "backend", 20001, Some("http"));
    let dps = [web.clone(), backend.clone()];
    let mesh = policies(POLICIES);

    let tracing = compile(&web, &dps, None, &mesh, all_online)
        .tracing
        .unwrap();
    assert_eq!(tracing.name, "web-only");
    assert_eq!(tracing.backend(), proto::TracingBackend::Otlp);
    assert_eq!(tracing.url, "http://o:4318/v1/traces");
    assert_eq!(tracing.sampling_ppm, 1_000_000);
    assert_eq!(tracing.tags["team"], "a");

    let tracing = compile(&backend, &dps, None, &mesh, all_online)
        .tracing
        .unwrap();
    assert_eq!(tracing.name, "everyone");
    assert_eq!(tracing.backend(), proto::TracingBackend::Zipkin);
    assert_eq!(tracing.sampling_ppm, 100_000);

    let none = compile(&web, &dps, None, &MeshPolicies::default(), all_online);
    assert!(none.tracing.is_none());
}

#[test]
fn access_logs_resolve_per_outbound_and_rank_per_inbound() {
    use proto::access_log_policy::Target;
    let web =
        caller(json!([{"port": 30001, "service": "backend"}, {"port": 30002, "service": "store"}]));
    let backend = server("backend-1", "10.0.0.2", "backend", 20001, Some("http"));
    let dps = [web.clone(), backend.clone()];
    let mesh = policies(POLICIES);

    let config = compile(&web, &dps, None, &mesh, all_online);
    let to_backend = config.outbounds[0].access_log.as_ref().unwrap();
    assert_eq!(to_backend.name, "web-to-backend");
    assert_eq!(to_backend.target, Some(Target::Path("/tmp/a.jsonl".into())));
    assert!(
        config.outbounds[1].access_log.is_none(),
        "nothing logs store"
    );
    assert!(
        config.inbounds[0].access_logs.is_empty(),
        "nothing selects web"
    );

    let config = compile(&backend, &dps, None, &mesh, all_online);
    let ranked: Vec<(&str, &str)> = config.inbounds[0]
        .access_logs
        .iter()
        .map(|a| (a.name.as_str(), a.from_service.as_str()))
        .collect();
    assert_eq!(ranked, [("web-to-backend", "web"), ("into-backend", "")]);
    assert_eq!(
        config.inbounds[0].access_logs[1].target,
        Some(Target::Stdout(true))
    );
}
