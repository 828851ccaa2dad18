//! Makes a huge allocation a crash the fuzzer reports. Without AddressSanitizer (stable Rust
//! has none) libFuzzer's `-malloc_limit_mb` cannot see allocations, and a reservation that is
//! never touched (`Vec::with_capacity` of a claimed length) does not show in its RSS limit:
//! yet in tidegate it either aborts the process or holds memory a client never sent.

use std::alloc::{GlobalAlloc, Layout, System};

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

unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            refuse(layout.size());
        }
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            refuse(layout.size());
        }
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > LIMIT {
            refuse(new_size);
        }
        System.realloc(ptr, layout, new_size)
    }
}
