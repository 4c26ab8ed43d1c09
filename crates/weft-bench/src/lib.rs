//! The Weft benchmark harness. `bench/run` is the entry point; this crate is
//! everything it runs: the backend server every topology shares, the load
//! clients oha cannot replace (gRPC, raw TCP, connection churn, held
//! connections), simulated dataplanes for control-plane scale, the suite that
//! starts each topology and measures it, and the report.
//!
//! Benchmarks only: nothing here asserts a timing in a test. The unit tests
//! cover the harness's own logic (percentiles, `/proc` parsing, open-loop
//! latency correction, config generation, ratios and targets).

pub mod cli;
pub mod clients;
pub mod cpscale;
pub mod load;
pub mod pacing;
pub mod procfs;
pub mod relay;
pub mod report;
pub mod rest;
pub mod results;
pub mod server;
pub mod sim;
pub mod stats;
pub mod suite;

/// Generated code of the backend's gRPC service (`proto/bench.proto`).
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("weft.bench.v1");
}
