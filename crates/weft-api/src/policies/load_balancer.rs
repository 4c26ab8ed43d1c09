//! `LoadBalancer`: how a caller spreads requests over a destination's
//! endpoints. Without one: round robin.

use serde::{Deserialize, Deserializer, Serialize};

use crate::{
    ValidationErrors,
    mesh::one_of,
    policy::{Policy, PolicySpec},
};

pub type LoadBalancer = Policy<LoadBalancerSpec>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSpec {
    #[serde(rename = "type")]
    pub kind: LbKind,
    /// Required with `ring-hash`: what a request is hashed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on: Option<HashOn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LbKind {
    RoundRobin,
    /// The less busy of two endpoints picked at random.
    LeastRequest,
    /// Consistent hashing: the same key goes to the same endpoint while the
    /// endpoints stay the same.
    RingHash,
    Random,
}

impl LbKind {
    pub const ALL: [LbKind; 4] = [
        LbKind::RoundRobin,
        LbKind::LeastRequest,
        LbKind::RingHash,
        LbKind::Random,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LbKind::RoundRobin => "round-robin",
            LbKind::LeastRequest => "least-request",
            LbKind::RingHash => "ring-hash",
            LbKind::Random => "random",
        }
    }
}

impl<'de> Deserialize<'de> for LbKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d, &LbKind::ALL, "a load balancer type", |k| k.as_str())
    }
}

/// Exactly one of: a request header, a cookie, or the caller's address
/// (TCP outbounds can only hash on that).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HashOn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub source_address: bool,
}

impl PolicySpec for LoadBalancerSpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        match (&self.kind, &self.hash_on) {
            (LbKind::RingHash, None) => errors.push("hashOn", "required with type ring-hash"),
            (LbKind::RingHash, Some(h)) => {
                let given = [h.header.is_some(), h.cookie.is_some(), h.source_address];
                if given.iter().filter(|g| **g).count() != 1 {
                    errors.push(
                        "hashOn",
                        "exactly one of header, cookie, sourceAddress: true is required",
                    );
                }
                for (path, name) in [("hashOn.header", &h.header), ("hashOn.cookie", &h.cookie)] {
                    if let Some(name) = name
                        && (name.is_empty() || !name.chars().all(|c| c.is_ascii_graphic()))
                    {
                        errors.push(path, format!("{name:?} is not a header or cookie name"));
                    }
                }
            }
            (kind, Some(_)) => errors.push(
                "hashOn",
                format!("only used with type ring-hash, not {}", kind.as_str()),
            ),
            (_, None) => {}
        }
    }
}
