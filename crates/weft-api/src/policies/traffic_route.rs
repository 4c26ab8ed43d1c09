//! `TrafficRoute`: send requests that match a path, method or headers to
//! weighted subsets of the destination's endpoints, chosen by tags (e.g.
//! `version: v1` 90 %, `version: v2` 10 %): canary releases and
//! header-based routing. Rules are tried in order; the first that matches
//! decides. A request no rule matches goes to every endpoint.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    ValidationErrors,
    name::tag_key_problem,
    policy::{Policy, PolicySpec},
    traffic_permission::{HeaderMatch, PathMatch},
};

pub type TrafficRoute = Policy<TrafficRouteSpec>;

pub const MAX_WEIGHT: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficRouteSpec {
    pub rules: Vec<RouteRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteRule {
    /// Omitted: every request (and every TCP connection).
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matches: Option<RouteMatch>,
    pub split: Vec<Split>,
}

/// All conditions given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
}

/// The endpoints whose tags include all of `tags`, taking `weight` parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Split {
    pub weight: u32,
    pub tags: BTreeMap<String, String>,
}

impl PolicySpec for TrafficRouteSpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        if self.rules.is_empty() {
            errors.push("rules", "at least one rule is required");
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            if let Some(m) = &rule.matches {
                validate_match(m, &format!("{at}.match"), errors);
            }
            if rule.split.is_empty() {
                errors.push(
                    format!("{at}.split"),
                    "at least one destination is required",
                );
            }
            let mut total: u64 = 0;
            for (j, split) in rule.split.iter().enumerate() {
                let at = format!("{at}.split[{j}]");
                if split.weight > MAX_WEIGHT {
                    errors.push(
                        format!("{at}.weight"),
                        format!("{} is over {MAX_WEIGHT}", split.weight),
                    );
                }
                total += u64::from(split.weight);
                for (key, value) in &split.tags {
                    if let Some(p) = tag_key_problem(key) {
                        errors.push(format!("{at}.tags"), p);
                    } else if value.is_empty() {
                        errors.push(format!("{at}.tags.{key}"), "must not be empty");
                    }
                }
            }
            if !rule.split.is_empty() && total == 0 {
                errors.push(format!("{at}.split"), "the weights must not all be 0");
            }
        }
    }
}

fn validate_match(m: &RouteMatch, at: &str, errors: &mut ValidationErrors) {
    if let Some(p) = &m.path {
        match (&p.exact, &p.prefix) {
            (Some(v), None) | (None, Some(v)) if !v.starts_with('/') => {
                errors.push(format!("{at}.path"), format!("{v:?} must start with '/'"));
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => errors.push(
                format!("{at}.path"),
                "exactly one of exact, prefix is required",
            ),
        }
    }
    if let Some(method) = &m.method
        && (method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()))
    {
        errors.push(
            format!("{at}.method"),
            format!("{method:?} is not a method (uppercase letters, e.g. GET)"),
        );
    }
    for (i, h) in m.headers.iter().enumerate() {
        h.validate(&format!("{at}.headers[{i}]"), errors);
    }
}
