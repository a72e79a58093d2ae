//! Compiles `proto/` with the pure-Rust `protox` compiler, so neither a build
//! machine nor CI needs a system `protoc` (as prometheus/client_rust's build.rs
//! keeps code generation inside cargo). Also writes the descriptor set that
//! gRPC server reflection serves.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/io/prometheus/client/metrics.proto",
        "proto/aggregation_gateway/v1/gateway.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptors.bin"), descriptors.encode_to_vec())?;
    // Messages only: the server is written out in `transport/grpc.rs`
    // (taking each request's bytes rather than prost's owned types), and
    // tests call it with the Rust client (`clients/rust`).
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .include_file("pb.rs")
        .compile_fds(descriptors)?;
    // The remote-write messages the output sends: kept apart from the
    // descriptor set above, which gRPC reflection serves.
    let remote_write = [
        "proto/prometheus/remote.proto",
        "proto/io/prometheus/write/v2/types.proto",
    ];
    for p in remote_write {
        println!("cargo:rerun-if-changed={p}");
    }
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .include_file("remote_write_pb.rs")
        .compile_fds(protox::compile(remote_write, ["proto"])?)?;
    Ok(())
}
