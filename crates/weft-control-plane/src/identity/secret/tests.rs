//! The CA key: parsing, redaction, and AES-256-GCM sealing.

use super::*;

fn key() -> CaKey {
    CaKey::generate().unwrap().0
}

#[test]
fn sealing_round_trips_and_hides_the_plaintext() {
    let key = key();
    let secret = b"-----BEGIN PRIVATE KEY----- not really";
    let sealed = key.seal(secret, "default").unwrap();
    assert_eq!(sealed[0], 1, "format byte");
    assert_eq!(sealed.len(), 1 + 12 + secret.len() + 16);
    assert!(!sealed.windows(10).any(|w| w == &secret[..10]));
    let opened = key.open(&sealed, "default", "the CA key").unwrap();
    assert_eq!(opened.as_slice(), secret);
    // A fresh nonce every time.
    assert_ne!(key.seal(secret, "default").unwrap(), sealed);
}

#[test]
fn the_wrong_key_aad_or_bytes_do_not_open() {
    let key = key();
    let sealed = key.seal(b"secret", "mesh-a").unwrap();
    let other = CaKey::generate().unwrap().0;
    let err = other
        .open(&sealed, "mesh-a", "the CA key of mesh \"mesh-a\"")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot decrypt the CA key of mesh \"mesh-a\": wrong CA key, or the stored value is corrupt"
    );
    assert!(key.open(&sealed, "mesh-b", "x").is_err(), "other aad");
    let mut flipped = sealed.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert!(key.open(&flipped, "mesh-a", "x").is_err(), "tampered");
    assert!(key.open(&sealed[..10], "mesh-a", "x").is_err(), "truncated");
    assert!(key.open(&[], "mesh-a", "x").is_err(), "empty");
    let mut other_version = sealed;
    other_version[0] = 2;
    assert!(key.open(&other_version, "mesh-a", "x").is_err(), "version");
}

#[test]
fn parses_base64_text_and_files() {
    let (key, text) = CaKey::generate().unwrap();
    let sealed = key.seal(b"x", "m").unwrap();
    let again = CaKey::from_base64(&format!("  {}\n", text.as_str())).unwrap();
    assert_eq!(again.open(&sealed, "m", "x").unwrap().as_slice(), b"x");

    let dir = crate::store::tests::TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("ca.key");
    std::fs::write(&file, format!("{}\n", text.as_str())).unwrap();
    let from_file = CaKey::from_file(&file).unwrap();
    assert_eq!(from_file.open(&sealed, "m", "x").unwrap().as_slice(), b"x");

    let missing = CaKey::from_file(&dir.0.join("nope"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.starts_with("cannot read the CA key file "),
        "{missing}"
    );
    assert!(missing.contains("nope"), "{missing}");
    assert!(matches!(
        CaKey::from_base64("not base64!"),
        Err(CaKeyError::NotBase64)
    ));
    assert_eq!(
        CaKey::from_base64("c2hvcnQ=").unwrap_err().to_string(),
        "the CA key is 5 bytes; it must be 32 (base64 of 32 random bytes)"
    );
}

#[test]
fn debug_never_shows_the_key() {
    let (key, text) = CaKey::generate().unwrap();
    let shown = format!("{key:?} {:?}", Some(key.clone()));
    assert_eq!(shown, "CaKey(<redacted>) Some(CaKey(<redacted>))");
    assert!(!shown.contains(text.as_str()));
}
