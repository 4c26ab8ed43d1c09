//! `weft-bench`: the benchmark harness's one binary (backend server, load
//! clients, simulated dataplanes, the suite runner and the report). See
//! `bench/README.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    weft_bench::cli::main()
}
