//! What the fuzz targets share: a counting global allocator, so a target
//! can assert that decoding an input held at most the amplification bound
//! the gateway promises (10 times the input plus 1 MiB). libFuzzer's
//! `-malloc_limit_mb` sees one huge allocation and `-rss_limit_mb` the
//! whole process; neither sees 1 KiB of input growing into 50 MiB of small
//! allocations, which is how most amplification looks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting the bytes held and their high-water mark.
pub struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn grown(bytes: usize) {
    let now = HELD.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(now, Relaxed);
}

fn shrunk(bytes: usize) {
    HELD.fetch_sub(bytes, Relaxed);
}

// SAFETY: every call is passed unchanged to `System`; the counters are
// only bookkeeping and never touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grown(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grown(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrunk(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            if new_size >= layout.size() {
                grown(new_size - layout.size());
            } else {
                shrunk(layout.size() - new_size);
            }
        }
        moved
    }
}

/// The most a request of `input` bytes may hold while it is decoded.
pub fn amplification_bound(input: usize) -> usize {
    10 * input + (1 << 20)
}

/// Runs `work` and panics (a libFuzzer finding) when the bytes it held at
/// its peak, above those held when it began, passed `bound`.
pub fn held_within<T>(what: &str, bound: usize, work: impl FnOnce() -> T) -> T {
    let base = HELD.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = work();
    let peak = PEAK.load(Relaxed).saturating_sub(base);
    assert!(
        peak <= bound,
        "{what} held {peak} bytes at its peak, over the bound of {bound}"
    );
    out
}
