//! Giving freed heap memory back to the operating system.
//!
//! glibc's allocator keeps the pages of freed small allocations in its
//! heap. A burst of busy HTTP/1.1 connections (each holding hyper's read
//! and write buffers, 16 KB or more) therefore leaves the proxy's resident
//! memory at its high-water mark long after those connections went idle
//! and gave their buffers back (`http::server::http1` parks them). So each
//! parked connection is noted here, and a background task asks glibc to
//! release free pages (`malloc_trim`) when enough were noted, at most once
//! per [`INTERVAL`], on a blocking thread.
//!
//! The workspace denies unsafe code; the one FFI call here is the exception
//! (like `redirect::original_dst`): `malloc_trim` takes a plain integer and
//! only touches the allocator's own state.
#![allow(unsafe_code)]

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

/// How often the task looks at what was freed.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Parked connections since the last trim that make one worth it: each
/// frees at least 16 KB, so this is about 4 MB.
const PARKS_WORTH_A_TRIM: usize = 256;

static PARKED_SINCE_TRIM: AtomicUsize = AtomicUsize::new(0);

/// Called when an idle connection has given its buffers back.
pub fn note_parked() {
    PARKED_SINCE_TRIM.fetch_add(1, Ordering::Relaxed);
}

/// Trims whenever enough was freed; runs for the life of the proxy.
pub async fn run() {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if PARKED_SINCE_TRIM.load(Ordering::Relaxed) < PARKS_WORTH_A_TRIM {
            continue;
        }
        PARKED_SINCE_TRIM.store(0, Ordering::Relaxed);
        // Walking the heap takes a few milliseconds with many connections:
        // not on a runtime worker.
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: `malloc_trim` has no preconditions; 0 keeps no extra pad at
    // the top of the heap.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
