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

/// `TIDEGATE_COMMIT`: the short hash of the commit being built, looked at again whenever
/// HEAD moves. A build from a source tarball has no `.git`: the commit is then what the
/// packager sets in `TIDEGATE_COMMIT` at build time, or "unknown" (never the commit of a
/// repository the tarball happens to be unpacked in, hence the check of the top level).
fn commit() {
    println!("cargo:rerun-if-env-changed=TIDEGATE_COMMIT");
    if let Ok(given) = std::env::var("TIDEGATE_COMMIT") {
        println!("cargo:rustc-env=TIDEGATE_COMMIT={given}");
        return;
    }
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&here)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|text| text.trim().to_string())
    };
    let ours = git(&["rev-parse", "--show-toplevel"])
        .and_then(|top| std::fs::canonicalize(top).ok())
        .is_some_and(|top| std::fs::canonicalize(&here).is_ok_and(|here| here == top));
    let commit = ours
        .then(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .flatten()
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TIDEGATE_COMMIT={commit}");
    if !ours {
        return;
    }
    if let Some(head) = git(&["rev-parse", "--path-format=absolute", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let path = git(&[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            &reference,
        ]);
        if let Some(path) = path {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
