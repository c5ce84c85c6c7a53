//! Allocator settings for the gateway process (mimalloc, `main.rs`).
//!
//! mimalloc returns pages that have been free for a while to the operating
//! system (`madvise`), one second after they were freed by default. A
//! gateway frees most of its memory whenever traffic pauses: each
//! connection's state and buffers go when its client leaves. When traffic
//! resumes after a pause of more than a second, the new connections' memory
//! has to be faulted back in, page by page. On the 2-core VM of
//! `docs/benchmarks.md` that was ~345 page faults for 32 new connections
//! after a 5 s pause, and a 10-25 ms stall: the p99.9 of the first second of
//! load rose from ~5 ms to ~15-24 ms, where nginx's did not move.
//!
//! rampart keeps freed pages for ten seconds instead (jemalloc's default
//! decay time), so short lulls cost nothing and memory from a spike still
//! goes back to the system soon after. `MIMALLOC_PURGE_DELAY` (milliseconds;
//! `-1` never returns memory) overrides it: mimalloc reads its environment
//! first, and an option set there is left alone.

use std::os::raw::c_long;

use libmimalloc_sys::{mi_option_get, mi_option_set_default, mi_option_t};

/// `mi_option_purge_delay` in mimalloc v3's `mimalloc.h` (the Rust bindings
/// name only the stable options). The test below pins the index to the
/// option's built-in default, so a mimalloc upgrade that moves it fails.
const PURGE_DELAY: mi_option_t = 15;

/// How long freed pages stay with the process, in milliseconds.
pub const PURGE_DELAY_MS: c_long = 10_000;

/// Applies rampart's allocator defaults; call once, early in `main`.
pub fn tune() {
    // SAFETY: plain setters and getters on mimalloc's option table, called
    // from the main thread before any other thread exists (mimalloc notes
    // that the option functions are not thread-safe).
    unsafe { mi_option_set_default(PURGE_DELAY, PURGE_DELAY_MS) };
}

/// The purge delay mimalloc uses now, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: a read of mimalloc's option table (see `tune`).
    unsafe { mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: both steps read the same process-wide option.
    #[test]
    fn keeps_freed_pages_ten_seconds_unless_the_environment_says_otherwise() {
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            Err(_) => {
                // mimalloc v3's built-in purge delay: proves the index.
                assert_eq!(purge_delay_ms(), 1000);
                tune();
                assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
            }
            Ok(v) => {
                let wanted: c_long = v.trim().parse().expect("a number of milliseconds");
                tune();
                assert_eq!(purge_delay_ms(), wanted, "the environment wins");
            }
        }
    }
}
