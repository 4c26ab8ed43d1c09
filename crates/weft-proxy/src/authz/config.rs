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
    use proto::{header_match, path_match};
    let paths = msg
        .paths
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| match p.kind {
            Some(path_match::Kind::Exact(e)) => Some(PathMatch::Exact(e)),
            Some(path_match::Kind::Prefix(p)) => Some(PathMatch::Prefix(p)),
            None => {
                errors.push(format!("{path}.paths[{i}]"), "no matcher");
                None
            }
        })
        .collect();
    let headers = msg
        .headers
        .into_iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let value = match h.kind {
                Some(header_match::Kind::Exact(e)) => HeaderValueMatch::Exact(e),
                Some(header_match::Kind::Prefix(p)) => HeaderValueMatch::Prefix(p),
                Some(header_match::Kind::Present(true)) => HeaderValueMatch::Present,
                _ => {
                    errors.push(format!("{path}.headers[{i}]"), "no matcher");
                    return None;
                }
            };
            Some(HeaderMatch {
                name: h.name.to_ascii_lowercase(),
                value,
            })
        })
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
