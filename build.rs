//! Compiles `proto/` with the pure-Rust `protox` compiler, so neither a build
//! machine nor CI needs a system `protoc` (as prometheus/client_rust's build.rs
//! keeps code generation inside cargo).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/io/prometheus/client/metrics.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .include_file("pb.rs")
        .compile_fds(descriptors)?;
    Ok(())
}
