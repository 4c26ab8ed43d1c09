//! The proxy's own typed config: a `ProxyConfig` from the control plane,
//! parsed and validated once, so nothing after this module handles raw
//! strings or out-of-range numbers. `Serialize` is what `/config` shows.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use serde::Serialize;
pub use weft_api::MtlsMode;
use weft_api::{Protocol, ValidationErrors, dataplane::LOCALHOST, name::name_problem, proto};

pub use self::transparent::{MeshServiceConfig, TransparentConfig};
use crate::{authz::PermissionConfig, tls::TrustBundle};

mod observability;
pub mod policies;
mod transparent;

pub use observability::{AccessLogConfig, LogTarget, TracingBackend, TracingConfig};
pub use policies::{OutboundPolicies, RateLimitConfig};

/// Tag of an inbound that names its service (as in the Dataplane resource).
const SERVICE_TAG: &str = weft_api::dataplane::SERVICE_TAG;

/// One version of what the proxy runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub version: u64,
    pub mesh: String,
    pub dataplane: String,
    pub inbounds: Vec<InboundConfig>,
    pub outbounds: Vec<OutboundConfig>,
    pub mtls: MtlsConfig,
    /// Present when the host redirects traffic to this proxy.
    pub transparent: Option<TransparentConfig>,
    /// The proxy's Tracing policy; `None`: no spans, headers untouched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
}

/// The mesh's mTLS settings for this proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MtlsConfig {
    pub mode: MtlsMode,
    /// Roots to trust for peers; empty means "the bundle that comes with
    /// the certificate". Shown as the roots' subjects.
    #[serde(serialize_with = "serialize_bundle")]
    pub trust_bundle: Arc<TrustBundle>,
    /// What the control plane says certificates live; the proxy renews by
    /// each certificate's own expiry.
    pub certificate_lifetime_seconds: u64,
    /// A new value means "request a new certificate now".
    pub issuer_id: String,
}

fn serialize_bundle<S: serde::Serializer>(
    bundle: &Arc<TrustBundle>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    bundle.as_ref().serialize(serializer)
}

impl MtlsConfig {
    /// Whether this proxy needs a certificate and calls peers with mTLS.
    pub fn is_on(&self) -> bool {
        self.mode != MtlsMode::Off
    }
}

/// Mesh traffic accepted on `listen` and handed to the local service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundConfig {
    pub listen: SocketAddr,
    /// The `service` tag; may be empty if the control plane sent none.
    pub service: String,
    pub service_address: SocketAddr,
    pub protocol: Protocol,
    pub tags: BTreeMap<String, String>,
    /// TrafficPermissions for callers of this inbound, most specific first.
    pub permissions: Vec<PermissionConfig>,
    /// RateLimits for callers of this inbound, most specific first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimitConfig>,
    /// AccessLogs for callers of this inbound, most specific first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_logs: Vec<AccessLogConfig>,
}

/// A local port on which the workload reaches `service`'s endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundConfig {
    pub listen: SocketAddr,
    pub service: String,
    pub protocol: Protocol,
    pub endpoints: Vec<EndpointConfig>,
    pub policies: OutboundPolicies,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLogConfig>,
}

/// One inbound of another proxy that serves an outbound's service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConfig {
    pub address: SocketAddr,
    pub dataplane: String,
    pub tags: BTreeMap<String, String>,
}

impl Config {
    /// Validates a config from the control plane. Every error names the
    /// proto field path, e.g. `outbounds[0].endpoints[1].port: 0 is not a
    /// port (1-65535)`.
    pub fn from_proto(msg: proto::ProxyConfig) -> Result<Config, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        for (path, value) in [("mesh", &msg.mesh), ("dataplane", &msg.dataplane)] {
            if let Some(p) = name_problem(value) {
                errors.push(path, p);
            }
        }
        let mut fields = Fields {
            errors: &mut errors,
        };
        let inbounds: Vec<_> = msg
            .inbounds
            .into_iter()
            .enumerate()
            .filter_map(|(i, inbound)| fields.inbound(&format!("inbounds[{i}]"), inbound))
            .collect();
        let outbounds: Vec<_> = msg
            .outbounds
            .into_iter()
            .enumerate()
            .filter_map(|(i, outbound)| fields.outbound(&format!("outbounds[{i}]"), outbound))
            .collect();
        let mtls = msg.mtls.map(|m| fields.mtls(m)).unwrap_or_default();
        let transparent = msg.transparent_proxy.and_then(|t| fields.transparent(t));
        let tracing = msg
            .tracing
            .and_then(|t| observability::parse_tracing("tracing", t, fields.errors));
        let config = Config {
            version: msg.version,
            mesh: msg.mesh,
            dataplane: msg.dataplane,
            inbounds,
            outbounds,
            mtls,
            transparent,
            tracing,
        };
        // Listener clashes only make sense once every address parsed.
        if errors.is_empty() {
            config.check_listeners(&mut errors);
        }
        errors.into_result().map(|()| config)
    }

    /// Every address the proxy must listen on, with the field that asked
    /// for it.
    fn listeners(&self) -> impl Iterator<Item = (SocketAddr, String)> + '_ {
        let inbounds = self
            .inbounds
            .iter()
            .enumerate()
            .map(|(i, l)| (l.listen, format!("inbounds[{i}]")));
        let outbounds = self
            .outbounds
            .iter()
            .enumerate()
            .map(|(i, l)| (l.listen, format!("outbounds[{i}]")));
        inbounds.chain(outbounds)
    }

    /// Two listeners on one port (or one on a wildcard address and another
    /// on the same port) cannot both be bound.
    fn check_listeners(&self, errors: &mut ValidationErrors) {
        let mut by_port: HashMap<u16, Vec<(IpAddr, String)>> = HashMap::new();
        for (addr, path) in self.listeners() {
            let same_port = by_port.entry(addr.port()).or_default();
            let clash = same_port.iter().find(|(ip, _)| {
                *ip == addr.ip() || ip.is_unspecified() || addr.ip().is_unspecified()
            });
            if let Some((_, first)) = clash {
                errors.push(
                    format!("{path}.port"),
                    format!("{addr} is already used by {first}"),
                );
            }
            same_port.push((addr.ip(), path));
        }
        for (i, inbound) in self.inbounds.iter().enumerate() {
            if let Some((_, path)) = self
                .listeners()
                .find(|(addr, _)| *addr == inbound.service_address)
            {
                errors.push(
                    format!("inbounds[{i}].service_port"),
                    format!(
                        "{} is this proxy's own listener {path}",
                        inbound.service_address
                    ),
                );
            }
        }
    }
}

/// Field parsers that record what is wrong instead of stopping at the
/// first problem, so a NACK lists everything.
struct Fields<'a> {
    errors: &'a mut ValidationErrors,
}

impl Fields<'_> {
    fn inbound(&mut self, path: &str, msg: proto::Inbound) -> Option<InboundConfig> {
        let listen = self.socket_addr(path, "address", &msg.address, None, "port", msg.port);
        let service_address = self.socket_addr(
            path,
            "service_address",
            &msg.service_address,
            Some(LOCALHOST),
            "service_port",
            msg.service_port,
        );
        let protocol = self.protocol(path, msg.protocol);
        let tags: BTreeMap<_, _> = msg.tags.into_iter().collect();
        let service = tags.get(SERVICE_TAG).cloned().unwrap_or_default();
        let permissions: Vec<_> = msg
            .permissions
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| {
                crate::authz::config::parse(&format!("{path}.permissions[{i}]"), p, self.errors)
            })
            .collect();
        let rate_limits = msg
            .rate_limits
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                policies::parse_rate_limit(&format!("{path}.rate_limits[{i}]"), r, self.errors)
            })
            .collect();
        let access_logs = msg
            .access_logs
            .into_iter()
            .enumerate()
            .filter_map(|(i, a)| {
                observability::parse_access_log(&format!("{path}.access_logs[{i}]"), a, self.errors)
            })
            .collect();
        Some(InboundConfig {
            listen: listen?,
            service,
            service_address: service_address?,
            protocol: protocol?,
            tags,
            permissions,
            rate_limits,
            access_logs,
        })
    }

    fn outbound(&mut self, path: &str, msg: proto::Outbound) -> Option<OutboundConfig> {
        // Outbounds are for the local app only, so loopback is their default.
        let listen = self.socket_addr(
            path,
            "address",
            &msg.address,
            Some(LOCALHOST),
            "port",
            msg.port,
        );
        if let Some(p) = name_problem(&msg.service) {
            self.errors.push(format!("{path}.service"), p);
        }
        let protocol = self.protocol(path, msg.protocol);
        let endpoints: Vec<_> = msg
            .endpoints
            .into_iter()
            .enumerate()
            .filter_map(|(i, e)| self.endpoint(&format!("{path}.endpoints[{i}]"), e))
            .collect();
        let policies = msg
            .policies
            .map(|p| policies::parse_outbound(&format!("{path}.policies"), p, self.errors))
            .unwrap_or_default();
        let access_log = msg.access_log.and_then(|a| {
            observability::parse_access_log(&format!("{path}.access_log"), a, self.errors)
        });
        Some(OutboundConfig {
            listen: listen?,
            service: msg.service,
            protocol: protocol?,
            endpoints,
            policies,
            access_log,
        })
    }

    /// A bad mode or bundle is recorded; the rest stays at its default,
    /// which is never applied since the config is rejected.
    fn mtls(&mut self, msg: proto::Mtls) -> MtlsConfig {
        let mode = match proto::MtlsMode::try_from(msg.mode) {
            Ok(proto::MtlsMode::MtlsOff) => MtlsMode::Off,
            Ok(proto::MtlsMode::MtlsPermissive) => MtlsMode::Permissive,
            Ok(proto::MtlsMode::MtlsStrict) => MtlsMode::Strict,
            Err(_) => {
                self.errors.push(
                    "mtls.mode",
                    format!(
                        "{} is not an mTLS mode (0 off, 1 permissive, 2 strict)",
                        msg.mode
                    ),
                );
                MtlsMode::Off
            }
        };
        let trust_bundle = match TrustBundle::from_pem(&msg.trust_bundle_pem) {
            Ok(bundle) => bundle,
            Err(e) => {
                self.errors.push("mtls.trust_bundle_pem", e.to_string());
                TrustBundle::default()
            }
        };
        MtlsConfig {
            mode,
            trust_bundle: Arc::new(trust_bundle),
            certificate_lifetime_seconds: msg.certificate_lifetime_seconds,
            issuer_id: msg.issuer_id,
        }
    }

    fn endpoint(&mut self, path: &str, msg: proto::Endpoint) -> Option<EndpointConfig> {
        let address = self.socket_addr(path, "address", &msg.address, None, "port", msg.port)?;
        Some(EndpointConfig {
            address,
            dataplane: msg.dataplane,
            tags: msg.tags.into_iter().collect(),
        })
    }

    /// An IP (or `default` when empty) and a port, checked together.
    fn socket_addr(
        &mut self,
        path: &str,
        ip_field: &str,
        ip: &str,
        default: Option<IpAddr>,
        port_field: &str,
        port: u32,
    ) -> Option<SocketAddr> {
        let ip = match (ip.parse::<IpAddr>(), default) {
            (Ok(ip), _) => Some(ip),
            (Err(_), Some(default)) if ip.is_empty() => Some(default),
            (Err(_), None) if ip.is_empty() => {
                self.errors
                    .push(format!("{path}.{ip_field}"), "required (an IP address)");
                None
            }
            (Err(_), _) => {
                self.errors.push(
                    format!("{path}.{ip_field}"),
                    format!("{ip:?} is not an IP address"),
                );
                None
            }
        };
        let port = match u16::try_from(port) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.errors.push(
                    format!("{path}.{port_field}"),
                    format!("{port} is not a port (1-65535)"),
                );
                None
            }
        };
        Some(SocketAddr::new(ip?, port?))
    }

    fn protocol(&mut self, path: &str, value: i32) -> Option<Protocol> {
        match proto::Protocol::try_from(value) {
            Ok(p) => Some(p.into()),
            Err(_) => {
                self.errors.push(
                    format!("{path}.protocol"),
                    format!("{value} is not a protocol (0 tcp, 1 http, 2 http2, 3 grpc)"),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
