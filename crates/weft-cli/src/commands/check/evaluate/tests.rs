//! The checks on hand-made facts: a healthy mesh passes everything, and
//! each kind of trouble fails (or warns) the right check naming its subject.

use std::time::Duration;

use weft_api::rest::{CertificateStatus, DataplaneStatus, Health, MeshCaResponse, NackStatus};

use super::*;
use crate::commands::check::facts::{Facts, MeshFacts, Probe};

/// 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600_000;

fn settings() -> Settings {
    Settings {
        cert_warn: None,
        max_clock_skew: Duration::from_secs(2),
        ca_warn: Duration::from_secs(30 * 86_400),
    }
}

fn online(name: &str) -> DataplaneStatus {
    DataplaneStatus {
        mesh: "default".into(),
        name: name.into(),
        online: true,
        config_version_sent: Some(7),
        config_version_acked: Some(7),
        clock_skew_ms: Some(15),
        certificate: Some(CertificateStatus {
            issued_at: "2025-12-31T12:00:00Z".into(),
            not_after: "2026-01-01T12:00:00Z".into(),
        }),
        ..DataplaneStatus::default()
    }
}

fn healthy() -> Facts {
    Facts {
        api_url: "http://127.0.0.1:5681".into(),
        health: Probe::Ok(Health {
            status: "ok".into(),
            revision: 4,
            version: weft_api::VERSION.into(),
            time_unix_ms: NOW + 300,
        }),
        local_mid_ms: NOW,
        round_trip_ms: 4,
        meshes: Ok(vec![MeshFacts {
            name: "default".into(),
            ca: Some(Ok(MeshCaResponse {
                certificate_pem: String::new(),
                not_after: "2035-12-30T00:00:00Z".into(),
                trusted: vec![],
            })),
        }]),
        dataplanes: Ok(vec![online("web-1"), online("backend-1")]),
    }
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn a_healthy_mesh_passes_every_check() {
    let checks = evaluate(&healthy(), &settings(), NOW);
    assert_eq!(checks.len(), 6);
    for c in &checks {
        assert_eq!(c.status, Outcome::Pass, "{c:?}");
    }
    assert_eq!(
        check(&checks, "dataplanes online and acknowledged").summary,
        "2 of 2 online with their latest config"
    );
}

#[test]
fn an_unreachable_control_plane_is_the_only_check() {
    let mut facts = healthy();
    facts.health = Probe::Unreachable("Connection refused".into());
    let checks = evaluate(&facts, &settings(), NOW);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].status, Outcome::Fail);
    assert!(checks[0].problems[0].hint.contains("weft control-plane"));
}

#[test]
fn a_failing_store_and_a_refused_token_fail_their_checks() {
    let mut facts = healthy();
    facts.health = Probe::Answered("unhealthy: database is locked".into());
    facts.meshes = Err("invalid admin token".into());
    let checks = evaluate(&facts, &settings(), NOW);
    assert_eq!(check(&checks, "store healthy").status, Outcome::Fail);
    let reach = check(&checks, "control plane reachable");
    assert_eq!(reach.status, Outcome::Fail);
    assert!(reach.problems[0].hint.contains("WEFT_TOKEN"));
}

#[test]
fn an_offline_or_rejecting_dataplane_fails_naming_it() {
    let mut facts = healthy();
    let mut gone = online("backend-1");
    gone.online = false;
    gone.disconnected_at = Some("2025-12-31T23:59:00Z".into());
    let mut rejecting = online("web-1");
    rejecting.config_version_sent = Some(8);
    rejecting.last_nack = Some(NackStatus {
        version: 8,
        reason: "port 20001 is busy".into(),
    });
    let mut behind = online("db-1");
    behind.config_version_sent = Some(9);
    facts.dataplanes = Ok(vec![gone, rejecting, behind]);
    let checks = evaluate(&facts, &settings(), NOW);
    let c = check(&checks, "dataplanes online and acknowledged");
    assert_eq!(c.status, Outcome::Fail);
    assert_eq!(c.summary, "0 of 3 online with their latest config");
    let by = |s: &str| c.problems.iter().find(|p| p.subject == s).unwrap();
    assert_eq!(by("default/backend-1").status, Outcome::Fail);
    assert!(by("default/backend-1").detail.contains("offline since"));
    assert!(
        by("default/backend-1")
            .hint
            .contains("weft delete dataplane backend-1 -m default")
    );
    assert!(by("default/web-1").detail.contains("port 20001 is busy"));
    assert_eq!(by("default/db-1").status, Outcome::Warn);
}

#[test]
fn certificates_near_the_end_of_their_life_fail() {
    let mut facts = healthy();
    let mut late = online("web-1");
    // 24 h lifetime, 2 h left: inside the last 20 %.
    late.certificate = Some(CertificateStatus {
        issued_at: "2025-12-31T02:00:00Z".into(),
        not_after: "2026-01-01T02:00:00Z".into(),
    });
    let mut expired = online("backend-1");
    expired.certificate = Some(CertificateStatus {
        issued_at: "2025-12-30T00:00:00Z".into(),
        not_after: "2025-12-31T00:00:00Z".into(),
    });
    let mut unknown = online("db-1");
    unknown.certificate = None;
    facts.dataplanes = Ok(vec![late, expired, unknown]);
    let checks = evaluate(&facts, &settings(), NOW);
    let c = check(&checks, "workload certificates fresh");
    assert_eq!(c.status, Outcome::Fail);
    let details: Vec<(&str, Outcome)> = c
        .problems
        .iter()
        .map(|p| (p.subject.as_str(), p.status))
        .collect();
    assert_eq!(
        details,
        [
            ("default/web-1", Outcome::Fail),
            ("default/backend-1", Outcome::Fail),
            ("default/db-1", Outcome::Warn)
        ]
    );
    assert!(c.problems[1].detail.contains("expired"));

    // 12 h left of 24 h passes by default, fails with --cert-warn 13h.
    let checks = evaluate(
        &healthy(),
        &Settings {
            cert_warn: Some(Duration::from_secs(13 * 3600)),
            ..settings()
        },
        NOW,
    );
    assert_eq!(
        check(&checks, "workload certificates fresh").status,
        Outcome::Fail
    );
}

#[test]
fn an_expiring_or_unavailable_ca_is_reported() {
    let mut facts = healthy();
    facts.meshes = Ok(vec![
        MeshFacts {
            name: "soon".into(),
            ca: Some(Ok(MeshCaResponse {
                certificate_pem: String::new(),
                not_after: "2026-01-10T00:00:00Z".into(),
                trusted: vec![],
            })),
        },
        MeshFacts {
            name: "broken".into(),
            ca: Some(Err("provided CA file unreadable".into())),
        },
        MeshFacts {
            name: "plain".into(),
            ca: None,
        },
    ]);
    let checks = evaluate(&facts, &settings(), NOW);
    let c = check(&checks, "mesh CAs valid");
    assert_eq!(c.status, Outcome::Fail);
    assert_eq!(c.summary, "2 checked: soon, broken");
    assert_eq!(
        (c.problems[0].subject.as_str(), c.problems[0].status),
        ("mesh soon", Outcome::Warn)
    );
    assert_eq!(
        (c.problems[1].subject.as_str(), c.problems[1].status),
        ("mesh broken", Outcome::Fail)
    );
}

#[test]
fn clocks_out_of_step_fail() {
    let mut facts = healthy();
    if let Probe::Ok(h) = &mut facts.health {
        h.time_unix_ms = NOW - 5_000;
    }
    let mut skewed = online("web-1");
    skewed.clock_skew_ms = Some(3_500);
    facts.dataplanes = Ok(vec![skewed, online("backend-1")]);
    let checks = evaluate(&facts, &settings(), NOW);
    let c = check(&checks, "clocks in step");
    assert_eq!(c.status, Outcome::Fail);
    assert_eq!(c.problems[0].detail, "its clock is 5s behind this host's");
    assert_eq!(c.problems[1].subject, "default/web-1");
    assert_eq!(
        c.problems[1].detail,
        "its proxy's clock is 3s ahead of the control plane's"
    );
}
