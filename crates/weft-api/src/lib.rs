//! Weft's public API: the declarative resources users write, their
//! validation, the REST payloads the control plane and CLI exchange, and the
//! generated protocol between proxies and the control plane.

pub mod dataplane;
pub mod document;
pub mod duration;
pub mod error;
pub mod kind;
pub mod mesh;
pub mod name;
pub mod paths;
pub mod policies;
pub mod policy;
pub mod port;
pub mod protocol;
pub mod resource;
pub mod rest;
pub mod token;
pub mod traffic_permission;

/// Generated code for the proxy ↔ control-plane stream (`proto/dataplane.proto`).
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("weft.dataplane.v1");
}

pub use dataplane::Dataplane;
pub use error::{FieldError, ValidationErrors};
pub use kind::Kind;
pub use mesh::{Mesh, MtlsMode};
pub use port::Port;
pub use protocol::Protocol;
pub use resource::{Resource, ResourceKey};
pub use traffic_permission::TrafficPermission;

/// Version of the Weft binary, reported by proxies and `weft version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
