//! The proxy process: its arguments, runtime, allocator, logging and stop
//! signal. Two executables run it: `weft proxy` (the all-in-one `weft`
//! binary) and `weft-proxy`, which links nothing but the proxy.
//!
//! The separate executable exists for the footprint. A sidecar runs beside
//! every workload, and most of a proxy's idle resident memory is the
//! executable's own code pages: the kernel maps them in 64 KB windows
//! around each instruction run, so code the proxy never calls (the control
//! plane, its SQLite store, the CLI) still costs resident memory when it
//! sits beside code that does run.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod allocator;
mod args;
mod run;
pub mod shutdown;

pub use args::{DEFAULT_CP_DP_URL, ProxyArgs};
pub use run::run;

/// One worker means a current-thread runtime: every task, timer and socket
/// is driven by the thread that runs `main`, so waking a task never crosses
/// threads. More workers take the work-stealing runtime; `None` leaves the
/// count to tokio (one per CPU).
fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
}

/// Runs `main` to completion on a [`runtime`] of `workers` threads; an
/// error (or a runtime that cannot start) is printed and exits 1.
pub fn block_on(
    workers: Option<usize>,
    main: impl std::future::Future<Output = anyhow::Result<()>>,
) -> std::process::ExitCode {
    let runtime = match runtime(workers) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to standard error, filtered by `RUST_LOG`, else at `default_level`.
pub fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
