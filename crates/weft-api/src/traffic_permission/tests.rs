use crate::{Resource, document::parse_resources, traffic_permission::Action};

const VALID: &str = r#"
type: TrafficPermission
mesh: default
name: web-to-backend
selector:
  from: { service: web }
  to: { service: backend }
spec:
  action: allow
  rules:
    - methods: [POST]
      paths: [{ exact: /orders }, { prefix: /api/ }]
      headers: [{ name: x-env, exact: prod }, { name: x-trace, present: true }]
      jwt:
        issuer: https://issuer.example
        jwks: { file: /path/jwks.json }
        audiences: [orders]
        scopes: [orders:write]
        claims: { tenant: acme }
"#;

fn errors_after(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<String> {
    let mut doc: serde_json::Value = serde_yaml_ng::from_str(VALID).unwrap();
    edit(&mut doc);
    match Resource::from_value(doc) {
        Ok(_) => vec![],
        Err(e) => e.lines(),
    }
}

/// A change to the valid document.
type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

fn rule(d: &mut serde_json::Value) -> &mut serde_json::Value {
    &mut d["spec"]["rules"][0]
}

#[test]
fn the_example_is_valid_and_round_trips() {
    let parsed = parse_resources(VALID).unwrap();
    let Resource::TrafficPermission(p) = &parsed[0] else {
        panic!("not a permission")
    };
    assert_eq!(p.spec.action, Action::Allow);
    assert_eq!(p.selector.from_service(), Some("web"));
    let again = Resource::from_value(parsed[0].to_value()).unwrap();
    assert_eq!(again, parsed[0]);
}

#[test]
fn minimal_permission_is_valid() {
    let doc = "type: TrafficPermission\nmesh: default\nname: any\nspec: { action: deny }\n";
    assert_eq!(parse_resources(doc).unwrap().len(), 1);
}

#[test]
fn envelope_errors_name_their_field() {
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|d| d["name"] = "Bad_Name".into()), "name: "),
        (Box::new(|d| d["mesh"] = "".into()), "mesh: "),
        (
            Box::new(|d| d["spec"]["action"] = "permit".into()),
            "spec.action: \"permit\" is not an action (allow, deny)",
        ),
        (
            Box::new(|d| d["selector"]["from"]["version"] = "v1".into()),
            "selector.from.version: only the `service` tag",
        ),
        (
            Box::new(|d| d["selector"]["to"]["version"] = "".into()),
            "selector.to.version: must not be empty",
        ),
        (
            Box::new(|d| d["selector"]["to"]["service"] = "Back End".into()),
            "selector.to.service: ",
        ),
        (
            Box::new(|d| d["selector"]["to"]["bad key!"] = "x".into()),
            "selector.to: ",
        ),
        (
            Box::new(|d| d["selector"]["sideways"] = "x".into()),
            "selector.sideways: unknown field `sideways`",
        ),
        (
            Box::new(|d| d["spec"]["extra"] = 1.into()),
            "spec.extra: unknown field `extra`",
        ),
    ];
    for (edit, expected) in cases {
        let errs = errors_after(edit);
        assert!(
            errs.iter().any(|e| e.starts_with(expected)),
            "{expected:?} not in {errs:?}"
        );
    }
}

#[test]
fn rule_errors_name_their_field() {
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|d| *rule(d) = serde_json::json!({})),
            "spec.rules[0]: a rule needs at least one of",
        ),
        (
            Box::new(|d| rule(d)["methods"][0] = "post".into()),
            "spec.rules[0].methods[0]: \"post\" is not a method",
        ),
        (
            Box::new(|d| rule(d)["paths"][0] = serde_json::json!({"exact": "orders"})),
            "spec.rules[0].paths[0].exact: \"orders\" must start with '/'",
        ),
        (
            Box::new(|d| rule(d)["paths"][1] = serde_json::json!({"prefix": "api"})),
            "spec.rules[0].paths[1].prefix: ",
        ),
        (
            Box::new(|d| rule(d)["paths"][0] = serde_json::json!({"exact": "/a", "prefix": "/b"})),
            "spec.rules[0].paths[0]: exactly one of exact, prefix",
        ),
        (
            Box::new(|d| rule(d)["paths"][0] = serde_json::json!({})),
            "spec.rules[0].paths[0]: exactly one of exact, prefix",
        ),
        (
            Box::new(|d| rule(d)["headers"][0]["name"] = "x env".into()),
            "spec.rules[0].headers[0].name: ",
        ),
        (
            Box::new(|d| rule(d)["headers"][0]["prefix"] = "p".into()),
            "spec.rules[0].headers[0]: exactly one of exact, prefix, present",
        ),
        (
            Box::new(|d| rule(d)["headers"][1]["present"] = false.into()),
            "spec.rules[0].headers[1].present: only `present: true`",
        ),
        (
            Box::new(|d| rule(d)["jwt"]["issuer"] = "".into()),
            "spec.rules[0].jwt.issuer: must not be empty",
        ),
        (
            Box::new(|d| rule(d)["jwt"]["jwks"] = serde_json::json!({})),
            "spec.rules[0].jwt.jwks: exactly one of file, url",
        ),
        (
            Box::new(|d| {
                rule(d)["jwt"]["jwks"] = serde_json::json!({"file": "/a", "url": "https://x"})
            }),
            "spec.rules[0].jwt.jwks: exactly one of file, url",
        ),
        (
            Box::new(|d| rule(d)["jwt"]["jwks"] = serde_json::json!({"file": ""})),
            "spec.rules[0].jwt.jwks.file: must not be empty",
        ),
        (
            Box::new(|d| rule(d)["jwt"]["jwks"] = serde_json::json!({"url": "ftp://x"})),
            "spec.rules[0].jwt.jwks.url: \"ftp://x\" is not an http(s) URL",
        ),
        (
            Box::new(|d| rule(d)["jwt"]["audiences"][0] = "".into()),
            "spec.rules[0].jwt.audiences[0]: must not be empty",
        ),
        (
            Box::new(|d| rule(d)["jwt"]["scopes"][0] = "a b".into()),
            "spec.rules[0].jwt.scopes[0]: \"a b\" is not a scope",
        ),
        (
            Box::new(|d| rule(d)["jwt"]["claims"][""] = "x".into()),
            "spec.rules[0].jwt.claims: a claim name must not be empty",
        ),
        (
            Box::new(|d| rule(d)["jwt"]["claims"]["tenant"] = 1.into()),
            "spec.rules[0].jwt.claims.tenant: ",
        ),
    ];
    for (edit, expected) in cases {
        let errs = errors_after(edit);
        assert!(
            errs.iter().any(|e| e.starts_with(expected)),
            "{expected:?} not in {errs:?}"
        );
    }
}

#[test]
fn skip_default_permission_is_a_mesh_field() {
    let doc = "type: Mesh\nname: m\nskipDefaultPermission: true\n";
    let Resource::Mesh(m) = &parse_resources(doc).unwrap()[0] else {
        panic!("not a mesh")
    };
    assert!(m.skip_default_permission);
    let bad = "type: Mesh\nname: m\nskipDefaultPermission: maybe\n";
    let err = parse_resources(bad).unwrap_err().to_string();
    assert!(err.contains("skipDefaultPermission"), "{err}");
}
