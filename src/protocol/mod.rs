//! The Kafka side of a connection: frames in, requests dispatched by API key, responses out
//! in request order.

pub mod admission;
pub mod authorization;
pub mod budget;
pub mod close_log;
pub mod connection;
pub mod dispatch;
pub mod error_codes;
pub mod shutdown;

pub use connection::{serve, Endpoint, FrameError, FrameReader, TlsPeer};
