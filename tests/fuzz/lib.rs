//! The fuzz targets as a library for the libFuzzer binaries in `fuzz_targets/`. The target
//! bodies are in `targets.rs`, shared with the corpus replay test of the main crate.

#[path = "targets.rs"]
mod targets;
pub use targets::*;

mod alloc_limit;

/// The `request` target, with kafka-protocol's known huge reservations tolerated (see
/// `alloc_limit::TOLERATE_HUGE`): they are reported once, with a reproducer, not rediscovered.
pub fn request_tolerating_known_reservations(data: &[u8]) {
    alloc_limit::TOLERATE_HUGE.store(true, std::sync::atomic::Ordering::Relaxed);
    request(data);
}
