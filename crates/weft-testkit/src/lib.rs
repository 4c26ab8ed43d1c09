//! Test harness for Weft: starts the real `weft` binary as control plane and
//! proxies on loopback ports, runs small test servers (HTTP, TCP, gRPC,
//! WebSocket), and helps tests wait for conditions without fixed sleeps.

pub mod behavior;
pub mod dataplane;
pub mod load;
pub mod mesh;
pub mod netns;
pub mod ports;
pub mod process;
pub mod scenario;
pub mod servers;
pub mod traffic;
pub mod wait;

/// Generated code of the test gRPC service (`proto/echo.proto`).
#[allow(clippy::all, missing_docs)]
pub mod echo {
    tonic::include_proto!("weft.test.v1");
}

pub use dataplane::DataplaneSpec;
pub use mesh::{ControlPlane, Proxy, TestMesh};
pub use ports::free_port;
