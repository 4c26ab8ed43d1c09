//! `FaultInjection`: abort a share of requests with a status, or delay a
//! share, to rehearse failures in a running mesh. Applied by the caller's
//! outbound, before any retry, so a Retry policy can be rehearsed too.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    ValidationErrors,
    duration::{Percent, PolicyDuration, check_range},
    policy::{Policy, PolicySpec},
};

pub type FaultInjection = Policy<FaultInjectionSpec>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultInjectionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<Abort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
}

/// Answer `httpStatus` without calling the destination (TCP: close the
/// connection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Abort {
    pub percentage: Percent,
    pub http_status: u16,
}

/// Wait `value` before calling the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delay {
    pub percentage: Percent,
    pub value: PolicyDuration,
}

impl PolicySpec for FaultInjectionSpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        if self.abort.is_none() && self.delay.is_none() {
            errors.push("", "at least one of abort, delay is required");
        }
        if let Some(abort) = &self.abort
            && !(200..=599).contains(&abort.http_status)
        {
            errors.push(
                "abort.httpStatus",
                format!("{} is not an HTTP status (200-599)", abort.http_status),
            );
        }
        if let Some(delay) = &self.delay {
            check_range(
                errors,
                "delay.value",
                delay.value,
                Duration::from_millis(1),
                Duration::from_secs(3600),
            );
        }
    }
}
