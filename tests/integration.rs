//! The integration tests, one module per file beside this one, built into one test binary:
//! a release build links (with thin LTO) each test binary on its own, and one link instead
//! of one per file is minutes of the suite. `cargo test --release --test integration
//! routing::` runs one file's tests. `fuzz_corpus.rs` stays a binary of its own: it sets the
//! gateway's allocator.

mod common;

mod admin;
mod authorization;
mod bad_input;
mod config_sources;
mod every_version;
mod grafana_dashboard;
mod groups;
mod metrics;
mod restart;
mod routing;
mod security;
mod security_gateways;
mod shutdown;
mod smq_offsets;
mod smq_producers;
mod smq_tls;
mod smq_truncation;
mod topic_configs;
