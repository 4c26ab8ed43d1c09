//! `AccessLog`: one JSON line per HTTP request (and per TCP connection) on
//! the edges a policy selects, written to a file or to standard output.
//!
//! Resolved like the other kinds: the caller's outbound logs the
//! destinations its AccessLog selects, and an inbound logs the callers
//! whose identity matches `from` of the first AccessLog whose `to` selects
//! it, so an operator can log a single edge from either end.

use serde::{Deserialize, Serialize};

use crate::{
    ValidationErrors,
    policy::{Policy, PolicySpec},
};

pub type AccessLog = Policy<AccessLogSpec>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogSpec {
    /// An absolute file path the proxy appends lines to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Write lines to the proxy's standard output instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdout: bool,
}

impl PolicySpec for AccessLogSpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        match (&self.path, self.stdout) {
            (None, false) | (Some(_), true) => {
                errors.push("", "exactly one of path, stdout: true is required");
            }
            (Some(path), false) if !path.starts_with('/') => {
                errors.push("path", format!("{path:?} must be an absolute path"));
            }
            (Some(path), false) if path.contains('\0') => {
                errors.push("path", "must not contain NUL");
            }
            _ => {}
        }
    }
}
