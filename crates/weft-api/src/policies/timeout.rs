//! `Timeout`: how long a connect, a whole request, an idle connection and
//! an idle HTTP/gRPC stream may take. An expired request gets 504.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    ValidationErrors,
    duration::{PolicyDuration, check_range},
    policy::{Policy, PolicySpec},
};

pub type Timeout = Policy<TimeoutSpec>;

/// The longest any timeout may be.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeoutSpec {
    /// Connecting to an endpoint (TCP and TLS handshake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<PolicyDuration>,
    /// A whole HTTP exchange, retries included: from the request to the
    /// end of the response. 504 if no response head came in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<PolicyDuration>,
    /// A TCP connection through the outbound with no bytes either way, or
    /// an HTTP connection with no request in flight, is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<PolicyDuration>,
    /// An HTTP/gRPC response stream with no data or trailers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_idle: Option<PolicyDuration>,
}

impl PolicySpec for TimeoutSpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        let fields = [
            ("connect", self.connect),
            ("request", self.request),
            ("idle", self.idle),
            ("streamIdle", self.stream_idle),
        ];
        if fields.iter().all(|(_, v)| v.is_none()) {
            errors.push(
                "",
                "at least one of connect, request, idle, streamIdle is required",
            );
        }
        for (path, value) in fields {
            if let Some(value) = value {
                check_range(errors, path, value, MIN_TIMEOUT, MAX_TIMEOUT);
            }
        }
    }
}
