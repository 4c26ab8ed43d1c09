//! The checks, as a pure function of what was gathered ([`Facts`]), the
//! thresholds and the time: one [`Check`] per concern, each with the
//! problems found (subject, what is wrong, what to do).

use std::{collections::BTreeSet, time::Duration};

use serde::Serialize;
use weft_api::rest::DataplaneStatus;

use super::facts::{Facts, MeshFacts, Probe};

/// How a check or one of its problems came out; the worst problem decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Outcome,
    pub summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What the problem is about, e.g. `default/web-1`.
    pub subject: String,
    pub status: Outcome,
    pub detail: String,
    /// What to do about it.
    pub hint: String,
}

/// Thresholds.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Workload certificates expiring within this fail; `None`: within the
    /// last [`CERT_WARN_SHARE`] of their lifetime (proxies renew at 60-80 %,
    /// so such a certificate means renewal is failing).
    pub cert_warn: Option<Duration>,
    /// Clocks further apart than this fail.
    pub max_clock_skew: Duration,
    /// CA certificates expiring within this warn.
    pub ca_warn: Duration,
}

/// See [`Settings::cert_warn`].
pub const CERT_WARN_SHARE: f64 = 0.2;

const HINT_NTP: &str = "keep every host's clock in step with NTP (chrony or systemd-timesyncd); certificates and tokens depend on it";

impl Check {
    fn new(name: &'static str, summary: impl Into<String>, problems: Vec<Problem>) -> Self {
        let status = problems
            .iter()
            .map(|p| p.status)
            .max()
            .unwrap_or(Outcome::Pass);
        Self {
            name,
            status,
            summary: summary.into(),
            problems,
        }
    }
}

fn problem(
    subject: impl Into<String>,
    status: Outcome,
    detail: impl Into<String>,
    hint: impl Into<String>,
) -> Problem {
    Problem {
        subject: subject.into(),
        status,
        detail: detail.into(),
        hint: hint.into(),
    }
}

/// Every check; only the first when the control plane cannot be reached.
pub fn evaluate(facts: &Facts, settings: &Settings, now_ms: i64) -> Vec<Check> {
    let reachable = reachable(facts);
    if matches!(facts.health, Probe::Unreachable(_)) {
        return vec![reachable];
    }
    vec![
        reachable,
        store(facts),
        cas(facts, settings, now_ms),
        dataplanes(facts),
        certificates(facts, settings, now_ms),
        clocks(facts, settings),
    ]
}

fn reachable(facts: &Facts) -> Check {
    const NAME: &str = "control plane reachable";
    let url = &facts.api_url;
    match (&facts.health, &facts.meshes) {
        (Probe::Unreachable(e), _) => Check::new(
            NAME,
            format!("nothing answers at {url}"),
            vec![problem(
                "API",
                Outcome::Fail,
                e,
                "start it (`weft control-plane`), or point --cp / WEFT_CP at it (an https one also needs --cp-ca-file)",
            )],
        ),
        (_, Err(e)) => Check::new(
            NAME,
            format!("{url} answers, but refuses the API calls"),
            vec![problem(
                "API",
                Outcome::Fail,
                e,
                "a 401 means the admin token is missing or wrong: set WEFT_TOKEN or --admin-token-file (the control plane writes the file on its first start)",
            )],
        ),
        (Probe::Ok(health), Ok(_)) if health.version != weft_api::VERSION => Check::new(
            NAME,
            format!("{url} answers (version {})", health.version),
            vec![problem(
                "version",
                Outcome::Warn,
                format!(
                    "the control plane runs {}, this CLI is {}",
                    health.version,
                    weft_api::VERSION
                ),
                "use a CLI of the control plane's version",
            )],
        ),
        (Probe::Ok(health), Ok(_)) => Check::new(
            NAME,
            format!("{url} answers (version {})", health.version),
            vec![],
        ),
        (Probe::Answered(_), Ok(_)) => Check::new(NAME, format!("{url} answers"), vec![]),
    }
}

fn store(facts: &Facts) -> Check {
    const NAME: &str = "store healthy";
    match &facts.health {
        Probe::Ok(health) => Check::new(NAME, format!("revision {}", health.revision), vec![]),
        Probe::Answered(e) | Probe::Unreachable(e) => Check::new(
            NAME,
            "the control plane cannot use its store",
            vec![problem(
                "store",
                Outcome::Fail,
                e,
                "see the control plane's log; check its --store (path, disk space, permissions) or database",
            )],
        ),
    }
}

fn cas(facts: &Facts, settings: &Settings, now_ms: i64) -> Check {
    const NAME: &str = "mesh CAs valid";
    let meshes = mtls_meshes(facts);
    if meshes.is_empty() {
        return Check::new(NAME, "no mesh has mTLS on", vec![]);
    }
    let mut problems = Vec::new();
    for mesh in &meshes {
        let subject = format!("mesh {}", mesh.name);
        let hint = "rotate to a new CA (README, \"Rotating the CA\"); for a provided CA, check the files of mtls.ca";
        match &mesh.ca {
            Some(Ok(ca)) => {
                if let Some(p) = expiry(
                    &subject,
                    "its CA certificate",
                    &ca.not_after,
                    now_ms,
                    settings.ca_warn,
                    Outcome::Warn,
                    hint,
                ) {
                    problems.push(p);
                }
                for (i, trusted) in ca.trusted.iter().enumerate() {
                    let what = format!("trusted CA {} (mtls.trustedCas[{i}])", i + 1);
                    if let Some(p) = expiry(
                        &subject,
                        &what,
                        &trusted.not_after,
                        now_ms,
                        settings.ca_warn,
                        Outcome::Warn,
                        "drop it from mtls.trustedCas once no proxy presents its certificates",
                    ) {
                        problems.push(p);
                    }
                }
            }
            Some(Err(e)) => problems.push(problem(subject, Outcome::Fail, e, hint)),
            None => {}
        }
    }
    let names: Vec<&str> = meshes.iter().map(|m| m.name.as_str()).collect();
    Check::new(
        NAME,
        format!("{} checked: {}", names.len(), names.join(", ")),
        problems,
    )
}

/// A problem if `not_after` (RFC 3339) is past (fail) or within `warn`
/// (`near`); a timestamp that does not parse fails.
fn expiry(
    subject: &str,
    what: &str,
    not_after: &str,
    now_ms: i64,
    warn: Duration,
    near: Outcome,
    hint: &str,
) -> Option<Problem> {
    let Some(end_ms) = unix_ms(not_after) else {
        return Some(problem(
            subject,
            Outcome::Fail,
            format!("{what} has an unreadable expiry {not_after:?}"),
            hint,
        ));
    };
    if end_ms <= now_ms {
        return Some(problem(
            subject,
            Outcome::Fail,
            format!("{what} expired at {not_after}"),
            hint,
        ));
    }
    let left = Duration::from_millis(u64::try_from(end_ms - now_ms).unwrap_or(0));
    (left < warn).then(|| {
        problem(
            subject,
            near,
            format!("{what} expires at {not_after}, in {}", human(left)),
            hint,
        )
    })
}

fn dataplanes(facts: &Facts) -> Check {
    const NAME: &str = "dataplanes online and acknowledged";
    let all = match &facts.dataplanes {
        Ok(all) => all,
        Err(e) => {
            return Check::new(
                NAME,
                "cannot list them",
                vec![problem(
                    "dataplanes",
                    Outcome::Fail,
                    e,
                    "see the control plane's log",
                )],
            );
        }
    };
    let problems: Vec<Problem> = all.iter().filter_map(dataplane_problem).collect();
    let failing: BTreeSet<&str> = problems.iter().map(|p| p.subject.as_str()).collect();
    let summary = if all.is_empty() {
        "no dataplanes".to_owned()
    } else {
        format!(
            "{} of {} online with their latest config",
            all.len() - failing.len(),
            all.len()
        )
    };
    Check::new(NAME, summary, problems)
}

fn dataplane_problem(s: &DataplaneStatus) -> Option<Problem> {
    let subject = format!("{}/{}", s.mesh, s.name);
    if !s.online {
        let since = match &s.disconnected_at {
            Some(t) => format!("offline since {t}"),
            None => {
                "offline: its proxy has not connected since the control plane started".to_owned()
            }
        };
        let hint = format!(
            "start its proxy (`weft proxy --dataplane-file ...`) and check its log; if it is gone for good: `weft delete dataplane {} -m {}`",
            s.name, s.mesh
        );
        return Some(problem(subject, Outcome::Fail, since, hint));
    }
    let inspect = format!("`weft inspect dataplane {} -m {}`", s.name, s.mesh);
    match (s.config_version_sent, s.config_version_acked, &s.last_nack) {
        (Some(sent), _, Some(nack)) if nack.version == sent => Some(problem(
            subject,
            Outcome::Fail,
            format!("rejected its latest config ({sent}): {}", nack.reason),
            format!(
                "fix what the reason names (see {inspect} and the proxy's log); it keeps running its last good config"
            ),
        )),
        (Some(sent), acked, _) if acked != Some(sent) => Some(problem(
            subject,
            Outcome::Warn,
            format!(
                "config {sent} sent, {} acknowledged",
                acked.map_or("none".to_owned(), |a| a.to_string())
            ),
            format!("a change is on its way; if this stays, see {inspect} and the proxy's log"),
        )),
        (None, _, _) => Some(problem(
            subject,
            Outcome::Warn,
            "connected, but no config sent yet",
            "check again in a moment; if this stays, see the control plane's log",
        )),
        _ => None,
    }
}

fn certificates(facts: &Facts, settings: &Settings, now_ms: i64) -> Check {
    const NAME: &str = "workload certificates fresh";
    let meshes: BTreeSet<&str> = mtls_meshes(facts).iter().map(|m| m.name.as_str()).collect();
    if meshes.is_empty() {
        return Check::new(NAME, "no mesh has mTLS on", vec![]);
    }
    let hint = "its proxy is not renewing (it does at 60-80 % of the lifetime): check its log for certificate errors and that it reaches the control plane";
    let mut problems = Vec::new();
    let mut known = 0;
    let mut nearest: Option<(i64, String)> = None;
    let online = facts
        .dataplanes
        .iter()
        .flatten()
        .filter(|s| s.online && meshes.contains(s.mesh.as_str()));
    for s in online {
        let subject = format!("{}/{}", s.mesh, s.name);
        let Some(cert) = &s.certificate else {
            problems.push(problem(
                subject,
                Outcome::Warn,
                "expiry not known: its certificate was issued before the control plane last started",
                "nothing to do if the proxy is healthy: its next renewal is recorded",
            ));
            continue;
        };
        known += 1;
        let (Some(issued), Some(end)) = (unix_ms(&cert.issued_at), unix_ms(&cert.not_after)) else {
            problems.push(problem(
                subject,
                Outcome::Fail,
                format!("unreadable validity {cert:?}"),
                hint,
            ));
            continue;
        };
        if nearest.as_ref().is_none_or(|(n, _)| end < *n) {
            nearest = Some((end, cert.not_after.clone()));
        }
        let window = match settings.cert_warn {
            Some(d) => d,
            None => Duration::from_millis(((end - issued).max(0) as f64 * CERT_WARN_SHARE) as u64),
        };
        if let Some(p) = expiry(
            &subject,
            "its certificate",
            &cert.not_after,
            now_ms,
            window,
            Outcome::Fail,
            hint,
        ) {
            problems.push(p);
        }
    }
    let summary = match nearest {
        Some((_, t)) => format!("{known} known, the first to expire at {t}"),
        None => format!("{known} known"),
    };
    Check::new(NAME, summary, problems)
}

fn clocks(facts: &Facts, settings: &Settings) -> Check {
    const NAME: &str = "clocks in step";
    let max = i64::try_from(settings.max_clock_skew.as_millis()).unwrap_or(i64::MAX);
    let mut problems = Vec::new();
    match &facts.health {
        Probe::Ok(health) if health.time_unix_ms != 0 => {
            let skew = health.time_unix_ms - facts.local_mid_ms;
            // The answer was made somewhere within the round trip.
            if skew.abs() > max + facts.round_trip_ms / 2 {
                problems.push(problem(
                    "control plane",
                    Outcome::Fail,
                    format!("its clock is {} this host's", apart(skew)),
                    HINT_NTP,
                ));
            }
        }
        _ => problems.push(problem(
            "control plane",
            Outcome::Warn,
            "its clock is not known (no time in /healthz)",
            "upgrade the control plane",
        )),
    }
    let mut reported = 0;
    for s in facts.dataplanes.iter().flatten().filter(|s| s.online) {
        let Some(skew) = s.clock_skew_ms else {
            continue;
        };
        reported += 1;
        if skew.abs() > max {
            problems.push(problem(
                format!("{}/{}", s.mesh, s.name),
                Outcome::Fail,
                format!("its proxy's clock is {} the control plane's", apart(skew)),
                HINT_NTP,
            ));
        }
    }
    let summary = format!(
        "this host, the control plane and {reported} proxies compared (at most {} apart)",
        human(settings.max_clock_skew)
    );
    Check::new(NAME, summary, problems)
}

/// The meshes with mTLS on (their CA was asked for).
fn mtls_meshes(facts: &Facts) -> Vec<&MeshFacts> {
    facts
        .meshes
        .iter()
        .flatten()
        .filter(|m| m.ca.is_some())
        .collect()
}

/// "1.5s ahead of" / "3.0s behind".
fn apart(skew_ms: i64) -> String {
    let d = human(Duration::from_millis(skew_ms.unsigned_abs()));
    if skew_ms > 0 {
        format!("{d} ahead of")
    } else {
        format!("{d} behind")
    }
}

fn unix_ms(rfc3339: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(rfc3339).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// A duration to the second (or millisecond when under a second).
fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
mod tests;
