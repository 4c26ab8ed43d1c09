//! Rule matching and weighted splits.

use std::net::SocketAddr;

use http::{Method, Request};

use super::*;
use crate::{
    authz::config::{HeaderMatch, HeaderValueMatch},
    config::policies::SplitConfig,
    policy::endpoints::EndpointSet,
};

fn tags(version: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("version".to_owned(), version.to_owned())])
}

fn config() -> RouteConfig {
    let split = |w, v| SplitConfig {
        weight: w,
        tags: tags(v),
    };
    RouteConfig {
        name: "canary".into(),
        rules: vec![
            RouteRuleConfig {
                path: None,
                method: Some(Method::GET),
                headers: vec![HeaderMatch {
                    name: "x-canary".into(),
                    value: HeaderValueMatch::Exact("1".into()),
                }],
                split: vec![split(1, "v2")],
            },
            RouteRuleConfig {
                path: None,
                method: None,
                headers: vec![],
                split: vec![split(90, "v1"), split(10, "v2"), split(50, "v3")],
            },
        ],
    }
}

fn snapshot() -> std::sync::Arc<Snapshot<()>> {
    let set = EndpointSet::new(false);
    set.update(
        [(1, "v1"), (2, "v2")].map(|(p, v)| (SocketAddr::from(([127, 0, 0, 1], p)), tags(v))),
        |_| (),
    );
    set.load()
}

fn head(canary: bool) -> http::request::Parts {
    let mut req = Request::get("/x");
    if canary {
        req = req.header("x-canary", "1");
    }
    req.body(()).unwrap().into_parts().0
}

fn view(head: &http::request::Parts) -> Option<View<'_>> {
    Some(View {
        method: &head.method,
        uri: &head.uri,
        headers: &head.headers,
    })
}

#[test]
fn header_rule_always_wins() {
    let (c, s) = (config(), snapshot());
    for _ in 0..100 {
        assert_eq!(choose(&c, view(&head(true)), &s), Some(&tags("v2")));
    }
}

#[test]
fn weights_hold_and_absent_subsets_give_way() {
    let (c, s) = (config(), snapshot());
    let v2 = (0..10_000)
        .filter(|_| choose(&c, view(&head(false)), &s) == Some(&tags("v2")))
        .count();
    // v3 has no endpoint, so 90/10 over v1 and v2.
    assert!((850..=1150).contains(&v2), "{v2}");
    // TCP takes the rule without conditions.
    assert!(choose(&c, None, &s).is_some());
}
