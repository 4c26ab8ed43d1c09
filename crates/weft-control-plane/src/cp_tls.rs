//! The control plane's own TLS: the certificate its data-plane port (and,
//! with `--api-tls`, its REST API) is served with.
//!
//! Operators may bring their own (`--dp-tls-cert/--dp-tls-key`,
//! `--api-tls-cert/--api-tls-key`). Otherwise the first start generates a
//! small "Weft control plane CA" and a server certificate signed by it,
//! keeps both in the store (private keys sealed with the CA key when one is
//! configured, see [`crate::identity::secret`]) and writes the CA
//! certificate to a file proxies and the CLI verify against. Later starts
//! reuse them; the server certificate is re-issued by the same CA when the
//! names it must cover changed or it is about to expire, so proxies keep
//! their CA file.

mod generate;
pub mod listener;

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::Context;
use zeroize::Zeroizing;

pub use self::generate::CA_COMMON_NAME;
use crate::{
    identity::CaKey,
    store::{Store, StoredCpTls},
};

/// A server certificate is re-issued at a start when it expires within this.
const RENEW_BEFORE_SECS: u64 = 30 * 24 * 3600;
/// Bind sealed keys to what they are.
const CA_KEY_AAD: &str = "weft control plane TLS CA";
const SERVER_KEY_AAD: &str = "weft control plane TLS server";

/// How the control plane serves TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// Serve the data-plane port over TLS.
    pub dp: bool,
    /// Serve the REST API over TLS (`--api-tls`).
    pub api: bool,
    /// The operator's certificate for the data-plane port, instead of the generated one.
    pub dp_cert: Option<CertFiles>,
    /// The operator's certificate for the API, instead of the generated one.
    pub api_cert: Option<CertFiles>,
    /// Names the generated certificate covers besides the listen IPs,
    /// 127.0.0.1, ::1 and `localhost` (`--tls-san`).
    pub extra_sans: Vec<String>,
    /// Where the generated CA certificate is written; `None` writes nothing.
    pub ca_file_out: Option<PathBuf>,
}

/// A PEM certificate chain file and its PEM private key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A certificate chain and its private key, PEM, for a server.
#[derive(Clone)]
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCert(<key redacted>)")
    }
}

/// The certificates each listener serves with; `None` serves plaintext.
#[derive(Debug, Default)]
pub struct Prepared {
    pub dp: Option<ServerCert>,
    pub api: Option<ServerCert>,
}

/// Reads or generates the certificates `config` asks for. `addrs` are the
/// bound listener addresses, whose IPs the generated certificate covers.
pub async fn prepare(
    config: &TlsConfig,
    addrs: &[SocketAddr],
    store: &dyn Store,
    ca_key: Option<&CaKey>,
) -> anyhow::Result<Prepared> {
    let needs_generated =
        (config.dp && config.dp_cert.is_none()) || (config.api && config.api_cert.is_none());
    let generated = match needs_generated {
        true => Some(ensure_generated(config, addrs, store, ca_key).await?),
        false => None,
    };
    let pick = |wanted: bool, files: &Option<CertFiles>, flag: &str| match (wanted, files) {
        (false, _) => Ok(None),
        (true, Some(files)) => read_files(files, flag).map(Some),
        (true, None) => Ok(generated.clone()),
    };
    let dp = pick(config.dp, &config.dp_cert, "--dp-tls-cert/--dp-tls-key")?;
    let api = pick(config.api, &config.api_cert, "--api-tls-cert/--api-tls-key")?;
    Ok(Prepared { dp, api })
}

/// The operator's certificate and key files.
fn read_files(files: &CertFiles, flag: &str) -> anyhow::Result<ServerCert> {
    let cert_pem = std::fs::read_to_string(&files.cert)
        .with_context(|| format!("{flag}: cannot read {}", files.cert.display()))?;
    let key_pem = Zeroizing::new(
        std::fs::read_to_string(&files.key)
            .with_context(|| format!("{flag}: cannot read {}", files.key.display()))?,
    );
    anyhow::ensure!(
        cert_pem.contains("-----BEGIN CERTIFICATE-----"),
        "{flag}: {} holds no PEM certificate",
        files.cert.display()
    );
    anyhow::ensure!(
        key_pem.contains("PRIVATE KEY-----"),
        "{flag}: {} holds no PEM private key",
        files.key.display()
    );
    Ok(ServerCert { cert_pem, key_pem })
}

/// The names the generated certificate must cover, sorted, each once.
fn wanted_sans(config: &TlsConfig, addrs: &[SocketAddr]) -> Vec<String> {
    let mut sans: BTreeSet<String> = ["127.0.0.1", "::1", "localhost"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    sans.extend(
        addrs
            .iter()
            .map(SocketAddr::ip)
            .filter(|ip| !ip.is_unspecified())
            .map(|ip| ip.to_string()),
    );
    sans.extend(config.extra_sans.iter().map(|s| s.trim().to_owned()));
    sans.into_iter().filter(|s| !s.is_empty()).collect()
}

/// The stored CA and server certificate, made (or the server certificate
/// re-issued) as needed; writes the CA certificate to `ca_file_out`.
async fn ensure_generated(
    config: &TlsConfig,
    addrs: &[SocketAddr],
    store: &dyn Store,
    ca_key: Option<&CaKey>,
) -> anyhow::Result<ServerCert> {
    let sans = wanted_sans(config, addrs);
    let joined = sans.join(",");
    let now = weft_api::rest::now_unix();
    let stored = match store
        .cp_tls()
        .await
        .context("cannot read the control plane's TLS certificate")?
    {
        Some(stored) => stored,
        None => {
            let ca = generate::ca().context("cannot generate the control plane's CA")?;
            let fresh = issue(&ca.cert_pem, &ca.key_pem, &sans, ca_key, now)?;
            let stored = store
                .put_cp_tls(&fresh, false)
                .await
                .context("cannot store the control plane's TLS certificate")?;
            if stored == fresh {
                tracing::info!(sans = %joined, "generated the control plane's TLS CA and certificate");
                if ca_key.is_none() {
                    tracing::warn!(
                        "no CA key (--ca-key-file or WEFT_CA_KEY): the control plane's TLS \
                         private keys are stored unencrypted"
                    );
                }
            }
            stored
        }
    };
    let stored = if stored.server_sans != joined
        || stored.server_expires < now.saturating_add(RENEW_BEFORE_SECS)
    {
        let ca_key_pem = open(
            &stored,
            &stored.ca_key,
            CA_KEY_AAD,
            "the control plane's TLS CA key",
            ca_key,
        )?;
        let renewed = StoredCpTls {
            created: stored.created,
            ..issue(&stored.ca_cert_pem, &ca_key_pem, &sans, ca_key, now)?
        };
        tracing::info!(sans = %joined, "re-issued the control plane's TLS certificate");
        store
            .put_cp_tls(&renewed, true)
            .await
            .context("cannot store the control plane's TLS certificate")?
    } else {
        stored
    };
    let key_pem = open(
        &stored,
        &stored.server_key,
        SERVER_KEY_AAD,
        "the control plane's TLS key",
        ca_key,
    )?;
    if let Some(path) = &config.ca_file_out {
        write_public(path, &stored.ca_cert_pem)?;
        tracing::info!(file = %path.display(), "wrote the control plane's CA certificate");
    }
    Ok(ServerCert {
        cert_pem: stored.server_cert_pem,
        key_pem,
    })
}

/// A server certificate for `sans` from the CA, with both keys sealed when
/// `ca_key` is given.
fn issue(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    sans: &[String],
    ca_key: Option<&CaKey>,
    now: u64,
) -> anyhow::Result<StoredCpTls> {
    let server = generate::server(ca_cert_pem, ca_key_pem, sans).with_context(|| {
        format!("cannot issue the control plane's TLS certificate for {sans:?}")
    })?;
    let seal = |pem: &str, aad: &str| -> anyhow::Result<Vec<u8>> {
        match ca_key {
            Some(key) => key
                .seal(pem.as_bytes(), aad)
                .map_err(|_| anyhow::anyhow!("cannot encrypt the control plane's TLS key")),
            None => Ok(pem.as_bytes().to_vec()),
        }
    };
    Ok(StoredCpTls {
        ca_cert_pem: ca_cert_pem.to_owned(),
        ca_key: seal(ca_key_pem, CA_KEY_AAD)?,
        server_cert_pem: server.cert_pem,
        server_key: seal(&server.key_pem, SERVER_KEY_AAD)?,
        server_sans: sans.join(","),
        server_expires: server.expires,
        sealed: ca_key.is_some(),
        created: now,
    })
}

/// A stored private key as PEM, opened with `ca_key` when it was sealed.
fn open(
    stored: &StoredCpTls,
    value: &[u8],
    aad: &str,
    what: &str,
    ca_key: Option<&CaKey>,
) -> anyhow::Result<Zeroizing<String>> {
    let bytes = match (stored.sealed, ca_key) {
        (false, _) => Zeroizing::new(value.to_vec()),
        (true, Some(key)) => key.open(value, aad, what)?,
        (true, None) => anyhow::bail!(
            "{what} is encrypted in the store: give the CA key (--ca-key-file or WEFT_CA_KEY)"
        ),
    };
    String::from_utf8(bytes.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| anyhow::anyhow!("{what} in the store is not PEM text"))
}

/// Writes the CA certificate (public), creating parent directories.
fn write_public(path: &Path, pem: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, pem).with_context(|| {
        format!(
            "cannot write the control plane's CA certificate to {}",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests;
