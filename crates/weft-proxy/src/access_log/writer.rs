//! One writer task per target: lines come through a bounded queue and are
//! written buffered, flushed whenever the queue runs empty (so a line is
//! on disk soon after its request, without a write call per line under
//! load).

use std::{path::PathBuf, sync::Arc};

use tokio::{
    fs::OpenOptions,
    io::{AsyncWrite, AsyncWriteExt, BufWriter},
    sync::mpsc::{self, error::TrySendError},
};
use tracing::warn;

use super::AccessLogStats;
use crate::config::LogTarget;

/// Lines waiting to be written; more are dropped and counted.
pub const QUEUE_LINES: usize = 4096;

/// The sending side; dropping every clone ends the task once it wrote
/// what was queued.
#[derive(Debug, Clone)]
pub struct LogWriter {
    queue: mpsc::Sender<String>,
    stats: Arc<AccessLogStats>,
}

impl LogWriter {
    /// Starts the writer task for `target` on the current runtime.
    pub fn spawn(target: &LogTarget, stats: Arc<AccessLogStats>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_LINES);
        tokio::spawn(run(target.clone(), rx, stats.clone()));
        Self { queue, stats }
    }

    /// Queues a line without waiting.
    pub fn push(&self, line: String) {
        if let Err(TrySendError::Full(_) | TrySendError::Closed(_)) = self.queue.try_send(line) {
            self.stats.dropped(1);
        }
    }
}

async fn run(target: LogTarget, mut rx: mpsc::Receiver<String>, stats: Arc<AccessLogStats>) {
    let out: Box<dyn AsyncWrite + Send + Unpin> = match &target {
        LogTarget::Stdout => Box::new(tokio::io::stdout()),
        LogTarget::Path(path) => match open(path).await {
            Ok(file) => Box::new(file),
            Err(e) => {
                warn!(path, error = %e, "cannot open the access log; its lines are dropped");
                while rx.recv().await.is_some() {
                    stats.dropped(1);
                }
                return;
            }
        },
    };
    let mut out = BufWriter::new(out);
    while let Some(line) = rx.recv().await {
        let mut lines = vec![line];
        while let Ok(more) = rx.try_recv() {
            lines.push(more);
        }
        let count = lines.len() as u64;
        match write_all(&mut out, &lines).await {
            Ok(()) => stats.written(count),
            Err(e) => {
                warn!(?target, error = %e, "cannot write the access log");
                stats.dropped(count);
            }
        }
    }
}

async fn open(path: &str) -> std::io::Result<tokio::fs::File> {
    let path = PathBuf::from(path);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

async fn write_all(
    out: &mut BufWriter<Box<dyn AsyncWrite + Send + Unpin>>,
    lines: &[String],
) -> std::io::Result<()> {
    for line in lines {
        out.write_all(line.as_bytes()).await?;
        out.write_all(b"\n").await?;
    }
    out.flush().await
}
