//! JWT checks for HTTP rules: `Authorization: Bearer <token>`, RS256 or
//! ES256, the key picked by `kid` from the issuer's JWKS, `exp`/`nbf` with
//! [`LEEWAY_SECS`] of leeway, `iss`, and optionally `aud`, scopes and
//! exact claims.

use std::sync::Arc;

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    errors::ErrorKind,
    jwk::{Jwk, JwkSet},
};
use serde_json::{Map, Value};

use super::config::JwtConfig;

/// Clock skew tolerated between the issuer and this proxy.
pub const LEEWAY_SECS: u64 = 30;

/// Why a token was refused; the text goes into the 403 body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("missing token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm {0} (RS256 or ES256)")]
    Algorithm(String),
    #[error("no keys for the issuer ({0})")]
    NoKeys(String),
    #[error("keys for the issuer are not available yet ({0})")]
    KeysNotYet(String),
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("missing claim {0}")]
    MissingClaim(String),
    #[error("missing scope {0}")]
    MissingScope(String),
    #[error("claim {0} does not match")]
    ClaimMismatch(String),
    #[error("invalid token")]
    Invalid,
}

/// A JWKS as loaded: the keys, or why there are none.
pub type LoadedKeys = Result<Arc<JwkSet>, JwtError>;

/// Reads and parses a JWKS file.
pub fn load_file(path: &str) -> LoadedKeys {
    let text = std::fs::read_to_string(path)
        .map_err(|e| JwtError::NoKeys(format!("cannot read {path}: {e}")))?;
    serde_json::from_str::<JwkSet>(&text)
        .map(Arc::new)
        .map_err(|e| JwtError::NoKeys(format!("{path} is not a JWKS: {e}")))
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(authorization: Option<&str>) -> Result<&str, JwtError> {
    let value = authorization.ok_or(JwtError::Missing)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(JwtError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(JwtError::Missing);
    }
    Ok(token.trim())
}

/// Checks `token` against `config` with `keys`.
pub fn verify(token: &str, config: &JwtConfig, keys: &LoadedKeys) -> Result<(), JwtError> {
    let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(JwtError::Algorithm(format!("{:?}", header.alg)));
    }
    let keys = keys.as_ref().map_err(Clone::clone)?;
    let jwk = pick_key(keys, header.kid.as_deref()).ok_or(JwtError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| JwtError::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_issuer(&[&config.issuer]);
    if config.audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&config.audiences);
    }
    let claims = decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
            ErrorKind::InvalidAudience => JwtError::WrongAudience,
            ErrorKind::InvalidSignature => JwtError::BadSignature,
            ErrorKind::MissingRequiredClaim(c) => JwtError::MissingClaim(c.clone()),
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) => {
                JwtError::Malformed
            }
            _ => JwtError::Invalid,
        })?
        .claims;
    let granted = scopes(&claims);
    if let Some(missing) = config
        .scopes
        .iter()
        .find(|s| !granted.contains(&s.as_str()))
    {
        return Err(JwtError::MissingScope(missing.clone()));
    }
    for (name, expected) in &config.claims {
        if claims.get(name).and_then(Value::as_str) != Some(expected.as_str()) {
            return Err(JwtError::ClaimMismatch(name.clone()));
        }
    }
    Ok(())
}

/// The key named by `kid`; without a `kid`, the only key of the set.
fn pick_key<'a>(keys: &'a JwkSet, kid: Option<&str>) -> Option<&'a Jwk> {
    match kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
}

/// Scopes from `scope` (space separated, OAuth 2) or `scp` (an array).
fn scopes(claims: &Map<String, Value>) -> Vec<&str> {
    let mut granted: Vec<&str> = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    if let Some(Value::Array(scp)) = claims.get("scp") {
        granted.extend(scp.iter().filter_map(Value::as_str));
    }
    granted
}
