//! The process allocator's settings. The `hearth` binary's global allocator is mimalloc
//! (see `main.rs`); these are mimalloc options and the process's transparent huge pages
//! setting, set from the code so that a server gets them without an environment to set
//! up. An operator's `MIMALLOC_*` variable still wins.

use std::ffi::{c_int, c_long, c_ulong};

// The crate that builds and links mimalloc (the symbols below are its).
use mimalloc as _;

unsafe extern "C" {
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

// Linux's `prctl(2)` (variadic; its further arguments are `unsigned long`s).
#[cfg(target_os = "linux")]
unsafe extern "C" {
    fn prctl(option: c_int, ...) -> c_int;
}

/// The zero of `prctl`'s unused arguments, and its "on".
#[cfg(target_os = "linux")]
const OFF: c_ulong = 0;
#[cfg(target_os = "linux")]
const ON: c_ulong = 1;
#[cfg(target_os = "linux")]
const PR_SET_THP_DISABLE: c_int = 41;
#[cfg(all(test, target_os = "linux"))]
const PR_GET_THP_DISABLE: c_int = 42;

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
///
/// Turns transparent huge pages off for the process ([`no_huge_pages`]), unless
/// `MIMALLOC_ALLOW_THP` is set. Called first thing in `main` and again when a server
/// starts (the bench and the tests start servers without `main`); calling it again
/// changes nothing.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mimalloc's option setter, which takes any option index and value.
        unsafe { mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        no_huge_pages();
    }
}

/// Asks Linux not to back this process's memory with transparent huge pages
/// (`PR_SET_THP_DISABLE`; kept by its children). mimalloc asks for huge pages for its
/// arenas (`MADV_HUGEPAGE`), and a 2 MiB page stays resident while any block on it
/// lives: in a Bulk Data export of 100,000 patients on SQLite the heap was resident at
/// about twice what it held (112 MiB, 108 MiB of it in huge pages, for some 44 MiB
/// allocated), and the export's peak RSS growth went from 80–107 MiB with huge pages to
/// 84–91 MiB without them, its peak RSS down by 27–51 MiB (docs/benchmarks.md). Memory
/// already in huge pages stays so until it is freed; that is why `main` calls this
/// before anything else.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes one integer (the other arguments zero) and only
    // sets a flag of the calling process; a kernel without it answers an error, which
    // leaves the process as it was.
    let _ = unsafe { prctl(PR_SET_THP_DISABLE, ON, OFF, OFF, OFF) };
}

/// Whether transparent huge pages are off for this process (`PR_GET_THP_DISABLE`), for
/// the test below.
#[cfg(all(test, target_os = "linux"))]
fn huge_pages_disabled() -> bool {
    // SAFETY: PR_GET_THP_DISABLE only reads a flag of the calling process (the other
    // arguments zero).
    unsafe { prctl(PR_GET_THP_DISABLE, OFF, OFF, OFF, OFF) == 1 }
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

    #[cfg(target_os = "linux")]
    #[test]
    fn transparent_huge_pages_are_off_once_tuned() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            tune();
            assert!(huge_pages_disabled());
        }
    }
}
