//! The compiler on plain values: defaults, endpoints, protocols, determinism.

use serde_json::{Value, json};
use weft_api::{Dataplane, Resource, proto};

use super::{MeshPolicies, MeshTls, compile};

mod observability;
mod policies;
mod rotation;

fn dp(value: Value) -> Dataplane {
    match Resource::from_value(value) {
        Ok(Resource::Dataplane(dp)) => dp,
        other => panic!("not a valid dataplane: {other:?}"),
    }
}

/// A backend serving `service` on `port` at `address`, with `protocol` if given.
fn server(
    name: &str,
    address: &str,
    service: &str,
    port: u16,
    protocol: Option<&str>,
) -> Dataplane {
    let mut tags = json!({"service": service, "version": "v1"});
    if let Some(p) = protocol {
        tags["protocol"] = p.into();
    }
    dp(json!({
        "mesh": "default", "name": name, "type": "Dataplane",
        "networking": {
            "address": address,
            "inbound": [{"port": port, "servicePort": 8080, "tags": tags}],
        },
    }))
}

fn caller(outbounds: Value) -> Dataplane {
    dp(json!({
        "mesh": "default", "name": "web-1", "type": "Dataplane",
        "networking": {
            "address": "10.0.0.1",
            "inbound": [{"port": 20001, "servicePort": 8001, "tags": {"service": "web"}}],
            "outbound": outbounds,
        },
    }))
}

fn all_online(_: &str) -> bool {
    true
}

#[test]
fn inbounds_get_defaults_and_tags() {
    let d = dp(json!({
        "mesh": "default", "name": "svc-1", "type": "Dataplane",
        "networking": {
            "address": "10.0.0.5",
            "inbound": [
                {"port": 20001, "servicePort": 8001, "tags": {"service": "a", "protocol": "http", "zone": "z1"}},
                {"port": 20002, "servicePort": 8002, "address": "10.0.0.6",
                 "serviceAddress": "10.0.0.7", "tags": {"service": "b"}},
            ],
        },
    }));
    let config = compile(
        &d,
        std::slice::from_ref(&d),
        None,
        &MeshPolicies::default(),
        all_online,
    );
    assert_eq!(config.version, 0);
    assert_eq!(
        (config.mesh.as_str(), config.dataplane.as_str()),
        ("default", "svc-1")
    );
    let [a, b] = &config.inbounds[..] else {
        panic!("{config:?}")
    };
    assert_eq!(
        (
            a.address.as_str(),
            a.port,
            a.service_address.as_str(),
            a.service_port
        ),
        ("10.0.0.5", 20001, "127.0.0.1", 8001)
    );
    assert_eq!(a.protocol(), proto::Protocol::Http);
    assert_eq!(a.tags.len(), 3);
    assert_eq!(a.tags["zone"], "z1");
    assert_eq!(
        (b.address.as_str(), b.service_address.as_str()),
        ("10.0.0.6", "10.0.0.7")
    );
    assert_eq!(b.protocol(), proto::Protocol::Tcp, "tcp by default");
    assert!(config.outbounds.is_empty());
}

#[test]
fn outbound_endpoints_are_the_online_inbounds_of_the_service() {
    let web = caller(json!([
        {"port": 30001, "service": "backend"},
        {"port": 30002, "service": "db", "address": "127.0.0.2"},
    ]));
    let dps = vec![
        web.clone(),
        server("backend-b", "10.0.0.12", "backend", 20010, Some("http")),
        server("backend-a", "10.0.0.11", "backend", 20010, Some("http")),
        server("backend-c", "10.0.0.13", "backend", 20010, Some("http")),
        server("other", "10.0.0.14", "other", 20010, None),
    ];
    let config = compile(&web, &dps, None, &MeshPolicies::default(), |name| {
        name != "backend-c"
    });
    let [backend, db] = &config.outbounds[..] else {
        panic!("{config:?}")
    };
    assert_eq!(
        (backend.address.as_str(), backend.port),
        ("127.0.0.1", 30001)
    );
    assert_eq!(backend.service, "backend");
    assert_eq!(backend.protocol(), proto::Protocol::Http);
    let eps: Vec<_> = backend
        .endpoints
        .iter()
        .map(|e| (e.dataplane.as_str(), e.address.as_str(), e.port))
        .collect();
    assert_eq!(
        eps,
        [
            ("backend-a", "10.0.0.11", 20010),
            ("backend-b", "10.0.0.12", 20010)
        ],
        "online only, sorted by dataplane"
    );
    assert_eq!(backend.endpoints[0].tags["version"], "v1");
    assert_eq!(db.address, "127.0.0.2");
    assert!(db.endpoints.is_empty());
    assert_eq!(db.protocol(), proto::Protocol::Tcp, "nobody serves db");
}

#[test]
fn endpoints_use_the_inbound_address_and_sort_by_port() {
    let web = caller(json!([{"port": 30001, "service": "backend"}]));
    let multi = dp(json!({
        "mesh": "default", "name": "multi", "type": "Dataplane",
        "networking": {
            "address": "10.0.0.20",
            "inbound": [
                {"port": 20002, "servicePort": 8002, "tags": {"service": "backend"}},
                {"port": 20001, "servicePort": 8001, "address": "10.0.0.21", "tags": {"service": "backend"}},
            ],
        },
    }));
    let config = compile(
        &web,
        &[web.clone(), multi],
        None,
        &MeshPolicies::default(),
        all_online,
    );
    let eps: Vec<_> = config.outbounds[0]
        .endpoints
        .iter()
        .map(|e| (e.address.as_str(), e.port))
        .collect();
    assert_eq!(eps, [("10.0.0.21", 20001), ("10.0.0.20", 20002)]);
}

#[test]
fn protocol_is_kept_when_every_endpoint_is_offline() {
    let web = caller(json!([{"port": 30001, "service": "backend"}]));
    let dps = vec![
        web.clone(),
        server("backend-a", "10.0.0.11", "backend", 20010, Some("grpc")),
    ];
    let config = compile(&web, &dps, None, &MeshPolicies::default(), |name| {
        name == "web-1"
    });
    assert!(config.outbounds[0].endpoints.is_empty());
    assert_eq!(config.outbounds[0].protocol(), proto::Protocol::Grpc);
}

#[test]
fn disagreeing_protocols_fall_back_to_tcp() {
    let web = caller(json!([{"port": 30001, "service": "backend"}]));
    let dps = vec![
        web.clone(),
        server("backend-a", "10.0.0.11", "backend", 20010, Some("http")),
        server("backend-b", "10.0.0.12", "backend", 20010, Some("grpc")),
    ];
    let config = compile(&web, &dps, None, &MeshPolicies::default(), all_online);
    assert_eq!(config.outbounds[0].protocol(), proto::Protocol::Tcp);
    assert_eq!(config.outbounds[0].endpoints.len(), 2, "both still serve");
}

#[test]
fn an_undeclared_protocol_counts_as_tcp_when_comparing() {
    let web = caller(json!([{"port": 30001, "service": "backend"}]));
    let dps = vec![
        web.clone(),
        server("backend-a", "10.0.0.11", "backend", 20010, None),
        server("backend-b", "10.0.0.12", "backend", 20010, Some("tcp")),
    ];
    let config = compile(&web, &dps, None, &MeshPolicies::default(), all_online);
    assert_eq!(config.outbounds[0].protocol(), proto::Protocol::Tcp);
}

#[test]
fn a_dataplane_can_be_its_own_endpoint() {
    let looped = dp(json!({
        "mesh": "default", "name": "self", "type": "Dataplane",
        "networking": {
            "address": "10.0.0.30",
            "inbound": [{"port": 20001, "servicePort": 8001, "tags": {"service": "s"}}],
            "outbound": [{"port": 30001, "service": "s"}],
        },
    }));
    let config = compile(
        &looped,
        std::slice::from_ref(&looped),
        None,
        &MeshPolicies::default(),
        all_online,
    );
    assert_eq!(config.outbounds[0].endpoints[0].dataplane, "self");
}

#[test]
fn output_is_deterministic() {
    let web = caller(json!([{"port": 30001, "service": "backend"}]));
    let mut dps = vec![
        web.clone(),
        server("backend-b", "10.0.0.12", "backend", 20010, Some("http")),
        server("backend-a", "10.0.0.11", "backend", 20010, Some("http")),
    ];
    let first = compile(&web, &dps, None, &MeshPolicies::default(), all_online);
    dps.reverse();
    let second = compile(&web, &dps, None, &MeshPolicies::default(), all_online);
    assert_eq!(first, second, "input order does not matter");
    assert_eq!(
        first,
        compile(&web, &dps, None, &MeshPolicies::default(), all_online)
    );
}

#[test]
fn the_outbound_declares_the_protocol_of_a_service_nobody_serves_yet() {
    let web = caller(json!([
        {"port": 30001, "service": "backend", "protocol": "http"},
        {"port": 30002, "service": "store"},
    ]));
    let config = compile(
        &web,
        std::slice::from_ref(&web),
        None,
        &MeshPolicies::default(),
        all_online,
    );
    assert_eq!(config.outbounds[0].protocol(), proto::Protocol::Http);
    assert_eq!(config.outbounds[1].protocol(), proto::Protocol::Tcp);
}

#[test]
fn the_services_own_protocol_wins_over_the_outbounds() {
    let web = caller(json!([{"port": 30001, "service": "backend", "protocol": "http"}]));
    let dps = vec![
        web.clone(),
        server("backend-a", "10.0.0.11", "backend", 20010, Some("grpc")),
    ];
    let config = compile(&web, &dps, None, &MeshPolicies::default(), all_online);
    assert_eq!(config.outbounds[0].protocol(), proto::Protocol::Grpc);
}

fn mesh_tls(mode: weft_api::MtlsMode) -> MeshTls {
    MeshTls {
        mode,
        trust_bundle_pem: "-----BEGIN CERTIFICATE-----\n...".into(),
        certificate_lifetime: std::time::Duration::from_secs(3600),
        issuer_id: "abc".into(),
    }
}

#[test]
fn mtls_settings_come_from_the_mesh() {
    let web = caller(json!([]));
    let strict = compile(
        &web,
        std::slice::from_ref(&web),
        Some(&mesh_tls(weft_api::MtlsMode::Strict)),
        &MeshPolicies::default(),
        all_online,
    );
    assert_eq!(
        strict.mtls,
        Some(proto::Mtls {
            mode: proto::MtlsMode::MtlsStrict.into(),
            trust_bundle_pem: "-----BEGIN CERTIFICATE-----\n...".into(),
            certificate_lifetime_seconds: 3600,
            issuer_id: "abc".into(),
        })
    );
    let permissive = compile(
        &web,
        std::slice::from_ref(&web),
        Some(&mesh_tls(weft_api::MtlsMode::Permissive)),
        &MeshPolicies::default(),
        all_online,
    );
    assert_eq!(
        permissive.mtls.unwrap().mode(),
        proto::MtlsMode::MtlsPermissive
    );
    let off = compile(
        &web,
        std::slice::from_ref(&web),
        Some(&mesh_tls(weft_api::MtlsMode::Off)),
        &MeshPolicies::default(),
        all_online,
    );
    assert_eq!(off.mtls, None);
    assert_eq!(
        compile(
            &web,
            std::slice::from_ref(&web),
            None,
            &MeshPolicies::default(),
            all_online
        )
        .mtls,
        None
    );
}

fn permission(value: Value) -> weft_api::TrafficPermission {
    let mut value = value;
    value["type"] = "TrafficPermission".into();
    value["mesh"] = "default".into();
    match Resource::from_value(value) {
        Ok(Resource::TrafficPermission(p)) => p,
        other => panic!("not a valid permission: {other:?}"),
    }
}

#[test]
fn inbounds_carry_their_permissions_most_specific_first() {
    let backend = server("backend-1", "10.0.0.2", "backend", 20002, Some("http"));
    let permissions = [
        permission(json!({"name": "allow-all", "spec": {"action": "allow"}})),
        permission(
            json!({"name": "z-web", "selector": {"from": {"service": "web"}, "to": {"service": "backend"}},
            "spec": {"action": "allow", "rules": [{"methods": ["POST"], "paths": [{"exact": "/orders"}],
                "headers": [{"name": "X-Env", "present": true}],
                "jwt": {"issuer": "https://i", "jwks": {"file": "/j.json"}, "scopes": ["orders:write"]}}]}}),
        ),
        permission(
            json!({"name": "a-web", "selector": {"from": {"service": "web"}, "to": {"service": "backend"}},
            "spec": {"action": "deny"}}),
        ),
        permission(
            json!({"name": "to-backend", "selector": {"to": {"service": "backend", "version": "*"}},
            "spec": {"action": "deny"}}),
        ),
        permission(
            json!({"name": "to-other", "selector": {"to": {"service": "other"}}, "spec": {"action": "allow"}}),
        ),
        permission(
            json!({"name": "to-v2", "selector": {"to": {"version": "v2"}}, "spec": {"action": "allow"}}),
        ),
    ];
    let config = compile(
        &backend,
        std::slice::from_ref(&backend),
        None,
        &MeshPolicies {
            permissions: permissions.to_vec(),
            ..MeshPolicies::default()
        },
        all_online,
    );
    let inbound = &config.inbounds[0];
    let names: Vec<&str> = inbound
        .permissions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["a-web", "z-web", "to-backend", "allow-all"]);
    let [deny, rules, to_backend, any] = &inbound.permissions[..] else {
        panic!("four permissions")
    };
    assert_eq!(deny.from_service, "web");
    assert_eq!(deny.action(), proto::PermissionAction::PermissionDeny);
    assert_eq!(any.from_service, "");
    assert_eq!(any.action(), proto::PermissionAction::PermissionAllow);
    assert_eq!(to_backend.from_service, "");
    let rule = &rules.rules[0];
    assert_eq!(rule.methods, ["POST"]);
    assert_eq!(
        rule.paths[0].kind,
        Some(proto::path_match::Kind::Exact("/orders".into()))
    );
    assert_eq!(rule.headers[0].name, "x-env", "header names are lowercased");
    let jwt = rule.jwt.as_ref().unwrap();
    assert_eq!(jwt.jwks_file, "/j.json");
    assert_eq!(jwt.scopes, ["orders:write"]);
}
