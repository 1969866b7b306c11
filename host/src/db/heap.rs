//! SQLite's heap, counted by this process without a lock.
//!
//! SQLite counts its own heap (`sqlite3_memory_used`) under one process-wide mutex that it
//! takes on every allocation and free; the plugin SQL guard (the progress handler in
//! [`super::sqlite`]) read that counter every ten virtual-machine steps, under the same
//! mutex. In the Bulk Data export benchmark the mutex was about a tenth of the CPU, and two
//! threads running SQLite contended on it. [`install`] gives SQLite allocation functions
//! of ours instead, which count the bytes in an atomic, and turns SQLite's own counting
//! off: the guard reads [`used`] with one load.
//!
//! SQLite takes allocation functions only before it is first used in the process, so
//! [`install`] runs before every way this crate opens SQLite (it does nothing after the
//! first call). When SQLite was already in use (another crate opened it first), SQLite
//! keeps its own allocator and [`used`] reads SQLite's counter as before.

use std::alloc::Layout;
use std::ffi::{c_int, c_void};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use libsqlite3_sys as ffi;

/// Bytes SQLite holds from [`malloc`] and [`realloc`].
static USED: AtomicI64 = AtomicI64::new(0);
/// Whether SQLite allocates through this module.
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Each block starts with its size; the block SQLite sees starts after it, aligned as
/// `malloc`'s blocks are (SQLite needs 8).
const HEADER: usize = 16;
const ALIGN: usize = 16;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, ALIGN).ok()
}

/// The block SQLite holds at `p` and its size.
///
/// # Safety
/// `p` is a block from [`malloc`] or [`realloc`], not freed.
unsafe fn block(p: *mut c_void) -> (*mut u8, usize) {
    // SAFETY: every block SQLite holds starts `HEADER` bytes after ours, which holds the
    // size (written by `malloc`/`realloc`).
    unsafe {
        let base = p.cast::<u8>().sub(HEADER);
        (base, base.cast::<usize>().read())
    }
}

unsafe extern "C" fn malloc(n: c_int) -> *mut c_void {
    let Some(layout) = usize::try_from(n).ok().filter(|n| *n > 0).and_then(layout) else {
        return std::ptr::null_mut();
    };
    let size = layout.size() - HEADER;
    // SAFETY: `layout` is non-zero in size; the size is written where `block` reads it.
    unsafe {
        let base = std::alloc::alloc(layout);
        if base.is_null() {
            return std::ptr::null_mut();
        }
        base.cast::<usize>().write(size);
        USED.fetch_add(size as i64, Ordering::Relaxed);
        base.add(HEADER).cast()
    }
}

unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only blocks it got from `malloc`/`realloc`, once.
    unsafe {
        let (base, size) = block(p);
        USED.fetch_sub(size as i64, Ordering::Relaxed);
        std::alloc::dealloc(
            base,
            Layout::from_size_align_unchecked(size + HEADER, ALIGN),
        );
    }
}

unsafe extern "C" fn realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    if p.is_null() {
        // SAFETY: as `malloc`.
        return unsafe { malloc(n) };
    }
    let Some(new) = usize::try_from(n).ok().filter(|n| *n > 0) else {
        return std::ptr::null_mut();
    };
    if layout(new).is_none() {
        return std::ptr::null_mut();
    }
    // SAFETY: `p` is a live block of ours (SQLite's contract); on failure it stays as it
    // was, and SQLite keeps it.
    unsafe {
        let (base, old) = block(p);
        let moved = std::alloc::realloc(
            base,
            Layout::from_size_align_unchecked(old + HEADER, ALIGN),
            new + HEADER,
        );
        if moved.is_null() {
            return std::ptr::null_mut();
        }
        moved.cast::<usize>().write(new);
        USED.fetch_add(new as i64 - old as i64, Ordering::Relaxed);
        moved.add(HEADER).cast()
    }
}

unsafe extern "C" fn size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: SQLite asks only for blocks it holds.
    c_int::try_from(unsafe { block(p) }.1).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn roundup(n: c_int) -> c_int {
    n.saturating_add(7) & !7
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

/// Makes SQLite allocate through this module (once per process, before SQLite's first
/// use; later calls do nothing).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(malloc),
            xFree: Some(free),
            xRealloc: Some(realloc),
            xSize: Some(size),
            xRoundup: Some(roundup),
            xInit: Some(init),
            xShutdown: Some(shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLite copies the methods before it returns; it refuses (SQLITE_MISUSE)
        // once it has been initialized, and then nothing changes.
        let installed = unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_MALLOC,
                &methods as *const ffi::sqlite3_mem_methods,
            ) == ffi::SQLITE_OK
        };
        if installed {
            // SAFETY: as above, SQLite is not initialized yet.
            unsafe {
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
            }
            COUNTING.store(true, Ordering::Relaxed);
        }
    });
}

/// The bytes of heap SQLite holds in this process.
pub fn used() -> i64 {
    if COUNTING.load(Ordering::Relaxed) {
        USED.load(Ordering::Relaxed)
    } else {
        // SAFETY: reads SQLite's own counter; callable from any thread.
        unsafe { ffi::sqlite3_memory_used() }
    }
}

/// Whether SQLite allocates through this module in this process.
pub fn counting() -> bool {
    COUNTING.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_counted_and_keep_their_bytes() {
        // Straight through the functions SQLite would call (the process's SQLite may have
        // been opened by another test first).
        let before = USED.load(Ordering::Relaxed);
        // SAFETY: the blocks are used as SQLite would: written within their size, grown,
        // freed once.
        unsafe {
            let p = malloc(100).cast::<u8>();
            assert!(!p.is_null());
            assert_eq!(p as usize % 8, 0);
            assert_eq!(size(p.cast()), 100);
            p.write_bytes(7, 100);
            let q = realloc(p.cast(), 5000).cast::<u8>();
            assert_eq!(size(q.cast()), 5000);
            assert_eq!(std::slice::from_raw_parts(q, 100), &[7u8; 100][..]);
            free(q.cast());
            assert!(malloc(0).is_null());
            assert!(malloc(-1).is_null());
            assert_eq!(roundup(13), 16);
        }
        // Other tests' SQLite blocks come and go meanwhile when this one counts them too.
        if !counting() {
            assert_eq!(USED.load(Ordering::Relaxed), before);
        }
    }
}
