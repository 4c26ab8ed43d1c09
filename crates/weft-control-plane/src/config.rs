//! How the control plane is configured: where the store lives and which
//! addresses it listens on, how proxies authenticate, and the key that
//! protects CA keys at rest; defaults are named constants.

use std::{
    fmt,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

pub use crate::cp_tls::TlsConfig;
pub use crate::identity::{CaKey, DpAuth};

/// Where the REST API (and later the UI) listens by default.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:5681";
/// Where proxies connect for their configuration by default.
pub const DEFAULT_DP_ADDR: &str = "127.0.0.1:5678";
/// How long after start every stored Dataplane counts as online (see
/// [`crate::distributor`] for why).
pub const DEFAULT_STARTUP_GRACE: Duration = Duration::from_secs(10);

/// File name of the SQLite store inside the data directory.
const STORE_FILE: &str = "store.db";

/// Which store backs the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite:PATH`: a SQLite file, created (with its parent directories) if missing.
    Sqlite(PathBuf),
    /// `memory`: an in-memory SQLite database, gone when the process exits.
    Memory,
}

/// A store URL that is neither `sqlite:PATH` nor `memory`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid store {0:?}: expected \"sqlite:PATH\" (a SQLite file) or \"memory\"")]
pub struct StoreUrlError(pub String);

impl FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "memory" {
            return Ok(StoreUrl::Memory);
        }
        match s.strip_prefix("sqlite:") {
            Some(path) if !path.is_empty() => Ok(StoreUrl::Sqlite(PathBuf::from(path))),
            _ => Err(StoreUrlError(s.to_owned())),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Memory => f.write_str("memory"),
        }
    }
}

/// The default SQLite file: `$WEFT_HOME/store.db`, else
/// `$XDG_DATA_HOME/weft/store.db`, else `$HOME/.local/share/weft/store.db`
/// (and `./weft/store.db` when not even `HOME` is set).
pub fn default_store_path() -> PathBuf {
    store_path_from(|name| std::env::var_os(name))
}

/// [`default_store_path`] with the environment passed in, so it can be
/// tested without mutating the process environment.
fn store_path_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    // An empty variable is treated as unset, as the XDG spec asks.
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = var("WEFT_HOME") {
        return home.join(STORE_FILE);
    }
    let data = var("XDG_DATA_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".local").join("share")))
        .unwrap_or_else(|| Path::new(".").to_path_buf());
    data.join("weft").join(STORE_FILE)
}

/// Everything [`crate::run`] needs.
#[derive(Debug, Clone)]
pub struct ControlPlaneConfig {
    pub store: StoreUrl,
    /// REST API listen address.
    pub api_addr: SocketAddr,
    /// gRPC listen address for proxies.
    pub dp_addr: SocketAddr,
    /// See [`DEFAULT_STARTUP_GRACE`].
    pub startup_grace: Duration,
    /// HTTP/2 pings on the proxies' streams: how often, and how long an
    /// answer may take before the stream is dropped and its proxy is
    /// offline (its endpoints leave every balancer). Lower values notice a
    /// vanished host sooner, at the cost of more pings.
    pub dp_keepalive: (Duration, Duration),
    /// The operator's key that encrypts CA private keys and the token
    /// signing key in the store (`--ca-key-file FILE` or `WEFT_CA_KEY`).
    /// Without it, meshes with a builtin CA are refused and the token
    /// signing key is stored in the clear.
    pub ca_key: Option<CaKey>,
    /// Whether proxies must present a dataplane token (`--dp-auth`).
    pub dp_auth: DpAuth,
    /// Where the admin token is written on the first start. `None` leaves
    /// the REST API without authentication (tests of other concerns only).
    pub admin_token_file: Option<PathBuf>,
    /// Which listeners serve TLS, and with which certificate.
    pub tls: TlsConfig,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        let localhost = |port| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        Self {
            store: StoreUrl::Sqlite(default_store_path()),
            // Same values as DEFAULT_API_ADDR / DEFAULT_DP_ADDR (tested below),
            // built directly so that Default cannot fail.
            api_addr: localhost(5681),
            dp_addr: localhost(5678),
            startup_grace: DEFAULT_STARTUP_GRACE,
            dp_keepalive: (
                crate::distributor::KEEPALIVE_INTERVAL,
                crate::distributor::KEEPALIVE_TIMEOUT,
            ),
            ca_key: None,
            dp_auth: DpAuth::Token,
            admin_token_file: Some(weft_api::paths::default_admin_token_path()),
            tls: TlsConfig {
                dp: true,
                ca_file_out: Some(weft_api::paths::default_cp_ca_path()),
                ..TlsConfig::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, ffi::OsString};

    use super::*;

    #[test]
    fn parses_store_urls() {
        assert_eq!("memory".parse(), Ok(StoreUrl::Memory));
        assert_eq!(
            "sqlite:/tmp/x.db".parse(),
            Ok(StoreUrl::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(
            "sqlite:rel/x.db".parse(),
            Ok(StoreUrl::Sqlite("rel/x.db".into()))
        );
        for bad in ["", "sqlite:", "postgres://x", "mem"] {
            let err = bad.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(err.contains("\"sqlite:PATH\""), "{err}");
            assert!(err.contains("\"memory\""), "{err}");
        }
    }

    #[test]
    fn store_url_round_trips_through_display() {
        for s in ["memory", "sqlite:/var/lib/weft/store.db"] {
            assert_eq!(s.parse::<StoreUrl>().unwrap().to_string(), s);
        }
    }

    fn path_with(vars: &[(&str, &str)]) -> PathBuf {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        store_path_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn default_store_path_prefers_weft_home_then_xdg_then_home() {
        let all = [("WEFT_HOME", "/w"), ("XDG_DATA_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(path_with(&all), PathBuf::from("/w/store.db"));
        assert_eq!(path_with(&all[1..]), PathBuf::from("/x/weft/store.db"));
        assert_eq!(
            path_with(&all[2..]),
            PathBuf::from("/h/.local/share/weft/store.db")
        );
        assert_eq!(
            path_with(&[("WEFT_HOME", ""), ("HOME", "/h")]),
            PathBuf::from("/h/.local/share/weft/store.db")
        );
        assert_eq!(path_with(&[]), PathBuf::from("./weft/store.db"));
    }

    #[test]
    fn default_addresses_match_the_constants() {
        let config = ControlPlaneConfig::default();
        assert_eq!(config.api_addr.to_string(), DEFAULT_API_ADDR);
        assert_eq!(config.dp_addr.to_string(), DEFAULT_DP_ADDR);
    }
}
