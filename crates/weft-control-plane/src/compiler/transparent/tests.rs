//! The transparent-proxy config on plain values.

use std::{collections::BTreeMap, net::Ipv4Addr};

use serde_json::{Value, json};
use weft_api::{Dataplane, Resource, mesh::transparent::MeshTransparentProxying, proto};

use super::{compile, mesh_services};

fn dp(value: Value) -> Dataplane {
    match Resource::from_value(value) {
        Ok(Resource::Dataplane(dp)) => dp,
        other => panic!("not a valid dataplane: {other:?}"),
    }
}

fn instance(name: &str, address: &str, service: &str, protocol: &str) -> Dataplane {
    dp(json!({
        "mesh": "default", "name": name, "type": "Dataplane",
        "networking": {
            "address": address,
            "inbound": [{"port": 20001, "servicePort": 8080,
                         "tags": {"service": service, "protocol": protocol}}],
        },
    }))
}

fn transparent_web() -> Dataplane {
    dp(json!({
        "mesh": "default", "name": "web-1", "type": "Dataplane",
        "networking": {
            "address": "10.0.0.1",
            "inbound": [{"port": 20001, "servicePort": 8001, "tags": {"service": "web"}}],
            "outbound": [{"port": 30001, "service": "payments"}],
            "transparentProxying": {"redirectPortDns": 15053},
        },
    }))
}

fn mesh() -> Vec<Dataplane> {
    vec![
        transparent_web(),
        instance("backend-1", "10.0.0.2", "backend", "http"),
        instance("backend-2", "10.0.0.3", "backend", "http"),
        instance("db-1", "10.0.0.4", "db", "tcp"),
    ]
}

fn ips() -> BTreeMap<String, Ipv4Addr> {
    [
        ("backend".to_owned(), Ipv4Addr::new(240, 0, 0, 1)),
        ("db".to_owned(), Ipv4Addr::new(240, 0, 0, 2)),
        ("web".to_owned(), Ipv4Addr::new(240, 0, 0, 3)),
    ]
    .into()
}

#[test]
fn services_are_served_and_called_ones_without_duplicates() {
    assert_eq!(mesh_services(&mesh()), ["backend", "db", "payments", "web"]);
}

#[test]
fn a_dataplane_without_transparent_proxying_gets_none() {
    let plain = instance("backend-1", "10.0.0.2", "backend", "http");
    assert_eq!(compile(&plain, None, &mesh(), &ips(), |_| true), None);
}

#[test]
fn every_service_comes_with_its_ip_endpoints_and_instance_addresses() {
    let online = |name: &str| name != "backend-2";
    let t = compile(&transparent_web(), None, &mesh(), &ips(), online).unwrap();
    assert_eq!(
        (t.inbound_port, t.outbound_port, t.dns_port),
        (15006, 15001, 15053)
    );
    assert_eq!(t.dns_suffix, "mesh");
    assert_eq!(t.outside_mesh, proto::OutsideMesh::Passthrough as i32);
    assert!(t.server_first_ports.contains(&3306));

    let by_name: BTreeMap<&str, &proto::MeshService> =
        t.services.iter().map(|s| (s.name.as_str(), s)).collect();
    let backend = by_name["backend"];
    assert_eq!(backend.virtual_ip, "240.0.0.1");
    assert_eq!(backend.protocol, proto::Protocol::Http as i32);
    // Offline instances are neither endpoints nor instance addresses.
    assert_eq!(backend.endpoints.len(), 1);
    assert_eq!(backend.endpoints[0].address, "10.0.0.2");
    assert_eq!(backend.instance_addresses, ["10.0.0.2:8080"]);
    assert_eq!(by_name["db"].protocol, proto::Protocol::Tcp as i32);
    // Called but not served: no endpoints, and no IP assigned here.
    assert!(by_name["payments"].endpoints.is_empty());
    assert_eq!(by_name["payments"].virtual_ip, "");
}

#[test]
fn mesh_settings_are_passed_on() {
    let settings: MeshTransparentProxying = serde_json::from_value(json!({
        "outsideMesh": "refuse", "dnsSuffix": "svc.internal", "serverFirstPorts": [3306]
    }))
    .unwrap();
    let t = compile(&transparent_web(), Some(&settings), &mesh(), &ips(), |_| {
        true
    })
    .unwrap();
    assert_eq!(t.outside_mesh, proto::OutsideMesh::Refuse as i32);
    assert_eq!(t.dns_suffix, "svc.internal");
    assert_eq!(t.server_first_ports, [3306]);
}
