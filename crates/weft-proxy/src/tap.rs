//! Tapping: a live copy of the requests passing this proxy, for `weft tap`.
//!
//! The control plane asks for taps over a `Tap` stream the proxy opens
//! beside its config stream (`client`); each tap has a filter (path prefix,
//! method) and gets the matching requests as they finish. The [`TapHub`]
//! holds the running taps and is fed every finished request (`sink`): with
//! no tap running, that costs one atomic load per request; with taps, a
//! matching request is queued without waiting — a full queue drops it and
//! counts the drop, which the stream reports — so a slow reader never slows
//! traffic. At most [`MAX_TAPS`] run at once.

mod client;
mod filter;
mod hub;
mod sink;

pub use client::{TapIdentity, run_session};
pub use filter::TapFilter;
#[cfg(test)]
pub use hub::MAX_TAPS;
pub use hub::TapHub;

#[cfg(test)]
mod tests;
