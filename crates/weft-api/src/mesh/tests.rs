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
    assert_eq!(mtls.ca.source(), CaSource::Builtin { name: "default" });
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

#[test]
fn a_rotation_parses_each_step() {
    let step = |ca: &str, trusted: serde_json::Value| {
        let doc = with_mtls(json!({
            "mode": "strict",
            "ca": {"type": "builtin", "name": ca},
            "trustedCas": trusted,
        }));
        assert_eq!(errors(doc.clone()), Vec::<String>::new());
        let Resource::Mesh(mesh) = Resource::from_value(doc.clone()).unwrap() else {
            panic!()
        };
        assert_eq!(Resource::Mesh(mesh.clone()).to_value(), doc);
        mesh.mtls.unwrap()
    };
    let one = step("ca-1", json!([{"type": "builtin", "name": "ca-2"}]));
    assert_eq!(one.ca.source(), CaSource::Builtin { name: "ca-1" });
    assert_eq!(one.trusted_cas, [CaBackend::builtin("ca-2")]);
    let two = step(
        "ca-2",
        json!([
            {"type": "builtin", "name": "ca-1"},
            {"type": "provided", "certFile": "/old-root.pem"},
        ]),
    );
    assert_eq!(
        two.trusted_cas[1].source(),
        CaSource::Provided {
            cert_file: "/old-root.pem",
            key_file: ""
        }
    );
    // No trusted CAs: the field is left out again.
    let doc = with_mtls(json!({"mode": "strict", "ca": {"type": "builtin", "name": "ca-2"}}));
    assert_eq!(Resource::from_value(doc.clone()).unwrap().to_value(), doc);
}

#[test]
fn trusted_cas_are_unique_and_not_the_issuing_ca() {
    assert_eq!(
        errors(with_mtls(json!({
            "mode": "strict",
            "trustedCas": [
                {"type": "builtin"},
                {"type": "builtin", "name": "ca-2"},
                {"type": "builtin", "name": "ca-2"},
                {"type": "provided", "certFile": "/a.pem"},
                {"type": "provided", "certFile": "/a.pem", "keyFile": "/a.key"},
            ],
        }))),
        [
            "mtls.trustedCas[0]: builtin CA \"default\" is already the issuing CA (mtls.ca)",
            "mtls.trustedCas[2]: builtin CA \"ca-2\" is already mtls.trustedCas[1]",
            "mtls.trustedCas[4]: provided CA /a.pem is already mtls.trustedCas[3]",
        ]
    );
    // The same name in another type is another CA.
    assert_eq!(
        errors(with_mtls(json!({
            "mode": "strict",
            "ca": {"type": "provided", "certFile": "/c", "keyFile": "/k"},
            "trustedCas": [{"type": "provided", "certFile": "/c"}, {"type": "builtin"}],
        }))),
        ["mtls.trustedCas[0]: provided CA /c is already the issuing CA (mtls.ca)"]
    );
}

#[test]
fn trusted_entries_need_a_certificate_but_no_key_and_builtin_names_are_names() {
    assert_eq!(
        errors(with_mtls(json!({
            "mode": "strict",
            "ca": {"type": "builtin", "name": "Not A Name"},
            "trustedCas": [
                {"type": "provided"},
                {"type": "provided", "certFile": "", "name": "x"},
                {"type": "builtin", "keyFile": "/k"},
            ],
        }))),
        [
            "mtls.ca.name: \"Not A Name\" is not a valid name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)",
            "mtls.trustedCas[0].certFile: required for a provided CA",
            "mtls.trustedCas[1].name: only a builtin CA has a name (a provided CA is its certFile)",
            "mtls.trustedCas[1].certFile: must not be empty",
            "mtls.trustedCas[2].keyFile: only a provided CA reads files (the builtin CA is generated)",
        ]
    );
}
