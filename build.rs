//! Compiles our subsets of SeaweedFS's gRPC protocols (proto/: MQ broker, filer, master)
//! into clients. protoc comes from the protoc-bin-vendored crate, so no system protobuf
//! compiler is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        // Record keys and values stay `Bytes`: no copy between the wire and Kafka batches.
        .bytes(".")
        .compile_protos(
            &[
                "proto/mq_broker.proto",
                "proto/filer.proto",
                "proto/master.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
