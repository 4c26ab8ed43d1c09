//! A resource of any kind, parsed and validated from a JSON value.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Dataplane, FieldError, Kind, Mesh, TrafficPermission, ValidationErrors,
    policies::{
        AccessLog, CircuitBreaker, FaultInjection, HealthCheck, LoadBalancer, RateLimit, Retry,
        Timeout, Tracing, TrafficRoute,
    },
};

/// Metadata fields the control plane adds to resources it returns. They are
/// accepted (and ignored) on input so that `weft get -o yaml` output can be
/// applied again.
pub const META_FIELDS: [&str; 3] = ["revision", "creationTime", "modificationTime"];

/// Any resource a user can declare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum Resource {
    Mesh(Mesh),
    Dataplane(Dataplane),
    TrafficPermission(TrafficPermission),
    Timeout(Timeout),
    Retry(Retry),
    CircuitBreaker(CircuitBreaker),
    HealthCheck(HealthCheck),
    LoadBalancer(LoadBalancer),
    RateLimit(RateLimit),
    FaultInjection(FaultInjection),
    TrafficRoute(TrafficRoute),
    Tracing(Tracing),
    AccessLog(AccessLog),
}

/// Identifies one stored resource. `mesh` is empty for meshes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceKey {
    pub kind: Kind,
    pub mesh: String,
    pub name: String,
}

impl ResourceKey {
    pub fn mesh(name: impl Into<String>) -> Self {
        Self {
            kind: Kind::Mesh,
            mesh: String::new(),
            name: name.into(),
        }
    }

    pub fn in_mesh(kind: Kind, mesh: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            mesh: mesh.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_mesh_scoped() {
            write!(f, "{} {:?} in mesh {:?}", self.kind, self.name, self.mesh)
        } else {
            write!(f, "{} {:?}", self.kind, self.name)
        }
    }
}

/// Runs `$body` with `$p` bound to the policy inside any policy variant;
/// `$other` for the rest.
macro_rules! with_policy {
    ($resource:expr, $p:ident => $body:expr, $other:pat => $otherwise:expr) => {
        match $resource {
            Resource::TrafficPermission($p) => $body,
            Resource::Timeout($p) => $body,
            Resource::Retry($p) => $body,
            Resource::CircuitBreaker($p) => $body,
            Resource::HealthCheck($p) => $body,
            Resource::LoadBalancer($p) => $body,
            Resource::RateLimit($p) => $body,
            Resource::FaultInjection($p) => $body,
            Resource::TrafficRoute($p) => $body,
            Resource::Tracing($p) => $body,
            Resource::AccessLog($p) => $body,
            $other => $otherwise,
        }
    };
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Mesh(_) => Kind::Mesh,
            Resource::Dataplane(_) => Kind::Dataplane,
            Resource::TrafficPermission(_) => Kind::TrafficPermission,
            Resource::Timeout(_) => Kind::Timeout,
            Resource::Retry(_) => Kind::Retry,
            Resource::CircuitBreaker(_) => Kind::CircuitBreaker,
            Resource::HealthCheck(_) => Kind::HealthCheck,
            Resource::LoadBalancer(_) => Kind::LoadBalancer,
            Resource::RateLimit(_) => Kind::RateLimit,
            Resource::FaultInjection(_) => Kind::FaultInjection,
            Resource::TrafficRoute(_) => Kind::TrafficRoute,
            Resource::Tracing(_) => Kind::Tracing,
            Resource::AccessLog(_) => Kind::AccessLog,
        }
    }

    pub fn name(&self) -> &str {
        with_policy!(self, p => &p.name, other => match other {
            Resource::Mesh(m) => &m.name,
            Resource::Dataplane(d) => &d.name,
            _ => "",
        })
    }

    /// The mesh this resource lives in; `None` for a mesh itself.
    pub fn mesh(&self) -> Option<&str> {
        with_policy!(self, p => Some(&p.mesh), other => match other {
            Resource::Dataplane(d) => Some(&d.mesh),
            _ => None,
        })
    }

    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            kind: self.kind(),
            mesh: self.mesh().unwrap_or_default().to_owned(),
            name: self.name().to_owned(),
        }
    }

    /// Parses and validates one document. Every error names its field path.
    pub fn from_value(value: Value) -> Result<Resource, ValidationErrors> {
        let Value::Object(mut fields) = value else {
            return Err(
                FieldError::new("", "a resource must be a mapping with a `type` field").into(),
            );
        };
        for meta in META_FIELDS {
            fields.remove(meta);
        }
        let kind = match fields.remove("type") {
            None => {
                return Err(
                    FieldError::new("type", format!("required (one of {})", kind_list())).into(),
                );
            }
            Some(Value::String(t)) => {
                Kind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == t)
                    .ok_or_else(|| {
                        FieldError::new(
                            "type",
                            format!("{t:?} is not a kind (one of {})", kind_list()),
                        )
                    })?
            }
            Some(other) => {
                return Err(FieldError::new(
                    "type",
                    format!("{other} is not a kind (one of {})", kind_list()),
                )
                .into());
            }
        };
        let value = Value::Object(fields);
        let resource = match kind {
            Kind::Mesh => Resource::Mesh(typed(value)?),
            Kind::Dataplane => Resource::Dataplane(typed(value)?),
            Kind::TrafficPermission => Resource::TrafficPermission(typed(value)?),
            Kind::Timeout => Resource::Timeout(typed(value)?),
            Kind::Retry => Resource::Retry(typed(value)?),
            Kind::CircuitBreaker => Resource::CircuitBreaker(typed(value)?),
            Kind::HealthCheck => Resource::HealthCheck(typed(value)?),
            Kind::LoadBalancer => Resource::LoadBalancer(typed(value)?),
            Kind::RateLimit => Resource::RateLimit(typed(value)?),
            Kind::FaultInjection => Resource::FaultInjection(typed(value)?),
            Kind::TrafficRoute => Resource::TrafficRoute(typed(value)?),
            Kind::Tracing => Resource::Tracing(typed(value)?),
            Kind::AccessLog => Resource::AccessLog(typed(value)?),
        };
        resource.validate()?;
        Ok(resource)
    }

    pub fn validate(&self) -> Result<(), ValidationErrors> {
        if let Resource::Tracing(t) = self {
            return validate_tracing(t);
        }
        with_policy!(self, p => p.validate(), other => match other {
            Resource::Mesh(m) => m.validate(),
            Resource::Dataplane(d) => d.validate(),
            _ => Ok(()),
        })
    }

    /// The resource as the JSON users write (with its `type`).
    pub fn to_value(&self) -> Value {
        // Serializing plain data structs to a Value cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A Tracing is chosen by the proxy's own services only (see
/// `policies::tracing`): a `from` could never be honoured, so it is refused.
fn validate_tracing(policy: &Tracing) -> Result<(), ValidationErrors> {
    let mut errors = policy.validate().err().unwrap_or_default();
    if !policy.selector.from.is_empty() {
        errors.push(
            "selector.from",
            "a Tracing applies to whole proxies: select them with `to` only",
        );
    }
    errors.into_result()
}

fn kind_list() -> String {
    Kind::ALL.map(Kind::as_str).join(", ")
}

/// Deserializes with the failing field's path in the error.
fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ValidationErrors> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        FieldError::new(path, e.into_inner().to_string()).into()
    })
}
