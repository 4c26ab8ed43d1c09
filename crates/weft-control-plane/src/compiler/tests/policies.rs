//! Traffic policies resolved per outbound (one per kind, most specific
//! wins) and rate limits ranked per inbound.

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
type: Timeout\nmesh: default\nname: any\nspec: { request: 9s }\n---\n\
type: Timeout\nmesh: default\nname: web-to-backend\n\
selector: { from: { service: web }, to: { service: backend } }\nspec: { request: 1s }\n---\n\
type: Retry\nmesh: default\nname: only-api\nselector: { from: { service: api } }\nspec: { attempts: 2 }\n---\n\
type: LoadBalancer\nmesh: default\nname: v1-only\nselector: { to: { service: backend, version: v1 } }\n\
spec: { type: random }\n---\n\
type: LoadBalancer\nmesh: default\nname: v2-only\nselector: { to: { service: backend, version: v2 } }\n\
spec: { type: random }\n---\n\
type: RateLimit\nmesh: default\nname: a-limit\nselector: { to: { service: backend } }\nspec: { requests: 5 }\n---\n\
type: RateLimit\nmesh: default\nname: b-web\nselector: { from: { service: web }, to: { service: backend } }\n\
spec: { requests: 1 }\n";

#[test]
fn one_policy_per_kind_resolves_per_outbound() {
    let web =
        caller(json!([{"port": 30001, "service": "backend"}, {"port": 30002, "service": "store"}]));
    let backend = server("backend-1", "10.0.0.2", "backend", 20001, Some("http"));
    let dps = [web.clone(), backend];
    let config = compile(&web, &dps, None, &policies(POLICIES), all_online);

    let to_backend = config.outbounds[0].policies.as_ref().unwrap();
    assert_eq!(to_backend.timeout.as_ref().unwrap().name, "web-to-backend");
    assert_eq!(to_backend.timeout.as_ref().unwrap().request_ms, 1000);
    assert!(
        to_backend.retry.is_none(),
        "the Retry is for api callers only"
    );
    // Every backend inbound has version v1, so `to: version: v1` selects it.
    assert_eq!(to_backend.load_balancer.as_ref().unwrap().name, "v1-only");

    let to_store = config.outbounds[1].policies.as_ref().unwrap();
    assert_eq!(to_store.timeout.as_ref().unwrap().name, "any");
    assert!(to_store.load_balancer.is_none());
    // Rate limits belong to the destination's inbounds, not the caller's.
    assert!(config.inbounds[0].rate_limits.is_empty());
}

#[test]
fn rate_limits_rank_on_the_destination_inbound() {
    let backend = server("backend-1", "10.0.0.2", "backend", 20001, None);
    let config = compile(
        &backend,
        std::slice::from_ref(&backend),
        None,
        &policies(POLICIES),
        all_online,
    );
    let limits: Vec<(&str, &str)> = config.inbounds[0]
        .rate_limits
        .iter()
        .map(|r| (r.name.as_str(), r.from_service.as_str()))
        .collect();
    assert_eq!(limits, [("b-web", "web"), ("a-limit", "")]);
    assert_eq!(config.inbounds[0].rate_limits[1].burst, 5);
}

#[test]
fn outbounds_without_policies_carry_none() {
    let web = caller(json!([{"port": 30001, "service": "backend"}]));
    let config = compile(
        &web,
        std::slice::from_ref(&web),
        None,
        &MeshPolicies::default(),
        all_online,
    );
    assert!(config.outbounds[0].policies.is_none());
}
