use std::collections::BTreeMap;

use super::*;
use crate::traffic_permission::{TrafficPermission, TrafficPermissionSpec};

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn permission(name: &str, from: &[(&str, &str)], to: &[(&str, &str)]) -> TrafficPermission {
    Policy {
        mesh: "default".into(),
        name: name.into(),
        selector: Selector {
            from: tags(from),
            to: tags(to),
        },
        spec: TrafficPermissionSpec {
            action: crate::traffic_permission::Action::Allow,
            rules: vec![],
        },
    }
}

fn winner<'a>(policies: &'a [TrafficPermission], from: &str, to: &[(&str, &str)]) -> &'a str {
    select(policies, &tags(&[("service", from)]), &tags(to)).map_or("-", |p| p.name.as_str())
}

#[test]
fn omitted_and_wildcard_match_anything() {
    let any = permission("any", &[], &[]);
    let star = permission("star", &[("service", "*")], &[("service", "*")]);
    for p in [&any, &star] {
        assert!(p.selector.matches(&tags(&[("service", "web")]), &tags(&[])));
        assert!(p.selector.matches(&tags(&[]), &tags(&[("service", "x")])));
        assert_eq!(p.selector.specificity(), 0);
    }
}

#[test]
fn every_matcher_must_match() {
    let p = permission(
        "p",
        &[("service", "web")],
        &[("service", "backend"), ("version", "v2")],
    );
    let web = tags(&[("service", "web")]);
    assert!(
        p.selector
            .matches(&web, &tags(&[("service", "backend"), ("version", "v2")]))
    );
    assert!(
        !p.selector
            .matches(&web, &tags(&[("service", "backend"), ("version", "v1")]))
    );
    assert!(!p.selector.matches(&web, &tags(&[("service", "backend")])));
    assert!(!p.selector.matches(
        &tags(&[("service", "other")]),
        &tags(&[("service", "backend"), ("version", "v2")])
    ));
    // A caller with no identity has no tags: only `from: any` matches it.
    assert!(!p.selector.matches(
        &tags(&[]),
        &tags(&[("service", "backend"), ("version", "v2")])
    ));
    assert_eq!(p.selector.specificity(), 3);
}

#[test]
fn more_specific_wins_over_fewer_tags() {
    let policies = [
        permission("a-any", &[], &[]),
        permission("b-to", &[], &[("service", "backend")]),
        permission("c-both", &[("service", "web")], &[("service", "backend")]),
        permission(
            "d-to-version",
            &[],
            &[("service", "backend"), ("version", "v2")],
        ),
    ];
    let backend = [("service", "backend")];
    assert_eq!(winner(&policies, "web", &backend), "c-both");
    assert_eq!(winner(&policies, "other", &backend), "b-to");
    assert_eq!(winner(&policies, "other", &[("service", "store")]), "a-any");
    // Two tags either way: a tie, broken by name.
    let v2 = [("service", "backend"), ("version", "v2")];
    assert_eq!(winner(&policies, "web", &v2), "c-both");
    assert_eq!(winner(&policies, "other", &v2), "d-to-version");
}

#[test]
fn ties_go_to_the_smallest_name() {
    let policies = [
        permission("zeta", &[("service", "web")], &[]),
        permission("alpha", &[], &[("service", "backend")]),
        permission("beta", &[("service", "web")], &[]),
    ];
    assert_eq!(winner(&policies, "web", &[("service", "backend")]), "alpha");
    assert_eq!(winner(&policies, "web", &[("service", "store")]), "beta");
    assert_eq!(winner(&policies, "x", &[("service", "store")]), "-");
}

#[test]
fn precedence_sorts_most_specific_first_then_by_name() {
    let policies = [
        permission("a", &[], &[]),
        permission("c", &[("service", "web")], &[("service", "backend")]),
        permission("b", &[("service", "web")], &[("service", "backend")]),
        permission("d", &[], &[("service", "backend")]),
    ];
    let mut sorted: Vec<&TrafficPermission> = policies.iter().collect();
    sort_by_precedence(&mut sorted);
    let names: Vec<&str> = sorted.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["b", "c", "d", "a"]);
}
