//! Data-path tests: real sockets on 127.0.0.1, real hyper and tokio peers,
//! configs built directly instead of coming from a control plane.

pub mod ca;
pub mod control_plane;
pub mod logs;
pub mod support;

mod http1;
mod http2;
mod mtls;
mod pooling;
mod run;
mod run_mtls;
mod tcp;
mod upgrade;
