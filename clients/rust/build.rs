//! Compiles the gateway's protos into client code with the pure-Rust
//! `protox` compiler: no system protoc. `proto/` is a link to the
//! repository's `proto/` (one copy, shared with the server); `cargo package`
//! puts the files themselves into the crate, so a packaged crate builds on
//! its own.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/io/prometheus/client/metrics.proto",
        "proto/aggregation_gateway/v1/gateway.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .include_file("pb.rs")
        .compile_fds(descriptors)?;
    Ok(())
}
