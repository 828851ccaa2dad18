//! Makes a huge allocation a crash the fuzzer reports. Without AddressSanitizer (stable Rust
//! has none) libFuzzer's `-malloc_limit_mb` cannot see allocations, and a reservation that is
//! never touched (`Vec::with_capacity` of a claimed length) does not show in its RSS limit:
//! yet in tidegate it either aborts the process or holds memory a client never sent.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by a target whose huge allocations are a known bug outside tidegate (the `request`
/// target: kafka-protocol 0.18 reserves a whole claimed array length before decoding it).
/// They are then served by address space that is never committed, so fuzzing goes on past
/// the known bug instead of stopping at it every few seconds; the RSS limit still catches
/// memory really used.
pub static TOLERATE_HUGE: AtomicBool = AtomicBool::new(false);

/// The largest single allocation allowed. Inputs are at most a few hundred KiB and
/// decompression is capped at 1 MiB by the targets, so anything near this is driven by a
/// length the input claims, not by bytes it holds.
const LIMIT: usize = 64 << 20;

struct Limited;

#[global_allocator]
static ALLOCATOR: Limited = Limited;

fn refuse(size: usize) -> ! {
    // No panic and no formatting: the allocator must not allocate, and unwinding out of it
    // is undefined. The size in decimal, by hand.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = size;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut stderr = std::io::stderr();
    let _ = std::io::Write::write_all(&mut stderr, b"alloc_limit: refusing an allocation of ");
    let _ = std::io::Write::write_all(&mut stderr, &digits[at..]);
    let _ = std::io::Write::write_all(&mut stderr, b" bytes (over 64 MiB)\n");
    std::process::abort()
}

/// A mapping of `size` bytes that the kernel does not commit until touched (zeroed, page
/// aligned), for a tolerated huge allocation.
unsafe fn reserve(size: usize) -> *mut u8 {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    match libc::mmap(std::ptr::null_mut(), size, prot, flags, -1, 0) {
        libc::MAP_FAILED => std::ptr::null_mut(),
        ptr => ptr.cast(),
    }
}

unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            if !TOLERATE_HUGE.load(Ordering::Relaxed) || layout.align() > 4096 {
                refuse(layout.size());
            }
            return reserve(layout.size());
        }
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            return self.alloc(layout); // a fresh mapping is zeroed
        }
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Sizes over the limit were only ever served by `reserve`.
        if layout.size() > LIMIT {
            libc::munmap(ptr.cast(), layout.size());
            return;
        }
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size <= LIMIT && layout.size() <= LIMIT {
            return System.realloc(ptr, layout, new_size);
        }
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new = self.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}
