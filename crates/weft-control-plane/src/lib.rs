//! The Weft control plane: it stores the resources users declare, serves
//! them over a REST API, compiles one `ProxyConfig` per Dataplane and pushes
//! it to that Dataplane's proxy over a gRPC stream. It is also each mesh's
//! certificate authority and the issuer of the tokens proxies present.
//!
//! [`run`] wires the pieces together; the `weft control-plane` subcommand is
//! a thin wrapper around it.

// Tests may unwrap; the library itself may not (see the workspace lints).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admin_token;
pub mod api;
pub mod compiler;
pub mod config;
pub mod cp_tls;
pub mod distributor;
pub mod identity;
mod server;
pub mod sessions;
pub mod store;
pub mod taps;
pub mod telemetry;

pub use config::{
    CaKey, ControlPlaneConfig, DEFAULT_API_ADDR, DEFAULT_DP_ADDR, DEFAULT_STARTUP_GRACE, DpAuth,
    StoreUrl, StoreUrlError, default_store_path,
};
pub use cp_tls::{CertFiles, TlsConfig};
pub use identity::secret::CA_KEY_ENV;
pub use server::run;
