//! Code generated from `proto/` (our subset of SeaweedMQ's gRPC protocol) at build time.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod schema_pb {
    tonic::include_proto!("schema_pb");
}

pub mod messaging_pb {
    tonic::include_proto!("messaging_pb");
}

pub use messaging_pb::seaweed_messaging_client::SeaweedMessagingClient;
