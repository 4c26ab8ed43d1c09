//! The lookups of a transparent proxy's table, from a parsed config.

use weft_api::proto;

use super::*;

fn config(backend_port: u32) -> Config {
    let endpoint = |address: &str, dataplane: &str| proto::Endpoint {
        address: address.into(),
        port: backend_port,
        dataplane: dataplane.into(),
        tags: Default::default(),
    };
    Config::from_proto(proto::ProxyConfig {
        version: 1,
        mesh: "default".into(),
        dataplane: "web-1".into(),
        inbounds: vec![proto::Inbound {
            address: "10.0.0.1".into(),
            port: 20001,
            service_port: 8001,
            protocol: proto::Protocol::Http.into(),
            tags: [("service".to_owned(), "web".to_owned())].into(),
            ..Default::default()
        }],
        transparent_proxy: Some(proto::TransparentProxy {
            inbound_port: 15006,
            outbound_port: 15001,
            dns_port: 0,
            dns_suffix: "mesh".into(),
            outside_mesh: proto::OutsideMesh::Refuse.into(),
            server_first_ports: vec![3306],
            services: vec![
                proto::MeshService {
                    name: "backend".into(),
                    virtual_ip: "240.0.0.1".into(),
                    protocol: proto::Protocol::Http.into(),
                    endpoints: vec![
                        endpoint("10.0.0.2", "backend-1"),
                        endpoint("10.0.0.3", "backend-2"),
                    ],
                    instance_addresses: vec!["10.0.0.2:8080".into()],
                },
                proto::MeshService {
                    name: "db".into(),
                    virtual_ip: String::new(),
                    protocol: proto::Protocol::Tcp.into(),
                    endpoints: vec![endpoint("10.0.0.4", "db-1")],
                    instance_addresses: vec![],
                },
            ],
        }),
        ..Default::default()
    })
    .unwrap()
}

fn build(config: &Config, previous: &Table) -> Table {
    let transparent = config.transparent.as_ref().unwrap();
    Table::build(config, transparent, previous, &Identity::new("default")).unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn destinations_map_to_services_by_virtual_ip_endpoint_or_instance() {
    let table = build(&config(20001), &Table::default());
    let name = |dst: &str| table.service_for(addr(dst)).map(|s| s.name.clone());
    assert_eq!(name("240.0.0.1:80").as_deref(), Some("backend"));
    assert_eq!(name("240.0.0.1:8443").as_deref(), Some("backend"));
    assert_eq!(name("10.0.0.3:20001").as_deref(), Some("backend"));
    assert_eq!(name("10.0.0.2:8080").as_deref(), Some("backend"));
    assert_eq!(name("10.0.0.4:20001").as_deref(), Some("db"));
    assert_eq!(name("10.0.0.2:9999"), None);
    assert_eq!(name("192.0.2.7:80"), None);
    assert_eq!(table.outside_mesh, OutsideMesh::Refuse);
    assert!(table.server_first_ports.contains(&3306));
}

#[test]
fn inbound_traffic_maps_by_mesh_port_or_application_port() {
    let table = build(&config(20001), &Table::default());
    assert!(matches!(
        table.inbound_for(20001),
        Some(Route::InboundHttp(_))
    ));
    assert!(matches!(
        table.inbound_for(8001),
        Some(Route::InboundHttp(_))
    ));
    assert!(table.inbound_for(22).is_none());
}

#[test]
fn unchanged_services_keep_their_stack() {
    let first = build(&config(20001), &Table::default());
    let second = build(&config(20002), &first);
    let stack = |t: &Table, dst: &str| match &t.service_for(addr(dst)).unwrap().route {
        Route::OutboundHttp(o) => Arc::as_ptr(o) as usize,
        Route::OutboundTcp(o) => Arc::as_ptr(o) as usize,
        other => panic!("not an outbound: {other:?}"),
    };
    assert_eq!(
        stack(&first, "240.0.0.1:80"),
        stack(&second, "240.0.0.1:80")
    );
    // The endpoints moved to the new port.
    assert!(second.service_for(addr("10.0.0.2:20002")).is_some());
    assert!(second.service_for(addr("10.0.0.2:20001")).is_none());
}

#[test]
fn only_new_or_removed_stacks_start_a_new_generation() {
    let first = build(&config(20001), &Table::default());
    assert!(first.new_stacks);
    // Endpoints moved: every stack is carried over.
    assert!(!build(&config(20002), &first).new_stacks);
    // The inbound's protocol changed: its stack is new.
    let mut changed = config(20001);
    changed.inbounds[0].protocol = Protocol::Tcp;
    assert!(build(&changed, &first).new_stacks);
    // A service left the mesh: its stack is gone.
    let mut fewer = config(20001);
    fewer.transparent.as_mut().unwrap().services.pop();
    assert!(build(&fewer, &first).new_stacks);
}

#[test]
fn a_policy_change_builds_a_new_stack_and_endpoints_wait_for_the_commit() {
    let first = build(&config(20001), &Table::default());
    // The Dataplane's own outbound to `backend` gains a Timeout: the
    // redirect stack for `backend` must carry it, so it is built anew.
    let mut with_timeout = config(20001);
    with_timeout.outbounds.push(OutboundConfig {
        listen: addr("127.0.0.1:30001"),
        service: "backend".into(),
        protocol: Protocol::Http,
        endpoints: vec![],
        policies: crate::config::OutboundPolicies {
            timeout: Some(crate::config::policies::TimeoutConfig {
                name: "t".into(),
                connect: None,
                request: None,
                idle: None,
                stream_idle: None,
            }),
            ..Default::default()
        },
        access_log: None,
    });
    assert!(build(&with_timeout, &first).new_stacks);

    // Carried-over stacks get new endpoints only when the table runs.
    let endpoints = |t: &Table| match &t.service_for(addr("240.0.0.1:80")).unwrap().route {
        Route::OutboundHttp(o) => o.endpoint_addrs(),
        other => panic!("not an HTTP outbound: {other:?}"),
    };
    let mut second = build(&config(20002), &first);
    assert!(endpoints(&first).contains(&addr("10.0.0.2:20001")));
    second.apply_endpoints();
    assert!(endpoints(&second).contains(&addr("10.0.0.2:20002")));
}
