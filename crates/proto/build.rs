//! Compiles the `.proto` contract with the vendored `protoc`, so building
//! needs no system protobuf compiler.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "scorekeeper/v1/coaching/scorecard_template.proto",
        "scorekeeper/v1/coaching/scorecard.proto",
        "scorekeeper/v1/conversation.proto",
        "scorekeeper/v1/autoqa.proto",
        "scorekeeper/v1/job.proto",
        "scorekeeper/v1/job_payload.proto",
        "scorekeeper/v1/analytics.proto",
    ];
    let paths: Vec<PathBuf> = files.iter().map(|f| root.join(f)).collect();
    let descriptor = PathBuf::from(std::env::var("OUT_DIR")?).join("scorekeeper_descriptor.bin");

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Our codec: a request that does not decode is INVALID_ARGUMENT, not
    // INTERNAL (src/codec.rs).
    tonic_prost_build::configure()
        .codec_path("crate::codec::ProtoCodec")
        .file_descriptor_set_path(&descriptor)
        .compile_with_config(config, &paths, std::slice::from_ref(&root))?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
