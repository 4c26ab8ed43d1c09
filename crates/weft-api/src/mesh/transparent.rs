//! `transparentProxying` of a Mesh: how the proxies of transparently
//! proxied workloads treat what they capture, the same for every proxy of
//! the mesh.

use serde::{Deserialize, Serialize};

use crate::{Port, ValidationErrors};

/// The DNS suffix of mesh services when the mesh does not set one:
/// `backend.mesh`.
pub const DEFAULT_DNS_SUFFIX: &str = "mesh";
/// Ports whose protocols speak first from the server side, so waiting for
/// the client's first bytes would stall them: FTP, SSH, SMTP (25, 587),
/// POP3, IMAP, MySQL.
pub const DEFAULT_SERVER_FIRST_PORTS: [u16; 7] = [21, 22, 25, 110, 143, 587, 3306];

/// `transparentProxying` of a mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshTransparentProxying {
    /// What happens to captured connections to addresses outside the mesh.
    #[serde(default)]
    pub outside_mesh: OutsideMesh,
    /// Services answer DNS as `<service>.<dnsSuffix>` (default `mesh`).
    #[serde(default = "default_suffix")]
    pub dns_suffix: String,
    /// Destination ports where protocol detection is skipped because the
    /// server speaks first (default: 21, 22, 25, 110, 143, 587, 3306).
    #[serde(default = "default_server_first")]
    pub server_first_ports: Vec<Port>,
}

/// Captured traffic to a destination that is no mesh service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutsideMesh {
    /// Connect to the original destination as if there were no proxy.
    #[default]
    Passthrough,
    /// Close the connection.
    Refuse,
}

fn default_suffix() -> String {
    DEFAULT_DNS_SUFFIX.to_owned()
}

fn default_server_first() -> Vec<Port> {
    DEFAULT_SERVER_FIRST_PORTS.into_iter().map(Port).collect()
}

impl Default for MeshTransparentProxying {
    fn default() -> Self {
        Self {
            outside_mesh: OutsideMesh::default(),
            dns_suffix: default_suffix(),
            server_first_ports: default_server_first(),
        }
    }
}

impl MeshTransparentProxying {
    pub(super) fn validate(&self, errors: &mut ValidationErrors) {
        if let Some(problem) = dns_suffix_problem(&self.dns_suffix) {
            errors.push("transparentProxying.dnsSuffix", problem);
        }
    }
}

/// A suffix is one or more DNS labels: letters, digits and inner hyphens,
/// at most 63 characters each, without leading or trailing dots.
fn dns_suffix_problem(suffix: &str) -> Option<String> {
    if suffix.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if suffix.len() > 200 {
        return Some("must be at most 200 characters".to_owned());
    }
    for label in suffix.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Some(format!(
                "{suffix:?} is not a DNS suffix (dot-separated labels of letters, digits and inner hyphens)"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        assert_eq!(dns_suffix_problem("mesh"), None);
        assert_eq!(dns_suffix_problem("svc.cluster-1.local"), None);
        for bad in ["", ".mesh", "mesh.", "a..b", "-a", "a_b", "ü"] {
            assert!(dns_suffix_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_fill_a_partial_setting() {
        let t: MeshTransparentProxying =
            serde_json::from_str(r#"{"outsideMesh":"refuse"}"#).unwrap();
        assert_eq!(t.outside_mesh, OutsideMesh::Refuse);
        assert_eq!(t.dns_suffix, "mesh");
        assert_eq!(t.server_first_ports.len(), DEFAULT_SERVER_FIRST_PORTS.len());
        let e = serde_json::from_str::<MeshTransparentProxying>(r#"{"outsideMesh":"drop"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("passthrough"), "{e}");
    }
}
