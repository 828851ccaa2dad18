//! The fuzz targets as a library for the libFuzzer binaries in `fuzz_targets/`. The target
//! bodies are in `targets.rs`, shared with the corpus replay test of the main crate.

#[path = "targets.rs"]
mod targets;
pub use targets::*;

mod alloc_limit;
