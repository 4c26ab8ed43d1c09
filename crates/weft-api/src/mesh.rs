//! The `Mesh` resource: a group of services that share policies and trust.
//!
//! A mesh with `mtls` has a certificate authority: `builtin` (generated and
//! kept by the control plane) or `provided` (the operator's root or
//! intermediate, read from files on the control-plane host). Every workload
//! certificate names `spiffe://<mesh>/<service>`: the mesh name is the trust
//! domain.
//!
//! `mtls.trustedCas` lists extra roots proxies trust besides the issuing
//! CA's: how a mesh moves to a new CA without failed requests (see
//! [`ca`]).

use std::{fmt, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, de};

use crate::{ValidationErrors, name::name_problem};

mod ca;
pub mod transparent;

pub use ca::{CaBackend, CaKind, CaSource, DEFAULT_CA_NAME};

/// Workload certificate lifetime when a mesh does not set one.
pub const DEFAULT_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Shortest accepted lifetime. Proxies renew at about 70 %, so very short
/// lifetimes mean a lot of signing in a large mesh; they exist for
/// rehearsing renewal (tests use 10 s), not for production.
pub const MIN_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(10);
/// Longest accepted lifetime: a stolen key must stop working eventually.
pub const MAX_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// A mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mesh {
    pub name: String,
    /// Mutual TLS between proxies; absent means off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MeshMtls>,
    /// When creating the mesh, do not create the `allow-all`
    /// TrafficPermission: the mesh starts zero trust.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_default_permission: bool,
    /// How transparently proxied workloads' proxies treat captured traffic
    /// (absent: the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparent_proxying: Option<transparent::MeshTransparentProxying>,
}

/// `mtls` of a mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshMtls {
    pub mode: MtlsMode,
    /// The mesh's CA (default: builtin).
    #[serde(default)]
    pub ca: CaBackend,
    /// CAs whose roots proxies trust besides the issuing CA's, during a CA
    /// rotation: they never sign.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_cas: Vec<CaBackend>,
    /// How long workload certificates live, as written (`24h`, `90m`);
    /// validated to parse and to be within the limits above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_lifetime: Option<String>,
}

/// How strictly proxies of a mesh use mTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MtlsMode {
    /// Plaintext between proxies; no certificates are issued.
    #[default]
    Off,
    /// Accept plaintext and mTLS on the same port, call peers with mTLS.
    Permissive,
    /// Only mTLS, both ways.
    Strict,
}

impl Mesh {
    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if let Some(p) = name_problem(&self.name) {
            errors.push("name", p);
        }
        if let Some(mtls) = &self.mtls {
            mtls.validate(&mut errors);
        }
        if let Some(transparent) = &self.transparent_proxying {
            transparent.validate(&mut errors);
        }
        errors.into_result()
    }

    /// The mTLS settings if mTLS is on (mode `permissive` or `strict`).
    pub fn mtls_enabled(&self) -> Option<&MeshMtls> {
        self.mtls.as_ref().filter(|m| m.mode != MtlsMode::Off)
    }

    /// The SPIFFE ID of `service` in this mesh.
    pub fn spiffe_id(&self, service: &str) -> String {
        spiffe_id(&self.name, service)
    }
}

/// `spiffe://<mesh>/<service>`: the mesh is the trust domain.
pub fn spiffe_id(mesh: &str, service: &str) -> String {
    format!("spiffe://{mesh}/{service}")
}

impl MeshMtls {
    fn validate(&self, errors: &mut ValidationErrors) {
        self.ca.validate("mtls.ca", false, errors);
        for (index, trusted) in self.trusted_cas.iter().enumerate() {
            let path = format!("mtls.trustedCas[{index}]");
            trusted.validate(&path, true, errors);
            if trusted.same_ca(&self.ca) {
                errors.push(
                    path.clone(),
                    format!("{} is already the issuing CA (mtls.ca)", trusted.describe()),
                );
            }
            if let Some(first) = self.trusted_cas[..index]
                .iter()
                .position(|t| t.same_ca(trusted))
            {
                errors.push(
                    path,
                    format!("{} is already mtls.trustedCas[{first}]", trusted.describe()),
                );
            }
        }
        if let Some(text) = &self.certificate_lifetime {
            let path = "mtls.certificateLifetime";
            match humantime::parse_duration(text) {
                Err(_) => errors.push(path, format!("{text:?} is not a duration (e.g. 24h, 90m)")),
                Ok(d) if !(MIN_CERTIFICATE_LIFETIME..=MAX_CERTIFICATE_LIFETIME).contains(&d) => {
                    errors.push(path, format!("{text} is outside 10s-90d"));
                }
                Ok(_) => {}
            }
        }
    }

    /// The certificate lifetime (validated), or the default.
    pub fn certificate_lifetime(&self) -> Duration {
        self.certificate_lifetime
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
            .unwrap_or(DEFAULT_CERTIFICATE_LIFETIME)
    }
}

impl MtlsMode {
    pub const ALL: [MtlsMode; 3] = [MtlsMode::Off, MtlsMode::Permissive, MtlsMode::Strict];

    pub fn as_str(self) -> &'static str {
        match self {
            MtlsMode::Off => "off",
            MtlsMode::Permissive => "permissive",
            MtlsMode::Strict => "strict",
        }
    }
}

impl fmt::Display for MtlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Deserializes one of `all` by name, with an error that lists the choices
/// (`"strictly" is not a mode (off, permissive, strict)`) where serde's own
/// would say "unknown variant".
pub(crate) fn one_of<'de, D, T>(
    d: D,
    all: &[T],
    what: &str,
    name: fn(&T) -> &'static str,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Copy,
{
    let text = String::deserialize(d)?;
    all.iter()
        .find(|v| name(v) == text)
        .copied()
        .ok_or_else(|| {
            let choices: Vec<&str> = all.iter().map(name).collect();
            de::Error::custom(format!("{text:?} is not {what} ({})", choices.join(", ")))
        })
}

impl<'de> Deserialize<'de> for MtlsMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d, &MtlsMode::ALL, "a mode", |m| m.as_str())
    }
}

#[cfg(test)]
mod tests;
