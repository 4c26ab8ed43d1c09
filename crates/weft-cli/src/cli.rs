//! Command-line arguments of every `weft` subcommand.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

/// Where CLI verbs find the control plane's API when neither `--cp` nor `WEFT_CP` is given.
pub const DEFAULT_CP_URL: &str = "http://127.0.0.1:5681";

#[derive(Debug, Parser)]
#[command(
    name = "weft",
    version,
    about = "Weft service mesh: control plane, proxy and CLI"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the biggest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane: store, REST API and config distribution to proxies.
    ControlPlane(ControlPlaneArgs),
    /// Run a proxy beside one workload (the same as the `weft-proxy` executable).
    Proxy(weft_sidecar::ProxyArgs),
    /// Create or update resources from a YAML or JSON file.
    Apply(ApplyArgs),
    /// List or show resources.
    Get(GetArgs),
    /// Delete a resource.
    Delete(DeleteArgs),
    /// Show what the control plane knows about a running proxy.
    Inspect(InspectArgs),
    /// Success rate, requests per second and latency per service and per edge.
    Stat(StatArgs),
    /// Issue and revoke dataplane tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Watch the requests passing a proxy, live.
    #[command(subcommand)]
    Tap(crate::commands::tap::TapCommand),
    /// Start a control plane, three demo services and their proxies on this host.
    Demo(DemoArgs),
    /// A small HTTP service used by `weft demo` (and handy for trying the mesh).
    DemoApp(DemoAppArgs),
    /// Set up this host for the mesh.
    #[command(subcommand)]
    Install(crate::commands::transparent_proxy::InstallCommand),
    /// Undo what `weft install` set up.
    #[command(subcommand)]
    Uninstall(crate::commands::transparent_proxy::UninstallCommand),
    /// Diagnose the mesh: control plane, store, CAs, dataplanes, certificates, clocks
    /// (`weft check transparent-proxy`: this host's rules).
    Check(crate::commands::check::CheckArgs),
}

impl Command {
    /// How many runtime worker threads this command asks for; `None` leaves
    /// the choice to the runtime (one per usable CPU).
    pub fn workers(&self) -> Option<usize> {
        match self {
            Command::Proxy(args) => Some(args.workers()),
            _ => None,
        }
    }

    /// Long-running servers log at info level by default.
    pub fn is_server(&self) -> bool {
        matches!(
            self,
            Command::ControlPlane(_) | Command::Proxy(_) | Command::Demo(_) | Command::DemoApp(_)
        )
    }
}

/// How CLI verbs reach the control plane.
#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// Control-plane API URL.
    #[arg(long = "cp", env = "WEFT_CP", default_value = DEFAULT_CP_URL, global = true)]
    pub url: String,
    /// File with the API admin token, used when `WEFT_TOKEN` is not set
    /// [default: the file the control plane writes, e.g. ~/.config/weft/admin-token].
    #[arg(long, env = "WEFT_ADMIN_TOKEN_FILE", global = true)]
    pub admin_token_file: Option<PathBuf>,
    /// The CA certificate an https control plane is verified against
    /// [default: the file the control plane writes, e.g. ~/.config/weft/cp-ca.pem].
    #[arg(long, env = "WEFT_CP_CA_FILE", global = true)]
    pub cp_ca_file: Option<PathBuf>,
}

impl CpArgs {
    /// A client carrying the admin token from `WEFT_TOKEN` or the token file.
    pub fn client(&self) -> anyhow::Result<crate::client::ApiClient> {
        let token = match std::env::var("WEFT_TOKEN") {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
            _ => {
                let path = self
                    .admin_token_file
                    .clone()
                    .unwrap_or_else(weft_api::paths::default_admin_token_path);
                match std::fs::read_to_string(&path) {
                    Ok(t) => Some(t.trim().to_owned()),
                    // A missing default file is fine until the API says 401.
                    Err(_) if self.admin_token_file.is_none() => None,
                    Err(e) => {
                        anyhow::bail!("cannot read the admin token file {}: {e}", path.display())
                    }
                }
            }
        };
        let ca = self.cp_ca_pem()?;
        crate::client::ApiClient::new(&self.url, token, ca.as_deref())
    }

    /// For an https URL, the CA certificate from `--cp-ca-file`, else from
    /// the default file when it exists.
    fn cp_ca_pem(&self) -> anyhow::Result<Option<String>> {
        if !self.url.starts_with("https://") {
            return Ok(None);
        }
        match &self.cp_ca_file {
            Some(path) => std::fs::read_to_string(path)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("--cp-ca-file: cannot read {}: {e}", path.display())),
            None => Ok(std::fs::read_to_string(weft_api::paths::default_cp_ca_path()).ok()),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ControlPlaneArgs {
    /// `sqlite:PATH` or `memory` [default: sqlite:$XDG_DATA_HOME/weft/store.db]
    #[arg(long, env = "WEFT_STORE")]
    pub store: Option<String>,
    /// Address of the REST API.
    #[arg(long, default_value = weft_control_plane::DEFAULT_API_ADDR)]
    pub api_addr: SocketAddr,
    /// Address of the data-plane stream proxies connect to.
    #[arg(long, default_value = weft_control_plane::DEFAULT_DP_ADDR)]
    pub dp_addr: SocketAddr,
    /// After a restart, how long stored dataplanes count as online while their proxies reconnect.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub startup_grace: Duration,
    /// How often proxies' streams are pinged; a proxy that does not answer
    /// within --dp-keepalive-timeout is offline and leaves every balancer.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub dp_keepalive_interval: Duration,
    /// See --dp-keepalive-interval.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub dp_keepalive_timeout: Duration,
    /// File with the base64 32-byte key that encrypts CA private keys at rest
    /// (or set `WEFT_CA_KEY` to the same text). Make one with
    /// `head -c 32 /dev/urandom | base64`. Needed for meshes with a builtin CA.
    #[arg(long)]
    pub ca_key_file: Option<PathBuf>,
    /// How proxies authenticate: `token` (dataplane tokens) or `none` (local experiments only).
    #[arg(long, default_value = "token")]
    pub dp_auth: String,
    /// Where the API admin token is written on the first start
    /// [default: $WEFT_HOME/admin-token, else ~/.config/weft/admin-token].
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// Serve the REST API over HTTPS (with the generated certificate unless
    /// `--api-tls-cert/--api-tls-key` are given).
    #[arg(long)]
    pub api_tls: bool,
    /// PEM certificate (chain) for the API, instead of the generated one.
    #[arg(long, requires_all = ["api_tls_key", "api_tls"])]
    pub api_tls_cert: Option<PathBuf>,
    /// PEM private key of `--api-tls-cert`.
    #[arg(long, requires = "api_tls_cert")]
    pub api_tls_key: Option<PathBuf>,
    /// Serve the data-plane stream in plaintext: proxies cannot verify the
    /// control plane (tests of other concerns only; proxies then need
    /// `--insecure-plaintext-cp`).
    #[arg(long, conflicts_with_all = ["dp_tls_cert", "dp_tls_key"])]
    pub insecure_plaintext_dp: bool,
    /// PEM certificate (chain) for the data-plane port, instead of the generated one.
    #[arg(long, requires = "dp_tls_key")]
    pub dp_tls_cert: Option<PathBuf>,
    /// PEM private key of `--dp-tls-cert`.
    #[arg(long, requires = "dp_tls_cert")]
    pub dp_tls_key: Option<PathBuf>,
    /// Another name (DNS name or IP) the generated certificate covers; repeat for several.
    #[arg(long = "tls-san")]
    pub tls_sans: Vec<String>,
    /// Where the generated CA certificate is written, for proxies and the CLI
    /// [default: $WEFT_HOME/cp-ca.pem, else ~/.config/weft/cp-ca.pem].
    #[arg(long)]
    pub cp_ca_file_out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// File to read; `-` reads standard input.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    #[command(flatten)]
    pub cp: CpArgs,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Yaml,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// `meshes` or `dataplanes`.
    pub kind: String,
    /// One resource's name; all when omitted.
    pub name: Option<String>,
    /// Mesh of the resources [default: every mesh when listing, `default` for one resource].
    #[arg(short, long)]
    pub mesh: Option<String>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub cp: CpArgs,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// `mesh` or `dataplane`.
    pub kind: String,
    pub name: String,
    #[arg(short, long, default_value = "default")]
    pub mesh: String,
    #[command(flatten)]
    pub cp: CpArgs,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// `dataplane`.
    pub kind: String,
    pub name: String,
    #[arg(short, long, default_value = "default")]
    pub mesh: String,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub cp: CpArgs,
}

#[derive(Debug, clap::Args)]
pub struct StatArgs {
    /// Only this service and the edges to and from it.
    pub service: Option<String>,
    #[arg(short, long, default_value = "default")]
    pub mesh: String,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub cp: CpArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a signed token that lets a proxy register as the given services.
    Dataplane(TokenDataplaneArgs),
    /// Revoke one token (by its id, or the token itself): proxies using it are refused.
    Revoke(TokenRevokeArgs),
    /// Replace the signing key: every token issued so far stops working.
    RotateSigningKey(CpOnlyArgs),
}

#[derive(Debug, clap::Args)]
pub struct TokenDataplaneArgs {
    #[arg(long, default_value = "default")]
    pub mesh: String,
    /// A service the proxy may serve; repeat for several.
    #[arg(long = "service", required = true)]
    pub services: Vec<String>,
    /// How long the token is valid, e.g. `24h`, `30d`.
    #[arg(long, default_value = "24h")]
    pub valid_for: String,
    #[command(flatten)]
    pub cp: CpArgs,
}

#[derive(Debug, clap::Args)]
pub struct TokenRevokeArgs {
    /// The token's id (`jti`) or the token itself.
    pub token: String,
    #[command(flatten)]
    pub cp: CpArgs,
}

#[derive(Debug, clap::Args)]
pub struct CpOnlyArgs {
    #[command(flatten)]
    pub cp: CpArgs,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Stop after driving the first traffic instead of waiting for Ctrl-C (for scripts and tests).
    #[arg(long)]
    pub exit_after_traffic: bool,
}

#[derive(Debug, clap::Args)]
pub struct DemoAppArgs {
    /// The service name this app reports.
    #[arg(long)]
    pub name: String,
    /// Port to listen on.
    #[arg(long)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: std::net::IpAddr,
    /// A URL this app calls for every request it serves (its downstream).
    #[arg(long)]
    pub call: Option<String>,
}
