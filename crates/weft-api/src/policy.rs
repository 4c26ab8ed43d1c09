//! The shape every policy kind shares: a [`Policy`] envelope (type, mesh,
//! name, selector, spec) around a kind-specific spec, and the [`Selector`]
//! that says which (source, destination) pairs it applies to.
//!
//! Which policy wins for a pair is decided in one place, [`select`]: every
//! policy kind (TrafficPermission, Timeout, Retry, …) reuses it so that
//! "most specific wins" means the same thing everywhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    ValidationErrors,
    dataplane::SERVICE_TAG,
    name::{name_problem, tag_key_problem},
};

/// The tag value that matches anything (the same as leaving the tag out).
pub const WILDCARD: &str = "*";

/// A policy of some kind: the envelope is shared, `spec` is the kind's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy<Spec> {
    pub mesh: String,
    pub name: String,
    #[serde(default)]
    pub selector: Selector,
    pub spec: Spec,
}

/// Which traffic a policy applies to: tag matchers on the calling side
/// (`from`) and on the called inbound (`to`). An omitted side, an empty
/// map, or a tag whose value is `*` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub from: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub to: BTreeMap<String, String>,
}

/// What a kind's spec must offer to live in a [`Policy`].
pub trait PolicySpec: Serialize + DeserializeOwned {
    /// Checks what the types alone cannot; paths are relative to `spec`.
    fn validate(&self, errors: &mut ValidationErrors);
}

impl<Spec: PolicySpec> Policy<Spec> {
    /// Validates the envelope, the selector and the spec.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        for (path, value) in [("mesh", &self.mesh), ("name", &self.name)] {
            if let Some(p) = name_problem(value) {
                errors.push(path, p);
            }
        }
        self.selector.validate(&mut errors);
        let mut spec_errors = ValidationErrors::default();
        self.spec.validate(&mut spec_errors);
        for e in spec_errors.0 {
            let path = if e.path.is_empty() {
                "spec".to_owned()
            } else {
                format!("spec.{}", e.path)
            };
            errors.push(path, e.message);
        }
        errors.into_result()
    }
}

impl Selector {
    /// The selector that matches every pair.
    pub fn any() -> Self {
        Self::default()
    }

    fn validate(&self, errors: &mut ValidationErrors) {
        for (side, tags) in [("from", &self.from), ("to", &self.to)] {
            for (key, value) in tags {
                let path = format!("selector.{side}.{key}");
                if let Some(p) = tag_key_problem(key) {
                    errors.push(format!("selector.{side}"), p);
                } else if value.is_empty() {
                    errors.push(path, "must not be empty (use \"*\" for any)");
                } else if key == SERVICE_TAG
                    && value != WILDCARD
                    && let Some(p) = name_problem(value)
                {
                    errors.push(path, p);
                }
            }
        }
        // A caller is known only by its identity, which names its service
        // and nothing else: any other `from` tag could never be checked.
        for key in self.from.keys().filter(|k| *k != SERVICE_TAG) {
            errors.push(
                format!("selector.from.{key}"),
                "only the `service` tag can be matched on the calling side \
                 (a caller's identity names only its service)",
            );
        }
    }

    /// How many tags this selector actually constrains (not `*`).
    pub fn specificity(&self) -> usize {
        count_specific(&self.from) + count_specific(&self.to)
    }

    /// Whether the caller with `source` tags calling an inbound with
    /// `destination` tags is selected.
    pub fn matches(
        &self,
        source: &BTreeMap<String, String>,
        destination: &BTreeMap<String, String>,
    ) -> bool {
        tags_match(&self.from, source) && tags_match(&self.to, destination)
    }

    /// The `from.service` this selector requires, `None` for any caller.
    pub fn from_service(&self) -> Option<&str> {
        self.from
            .get(SERVICE_TAG)
            .map(String::as_str)
            .filter(|s| *s != WILDCARD)
    }
}

fn count_specific(tags: &BTreeMap<String, String>) -> usize {
    tags.values().filter(|v| *v != WILDCARD).count()
}

/// Every non-wildcard matcher must be present with the same value.
fn tags_match(matchers: &BTreeMap<String, String>, tags: &BTreeMap<String, String>) -> bool {
    matchers
        .iter()
        .all(|(k, v)| v == WILDCARD || tags.get(k) == Some(v))
}

/// The order in which policies are tried: most specific first, then by
/// name. The first one that matches a pair is the one that applies.
///
/// The rule, for every policy kind: among the policies whose `from` and
/// `to` both match, the one with more non-wildcard tags (counting both
/// sides) wins; between equally specific ones, the lexicographically
/// smallest name wins. Ordering by this key once lets the proxy stop at the
/// first match.
pub fn precedence<Spec>(a: &Policy<Spec>, b: &Policy<Spec>) -> std::cmp::Ordering {
    b.selector
        .specificity()
        .cmp(&a.selector.specificity())
        .then_with(|| a.name.cmp(&b.name))
}

/// Sorts policies by [`precedence`].
pub fn sort_by_precedence<Spec>(policies: &mut [&Policy<Spec>]) {
    policies.sort_by(|a, b| precedence(a, b));
}

/// The policy that applies to `source` calling `destination`: the most
/// specific match, ties broken by the smallest name (see [`precedence`]).
pub fn select<'a, Spec>(
    policies: impl IntoIterator<Item = &'a Policy<Spec>>,
    source: &BTreeMap<String, String>,
    destination: &BTreeMap<String, String>,
) -> Option<&'a Policy<Spec>>
where
    Spec: 'a,
{
    policies
        .into_iter()
        .filter(|p| p.selector.matches(source, destination))
        .min_by(|a, b| precedence(a, b))
}

#[cfg(test)]
mod tests;
