//! The `Mesh` resource: a group of services that share policies and trust.

use serde::{Deserialize, Serialize};

use crate::{ValidationErrors, name::name_problem};

/// A mesh. Later issues add mTLS and CA settings here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mesh {
    pub name: String,
}

impl Mesh {
    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if let Some(p) = name_problem(&self.name) {
            errors.push("name", p);
        }
        errors.into_result()
    }
}
