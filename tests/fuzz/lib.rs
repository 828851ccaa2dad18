//! The fuzz targets as a library for the libFuzzer binaries in `fuzz_targets/`. The target
//! bodies are in `targets.rs`, shared with the corpus replay test of the main crate.

#[path = "targets.rs"]
mod targets;
pub use targets::*;

mod alloc_limit;

/// The `request` target, with kafka-protocol's known huge reservations tolerated (see
/// `alloc_limit::TOLERATE_HUGE`): they are reported once, with a reproducer
/// (`known/README.md`), not rediscovered. `FUZZ_STRICT_ALLOC=1` turns the tolerance off:
/// `scripts/fuzz merge request` uses it to keep such inputs out of the replayed corpus,
/// where the normal allocator would abort on them.
pub fn request_tolerating_known_reservations(data: &[u8]) {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let strict = *STRICT.get_or_init(|| std::env::var_os("FUZZ_STRICT_ALLOC").is_some());
    alloc_limit::TOLERATE_HUGE.store(!strict, std::sync::atomic::Ordering::Relaxed);
    request(data);
}
