//! The decision, as pure functions of the inbound's ranked permissions,
//! the caller's services and (for HTTP) the request.
//!
//! The first permission whose `from` matches the caller decides (the
//! control plane ranked them by specificity, then name):
//! * `allow`, no rules: allowed; `allow` with rules: allowed only if the
//!   request matches one rule (every condition of it, a valid JWT included);
//! * `deny`, no rules: denied; `deny` with rules: denied if the request
//!   matches one rule, allowed otherwise;
//! * no permission matches: denied (zero trust).
//!
//! On TCP there is no request to match rules against: `allow` with rules
//! denies the connection, `deny` with rules allows it.

use std::{collections::BTreeMap, fmt};

use http::HeaderMap;
use weft_api::traffic_permission::Action;

use super::{
    config::{JwksSource, PermissionConfig, RuleConfig},
    jwks::Keys,
    jwt::{self, JwtError},
};

/// What the layer needs to know about an HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

/// An inbound's permissions with the JWKS their rules need, loaded.
#[derive(Debug, Default)]
pub struct Permissions {
    pub list: Vec<PermissionConfig>,
    pub keys: BTreeMap<JwksSource, Keys>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Denial),
}

/// Why a caller was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The deciding permission; `None` when none matched.
    pub permission: Option<String>,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NoPermission,
    Denied,
    NoRuleMatched,
    Jwt(JwtError),
    /// `allow` with HTTP rules on a TCP inbound.
    RulesOnTcp,
}

impl Reason {
    /// A low-cardinality label for `weft_authz_denied_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Reason::NoPermission => "no_permission",
            Reason::Denied => "denied",
            Reason::NoRuleMatched => "no_rule_matched",
            Reason::Jwt(_) => "jwt",
            Reason::RulesOnTcp => "tcp_rules",
        }
    }
}

impl Denial {
    /// The sentence for the 403 body and the log:
    /// `denied by TrafficPermission "x": JWT: expired`,
    /// `no TrafficPermission allows web → backend`.
    pub fn describe(&self, caller: &str, service: &str) -> String {
        let by = |name: &Option<String>| {
            format!(
                "denied by TrafficPermission {:?}",
                name.as_deref().unwrap_or("")
            )
        };
        match &self.reason {
            Reason::NoPermission => format!("no TrafficPermission allows {caller} → {service}"),
            Reason::Denied => by(&self.permission),
            Reason::NoRuleMatched => format!("{}: no rule matched", by(&self.permission)),
            Reason::Jwt(e) => format!("{}: JWT: {e}", by(&self.permission)),
            Reason::RulesOnTcp => format!(
                "{}: its HTTP rules cannot be checked on a TCP connection",
                by(&self.permission)
            ),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The permission that applies to a caller: the first whose `from`
/// matches. A caller without identity (`services` empty) matches only
/// permissions for any caller.
pub fn select<'a>(
    list: &'a [PermissionConfig],
    services: &[String],
) -> Option<&'a PermissionConfig> {
    list.iter().find(|p| match &p.from_service {
        None => true,
        Some(s) => services.contains(s),
    })
}

fn deny(permission: &PermissionConfig, reason: Reason) -> Decision {
    Decision::Deny(Denial {
        permission: Some(permission.name.clone()),
        reason,
    })
}

const NO_PERMISSION: Decision = Decision::Deny(Denial {
    permission: None,
    reason: Reason::NoPermission,
});

/// The decision for one HTTP request.
pub fn decide_http(
    permissions: &Permissions,
    services: &[String],
    req: &RequestView<'_>,
) -> Decision {
    let Some(p) = select(&permissions.list, services) else {
        return NO_PERMISSION;
    };
    if p.rules.is_empty() {
        return match p.action {
            Action::Allow => Decision::Allow,
            Action::Deny => deny(p, Reason::Denied),
        };
    }
    // The first JWT problem of a rule that matched otherwise is the most
    // useful thing to tell the caller.
    let mut jwt_problem = None;
    let matched = p
        .rules
        .iter()
        .any(|rule| match rule_matches(rule, permissions, req) {
            Ok(()) => true,
            Err(RuleMiss::Jwt(e)) => {
                jwt_problem.get_or_insert(e);
                false
            }
            Err(RuleMiss::Conditions) => false,
        });
    match (p.action, matched) {
        (Action::Allow, true) | (Action::Deny, false) => Decision::Allow,
        (Action::Deny, true) => deny(p, Reason::Denied),
        (Action::Allow, false) => match jwt_problem {
            Some(e) => deny(p, Reason::Jwt(e)),
            None => deny(p, Reason::NoRuleMatched),
        },
    }
}

/// The decision for one TCP connection.
pub fn decide_tcp(permissions: &Permissions, services: &[String]) -> Decision {
    let Some(p) = select(&permissions.list, services) else {
        return NO_PERMISSION;
    };
    match (p.action, p.rules.is_empty()) {
        (Action::Allow, true) | (Action::Deny, false) => Decision::Allow,
        (Action::Deny, true) => deny(p, Reason::Denied),
        (Action::Allow, false) => deny(p, Reason::RulesOnTcp),
    }
}

enum RuleMiss {
    Conditions,
    Jwt(JwtError),
}

fn rule_matches(
    rule: &RuleConfig,
    permissions: &Permissions,
    req: &RequestView<'_>,
) -> Result<(), RuleMiss> {
    let method = rule.methods.is_empty() || rule.methods.iter().any(|m| m == req.method);
    let path = rule.paths.is_empty() || rule.paths.iter().any(|p| p.matches(req.path));
    let headers = rule.headers.iter().all(|h| h.matches(req.headers));
    if !(method && path && headers) {
        return Err(RuleMiss::Conditions);
    }
    if let Some(config) = &rule.jwt {
        let authorization = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = jwt::bearer(authorization).map_err(RuleMiss::Jwt)?;
        match permissions.keys.get(&config.jwks) {
            Some(keys) => keys.verify(token, config),
            None => Err(JwtError::NoKeys("not loaded".into())),
        }
        .map_err(RuleMiss::Jwt)?;
    }
    Ok(())
}
