//! Load clients for what oha cannot do: gRPC unary calls, an opaque TCP
//! stream, connection churn, and holding many idle connections. Each prints
//! one JSON [`crate::load::LoadResult`] (or, for `hold`, a status line).

pub mod churn;
pub mod grpc;
pub mod hold;
pub mod http1;
pub mod stream;

use std::time::Duration;

/// How a run applies load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// A fixed rate (per second), latency from the intended send time.
    Open(f64),
    /// A fixed number of workers sending back to back.
    Closed(usize),
}

impl Load {
    pub fn from_args(rate: Option<f64>, concurrency: usize) -> Self {
        match rate {
            Some(r) => Load::Open(r),
            None => Load::Closed(concurrency),
        }
    }
}

/// Per-operation timeout of the harness's clients.
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `fut` with [`OP_TIMEOUT`], mapping both failures to a message.
pub async fn timed<T, E: std::fmt::Display>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(OP_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: timed out after {OP_TIMEOUT:?}")),
    }
}
