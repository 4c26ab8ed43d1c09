//! The decision on plain values, and JWT checks with real signed tokens.

use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::HeaderMap;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use weft_api::traffic_permission::Action;

use super::{
    config::{JwksSource, JwtConfig, PathMatch, PermissionConfig, RuleConfig},
    decide::{Decision, Denial, Permissions, Reason, RequestView, decide_http, decide_tcp},
    jwks::Keys,
    jwt::{self, JwtError},
};

fn permission(
    name: &str,
    from: Option<&str>,
    action: Action,
    rules: Vec<RuleConfig>,
) -> PermissionConfig {
    PermissionConfig {
        name: name.into(),
        from_service: from.map(Into::into),
        action,
        rules,
    }
}

fn post_orders() -> RuleConfig {
    RuleConfig {
        methods: vec!["POST".into()],
        paths: vec![PathMatch::Exact("/orders".into())],
        ..Default::default()
    }
}

fn http(
    perms: &Permissions,
    caller: &[&str],
    method: &str,
    path: &str,
    headers: &HeaderMap,
) -> Decision {
    let services: Vec<String> = caller.iter().map(|s| (*s).to_owned()).collect();
    decide_http(
        perms,
        &services,
        &RequestView {
            method,
            path,
            headers,
        },
    )
}

fn denied(name: Option<&str>, reason: Reason) -> Decision {
    Decision::Deny(Denial {
        permission: name.map(Into::into),
        reason,
    })
}

fn perms(list: Vec<PermissionConfig>) -> Permissions {
    Permissions {
        list,
        keys: BTreeMap::new(),
    }
}

#[test]
fn no_permission_is_zero_trust() {
    let none = perms(vec![]);
    let h = HeaderMap::new();
    assert_eq!(
        http(&none, &["web"], "GET", "/", &h),
        denied(None, Reason::NoPermission)
    );
    assert_eq!(
        decide_tcp(&none, &["web".into()]),
        denied(None, Reason::NoPermission)
    );
    let only_web = perms(vec![permission("web", Some("web"), Action::Allow, vec![])]);
    assert_eq!(
        http(&only_web, &["other"], "GET", "/", &h),
        denied(None, Reason::NoPermission)
    );
    assert_eq!(
        http(&only_web, &[], "GET", "/", &h),
        denied(None, Reason::NoPermission),
        "plaintext caller"
    );
    assert_eq!(http(&only_web, &["web"], "GET", "/", &h), Decision::Allow);
}

#[test]
fn the_first_matching_permission_decides() {
    let p = perms(vec![
        permission("web-deny", Some("web"), Action::Deny, vec![]),
        permission("allow-all", None, Action::Allow, vec![]),
    ]);
    let h = HeaderMap::new();
    assert_eq!(
        http(&p, &["web"], "GET", "/", &h),
        denied(Some("web-deny"), Reason::Denied)
    );
    assert_eq!(http(&p, &["other"], "GET", "/", &h), Decision::Allow);
    assert_eq!(http(&p, &[], "GET", "/", &h), Decision::Allow);
}

#[test]
fn allow_with_rules_allows_only_matching_requests() {
    let p = perms(vec![permission(
        "orders",
        Some("web"),
        Action::Allow,
        vec![post_orders()],
    )]);
    let h = HeaderMap::new();
    assert_eq!(http(&p, &["web"], "POST", "/orders", &h), Decision::Allow);
    assert_eq!(
        http(&p, &["web"], "GET", "/orders", &h),
        denied(Some("orders"), Reason::NoRuleMatched)
    );
    assert_eq!(
        http(&p, &["web"], "POST", "/orders/1", &h),
        denied(Some("orders"), Reason::NoRuleMatched)
    );
    assert_eq!(
        decide_tcp(&p, &["web".into()]),
        denied(Some("orders"), Reason::RulesOnTcp)
    );
}

#[test]
fn deny_with_rules_denies_only_matching_requests() {
    let prefix = RuleConfig {
        paths: vec![PathMatch::Prefix("/admin/".into())],
        headers: vec![super::config::HeaderMatch {
            name: "x-env".into(),
            value: super::config::HeaderValueMatch::Exact("prod".into()),
        }],
        ..Default::default()
    };
    let p = perms(vec![permission(
        "no-admin",
        None,
        Action::Deny,
        vec![prefix],
    )]);
    let mut prod = HeaderMap::new();
    prod.insert("x-env", "prod".parse().unwrap());
    assert_eq!(
        http(&p, &["web"], "GET", "/admin/x", &prod),
        denied(Some("no-admin"), Reason::Denied)
    );
    assert_eq!(
        http(&p, &["web"], "GET", "/admin/x", &HeaderMap::new()),
        Decision::Allow
    );
    assert_eq!(http(&p, &["web"], "GET", "/public", &prod), Decision::Allow);
    assert_eq!(decide_tcp(&p, &["web".into()]), Decision::Allow);
}

#[test]
fn reasons_read_well() {
    let d = Denial {
        permission: Some("x".into()),
        reason: Reason::Jwt(JwtError::MissingScope("orders:write".into())),
    };
    assert_eq!(
        d.describe("web", "backend"),
        "denied by TrafficPermission \"x\": JWT: missing scope orders:write"
    );
    let none = Denial {
        permission: None,
        reason: Reason::NoPermission,
    };
    assert_eq!(
        none.describe("web", "backend"),
        "no TrafficPermission allows web → backend"
    );
}

/// An ES256 key, its JWKS (also as a file), and tokens signed with it.
pub(super) struct Issuer {
    key: EncodingKey,
    kid: String,
    pub(super) jwks: Value,
    jwks_path: String,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Issuer {
    pub(super) fn new() -> Self {
        Self::with_kid("k1")
    }

    /// A new key named `kid`.
    pub(super) fn with_kid(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = pair.public_key_raw();
        assert_eq!(raw.len(), 65, "uncompressed P-256 point");
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
        }]});
        let dir = std::env::temp_dir().join(format!(
            "weft-jwks-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        std::fs::write(&path, jwks.to_string()).unwrap();
        Self {
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
            kid: kid.into(),
            jwks,
            jwks_path: path.to_string_lossy().into_owned(),
            _dir: TempDir(dir),
        }
    }

    pub(super) fn token(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        encode(&header, &claims, &self.key).unwrap()
    }

    pub(super) fn config(&self) -> JwtConfig {
        JwtConfig {
            issuer: "https://issuer.example".into(),
            jwks: JwksSource::File(self.jwks_path.clone()),
            audiences: vec!["orders".into()],
            scopes: vec!["orders:write".into()],
            claims: [("tenant".to_owned(), "acme".to_owned())].into(),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(super) fn good_claims() -> Value {
    json!({"iss": "https://issuer.example", "aud": ["orders", "other"], "exp": now() + 300,
           "scope": "orders:read orders:write", "tenant": "acme", "sub": "alice"})
}

fn check(issuer: &Issuer, edit: impl FnOnce(&mut Value)) -> Result<(), JwtError> {
    let mut claims = good_claims();
    edit(&mut claims);
    let keys = jwt::load_file(&issuer.jwks_path);
    jwt::verify(&issuer.token(claims), &issuer.config(), &keys)
}

#[test]
fn jwt_checks_with_real_tokens() {
    let issuer = Issuer::new();
    assert_eq!(check(&issuer, |_| {}), Ok(()));
    assert_eq!(
        check(&issuer, |c| c["scope"] = "orders:read".into()),
        Err(JwtError::MissingScope("orders:write".into()))
    );
    // `scp` as an array is accepted too.
    assert_eq!(
        check(&issuer, |c| {
            c.as_object_mut().unwrap().remove("scope");
            c["scp"] = json!(["orders:write"]);
        }),
        Ok(())
    );
    assert_eq!(
        check(&issuer, |c| c["exp"] = (now() - 120).into()),
        Err(JwtError::Expired)
    );
    // Within the 30 s leeway.
    assert_eq!(check(&issuer, |c| c["exp"] = (now() - 10).into()), Ok(()));
    assert_eq!(
        check(&issuer, |c| c["nbf"] = (now() + 120).into()),
        Err(JwtError::NotYetValid)
    );
    assert_eq!(
        check(&issuer, |c| c["iss"] = "https://evil.example".into()),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        check(&issuer, |c| c["aud"] = "billing".into()),
        Err(JwtError::WrongAudience)
    );
    assert_eq!(
        check(&issuer, |c| c["tenant"] = "other".into()),
        Err(JwtError::ClaimMismatch("tenant".into()))
    );
    // Signed by another key under the same kid.
    let other = Issuer::new();
    let keys = jwt::load_file(&issuer.jwks_path);
    assert_eq!(
        jwt::verify(&other.token(good_claims()), &issuer.config(), &keys),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        jwt::verify("not.a.token", &issuer.config(), &keys),
        Err(JwtError::Malformed)
    );
}

#[test]
fn jwt_rules_in_the_decision() {
    let issuer = Issuer::new();
    let rule = RuleConfig {
        jwt: Some(issuer.config()),
        ..post_orders()
    };
    let source = JwksSource::File(issuer.jwks_path.clone());
    let p = Permissions {
        list: vec![permission("orders", Some("web"), Action::Allow, vec![rule])],
        keys: [(source, Keys::Loaded(jwt::load_file(&issuer.jwks_path)))].into(),
    };
    let with = |token: &str| {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    };
    let good = with(&issuer.token(good_claims()));
    assert_eq!(
        http(&p, &["web"], "POST", "/orders", &good),
        Decision::Allow
    );
    assert_eq!(
        http(&p, &["web"], "GET", "/orders", &good),
        denied(Some("orders"), Reason::NoRuleMatched)
    );
    assert_eq!(
        http(&p, &["web"], "POST", "/orders", &HeaderMap::new()),
        denied(Some("orders"), Reason::Jwt(JwtError::Missing))
    );
    let mut expired = good_claims();
    expired["exp"] = (now() - 120).into();
    assert_eq!(
        http(
            &p,
            &["web"],
            "POST",
            "/orders",
            &with(&issuer.token(expired))
        ),
        denied(Some("orders"), Reason::Jwt(JwtError::Expired))
    );
}

#[test]
fn bearer_parsing() {
    assert_eq!(jwt::bearer(Some("Bearer abc")), Ok("abc"));
    assert_eq!(jwt::bearer(Some("bearer  abc ")), Ok("abc"));
    assert_eq!(jwt::bearer(Some("Basic abc")), Err(JwtError::Missing));
    assert_eq!(jwt::bearer(Some("Bearer")), Err(JwtError::Missing));
    assert_eq!(jwt::bearer(None), Err(JwtError::Missing));
}

#[test]
fn a_missing_jwks_file_refuses_tokens() {
    let keys = jwt::load_file("/nonexistent/jwks.json");
    let issuer = Issuer::new();
    let result = jwt::verify(&issuer.token(good_claims()), &issuer.config(), &keys);
    assert!(matches!(result, Err(JwtError::NoKeys(_))), "{result:?}");
}
