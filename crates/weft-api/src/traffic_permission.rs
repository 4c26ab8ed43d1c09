//! The `TrafficPermission` policy: which callers may reach which inbounds,
//! optionally narrowed to HTTP requests that match rules (method, path,
//! headers, a JWT).
//!
//! Semantics (the proxy enforces them; see `docs/architecture.md`):
//! the most specific matching permission (see [`crate::policy::select`])
//! decides. `allow` without rules allows; `allow` with rules allows only
//! requests that match one rule. `deny` without rules denies; `deny` with
//! rules denies only requests that match one rule. No matching permission
//! denies: zero trust.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{
    ValidationErrors,
    mesh::one_of,
    policy::{Policy, PolicySpec, Selector},
};

/// Name of the permission created with every mesh (unless it opts out).
pub const DEFAULT_PERMISSION_NAME: &str = "allow-all";

/// A TrafficPermission resource.
pub type TrafficPermission = Policy<TrafficPermissionSpec>;

/// `spec` of a TrafficPermission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPermissionSpec {
    pub action: Action,
    /// HTTP request rules; empty means "every request / connection".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<HttpRule>,
}

/// What a permission does with the traffic it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
}

/// One HTTP rule: a request matches when every condition given matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRule {
    /// Any of these methods (uppercase); empty means any method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Any of these paths; empty means any path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathMatch>,
    /// All of these headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    /// A valid JWT that satisfies these settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtRule>,
}

/// A path matcher: exactly one of `exact` or `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// A header matcher: exactly one of `exact`, `prefix` or `present: true`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// A JWT requirement: `Authorization: Bearer <token>`, signed by a key of
/// the JWKS (RS256 or ES256), issued by `issuer`, not expired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtRule {
    pub issuer: String,
    pub jwks: JwksSource,
    /// The token's `aud` must contain one of these (if any are given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// All required, from `scope` (space separated) or `scp` (array).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Claims that must equal these strings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
}

/// Where the proxy gets the issuer's keys: exactly one of `file` or `url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwksSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl TrafficPermission {
    /// The permission every new mesh gets: anyone may call anything.
    pub fn allow_all(mesh: &str) -> Self {
        Policy {
            mesh: mesh.to_owned(),
            name: DEFAULT_PERMISSION_NAME.to_owned(),
            selector: Selector::any(),
            spec: TrafficPermissionSpec {
                action: Action::Allow,
                rules: Vec::new(),
            },
        }
    }
}

impl Action {
    pub const ALL: [Action; 2] = [Action::Allow, Action::Deny];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d, &Action::ALL, "an action", |a| a.as_str())
    }
}

impl PolicySpec for TrafficPermissionSpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate(&format!("rules[{i}]"), errors);
        }
    }
}

impl HttpRule {
    fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        if *self == HttpRule::default() {
            errors.push(
                path,
                "a rule needs at least one of methods, paths, headers, jwt \
                 (to match every request, leave out `rules`)",
            );
        }
        for (i, method) in self.methods.iter().enumerate() {
            let token = !method.is_empty() && method.chars().all(|c| c.is_ascii_uppercase());
            if !token {
                errors.push(
                    format!("{path}.methods[{i}]"),
                    format!("{method:?} is not a method (uppercase letters, e.g. GET)"),
                );
            }
        }
        for (i, p) in self.paths.iter().enumerate() {
            let at = format!("{path}.paths[{i}]");
            match (&p.exact, &p.prefix) {
                (Some(v), None) | (None, Some(v)) if !v.starts_with('/') => {
                    let field = if p.exact.is_some() { "exact" } else { "prefix" };
                    errors.push(
                        format!("{at}.{field}"),
                        format!("{v:?} must start with '/'"),
                    );
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => errors.push(at, "exactly one of exact, prefix is required"),
            }
        }
        for (i, h) in self.headers.iter().enumerate() {
            h.validate(&format!("{path}.headers[{i}]"), errors);
        }
        if let Some(jwt) = &self.jwt {
            jwt.validate(&format!("{path}.jwt"), errors);
        }
    }
}

impl HeaderMatch {
    pub(crate) fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        // RFC 9110 token characters; matched case-insensitively.
        let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if self.name.is_empty() || !self.name.chars().all(tchar) {
            errors.push(
                format!("{path}.name"),
                format!("{:?} is not a header name", self.name),
            );
        }
        if self.present == Some(false) {
            errors.push(
                format!("{path}.present"),
                "only `present: true` is supported (leave the header out to not require it)",
            );
        }
        let given = [
            self.exact.is_some(),
            self.prefix.is_some(),
            self.present.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            errors.push(path, "exactly one of exact, prefix, present is required");
        }
    }
}

impl JwtRule {
    fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        if self.issuer.is_empty() {
            errors.push(format!("{path}.issuer"), "must not be empty");
        }
        match (&self.jwks.file, &self.jwks.url) {
            (Some(f), None) if f.is_empty() => {
                errors.push(format!("{path}.jwks.file"), "must not be empty")
            }
            (None, Some(u)) if !(u.starts_with("https://") || u.starts_with("http://")) => errors
                .push(
                    format!("{path}.jwks.url"),
                    format!("{u:?} is not an http(s) URL"),
                ),
            (Some(_), None) | (None, Some(_)) => {}
            _ => errors.push(
                format!("{path}.jwks"),
                "exactly one of file, url is required",
            ),
        }
        for (i, a) in self.audiences.iter().enumerate() {
            if a.is_empty() {
                errors.push(format!("{path}.audiences[{i}]"), "must not be empty");
            }
        }
        for (i, s) in self.scopes.iter().enumerate() {
            if s.is_empty() || s.contains(char::is_whitespace) {
                errors.push(
                    format!("{path}.scopes[{i}]"),
                    format!("{s:?} is not a scope (non-empty, no spaces)"),
                );
            }
        }
        for key in self.claims.keys() {
            if key.is_empty() {
                errors.push(format!("{path}.claims"), "a claim name must not be empty");
            }
        }
    }
}

#[cfg(test)]
mod tests;
