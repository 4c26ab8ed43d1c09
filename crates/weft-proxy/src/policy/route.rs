//! TrafficRoute: the first rule that matches a request picks one of its
//! splits by weight; the split's tags narrow the endpoints the balancer may
//! choose. No matching rule: every endpoint.

use std::collections::BTreeMap;

use http::{HeaderMap, Method, Uri};

use super::endpoints::Snapshot;
use crate::config::policies::{RouteConfig, RouteRuleConfig};

/// The subset a request goes to: `None` for the whole service.
pub type Subset<'a> = Option<&'a BTreeMap<String, String>>;

/// What a rule can look at in a request.
#[derive(Debug, Clone, Copy)]
pub struct View<'r> {
    pub method: &'r Method,
    pub uri: &'r Uri,
    pub headers: &'r HeaderMap,
}

fn matches(rule: &RouteRuleConfig, head: Option<View<'_>>) -> bool {
    let Some(head) = head else {
        // A TCP connection only matches rules without conditions.
        return rule.path.is_none() && rule.method.is_none() && rule.headers.is_empty();
    };
    rule.method.as_ref().is_none_or(|m| m == head.method)
        && rule
            .path
            .as_ref()
            .is_none_or(|p| p.matches(head.uri.path()))
        && rule.headers.iter().all(|h| h.matches(head.headers))
}

/// The subset for a request (`head`) or a TCP connection (`None`). Splits
/// with no endpoint at all in `snapshot` give their share to the others.
pub fn choose<'a, T>(
    config: &'a RouteConfig,
    head: Option<View<'_>>,
    snapshot: &Snapshot<T>,
) -> Subset<'a> {
    let rule = config.rules.iter().find(|r| matches(r, head))?;
    let present =
        |tags: &BTreeMap<String, String>| snapshot.endpoints.iter().any(|e| e.has_tags(tags));
    let weight = |s: &crate::config::policies::SplitConfig| {
        if present(&s.tags) {
            u64::from(s.weight)
        } else {
            0
        }
    };
    let total: u64 = rule.split.iter().map(weight).sum();
    if total == 0 {
        // Nothing to send to: the first split's subset, which is empty, so
        // the request fails as "no endpoints" rather than going elsewhere.
        return rule.split.first().map(|s| &s.tags);
    }
    let mut point = fastrand::u64(..total);
    for split in &rule.split {
        let w = weight(split);
        if point < w {
            return Some(&split.tags);
        }
        point -= w;
    }
    None
}

#[cfg(test)]
mod tests;
