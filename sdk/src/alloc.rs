//! The plugin's memory allocator inside the sandbox.
//!
//! Every request runs in a fresh instance that is thrown away afterwards, so nothing needs
//! to be freed: a bump allocator hands out memory by moving a pointer, frees only the most
//! recent block, and grows the most recent block in place. It is several times faster
//! than a general allocator for this one-shot life, and the host's memory cap still
//! bounds what a request can take.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;

const PAGE: usize = 65_536;
/// The first megabytes come from a zeroed static block inside the initial memory, so a
/// typical request never grows memory (a host call and fresh pages each time).
const ARENA: usize = 2 << 20;

#[repr(align(16))]
struct Arena(UnsafeCell<[u8; ARENA]>);
// SAFETY: a component instance runs on one thread.
unsafe impl Sync for Arena {}
static ARENA_BLOCK: Arena = Arena(UnsafeCell::new([0; ARENA]));
/// Grow linear memory at least this much at a time (1 MiB), to keep `memory.grow` calls few.
const MIN_GROW_PAGES: usize = 16;

struct Bump {
    /// Next free byte, end of usable memory, start of the last block.
    state: UnsafeCell<(usize, usize, usize)>,
}

// SAFETY: a component instance runs on one thread; there is no concurrent access.
unsafe impl Sync for Bump {}

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    state: UnsafeCell::new((0, 0, 0)),
};

impl Bump {
    /// Grows linear memory by at least `bytes` and answers the new region. If something
    /// else grew memory since our last look, the region starts where that left off.
    fn grow(bytes: usize) -> Option<(usize, usize)> {
        let pages = bytes.div_ceil(PAGE).max(MIN_GROW_PAGES);
        let previous = wasm32::memory_grow(0, pages);
        (previous != usize::MAX).then(|| (previous * PAGE, (previous + pages) * PAGE))
    }

    /// Reserves `layout` at the bump pointer, growing memory when needed.
    unsafe fn bump(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded, see `Sync` above.
        let state = unsafe { &mut *self.state.get() };
        if state.1 == 0 {
            // First use: start in the static arena; grow memory past it when it is full.
            state.0 = ARENA_BLOCK.0.get() as usize;
            state.1 = state.0 + ARENA;
        }
        let align = |at: usize| (at + layout.align() - 1) & !(layout.align() - 1);
        let mut start = align(state.0);
        let mut end = start.saturating_add(layout.size());
        if end > state.1 {
            // The new memory may not continue our region (the arena sits in the static
            // data), so ask for room for the whole block.
            let Some((from, to)) = Bump::grow(layout.size() + layout.align()) else {
                return core::ptr::null_mut();
            };
            if from != state.1 {
                // Not contiguous with our region (the arena, or memory someone else
                // grew): continue in the new one.
                start = align(from);
                end = start.saturating_add(layout.size());
            }
            state.1 = to;
            if end > state.1 {
                return core::ptr::null_mut();
            }
        }
        state.0 = end;
        state.2 = start;
        start as *mut u8
    }
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.bump(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: single-threaded, see `Sync` above.
        let state = unsafe { &mut *self.state.get() };
        if ptr as usize == state.2 && state.2 + layout.size() == state.0 {
            state.0 = state.2;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: single-threaded, see `Sync` above.
        let state = unsafe { &mut *self.state.get() };
        let at = ptr as usize;
        if at == state.2 && at + layout.size() == state.0 {
            // The last block grows or shrinks in place when memory allows.
            if at.saturating_add(new_size) <= state.1 {
                state.0 = at + new_size;
                return ptr;
            }
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the layout is valid, as `GlobalAlloc::realloc` requires of its caller.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as above.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for `layout.size()` bytes and do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
        }
        new
    }
}
