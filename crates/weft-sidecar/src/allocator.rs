//! The memory allocator: jemalloc.
//!
//! A proxy holding thousands of idle connections lives or dies by its
//! allocator. Connections come in bursts: each is a small long-lived task
//! beside large short-lived buffers (hyper's 8 KB+ read and write buffers,
//! freed when the connection goes idle). glibc's malloc interleaves the
//! two, so the small survivors pin most freed pages, and the resident size
//! stays near the burst's peak. jemalloc keeps each size class in runs of
//! its own, so freed buffers free whole pages, and its background thread
//! hands them back to the system after a second.
//!
//! The one exception to the workspace's ban on unsafe code: the option
//! string is a symbol jemalloc reads at start.
#![allow(unsafe_code)]

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: purge on a background thread, return dirty pages
/// after 1 s (default 10 s) and skip the "muzzy" stage.
///
/// And a larger thread cache for small objects, trimmed less often: hyper
/// often cannot reuse a connection's 8 KB read buffer in place (the last
/// message still borrows it when hyper reads again), so each request
/// allocates and frees about two. With jemalloc's defaults (20 cached per
/// size class, trimmed every 64 KB allocated) those went back to the arena
/// and its slabs were made and unmade all the time: 2.4k of a proxy's 32.6k
/// instructions per request, 1k with these (callgrind; bench/README.md).
/// The cache holds at most 128 freed objects per size class in use, about
/// 1 MB for the 8 KB class.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 117] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,\
tcache_nslots_small_min:128,tcache_gc_incr_bytes:8388608\0";
