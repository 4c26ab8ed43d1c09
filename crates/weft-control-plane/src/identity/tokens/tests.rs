//! Tokens against a real (in-memory SQLite) store: signing, every way a
//! token is refused, revocation and rotation, and what survives a reload.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::*;
use crate::store::SqliteStore;

const NOW: u64 = 1_800_000_000;
const HOUR: Duration = Duration::from_secs(3600);

async fn store() -> Arc<dyn Store> {
    Arc::new(SqliteStore::open_memory().await.unwrap())
}

async fn tokens(store: &Arc<dyn Store>, ca_key: Option<&CaKey>) -> Tokens {
    Tokens::load(store.clone(), ca_key.cloned()).await.unwrap()
}

async fn issue(t: &Tokens, services: &[&str]) -> (String, StoredToken) {
    let services = services.iter().map(|s| s.to_string()).collect();
    t.issue("default", services, HOUR, NOW).await.unwrap()
}

#[tokio::test]
async fn a_token_verifies_and_carries_its_claims() {
    let store = store().await;
    let t = tokens(&store, None).await;
    let (token, record) = issue(&t, &["web", "api"]).await;
    assert!(token.starts_with("weft1."));
    assert_eq!(token.split('.').count(), 3);
    let claims = t.verify(&token, NOW + 10).unwrap();
    assert_eq!(claims.mesh, "default");
    assert_eq!(claims.services, ["web", "api"]);
    assert_eq!((claims.iat, claims.exp), (NOW, NOW + 3600));
    assert_eq!(claims.jti.len(), 32, "128 bits in hex");
    assert!(claims.jti.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(Some(claims.kid.clone()), t.active_kid());
    assert_eq!(record.jti, claims.jti);
    // A trailing newline from a token file is fine.
    assert!(t.verify(&format!("{token}\n"), NOW).is_ok());
}

#[tokio::test]
async fn expired_missing_malformed_and_tampered_tokens_are_refused() {
    let store = store().await;
    let t = tokens(&store, None).await;
    let (token, _) = issue(&t, &["web"]).await;
    assert_eq!(t.verify(&token, NOW + 3600), Err(TokenError::Expired));
    assert_eq!(t.verify("", NOW), Err(TokenError::Missing));
    assert!(matches!(
        t.verify("weft1.abc", NOW),
        Err(TokenError::Malformed(_))
    ));

    // Claims changed after signing: more services.
    let parsed = weft_api::token::parse(&token).unwrap();
    let mut claims = parsed.claims.clone();
    claims.services.push("admin".into());
    let forged =
        weft_api::token::assemble(&weft_api::token::signed_part(&claims), &parsed.signature);
    assert_eq!(t.verify(&forged, NOW), Err(TokenError::BadSignature));
    // A different key id that does not exist.
    claims.kid = "0000000000000000".into();
    let unknown = weft_api::token::assemble(&weft_api::token::signed_part(&claims), &[0; 64]);
    assert_eq!(t.verify(&unknown, NOW), Err(TokenError::UnknownKey));
    // A signature of the right length but wrong bytes.
    let mut sig = parsed.signature.clone();
    sig[0] ^= 1;
    let bad = format!("{}.{}", parsed.signed_part, URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(t.verify(&bad, NOW), Err(TokenError::BadSignature));
    assert_eq!(TokenError::Expired.to_string(), "dataplane token: expired");
}

#[tokio::test]
async fn authorize_checks_the_mesh_and_every_service() {
    let store = store().await;
    let t = tokens(&store, None).await;
    let (token, _) = issue(&t, &["web"]).await;
    let claims = t.verify(&token, NOW).unwrap();
    assert_eq!(authorize(&claims, "default", ["web"]), Ok(()));
    assert_eq!(
        authorize(&claims, "default", ["web", "billing"])
            .unwrap_err()
            .to_string(),
        "token for mesh default allows services [web], not billing"
    );
    assert_eq!(
        authorize(&claims, "other", ["web"])
            .unwrap_err()
            .to_string(),
        "token for mesh default cannot be used in mesh other"
    );
}

#[tokio::test]
async fn revocation_is_stored_and_survives_a_reload() {
    let store = store().await;
    let t = tokens(&store, None).await;
    let (revoked, record) = issue(&t, &["web"]).await;
    let (kept, _) = issue(&t, &["web"]).await;
    let done = t.revoke(&record.jti, NOW + 5).await.unwrap().unwrap();
    assert_eq!(done.revoked, Some(NOW + 5));
    assert_eq!(t.verify(&revoked, NOW), Err(TokenError::Revoked));
    assert!(t.verify(&kept, NOW).is_ok());
    // Revoking again keeps the first time; unknown ids are reported.
    let again = t.revoke(&record.jti, NOW + 50).await.unwrap().unwrap();
    assert_eq!(again.revoked, Some(NOW + 5));
    assert_eq!(t.revoke("feedface", NOW).await.unwrap(), None);
    assert_eq!(t.revoked().await.unwrap(), [again]);

    let reloaded = tokens(&store, None).await;
    assert_eq!(reloaded.verify(&revoked, NOW), Err(TokenError::Revoked));
    assert!(reloaded.verify(&kept, NOW).is_ok(), "same signing key");
}

#[tokio::test]
async fn rotation_refuses_every_older_token() {
    let store = store().await;
    let t = tokens(&store, None).await;
    let (old, _) = issue(&t, &["web"]).await;
    let old_kid = t.active_kid().unwrap();
    let (kid, created) = t.rotate(NOW).await.unwrap();
    assert_ne!(kid, old_kid);
    assert_eq!(created, NOW);
    assert_eq!(t.verify(&old, NOW), Err(TokenError::RotatedKey));
    let (new, _) = issue(&t, &["web"]).await;
    assert!(t.verify(&new, NOW).is_ok());

    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys[0].retired.is_some() && keys[0].private_key.is_none(),
        "erased"
    );
    let reloaded = tokens(&store, None).await;
    assert_eq!(reloaded.verify(&old, NOW), Err(TokenError::RotatedKey));
    assert!(reloaded.verify(&new, NOW).is_ok());
}

#[tokio::test]
async fn the_signing_key_is_sealed_when_a_ca_key_is_given() {
    let store = store().await;
    let (ca_key, _) = CaKey::generate().unwrap();
    let t = tokens(&store, Some(&ca_key)).await;
    let (token, _) = issue(&t, &["web"]).await;
    let stored = &store.signing_keys().await.unwrap()[0];
    assert!(stored.sealed);
    assert!(
        !format!("{stored:?}").contains("private_key:"),
        "{stored:?}"
    );

    // Reopened with the same key: the same signing key.
    assert!(
        tokens(&store, Some(&ca_key))
            .await
            .verify(&token, NOW)
            .is_ok()
    );
    // Without any key, or with another: a clear error, not a new key.
    let err = Tokens::load(store.clone(), None).await.unwrap_err();
    assert!(matches!(err, KeyError::NeedCaKey), "{err}");
    assert!(err.to_string().contains("--ca-key-file"), "{err}");
    let other = CaKey::generate().unwrap().0;
    let err = Tokens::load(store.clone(), Some(other)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot decrypt the token signing key: wrong CA key, or the stored value is corrupt"
    );
}

#[tokio::test]
async fn a_plain_signing_key_is_stored_without_a_ca_key() {
    let store = store().await;
    let t = tokens(&store, None).await;
    assert!(!t.sealed());
    let stored = &store.signing_keys().await.unwrap()[0];
    assert!(!stored.sealed);
    // A CA key added later still reads the plain key.
    let (ca_key, _) = CaKey::generate().unwrap();
    let (token, _) = issue(&t, &["web"]).await;
    assert!(
        tokens(&store, Some(&ca_key))
            .await
            .verify(&token, NOW)
            .is_ok()
    );
}
