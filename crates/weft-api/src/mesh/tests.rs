//! Mesh validation: mTLS modes, CA types, files and lifetimes, each error
//! naming its field path.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::{Resource, document::parse_resources};

/// The error lines for a Mesh document, empty if it is valid.
fn errors(doc: serde_json::Value) -> Vec<String> {
    match Resource::from_value(doc) {
        Ok(_) => vec![],
        Err(e) => e.lines(),
    }
}

fn with_mtls(mtls: serde_json::Value) -> serde_json::Value {
    json!({"type": "Mesh", "name": "default", "mtls": mtls})
}

#[test]
fn the_documented_example_parses() {
    let parsed = parse_resources(
        "type: Mesh\nname: default\nmtls:\n  mode: strict\n  ca: { type: builtin }\n  certificateLifetime: 24h\n",
    )
    .unwrap();
    let Resource::Mesh(mesh) = &parsed[0] else {
        panic!("not a mesh")
    };
    let mtls = mesh.mtls_enabled().unwrap();
    assert_eq!(mtls.mode, MtlsMode::Strict);
    assert_eq!(mtls.ca.source(), CaSource::Builtin);
    assert_eq!(mtls.certificate_lifetime(), Duration::from_secs(86400));
    assert_eq!(mesh.spiffe_id("web"), "spiffe://default/web");
}

#[test]
fn mtls_is_off_when_absent_or_off() {
    let Resource::Mesh(plain) = Resource::from_value(json!({"type": "Mesh", "name": "m"})).unwrap()
    else {
        panic!()
    };
    assert!(plain.mtls_enabled().is_none());
    assert_eq!(plain.mtls, None);
    let Resource::Mesh(off) = Resource::from_value(with_mtls(json!({"mode": "off"}))).unwrap()
    else {
        panic!()
    };
    assert!(off.mtls_enabled().is_none());
    // Absent ca means builtin; absent lifetime means the default.
    let mtls = off.mtls.unwrap();
    assert_eq!(mtls.ca.kind, CaKind::Builtin);
    assert_eq!(mtls.certificate_lifetime(), DEFAULT_CERTIFICATE_LIFETIME);
}

#[test]
fn a_provided_ca_names_its_files() {
    let doc = with_mtls(json!({
        "mode": "permissive",
        "ca": {"type": "provided", "certFile": "/etc/ca.pem", "keyFile": "/etc/ca.key"},
    }));
    assert_eq!(errors(doc.clone()), Vec::<String>::new());
    let Resource::Mesh(mesh) = Resource::from_value(doc).unwrap() else {
        panic!()
    };
    assert_eq!(
        mesh.mtls.unwrap().ca.source(),
        CaSource::Provided {
            cert_file: "/etc/ca.pem",
            key_file: "/etc/ca.key"
        }
    );
}

#[test]
fn unknown_modes_and_types_name_the_path_and_the_choices() {
    assert_eq!(
        errors(with_mtls(json!({"mode": "strictly"}))),
        ["mtls.mode: \"strictly\" is not a mode (off, permissive, strict)"]
    );
    assert_eq!(
        errors(with_mtls(
            json!({"mode": "strict", "ca": {"type": "vault"}})
        )),
        ["mtls.ca.type: \"vault\" is not a CA type (builtin, provided)"]
    );
    assert_eq!(
        errors(with_mtls(
            json!({"mode": "strict", "ca": {"type": "builtin", "path": "x"}})
        ))[0]
            .split(':')
            .next(),
        Some("mtls.ca.path")
    );
    assert_eq!(
        errors(with_mtls(json!({"ca": {"type": "builtin"}}))),
        ["mtls: missing field `mode`"]
    );
}

#[test]
fn files_are_required_for_provided_and_refused_for_builtin() {
    assert_eq!(
        errors(with_mtls(
            json!({"mode": "strict", "ca": {"type": "provided", "keyFile": ""}})
        )),
        [
            "mtls.ca.certFile: required for a provided CA",
            "mtls.ca.keyFile: must not be empty"
        ]
    );
    assert_eq!(
        errors(with_mtls(
            json!({"mode": "strict", "ca": {"type": "builtin", "certFile": "/x"}})
        )),
        ["mtls.ca.certFile: only a provided CA reads files (the builtin CA is generated)"]
    );
}

#[test]
fn lifetimes_must_parse_and_stay_within_limits() {
    let lifetime = |l: &str| {
        errors(with_mtls(
            json!({"mode": "strict", "certificateLifetime": l}),
        ))
    };
    assert_eq!(lifetime("10s"), Vec::<String>::new());
    assert_eq!(lifetime("90d"), Vec::<String>::new());
    assert_eq!(
        lifetime("forever"),
        ["mtls.certificateLifetime: \"forever\" is not a duration (e.g. 24h, 90m)"]
    );
    assert_eq!(
        lifetime("9s"),
        ["mtls.certificateLifetime: 9s is outside 10s-90d"]
    );
    assert_eq!(
        lifetime("91d"),
        ["mtls.certificateLifetime: 91d is outside 10s-90d"]
    );
}

#[test]
fn a_mesh_round_trips_through_json() {
    let doc = with_mtls(json!({
        "mode": "strict",
        "ca": {"type": "provided", "certFile": "/c", "keyFile": "/k"},
        "certificateLifetime": "1h",
    }));
    let resource = Resource::from_value(doc.clone()).unwrap();
    assert_eq!(resource.to_value(), doc);
}
