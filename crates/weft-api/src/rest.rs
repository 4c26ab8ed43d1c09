//! Payloads of the control plane's REST API, shared by the server and the CLI.
//!
//! Paths (all JSON):
//! * `GET /meshes`, `POST /meshes`, `GET|PUT|DELETE /meshes/{name}`
//! * `GET /meshes/{mesh}/{kinds}`, `POST /meshes/{mesh}/{kinds}`,
//!   `GET|PUT|DELETE /meshes/{mesh}/{kinds}/{name}` for mesh-scoped kinds
//! * `GET /{kinds}` lists a mesh-scoped kind across every mesh
//! * `POST /apply`: several resources in one transaction
//! * `GET /status/dataplanes[?mesh=M]`, `GET /meshes/{mesh}/dataplanes/{name}/status`
//! * `GET /meshes/{mesh}/ca`: the mesh CA's certificate ([`MeshCaResponse`])
//! * `GET /meshes/{mesh}/dataplanes/{name}/tap[?path=P&method=M]`: the
//!   requests passing that proxy, as they finish, one [`TapLine`] per line
//!   (NDJSON), until the client goes away
//! * `GET /healthz` ([`Health`]): open, for probes; also the API's version
//!   and clock
//! * `POST /tokens/dataplane` ([`DataplaneTokenRequest`] → [`DataplaneTokenResponse`]),
//!   `POST /tokens/revoke` ([`RevokeTokenRequest`] → [`TokenInfo`]),
//!   `GET /tokens/revoked` ([`TokenList`]),
//!   `POST /tokens/signing-key/rotate` (→ [`SigningKeyInfo`])
//! * `GET /meshes/{mesh}/stats[?service=S]`: traffic per service and edge ([`MeshStats`])
//! * `GET /metrics`: the control plane's metrics (OpenMetrics text, not JSON)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Kind, Protocol, Resource};

mod stats;

pub use stats::{MeshStats, TrafficStats};

/// What the control plane records about every stored resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Store revision of the write that last changed the resource.
    pub revision: u64,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds.
    pub modified: u64,
}

/// A resource with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResource {
    pub resource: Resource,
    pub meta: Meta,
}

impl StoredResource {
    /// The resource as users write it, plus `revision`, `creationTime` and
    /// `modificationTime` (which `apply` ignores).
    pub fn to_value(&self) -> Value {
        let mut v = self.resource.to_value();
        if let Value::Object(fields) = &mut v {
            fields.insert("revision".into(), self.meta.revision.into());
            fields.insert("creationTime".into(), rfc3339(self.meta.created).into());
            fields.insert(
                "modificationTime".into(),
                rfc3339(self.meta.modified).into(),
            );
        }
        v
    }
}

/// Formats unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix_seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix_seconds)).to_string()
}

/// Current time in unix seconds.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `POST /apply`: every resource is validated, then all are written in one
/// transaction, or none is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyRequest {
    pub resources: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResult {
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    pub name: String,
    pub outcome: ApplyOutcome,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyResponse {
    /// Store revision after the write.
    pub revision: u64,
    pub results: Vec<ApplyResult>,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    /// One line per problem (for validation errors, one per field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// `GET /meshes` and friends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResponse {
    pub items: Vec<Value>,
}

/// What the control plane knows about a Dataplane's proxy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneStatus {
    pub mesh: String,
    pub name: String,
    pub online: bool,
    /// RFC 3339 time the current (or last) stream opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version_sent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version_acked: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_nack: Option<NackStatus>,
    #[serde(default)]
    pub outbounds: Vec<OutboundStatus>,
    /// The inbounds last sent, with the policies the proxy applies there.
    #[serde(default)]
    pub inbounds: Vec<InboundStatus>,
    /// The proxy's clock minus the control plane's, in milliseconds, as last
    /// reported by the proxy (its transit time included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_ms: Option<i64>,
    /// The workload certificate last issued to this Dataplane by this
    /// control plane (since it started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateStatus>,
}

/// A workload certificate's validity, in [`DataplaneStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// RFC 3339: when the control plane signed it.
    pub issued_at: String,
    /// RFC 3339.
    pub not_after: String,
}

/// `GET /healthz`: answered after a store round trip.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: String,
    pub revision: u64,
    /// The control plane's version.
    #[serde(default)]
    pub version: String,
    /// The control plane's clock when it answered (unix milliseconds).
    #[serde(default)]
    pub time_unix_ms: i64,
}

/// One line of a tap stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum TapLine {
    /// The proxy runs the tap: requests finishing from now on are shown.
    Started {
        dataplane: String,
    },
    Request(Box<TapRequest>),
    /// Matching requests left out because the reader fell behind.
    Dropped {
        count: u64,
    },
    /// The tap is over (the proxy went away or refused it).
    Ended {
        reason: String,
    },
}

/// One finished request, in a [`TapLine`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapRequest {
    /// When the request arrived (unix milliseconds).
    pub start_unix_ms: i64,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub source_service: String,
    pub destination_service: String,
    pub method: String,
    pub authority: String,
    pub path: String,
    pub status: u16,
    /// Until the response head.
    pub head_latency_us: u64,
    /// Until the end of the response body.
    pub duration_us: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// One inbound and the policies the proxy applies to its callers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundStatus {
    pub port: u16,
    pub service: String,
    /// TrafficPermissions that may apply, most specific first.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// RateLimits that may apply, most specific first.
    #[serde(default)]
    pub rate_limits: Vec<String>,
    /// AccessLogs that may apply, most specific first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_logs: Vec<String>,
}

/// A policy that applies, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedPolicy {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NackStatus {
    pub version: u64,
    pub reason: String,
}

/// One outbound and the endpoints last sent to the proxy for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboundStatus {
    pub port: u16,
    pub service: String,
    pub protocol: Protocol,
    pub endpoints: Vec<EndpointStatus>,
    /// The one policy of each kind that applies to this outbound.
    #[serde(default)]
    pub policies: Vec<AppliedPolicy>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointStatus {
    pub dataplane: String,
    pub address: String,
    pub port: u16,
}

/// `POST /tokens/dataplane`: a token for proxies of `mesh` serving `services`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataplaneTokenRequest {
    pub mesh: String,
    pub services: Vec<String>,
    /// A humantime duration (`24h`, `30d`); default 24h, at most 365d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneTokenResponse {
    /// `weft1.<claims>.<signature>`: give it to the proxy.
    pub token: String,
    /// The token's `jti`: what `POST /tokens/revoke` takes.
    pub id: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// `POST /tokens/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokenRequest {
    pub id: String,
}

/// What the control plane records about a token it issued (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub mesh: String,
    pub services: Vec<String>,
    /// Id of the key that signed it.
    pub kid: String,
    /// RFC 3339.
    pub issued_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// RFC 3339; absent unless revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// `GET /tokens/revoked`, newest revocation first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenList {
    pub items: Vec<TokenInfo>,
}

/// `POST /tokens/signing-key/rotate`: the new key (its public half only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyInfo {
    pub kid: String,
    /// RFC 3339.
    pub created_at: String,
}

/// `GET /meshes/{mesh}/ca`: the public certificate of the CA that signs the
/// mesh's workload certificates (the private key is never served).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshCaResponse {
    /// The issuing CA certificate, then any intermediates, then the root.
    pub certificate_pem: String,
    /// RFC 3339 expiry of the issuing CA certificate.
    pub not_after: String,
    /// The other roots the mesh's proxies trust (`mtls.trustedCas`, in
    /// order): during a CA rotation, the CA being moved to or away from.
    #[serde(default)]
    pub trusted: Vec<TrustedCa>,
}

/// A root trusted besides the issuing CA's, in [`MeshCaResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedCa {
    pub certificate_pem: String,
    /// RFC 3339.
    pub not_after: String,
}
