//! Compiles our subsets of SeaweedFS's gRPC protocols (proto/: MQ broker, filer, master)
//! into clients. protoc comes from the protoc-bin-vendored crate, so no system protobuf
//! compiler is needed. Also names the commit being built, for `tidegate --version`.

use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    commit();
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

/// `TIDEGATE_COMMIT`: the short hash of the commit being built ("unknown" outside git),
/// looked at again whenever HEAD moves.
fn commit() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|text| text.trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TIDEGATE_COMMIT={commit}");
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &reference]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
