//! The plugin's memory allocator inside the sandbox.
//!
//! Every request runs in a fresh instance that is thrown away afterwards, so the allocator
//! is built for one short life: blocks come from a bump pointer, each rounded up to a
//! power of two (large ones to 64 KiB), and a freed block goes on the free list of its
//! size, where the next request of that size takes it (the top block, the one that ends
//! at the bump pointer, instead gives its bytes back to the pointer, and grows in place,
//! memory with it). Allocating and freeing
//! are a few instructions each.
//!
//! Reuse is what keeps a request's memory small. A bump allocator that never reused a
//! block made a page of a thousand FHIR resources touch some twenty megabytes of fresh
//! memory (every temporary string of every resource), and the pages past the four
//! mebibytes the host keeps resident between instances were faulted in, zeroed and
//! handed back on every request: a fifth of a Bulk Data export's CPU
//! (docs/benchmarks.md). With reuse the memory a request touches follows what it holds
//! at once, not everything it ever made.

use core::alloc::Layout;
use core::cell::UnsafeCell;

/// Every block starts at a multiple of this, so a reused block suits any layout aligned
/// up to it.
const ALIGN: usize = 16;
/// The smallest block (`1 << MIN_CLASS` bytes).
const MIN_CLASS: u32 = 4;
/// Size classes: class `c` holds blocks of `1 << c` bytes, up to [`LARGE`].
const CLASSES: usize = LARGE.trailing_zeros() as usize + 1;
/// No block: free lists end here.
const NONE: usize = 0;

/// Blocks larger than this are not rounded to a power of two (which could double a
/// large response's memory against the instance's cap) but to a multiple of [`STEP`],
/// and freed onto one list searched for the first that fits.
const LARGE: usize = 256 << 10;
/// The granularity of large blocks.
const STEP: usize = 64 << 10;

/// The bytes of the block that holds `size` bytes: the power of two at or above it up to
/// [`LARGE`], a multiple of [`STEP`] above; `None` past the largest.
fn capacity(size: usize) -> Option<usize> {
    if size <= LARGE {
        size.max(1 << MIN_CLASS).checked_next_power_of_two()
    } else {
        size.checked_add(STEP - 1).map(|s| s & !(STEP - 1))
    }
}

/// Where new memory comes from: `grow(bytes)` answers a fresh region of at least `bytes`
/// as `(start, end)`, or `None` when memory cannot grow.
pub(crate) trait Source {
    fn grow(&self, bytes: usize) -> Option<(usize, usize)>;
}

/// The allocator's state: the bump region and a free list per class. The block that
/// ends at the bump pointer is the top one: freed, its bytes go back to the pointer;
/// grown, it grows in place (memory too, when the region ends there).
struct State {
    /// The next free byte and the end of the region.
    next: usize,
    end: usize,
    /// The first free block of each class; each free block holds the next one's address
    /// in its first word.
    free: [usize; CLASSES],
    /// The first free large block; each holds the next one's address and its own size
    /// in its first two words.
    large: usize,
}

/// A size-class allocator over a [`Source`].
pub(crate) struct Classes<S> {
    state: UnsafeCell<State>,
    source: S,
}

impl<S: Source> Classes<S> {
    pub(crate) const fn new(source: S) -> Classes<S> {
        Classes {
            state: UnsafeCell::new(State {
                next: 0,
                end: 0,
                free: [NONE; CLASSES],
                large: NONE,
            }),
            source,
        }
    }

    /// Reserves `bytes` (a whole block) at the bump pointer, aligned to `align`,
    /// growing memory when needed.
    fn bump(&self, state: &mut State, bytes: usize, align: usize) -> usize {
        let aligned = |at: usize| at.checked_add(align - 1).map(|a| a & !(align - 1));
        let mut start = aligned(state.next);
        let mut end = start.and_then(|s| s.checked_add(bytes));
        if end.is_none_or(|end| end > state.end) {
            let Some((from, to)) = bytes
                .checked_add(align)
                .and_then(|want| self.source.grow(want))
            else {
                return NONE;
            };
            if from != state.end {
                // Not contiguous with the region (the first use, or memory someone else
                // grew): continue in the new one.
                start = aligned(from);
                end = start.and_then(|s| s.checked_add(bytes));
            }
            state.end = to;
            if end.is_none_or(|end| end > state.end) {
                return NONE;
            }
        }
        let (Some(start), Some(end)) = (start, end) else {
            return NONE;
        };
        state.next = end;
        start
    }

    /// Moves the end of the top block (the bump pointer) to `end`, growing the region
    /// when it ends first; `false` when memory cannot grow there (then the region may
    /// have moved on to fresh memory elsewhere, where the next block is made).
    fn extend(&self, state: &mut State, end: usize) -> bool {
        if end > state.end {
            let Some((from, to)) = self.source.grow(end - state.end) else {
                return false;
            };
            if from != state.end {
                // Not contiguous: the new region serves the blocks made from now on.
                state.next = from;
                state.end = to;
                return false;
            }
            state.end = to;
            if end > state.end {
                return false;
            }
        }
        state.next = end;
        true
    }

    /// # Safety
    /// As `GlobalAlloc::alloc`; one thread only.
    pub(crate) unsafe fn allocate(&self, layout: Layout) -> *mut u8 {
        // SAFETY: one thread (the caller's promise); no other reference is live.
        let state = unsafe { &mut *self.state.get() };
        if layout.align() > ALIGN {
            // Rare (no such type in the SDK): its own block, never listed.
            return self.bump(state, layout.size(), layout.align()) as *mut u8;
        }
        let Some(bytes) = capacity(layout.size()) else {
            return core::ptr::null_mut();
        };
        if bytes <= LARGE {
            let c = bytes.trailing_zeros() as usize;
            let head = state.free[c];
            if head != NONE {
                // SAFETY: a listed block is ours, free, and at least a word long.
                state.free[c] = unsafe { *(head as *const usize) };
                return head as *mut u8;
            }
        } else {
            // The first large block that fits (a few at most).
            let mut link: *mut usize = &mut state.large;
            // SAFETY: `link` is the list's head or the first word of a listed free
            // block; each listed block is ours, free, and at least two words long.
            unsafe {
                while *link != NONE {
                    let at = *link;
                    if *(at as *const usize).add(1) >= bytes {
                        *link = *(at as *const usize);
                        return at as *mut u8;
                    }
                    link = at as *mut usize;
                }
            }
        }
        self.bump(state, bytes, ALIGN) as *mut u8
    }

    /// # Safety
    /// As `GlobalAlloc::dealloc`; one thread only.
    pub(crate) unsafe fn release(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in `allocate`.
        let state = unsafe { &mut *self.state.get() };
        let at = ptr as usize;
        let bytes = if layout.align() > ALIGN {
            layout.size()
        } else {
            match capacity(layout.size()) {
                Some(bytes) => bytes,
                None => return,
            }
        };
        if at.checked_add(bytes) == Some(state.next) {
            // The top block: its bytes go back to the bump pointer.
            state.next = at;
            return;
        }
        if layout.align() > ALIGN {
            return;
        }
        if bytes <= LARGE {
            let c = bytes.trailing_zeros() as usize;
            // SAFETY: the block is ours (the caller's promise) and at least a word long.
            unsafe { *(at as *mut usize) = state.free[c] };
            state.free[c] = at;
        } else {
            // SAFETY: as above, and a large block is far more than two words long.
            unsafe {
                *(at as *mut usize) = state.large;
                *(at as *mut usize).add(1) = bytes;
            }
            state.large = at;
        }
    }

    /// # Safety
    /// As `GlobalAlloc::realloc`; one thread only.
    pub(crate) unsafe fn resize(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= ALIGN {
            let (Some(old), Some(new)) = (capacity(layout.size()), capacity(new_size)) else {
                return core::ptr::null_mut();
            };
            if new <= old {
                // The block already holds it; freed, it is listed by its new size (its
                // spare bytes unused).
                return ptr;
            }
            // SAFETY: as in `allocate`.
            let state = unsafe { &mut *self.state.get() };
            let at = ptr as usize;
            if at.checked_add(old) == Some(state.next)
                && let Some(end) = at.checked_add(new)
                && self.extend(state, end)
            {
                // The top block grows in place: a buffer written to its end (a page's
                // entries) is never copied to grow, nor leaves its old blocks behind.
                return ptr;
            }
        } else if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the layout is valid, as `GlobalAlloc::realloc` requires of its caller.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: forwarded contract.
        let new = unsafe { self.allocate(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for `layout.size()` bytes (the new one is
            // larger) and distinct.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.release(ptr, layout);
            }
        }
        new
    }
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use core::alloc::{GlobalAlloc, Layout};
    use core::arch::wasm32;
    use core::cell::UnsafeCell;

    use super::{Classes, Source};

    const PAGE: usize = 65_536;
    /// The first megabytes come from a zeroed static block inside the initial memory, so
    /// a typical request never grows memory (a host call and fresh pages each time).
    const ARENA: usize = 2 << 20;
    /// Grow linear memory at least this much at a time (1 MiB), to keep `memory.grow`
    /// calls few.
    const MIN_GROW_PAGES: usize = 16;

    #[repr(align(16))]
    struct Arena(UnsafeCell<[u8; ARENA]>);
    // SAFETY: a component instance runs on one thread.
    unsafe impl Sync for Arena {}
    static ARENA_BLOCK: Arena = Arena(UnsafeCell::new([0; ARENA]));

    /// The arena first, then linear memory grown.
    struct Memory {
        arena_used: UnsafeCell<bool>,
    }

    impl Source for Memory {
        fn grow(&self, bytes: usize) -> Option<(usize, usize)> {
            // SAFETY: one thread, see `Sync` below.
            let arena_used = unsafe { &mut *self.arena_used.get() };
            if !*arena_used && bytes <= ARENA {
                *arena_used = true;
                let start = ARENA_BLOCK.0.get() as usize;
                return Some((start, start + ARENA));
            }
            let pages = bytes.div_ceil(PAGE).max(MIN_GROW_PAGES);
            let previous = wasm32::memory_grow(0, pages);
            (previous != usize::MAX).then(|| (previous * PAGE, (previous + pages) * PAGE))
        }
    }

    struct Global(Classes<Memory>);

    // SAFETY: a component instance runs on one thread; there is no concurrent access.
    unsafe impl Sync for Global {}

    #[global_allocator]
    static ALLOCATOR: Global = Global(Classes::new(Memory {
        arena_used: UnsafeCell::new(false),
    }));

    unsafe impl GlobalAlloc for Global {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded contract; one thread.
            unsafe { self.0.allocate(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded contract; one thread.
            unsafe { self.0.release(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: forwarded contract; one thread.
            unsafe { self.0.resize(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Memory from a leaked buffer, handed out in `chunk`-byte regions; counts the bytes.
    struct Buffer {
        at: Cell<usize>,
        end: usize,
        chunk: usize,
        grown: Cell<usize>,
    }

    impl Buffer {
        fn new(bytes: usize, chunk: usize) -> Buffer {
            let buffer: &'static mut [u8] = Vec::leak(vec![0u8; bytes + ALIGN]);
            let start = buffer.as_mut_ptr() as usize;
            Buffer {
                at: Cell::new(start),
                end: start + bytes + ALIGN,
                chunk,
                grown: Cell::new(0),
            }
        }
    }

    impl Source for Buffer {
        fn grow(&self, bytes: usize) -> Option<(usize, usize)> {
            let bytes = bytes.max(self.chunk);
            let start = self.at.get();
            let end = start.checked_add(bytes).filter(|end| *end <= self.end)?;
            self.at.set(end);
            self.grown.set(self.grown.get() + bytes);
            Some((start, end))
        }
    }

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn blocks_are_aligned_distinct_and_reused_by_size() {
        let heap = Classes::new(Buffer::new(1 << 20, 4096));
        unsafe {
            let a = heap.allocate(layout(24));
            let b = heap.allocate(layout(24));
            let c = heap.allocate(layout(100));
            assert_eq!(a as usize % ALIGN, 0);
            assert_eq!(b as usize - a as usize, 32, "24 bytes take a 32-byte block");
            assert_eq!(c as usize % ALIGN, 0);
            a.write_bytes(1, 24);
            b.write_bytes(2, 24);
            // `a` is not the top block: it goes on the 32-byte list and comes back.
            heap.release(a, layout(24));
            assert_eq!(heap.allocate(layout(30)), a);
            assert_eq!(*b, 2, "a neighbour is untouched");
            // The top block gives its bytes back to the bump pointer.
            heap.release(c, layout(100));
            assert_eq!(heap.allocate(layout(128)), c);
        }
    }

    #[test]
    fn a_growing_block_keeps_its_bytes_and_the_top_one_grows_in_place() {
        let heap = Classes::new(Buffer::new(1 << 20, 1 << 20));
        unsafe {
            let first = heap.allocate(layout(16));
            first.write_bytes(7, 16);
            let mut block = heap.allocate(layout(16));
            for i in 0..16u8 {
                *block.add(usize::from(i)) = i;
            }
            // Within its class: the same block.
            assert_eq!(heap.resize(block, layout(16), 10), block);
            // The top block grows in place.
            let grown = heap.resize(block, layout(16), 1000);
            assert_eq!(grown, block);
            block = grown;
            // Not the top block any more: it moves, with its bytes, and its old
            // place is reused.
            let other = heap.allocate(layout(64));
            let moved = heap.resize(block, layout(1000), 5000);
            assert_ne!(moved, block);
            for i in 0..16u8 {
                assert_eq!(*moved.add(usize::from(i)), i);
            }
            assert_eq!(heap.allocate(layout(1024)), block);
            assert_eq!(*first, 7);
            heap.release(other, layout(64));
        }
    }

    #[test]
    fn the_top_block_grows_in_place_past_the_region_and_once_what_was_above_it_is_freed() {
        // A page's entries: one buffer written to its end, doubling, while the
        // temporaries of each resource are made above it and freed.
        let heap = Classes::new(Buffer::new(64 << 20, 64 << 10));
        unsafe {
            let mut size = 1 << 10;
            let entries = heap.allocate(layout(size));
            entries.write_bytes(3, size);
            for step in 0..12 {
                let temporary = heap.allocate(layout(100 << (step % 4)));
                temporary.write_bytes(9, 100);
                heap.release(temporary, layout(100 << (step % 4)));
                let grown = heap.resize(entries, layout(size), size * 2);
                assert_eq!(grown, entries, "doubling {step} copied the buffer");
                grown.add(size).write_bytes(3, size);
                size *= 2;
            }
            assert_eq!(size, 4 << 20);
            assert!((0..size).all(|i| *entries.add(i) == 3));
            // Memory grew in 64 KiB regions; the buffer took them as they came, so
            // what grew is the buffer and no more.
            let grown = heap.source.grown.get();
            assert!(grown <= size + STEP, "{grown} bytes grown for 4 MiB");
            // A block above it that stays: now it moves.
            let above = heap.allocate(layout(16));
            assert_ne!(heap.resize(entries, layout(size), size * 2), entries);
            heap.release(above, layout(16));
        }
    }

    #[test]
    fn memory_follows_what_is_held_not_what_was_made() {
        // A thousand "resources", each made of temporaries freed before the next one:
        // the memory grown stays near one resource's worth, not a thousand's.
        let heap = Classes::new(Buffer::new(64 << 20, 64 << 10));
        let mut kept = Vec::new();
        unsafe {
            for _ in 0..1000 {
                let temporaries: Vec<(*mut u8, usize)> = [40, 200, 700, 3000, 90]
                    .iter()
                    .map(|&n| (heap.allocate(layout(n)), n))
                    .collect();
                for (block, n) in temporaries.into_iter().rev() {
                    block.write_bytes(0xAB, n);
                    heap.release(block, layout(n));
                }
                kept.push(heap.allocate(layout(600)));
            }
        }
        let grown = heap.source.grown.get();
        assert!(
            grown < 2 << 20,
            "{grown} bytes grown for 1000 kept blocks of 600 bytes"
        );
    }

    #[test]
    fn large_blocks_take_their_size_not_the_next_power_of_two() {
        // A response of 2 MiB and 2 bytes, as a plugin's `format!` makes it: a block of
        // 2 MiB + 64 KiB, not 4 MiB (an instance's memory cap is a few times that).
        let heap = Classes::new(Buffer::new(16 << 20, 64 << 10));
        unsafe {
            let text = heap.allocate(layout((2 << 20) + 2));
            let after = heap.allocate(layout(16));
            assert_eq!(after as usize - text as usize, (2 << 20) + STEP);
            // Freed (not the top block), it is taken again by any large block it holds.
            heap.release(text, layout((2 << 20) + 2));
            assert_eq!(heap.allocate(layout(300 << 10)), text);
            let grown = heap.source.grown.get();
            assert!(grown < (2 << 20) + 2 * STEP, "{grown}");
        }
    }

    #[test]
    fn memory_that_cannot_grow_answers_null() {
        let heap = Classes::new(Buffer::new(4096, 4096));
        unsafe {
            assert!(!heap.allocate(layout(1000)).is_null());
            assert!(heap.allocate(layout(1 << 20)).is_null());
            assert!(heap.allocate(layout(isize::MAX as usize - 7)).is_null());
            let big = Layout::from_size_align(64, 64).unwrap();
            let block = heap.allocate(big);
            assert!(!block.is_null());
            assert_eq!(block as usize % 64, 0);
        }
    }
}
