//! TrafficPermissions as the proxy runs them: parsed from the proto once,
//! with every field checked, so the request path only compares strings.

use std::collections::BTreeMap;

use serde::Serialize;
use weft_api::{ValidationErrors, proto, traffic_permission::Action};

/// One permission of an inbound, in the order the control plane ranked
/// them (most specific first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionConfig {
    pub name: String,
    /// The caller's service; `None` means any caller.
    pub from_service: Option<String>,
    pub action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleConfig>,
}

/// An HTTP rule: every condition given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// Lowercase.
    pub name: String,
    pub value: HeaderValueMatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HeaderValueMatch {
    Exact(String),
    Prefix(String),
    Present,
}

/// What a valid token must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtConfig {
    pub issuer: String,
    pub jwks: JwksSource,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum JwksSource {
    File(String),
    Url(String),
}

/// Parses `msg` (at `path`, e.g. `inbounds[0].permissions[1]`), recording
/// every problem in `errors`.
pub fn parse(
    path: &str,
    msg: proto::Permission,
    errors: &mut ValidationErrors,
) -> Option<PermissionConfig> {
    let action = match proto::PermissionAction::try_from(msg.action) {
        Ok(proto::PermissionAction::PermissionAllow) => Action::Allow,
        Ok(proto::PermissionAction::PermissionDeny) => Action::Deny,
        Err(_) => {
            errors.push(
                format!("{path}.action"),
                format!("{} is not an action", msg.action),
            );
            return None;
        }
    };
    let before = errors.0.len();
    let rules = msg
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, r)| rule(&format!("{path}.rules[{i}]"), r, errors))
        .collect();
    (errors.0.len() == before).then(|| PermissionConfig {
        name: msg.name,
        from_service: Some(msg.from_service).filter(|s| !s.is_empty()),
        action,
        rules,
    })
}

fn rule(path: &str, msg: proto::HttpRule, errors: &mut ValidationErrors) -> RuleConfig {
    let paths = msg
        .paths
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| parse_path_match(&format!("{path}.paths[{i}]"), p, errors))
        .collect();
    let headers = msg
        .headers
        .into_iter()
        .enumerate()
        .filter_map(|(i, h)| parse_header_match(&format!("{path}.headers[{i}]"), h, errors))
        .collect();
    let jwt = msg.jwt.and_then(|j| {
        let jwks = match (j.jwks_file.is_empty(), j.jwks_url.is_empty()) {
            (false, true) => JwksSource::File(j.jwks_file),
            (true, false) => match super::jwks::fetch::JwksUrl::parse(&j.jwks_url) {
                Ok(_) => JwksSource::Url(j.jwks_url),
                Err(e) => {
                    errors.push(format!("{path}.jwt.jwks_url"), e);
                    return None;
                }
            },
            _ => {
                errors.push(
                    format!("{path}.jwt"),
                    "exactly one of jwks_file, jwks_url is required",
                );
                return None;
            }
        };
        Some(JwtConfig {
            issuer: j.issuer,
            jwks,
            audiences: j.audiences,
            scopes: j.scopes,
            claims: j.claims.into_iter().collect(),
        })
    });
    RuleConfig {
        methods: msg.methods,
        paths,
        headers,
        jwt,
    }
}

pub fn parse_path_match(
    path: &str,
    msg: proto::PathMatch,
    errors: &mut ValidationErrors,
) -> Option<PathMatch> {
    use proto::path_match::Kind;
    match msg.kind {
        Some(Kind::Exact(e)) => Some(PathMatch::Exact(e)),
        Some(Kind::Prefix(p)) => Some(PathMatch::Prefix(p)),
        None => {
            errors.push(path, "no matcher");
            None
        }
    }
}

pub fn parse_header_match(
    path: &str,
    msg: proto::HeaderMatch,
    errors: &mut ValidationErrors,
) -> Option<HeaderMatch> {
    use proto::header_match::Kind;
    let value = match msg.kind {
        Some(Kind::Exact(e)) => HeaderValueMatch::Exact(e),
        Some(Kind::Prefix(p)) => HeaderValueMatch::Prefix(p),
        Some(Kind::Present(true)) => HeaderValueMatch::Present,
        _ => {
            errors.push(path, "no matcher");
            return None;
        }
    };
    Some(HeaderMatch {
        name: msg.name.to_ascii_lowercase(),
        value,
    })
}

impl PathMatch {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(e) => path == e,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

impl HeaderMatch {
    /// Whether any value of the header matches.
    pub fn matches(&self, headers: &http::HeaderMap) -> bool {
        let mut values = headers.get_all(self.name.as_str()).iter();
        match &self.value {
            HeaderValueMatch::Present => values.next().is_some(),
            HeaderValueMatch::Exact(e) => values.any(|v| v.as_bytes() == e.as_bytes()),
            HeaderValueMatch::Prefix(p) => values.any(|v| v.as_bytes().starts_with(p.as_bytes())),
        }
    }
}
