//! The dataplane token format, shared by the control plane (which signs and
//! verifies tokens) and the CLI (which reads a token's id to revoke it).
//!
//! `weft1.<base64url(JSON claims)>.<base64url(Ed25519 signature)>`, both
//! parts unpadded; the signature covers `weft1.<claims>`, so the version
//! prefix cannot be swapped. Parsing here checks the shape only: whoever
//! trusts a token must verify its signature with the control plane's key.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// First part of every token: the format version.
pub const PREFIX: &str = "weft1";

/// What a token grants: register Dataplanes of `mesh` whose inbounds serve
/// only `services`, between `iat` and `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub mesh: String,
    pub services: Vec<String>,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Expires at, unix seconds.
    pub exp: u64,
    /// The token's id (128 random bits in hex): what revocation names.
    pub jti: String,
    /// Id of the signing key.
    pub kid: String,
}

/// A token split into its parts, its signature not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedToken {
    pub claims: Claims,
    /// `weft1.<claims>`: the bytes the signature covers.
    pub signed_part: String,
    pub signature: Vec<u8>,
}

/// Why a string is not a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("not a weft token (expected weft1.<claims>.<signature>)")]
    Shape,
    #[error("the claims are not base64url")]
    ClaimsEncoding,
    #[error("the claims are not valid: {0}")]
    Claims(String),
    #[error("the signature is not base64url")]
    SignatureEncoding,
}

/// `weft1.<claims>`: what the signer signs.
pub fn signed_part(claims: &Claims) -> String {
    // Serializing a struct of strings and numbers cannot fail.
    let json = serde_json::to_vec(claims).unwrap_or_default();
    format!("{PREFIX}.{}", URL_SAFE_NO_PAD.encode(json))
}

/// Appends the signature of [`signed_part`] to make the token.
pub fn assemble(signed_part: &str, signature: &[u8]) -> String {
    format!("{signed_part}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Splits a token and decodes its claims; surrounding whitespace (a
/// trailing newline from a token file) is ignored.
pub fn parse(token: &str) -> Result<UnverifiedToken, TokenFormatError> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(PREFIX), Some(claims_part), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenFormatError::Shape);
    };
    let json = URL_SAFE_NO_PAD
        .decode(claims_part)
        .map_err(|_| TokenFormatError::ClaimsEncoding)?;
    let claims: Claims =
        serde_json::from_slice(&json).map_err(|e| TokenFormatError::Claims(e.to_string()))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenFormatError::SignatureEncoding)?;
    Ok(UnverifiedToken {
        signed_part: format!("{PREFIX}.{claims_part}"),
        claims,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            mesh: "default".into(),
            services: vec!["web".into()],
            iat: 1,
            exp: 2,
            jti: "00ff".into(),
            kid: "k1".into(),
        }
    }

    #[test]
    fn round_trips() {
        let signed = signed_part(&claims());
        let token = assemble(&signed, b"sig");
        assert!(token.starts_with("weft1."));
        let parsed = parse(&format!("{token}\n")).unwrap();
        assert_eq!(parsed.claims, claims());
        assert_eq!(parsed.signed_part, signed);
        assert_eq!(parsed.signature, b"sig");
    }

    #[test]
    fn rejects_what_is_not_a_token() {
        let signed = signed_part(&claims());
        for (bad, want) in [
            ("", TokenFormatError::Shape),
            ("weft2.a.b", TokenFormatError::Shape),
            (&format!("{signed}.c2ln.extra"), TokenFormatError::Shape),
            ("weft1.!!.c2ln", TokenFormatError::ClaimsEncoding),
            (&format!("{signed}.!!"), TokenFormatError::SignatureEncoding),
        ] {
            assert_eq!(parse(bad), Err(want), "{bad}");
        }
        let not_claims = format!("weft1.{}.c2ln", URL_SAFE_NO_PAD.encode("{\"mesh\":1}"));
        assert!(matches!(
            parse(&not_claims),
            Err(TokenFormatError::Claims(_))
        ));
    }
}
