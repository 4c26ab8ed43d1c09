//! The kinds of resources Weft stores.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A resource kind. Every kind but `Mesh` lives inside one mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Mesh,
    Dataplane,
    TrafficPermission,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Mesh, Kind::Dataplane, Kind::TrafficPermission];

    /// The `type:` value in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mesh => "Mesh",
            Kind::Dataplane => "Dataplane",
            Kind::TrafficPermission => "TrafficPermission",
        }
    }

    /// The plural used in REST paths and `weft get`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Mesh => "meshes",
            Kind::Dataplane => "dataplanes",
            Kind::TrafficPermission => "traffic-permissions",
        }
    }

    /// Whether resources of this kind belong to a mesh.
    pub fn is_mesh_scoped(self) -> bool {
        !matches!(self, Kind::Mesh)
    }

    /// Parses the plural used in REST paths.
    pub fn from_plural(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accepts the type name, its plural and common CLI spellings, case-insensitively.
impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mesh" | "meshes" => Ok(Kind::Mesh),
            "dataplane" | "dataplanes" | "dp" | "dps" => Ok(Kind::Dataplane),
            "trafficpermission"
            | "trafficpermissions"
            | "traffic-permission"
            | "traffic-permissions"
            | "tp" => Ok(Kind::TrafficPermission),
            other => Err(format!(
                "unknown kind {other:?} (expected one of: {})",
                Kind::ALL.map(Kind::plural).join(", ")
            )),
        }
    }
}
