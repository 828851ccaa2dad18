//! The Kafka side of a connection: frames in, requests dispatched by API key, responses out
//! in request order.

pub mod admission;
pub mod authorization;
pub mod budget;
pub mod connection;
pub mod dispatch;
pub mod shutdown;

pub use connection::{serve, Endpoint, FrameError, FrameReader, TlsPeer};
