//! Compiles `proto/` with protox (pure Rust), so no `protoc` is needed on the build machine.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "synap/envelope/v1/envelope.proto",
        "synap/pipeline/v1/pipeline.proto",
        "synap/control/v1/control.proto",
        "synap/control/v1/deliveries.proto",
    ];
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Served by gRPC reflection; compile_fds does not write it itself.
    std::fs::write(out.join("synap_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    // Bodies as `Bytes`: the router hands one event's body to every matching delivery and the
    // sender to every attempt without copying it.
    tonic_prost_build::configure().bytes(".synap.pipeline.v1").compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
