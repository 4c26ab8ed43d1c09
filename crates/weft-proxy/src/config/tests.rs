//! Conversion of control-plane configs: defaults, and rejections that name the field.

use weft_api::proto;

use super::*;

fn valid() -> proto::ProxyConfig {
    proto::ProxyConfig {
        mtls: None,
        transparent_proxy: None,
        version: 7,
        mesh: "default".into(),
        dataplane: "web-1".into(),
        inbounds: vec![proto::Inbound {
            address: "10.0.0.1".into(),
            port: 20001,
            service_address: String::new(),
            service_port: 8001,
            protocol: proto::Protocol::Http.into(),
            tags: [("service".to_owned(), "web".to_owned())].into(),
            ..Default::default()
        }],
        outbounds: vec![proto::Outbound {
            address: String::new(),
            port: 30001,
            service: "backend".into(),
            protocol: proto::Protocol::Grpc.into(),
            endpoints: vec![proto::Endpoint {
                address: "10.0.0.2".into(),
                port: 20001,
                dataplane: "backend-1".into(),
                tags: Default::default(),
            }],
            policies: None,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn errors_after(edit: impl FnOnce(&mut proto::ProxyConfig)) -> Vec<String> {
    let mut msg = valid();
    edit(&mut msg);
    match Config::from_proto(msg) {
        Ok(_) => vec![],
        Err(e) => e.lines(),
    }
}

#[test]
fn converts_a_valid_config_with_defaults() {
    let config = Config::from_proto(valid()).unwrap();
    assert_eq!(config.version, 7);
    let inbound = &config.inbounds[0];
    assert_eq!(inbound.listen, "10.0.0.1:20001".parse().unwrap());
    assert_eq!(inbound.service_address, "127.0.0.1:8001".parse().unwrap());
    assert_eq!(inbound.service, "web");
    assert_eq!(inbound.protocol, Protocol::Http);
    let outbound = &config.outbounds[0];
    assert_eq!(outbound.listen, "127.0.0.1:30001".parse().unwrap());
    assert_eq!(outbound.protocol, Protocol::Grpc);
    assert_eq!(
        outbound.endpoints[0].address,
        "10.0.0.2:20001".parse().unwrap()
    );
}

#[test]
fn serializes_for_the_admin_endpoint() {
    let json = serde_json::to_value(Config::from_proto(valid()).unwrap()).unwrap();
    assert_eq!(json["inbounds"][0]["listen"], "10.0.0.1:20001");
    assert_eq!(json["inbounds"][0]["serviceAddress"], "127.0.0.1:8001");
    assert_eq!(json["outbounds"][0]["protocol"], "grpc");
    assert_eq!(
        json["outbounds"][0]["endpoints"][0]["address"],
        "10.0.0.2:20001"
    );
    assert_eq!(
        json["outbounds"][0]["endpoints"][0]["dataplane"],
        "backend-1"
    );
}

#[test]
fn rejects_port_zero_and_out_of_range() {
    assert_eq!(
        errors_after(|m| {
            m.inbounds[0].port = 0;
            m.outbounds[0].endpoints[0].port = 70000;
        }),
        [
            "inbounds[0].port: 0 is not a port (1-65535)",
            "outbounds[0].endpoints[0].port: 70000 is not a port (1-65535)",
        ]
    );
}

#[test]
fn rejects_bad_and_missing_addresses() {
    assert_eq!(
        errors_after(|m| {
            m.inbounds[0].address = String::new();
            m.inbounds[0].service_address = "localhost".into();
            m.outbounds[0].endpoints[0].address = "10.0.0".into();
        }),
        [
            "inbounds[0].address: required (an IP address)",
            "inbounds[0].service_address: \"localhost\" is not an IP address",
            "outbounds[0].endpoints[0].address: \"10.0.0\" is not an IP address",
        ]
    );
}

#[test]
fn rejects_unknown_protocol_and_bad_names() {
    assert_eq!(
        errors_after(|m| {
            m.mesh = String::new();
            m.outbounds[0].protocol = 9;
            m.outbounds[0].service = "Back End".into();
        }),
        [
            "mesh: \"\" is not a valid name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)",
            "outbounds[0].service: \"Back End\" is not a valid name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)",
            "outbounds[0].protocol: 9 is not a protocol (0 tcp, 1 http, 2 http2, 3 grpc)",
        ]
    );
}

#[test]
fn rejects_two_listeners_on_one_port() {
    let errors = errors_after(|m| {
        m.outbounds[0].address = "0.0.0.0".into();
        m.outbounds[0].port = 20001;
    });
    assert_eq!(
        errors,
        ["outbounds[0].port: 0.0.0.0:20001 is already used by inbounds[0]"]
    );
}

#[test]
fn rejects_an_inbound_that_would_forward_to_the_proxy_itself() {
    let errors = errors_after(|m| {
        m.inbounds[0].service_address = "127.0.0.1".into();
        m.inbounds[0].service_port = 30001;
    });
    assert_eq!(
        errors,
        ["inbounds[0].service_port: 127.0.0.1:30001 is this proxy's own listener outbounds[0]"]
    );
}

#[test]
fn an_outbound_without_endpoints_is_valid() {
    let errors = errors_after(|m| m.outbounds[0].endpoints.clear());
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn mtls_defaults_to_off_and_parses_its_settings() {
    let config = Config::from_proto(valid()).unwrap();
    assert_eq!(config.mtls, MtlsConfig::default());
    assert!(!config.mtls.is_on());

    let ca = crate::tests::ca::TestCa::new("config CA");
    let mut msg = valid();
    msg.mtls = Some(proto::Mtls {
        mode: proto::MtlsMode::MtlsStrict.into(),
        trust_bundle_pem: ca.pem().to_owned(),
        certificate_lifetime_seconds: 600,
        issuer_id: "ca-1".into(),
    });
    let config = Config::from_proto(msg).unwrap();
    assert_eq!(config.mtls.mode, MtlsMode::Strict);
    assert_eq!(config.mtls.trust_bundle, ca.bundle());
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(
        json["mtls"],
        serde_json::json!({
            "mode": "strict",
            "trustBundle": ["CN=config CA"],
            "certificateLifetimeSeconds": 600,
            "issuerId": "ca-1",
        })
    );
}

#[test]
fn rejects_an_unknown_mode_and_a_bad_trust_bundle() {
    let errors = errors_after(|m| {
        m.mtls = Some(proto::Mtls {
            mode: 7,
            trust_bundle_pem:
                "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".into(),
            certificate_lifetime_seconds: 0,
            issuer_id: String::new(),
        })
    });
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        errors[0],
        "mtls.mode: 7 is not an mTLS mode (0 off, 1 permissive, 2 strict)"
    );
    assert!(
        errors[1].starts_with("mtls.trust_bundle_pem: not a PEM certificate list: "),
        "{errors:?}"
    );
    let errors = errors_after(|m| {
        m.mtls = Some(proto::Mtls {
            trust_bundle_pem: "no PEM here".into(),
            ..Default::default()
        })
    });
    assert_eq!(
        errors,
        ["mtls.trust_bundle_pem: no certificate in the PEM text"]
    );
}

#[test]
fn parses_policies_and_names_bad_fields() {
    let config = Config::from_proto(proto::ProxyConfig {
        outbounds: vec![proto::Outbound {
            policies: Some(proto::OutboundPolicies {
                timeout: Some(proto::TimeoutPolicy {
                    name: "t".into(),
                    request_ms: 1500,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..valid().outbounds[0].clone()
        }],
        ..valid()
    })
    .unwrap();
    let timeout = config.outbounds[0].policies.timeout.as_ref().unwrap();
    assert_eq!(
        timeout.request.unwrap().get(),
        std::time::Duration::from_millis(1500)
    );
    assert!(timeout.connect.is_none());

    let errors = errors_after(|c| {
        c.outbounds[0].policies = Some(proto::OutboundPolicies {
            retry: Some(proto::RetryPolicy {
                attempts: 0,
                budget_percent: 20,
                retry_on: vec![9],
                ..Default::default()
            }),
            load_balancer: Some(proto::LoadBalancerPolicy {
                r#type: proto::LbType::LbRingHash.into(),
                ..Default::default()
            }),
            fault_injection: Some(proto::FaultInjectionPolicy {
                abort_ppm: 2_000_000,
                ..Default::default()
            }),
            ..Default::default()
        });
        c.inbounds[0].rate_limits = vec![proto::RateLimitPolicy {
            requests: 0,
            interval_ms: 1000,
            burst: 1,
            ..Default::default()
        }];
    });
    for expected in [
        "outbounds[0].policies.retry.retry_on[0]: 9 is not a retry condition",
        "outbounds[0].policies.retry.attempts: 0 is not 1-10",
        "outbounds[0].policies.load_balancer.hash_on: required with LB_RING_HASH",
        "outbounds[0].policies.fault_injection.abort_ppm: 2000000 is not 0-1000000",
        "inbounds[0].rate_limits[0].requests: must be at least 1",
    ] {
        assert!(
            errors.iter().any(|e| e == expected),
            "{expected:?} not in {errors:#?}"
        );
    }
}

#[test]
fn transparent_proxy_errors_name_their_fields() {
    let errors = errors_after(|c| {
        c.transparent_proxy = Some(proto::TransparentProxy {
            inbound_port: 0,
            outbound_port: 15001,
            dns_port: 70000,
            dns_suffix: String::new(),
            outside_mesh: 7,
            server_first_ports: vec![25, 0],
            services: vec![proto::MeshService {
                name: "Bad Name".into(),
                virtual_ip: "240.0.0.x".into(),
                protocol: 0,
                endpoints: vec![],
                instance_addresses: vec!["10.0.0.2".into()],
            }],
        });
    });
    let has = |prefix: &str| errors.iter().any(|e| e.starts_with(prefix));
    for path in [
        "transparent_proxy.inbound_port: 0 is not a port",
        "transparent_proxy.dns_port: 70000 is not a port",
        "transparent_proxy.dns_suffix: required",
        "transparent_proxy.outside_mesh: 7 is not a choice",
        "transparent_proxy.server_first_ports[1]: 0 is not a port",
        "transparent_proxy.services[0].name:",
        "transparent_proxy.services[0].virtual_ip: \"240.0.0.x\" is not an IP address",
        "transparent_proxy.services[0].instance_addresses[0]: \"10.0.0.2\" is not an ip:port address",
    ] {
        assert!(has(path), "{path} not in {errors:?}");
    }
}

#[test]
fn transparent_proxy_parses_with_an_optional_dns_port_and_virtual_ip() {
    let mut msg = valid();
    msg.transparent_proxy = Some(proto::TransparentProxy {
        inbound_port: 15006,
        outbound_port: 15001,
        dns_port: 0,
        dns_suffix: ".Mesh.".into(),
        outside_mesh: proto::OutsideMesh::Passthrough.into(),
        server_first_ports: vec![3306],
        services: vec![proto::MeshService {
            name: "backend".into(),
            virtual_ip: String::new(),
            protocol: proto::Protocol::Http.into(),
            endpoints: vec![],
            instance_addresses: vec!["10.0.0.2:8080".into()],
        }],
    });
    let t = Config::from_proto(msg).unwrap().transparent.unwrap();
    assert_eq!(t.dns_port, None);
    assert_eq!(t.dns_suffix, "mesh");
    assert_eq!(t.services[0].virtual_ip, None);
    assert_eq!(t.services[0].instance_addresses[0].port(), 8080);
}
