use std::net::SocketAddr;

use super::*;
use crate::store::sqlite::SqliteStore;

fn config(dir: &Path) -> TlsConfig {
    TlsConfig {
        dp: true,
        ca_file_out: Some(dir.join("cp-ca.pem")),
        ..TlsConfig::default()
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-cp-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn generates_once_then_reuses_and_reissues_for_new_names() {
    let dir = temp_dir("reuse");
    let store = SqliteStore::open_memory().await.unwrap();
    let key = CaKey::generate().unwrap().0;
    let addr: SocketAddr = "10.1.2.3:5678".parse().unwrap();
    let first = prepare(&config(&dir), &[addr], &store, Some(&key))
        .await
        .unwrap();
    let ca = std::fs::read_to_string(dir.join("cp-ca.pem")).unwrap();
    let stored = store.cp_tls().await.unwrap().unwrap();
    assert!(stored.sealed);
    assert_eq!(stored.server_sans, "10.1.2.3,127.0.0.1,::1,localhost");
    assert!(!String::from_utf8_lossy(&stored.server_key).contains("PRIVATE KEY"));

    let again = prepare(&config(&dir), &[addr], &store, Some(&key))
        .await
        .unwrap();
    assert_eq!(
        again.dp.as_ref().unwrap().cert_pem,
        first.dp.as_ref().unwrap().cert_pem
    );

    let mut more = config(&dir);
    more.extra_sans = vec!["cp.example".into()];
    let reissued = prepare(&more, &[addr], &store, Some(&key)).await.unwrap();
    assert_ne!(
        reissued.dp.as_ref().unwrap().cert_pem,
        first.dp.as_ref().unwrap().cert_pem
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("cp-ca.pem")).unwrap(),
        ca,
        "same CA"
    );

    let err = prepare(&config(&dir), &[addr], &store, None)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("--ca-key-file"), "{err:#}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn plaintext_needs_nothing_and_files_are_read() {
    let dir = temp_dir("files");
    let store = SqliteStore::open_memory().await.unwrap();
    let none = prepare(&TlsConfig::default(), &[], &store, None)
        .await
        .unwrap();
    assert!(none.dp.is_none() && none.api.is_none());
    assert!(store.cp_tls().await.unwrap().is_none());

    let files = CertFiles {
        cert: dir.join("missing.pem"),
        key: dir.join("missing.key"),
    };
    let bring_own = TlsConfig {
        dp: true,
        dp_cert: Some(files),
        ..TlsConfig::default()
    };
    let err = prepare(&bring_own, &[], &store, None).await.unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("--dp-tls-cert") && err.contains("missing.pem"),
        "{err}"
    );
}
