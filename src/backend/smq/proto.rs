//! Code generated from `proto/` (our subsets of SeaweedFS's MQ broker, filer and master
//! gRPC protocols) at build time.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod schema_pb {
    tonic::include_proto!("schema_pb");
}

pub mod messaging_pb {
    tonic::include_proto!("messaging_pb");
}

pub use messaging_pb::seaweed_messaging_client::SeaweedMessagingClient;

pub mod filer_pb {
    tonic::include_proto!("filer_pb");
}

pub mod master_pb {
    tonic::include_proto!("master_pb");
}

pub use filer_pb::seaweed_filer_client::SeaweedFilerClient;
pub use master_pb::seaweed_client::SeaweedClient;
