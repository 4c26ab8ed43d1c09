//! `weft_authz_denied_total{direction, service, reason}`: denials counted
//! per destination service and reason. Only denials take the lock, and
//! the label values are bounded (this proxy's services × a few reasons).

use std::{collections::BTreeMap, fmt::Write as _, sync::Mutex};

#[derive(Debug, Default)]
pub struct AuthzStats {
    denied: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl AuthzStats {
    pub fn count_denial(&self, service: &str, reason: &'static str) {
        // A poisoned lock only means a panic mid-increment; the map is fine.
        let mut denied = self.denied.lock().unwrap_or_else(|p| p.into_inner());
        *denied.entry((service.to_owned(), reason)).or_default() += 1;
    }

    /// The counter in the Prometheus text format.
    pub fn render(&self, text: &mut String) {
        let name = "weft_authz_denied_total";
        let _ = write!(
            text,
            "# HELP {name} Requests and connections denied by TrafficPermissions.\n# TYPE {name} counter\n"
        );
        let denied = self.denied.lock().unwrap_or_else(|p| p.into_inner());
        for ((service, reason), count) in denied.iter() {
            let service = service.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                text,
                "{name}{{direction=\"inbound\",service=\"{service}\",reason=\"{reason}\"}} {count}"
            );
        }
    }
}
