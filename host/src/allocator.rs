//! The process allocator's settings. The `hearth` binary's global allocator is mimalloc
//! (see `main.rs`); these are mimalloc options, set from the code so that a server gets
//! them without an environment to set up. An operator's `MIMALLOC_*` variable still wins.

use std::ffi::{c_int, c_long};

// The crate that builds and links mimalloc (the symbols below are its).
use mimalloc as _;

unsafe extern "C" {
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// `mi_option_purge_delay` in the mimalloc 3 that `libmimalloc-sys` 0.1.49 builds (its
/// `mimalloc.h`); the unit test below fails if another version moves it.
const PURGE_DELAY: c_int = 15;

/// How long, in milliseconds, memory the process freed stays committed before it goes
/// back to the system.
const PURGE_DELAY_MS: c_long = 100;

/// Sets the purge delay to [`PURGE_DELAY_MS`] instead of mimalloc's 1 s, unless
/// `MIMALLOC_PURGE_DELAY` is set. A Bulk Data export frees a page's buffers (a few MiB
/// each, the plugin's rows and its answer) dozens of times a second; held for a whole
/// second they made the server's resident memory jump by tens of MiB between pages
/// (docs/benchmarks.md).
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mimalloc's option setter, which takes any option index and value.
    unsafe { mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
}

/// The purge delay in force, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: mimalloc's option getter, which takes any option index.
    unsafe { mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_the_option_set() {
        // mimalloc 3's default (the neighbouring options' defaults are 0 and 1), or ours
        // when a test in this process tuned it already.
        let before = purge_delay_ms();
        assert!(
            before == 1000 || before == 100,
            "option {PURGE_DELAY} is {before}"
        );
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            tune();
            assert_eq!(purge_delay_ms(), 100);
        }
    }
}
