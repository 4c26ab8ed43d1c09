//! TrafficPermissions compiled per inbound: the ones whose `to` selects the
//! inbound, in the order the selector engine ranks them, so the proxy only
//! has to find the first whose `from` matches the caller.

use weft_api::{
    TrafficPermission,
    dataplane::Inbound,
    policy::{Selector, sort_by_precedence},
    proto,
    traffic_permission::{Action, HeaderMatch, HttpRule, PathMatch},
};

/// The permissions that can apply to callers of `inbound`, most specific
/// first (see `weft_api::policy::precedence`).
pub fn for_inbound(inbound: &Inbound, permissions: &[TrafficPermission]) -> Vec<proto::Permission> {
    let mut applicable: Vec<&TrafficPermission> = permissions
        .iter()
        .filter(|p| selects_inbound(&p.selector, inbound))
        .collect();
    sort_by_precedence(&mut applicable);
    applicable.into_iter().map(to_proto).collect()
}

/// Whether `to` selects the inbound; `from` is checked per caller by the proxy.
fn selects_inbound(selector: &Selector, inbound: &Inbound) -> bool {
    Selector {
        from: Default::default(),
        to: selector.to.clone(),
    }
    .matches(&Default::default(), &inbound.tags)
}

fn to_proto(permission: &TrafficPermission) -> proto::Permission {
    let action = match permission.spec.action {
        Action::Allow => proto::PermissionAction::PermissionAllow,
        Action::Deny => proto::PermissionAction::PermissionDeny,
    };
    proto::Permission {
        name: permission.name.clone(),
        from_service: permission
            .selector
            .from_service()
            .unwrap_or_default()
            .to_owned(),
        action: action.into(),
        rules: permission.spec.rules.iter().map(rule_to_proto).collect(),
    }
}

fn rule_to_proto(rule: &HttpRule) -> proto::HttpRule {
    proto::HttpRule {
        methods: rule.methods.clone(),
        paths: rule.paths.iter().map(path_to_proto).collect(),
        headers: rule.headers.iter().map(header_to_proto).collect(),
        jwt: rule.jwt.as_ref().map(|j| proto::JwtRule {
            issuer: j.issuer.clone(),
            jwks_file: j.jwks.file.clone().unwrap_or_default(),
            jwks_url: j.jwks.url.clone().unwrap_or_default(),
            audiences: j.audiences.clone(),
            scopes: j.scopes.clone(),
            claims: j.claims.clone().into_iter().collect(),
        }),
    }
}

pub fn path_to_proto(p: &PathMatch) -> proto::PathMatch {
    use proto::path_match::Kind;
    proto::PathMatch {
        kind: match (&p.exact, &p.prefix) {
            (Some(e), _) => Some(Kind::Exact(e.clone())),
            (None, Some(p)) => Some(Kind::Prefix(p.clone())),
            (None, None) => None,
        },
    }
}

/// Names are lowercased: the proxy compares them with HTTP's lowercase names.
pub fn header_to_proto(h: &HeaderMatch) -> proto::HeaderMatch {
    use proto::header_match::Kind;
    proto::HeaderMatch {
        name: h.name.to_ascii_lowercase(),
        kind: match (&h.exact, &h.prefix) {
            (Some(e), _) => Some(Kind::Exact(e.clone())),
            (None, Some(p)) => Some(Kind::Prefix(p.clone())),
            (None, None) => h.present.map(Kind::Present),
        },
    }
}
