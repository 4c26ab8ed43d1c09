//! `weft-bench suite`: starts the backend once, then each topology in turn,
//! runs every workload through it, measures memory, runs the control-plane
//! scale test, and writes `results.json` (see [`crate::results`]).

pub mod backend;
pub mod haproxy;
pub mod machine;
pub mod measure;
pub mod memory;
pub mod nginx;
pub mod oha;
pub mod paired;
pub mod process;
pub mod run;
pub mod tls;
pub mod topology;
pub mod weft;
pub mod weftcli;
pub mod workloads;

pub use run::{Options, run};
pub use weft::ProxyExe;
