//! Access logs: one JSON line per HTTP request and per TCP connection on
//! the edges an AccessLog policy selects, written by one task per target
//! (a file or standard output) behind a bounded queue, so a slow disk
//! costs counted dropped lines, never request latency.

mod line;
pub mod sink;
mod stats;
mod writer;

pub use self::{sink::AccessLogSink, stats::AccessLogStats, writer::LogWriter};

#[cfg(test)]
mod tests;
