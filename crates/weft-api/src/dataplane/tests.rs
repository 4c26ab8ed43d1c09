use crate::{Resource, document::parse_resources};

const VALID: &str = r#"
type: Dataplane
mesh: default
name: backend-1
networking:
  address: 127.0.0.1
  inbound:
    - port: 20001
      servicePort: 8001
      tags: { service: backend, protocol: http }
  outbound:
    - port: 30001
      service: store
  admin: { port: 9901 }
"#;

/// Applies `edit` to the valid document and returns the error lines.
fn errors_after(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<String> {
    let mut doc: serde_json::Value = serde_yaml_ng::from_str(VALID).unwrap();
    edit(&mut doc);
    match Resource::from_value(doc) {
        Ok(_) => vec![],
        Err(e) => e.lines(),
    }
}

#[test]
fn the_example_is_valid() {
    let parsed = parse_resources(VALID).unwrap();
    assert_eq!(parsed.len(), 1);
    let Resource::Dataplane(dp) = &parsed[0] else {
        panic!("not a dataplane")
    };
    assert_eq!(dp.networking.inbound[0].service(), "backend");
    assert_eq!(dp.networking.inbound[0].protocol(), crate::Protocol::Http);
}

#[test]
fn out_of_range_port_names_path_and_range() {
    let errs = errors_after(|d| d["networking"]["inbound"][0]["port"] = 70000.into());
    assert_eq!(
        errs,
        ["networking.inbound[0].port: 70000 is not a port (1-65535)"]
    );
}

#[test]
fn second_inbound_port_error_names_its_index() {
    let errs = errors_after(|d| {
        let second =
            serde_json::json!({"port": 70000, "servicePort": 8002, "tags": {"service": "b"}});
        d["networking"]["inbound"]
            .as_array_mut()
            .unwrap()
            .push(second);
    });
    assert_eq!(
        errs,
        ["networking.inbound[1].port: 70000 is not a port (1-65535)"]
    );
}

#[test]
fn unknown_field_is_rejected_with_its_path() {
    let errs = errors_after(|d| d["networking"]["inbound"][0]["prot"] = 1.into());
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("networking.inbound[0].prot: unknown field `prot`, expected one of"),
        "{errs:?}"
    );
}

#[test]
fn unknown_top_level_field_is_rejected() {
    let errs = errors_after(|d| d["spec"] = 1.into());
    assert!(
        errs[0].starts_with("spec: unknown field `spec`"),
        "{errs:?}"
    );
}

#[test]
fn duplicate_ports_are_rejected() {
    let errs = errors_after(|d| d["networking"]["outbound"][0]["port"] = 20001.into());
    assert_eq!(
        errs,
        ["networking.outbound[0].port: 20001 is already used by networking.inbound[0].port"]
    );
    let errs = errors_after(|d| d["networking"]["admin"]["port"] = 30001.into());
    assert_eq!(
        errs,
        ["networking.admin.port: 30001 is already used by networking.outbound[0].port"]
    );
}

#[test]
fn service_port_on_a_listener_port_is_rejected() {
    let errs = errors_after(|d| d["networking"]["inbound"][0]["servicePort"] = 20001.into());
    assert_eq!(
        errs,
        ["networking.inbound[0].servicePort: 20001 is already used by networking.inbound[0].port"]
    );
}

#[test]
fn missing_service_tag_is_rejected() {
    let errs = errors_after(|d| {
        d["networking"]["inbound"][0]["tags"] = serde_json::json!({"protocol": "http"})
    });
    assert_eq!(
        errs,
        [
            "networking.inbound[0].tags.service: required (the name of the service this inbound serves)"
        ]
    );
}

#[test]
fn unknown_protocol_is_rejected() {
    let errs = errors_after(|d| d["networking"]["inbound"][0]["tags"]["protocol"] = "htp".into());
    assert_eq!(
        errs,
        ["networking.inbound[0].tags.protocol: \"htp\" is not a protocol (tcp, http, http2, grpc)"]
    );
}

#[test]
fn bad_address_and_name_are_rejected() {
    let errs = errors_after(|d| {
        d["networking"]["address"] = "not-an-ip".into();
        d["name"] = "Backend_1".into();
    });
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("name: \"Backend_1\" is not a valid name"))
    );
    assert!(errs.contains(&"networking.address: \"not-an-ip\" is not an IP address".to_string()));
}

#[test]
fn missing_field_is_named() {
    let errs = errors_after(|d| {
        d["networking"]["inbound"][0]
            .as_object_mut()
            .unwrap()
            .remove("servicePort");
    });
    assert_eq!(errs, ["networking.inbound[0]: missing field `servicePort`"]);
}

#[test]
fn no_inbound_is_rejected() {
    let errs = errors_after(|d| d["networking"]["inbound"] = serde_json::json!([]));
    assert_eq!(
        errs,
        ["networking.inbound: at least one inbound is required"]
    );
}

#[test]
fn outbound_protocol_must_be_known() {
    let errs = errors_after(|d| d["networking"]["outbound"][0]["protocol"] = "http".into());
    assert!(errs.is_empty(), "{errs:?}");
    let errs = errors_after(|d| d["networking"]["outbound"][0]["protocol"] = "smtp".into());
    assert_eq!(
        errs,
        ["networking.outbound[0].protocol: \"smtp\" is not a protocol (tcp, http, http2, grpc)"]
    );
}

#[test]
fn transparent_proxying_defaults_and_clashing_ports() {
    assert_eq!(
        errors_after(|d| d["networking"]["transparentProxying"] = serde_json::json!({})),
        Vec::<String>::new()
    );
    // The inbound redirect listener binds every address: any port of it clashes.
    let errors = errors_after(|d| {
        d["networking"]["transparentProxying"] =
            serde_json::json!({"redirectPortInbound": 20001, "redirectPortDns": 9901});
    });
    assert!(
        errors.iter().any(|e| e.starts_with(
            "networking.transparentProxying.redirectPortInbound: 20001 is already used by networking.inbound[0].port"
        )),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e
            .starts_with("networking.transparentProxying.redirectPortDns: 9901 is already used")),
        "{errors:?}"
    );
    let errors = errors_after(|d| {
        d["networking"]["transparentProxying"] = serde_json::json!({"redirectPortOutbound": 0});
    });
    assert!(errors[0].contains("0 is not a port"), "{errors:?}");
}
